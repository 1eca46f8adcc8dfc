"""``python -m experiments.study``: create, prepare, open, vote (storage API), export, analyse,
close - and the numbers match the analysis page's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from experiments.study import cli
from experiments.study import prepare as prep
from experiments.study.protocol import plan

PROJECT = Path(__file__).resolve().parents[2]
FAKES = {"hue40": prep.hue_rotation_colorizer(40), "hue120": prep.hue_rotation_colorizer(120, 1.0)}


@pytest.fixture(autouse=True)
def db(store, monkeypatch):
    monkeypatch.setenv("COLORIZE_STUDY_DB", store.url)
    monkeypatch.setenv("COLORIZE_STUDY_BASE_URL", "https://study.example.org")
    # the CLI colorizes with backends.load(name); the stand-in methods come from here instead
    real_prepare = prep.prepare
    monkeypatch.setattr(prep, "prepare", lambda store, study, colorizers=None, **kw: real_prepare(store, study, FAKES, **kw))


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_round_trip_matches_the_analysis_page(store, study_photos, capsys, tmp_path):
    folder = str(Path(study_photos[0]).parent)
    code, out, _ = run(capsys, "create", "cli-t", "--kind", "turing", "--methods", "hue40,hue120", "--photos", folder,
                       "--trials", "6", "--practice", "1", "--vigilance", "0.34", "--size", "32", "--seed", "3")  # fmt: skip
    assert code == 0 and "created turing study 'cli-t': 12 photos" in out and "next: prepare" in out
    code, out, err = run(capsys, "prepare", "cli-t")
    assert code == 0 and out.startswith("12 photos ready (48 images generated)") and "preparing cli-t" in err
    code, out, _ = run(capsys, "prepare", "cli-t")  # resumable: nothing left to do
    assert code == 0 and "(0 images generated)" in out
    assert run(capsys, "open", "cli-t")[0] == 0
    d = store.study("cli-t").design
    for k in range(10):  # vote through the storage API: every third participant is fooled on scored trials
        p = store.join("cli-t")
        for t in plan(d, p.id, p.condition, store.ready_photos("cli-t")):
            fooled = k % 3 == 0 and t.phase == "main"
            store.record_vote(p, t, t.real_side if fooled else t.fake_side, 600 + k)
        store.finish(p.id)
    code, out, _ = run(capsys, "status", "cli-t")
    assert code == 0 and "10 joined, 10 finished" in out and "votes      90" in out
    assert "https://study.example.org/?study=cli-t" in out
    code, out, err = run(capsys, "analyse", "cli-t")
    assert code == 0 and "hue40" in out and "fool_rate" in out
    out_dir = tmp_path / "export"
    code, out, _ = run(capsys, "export", "cli-t", "--out", str(out_dir))
    assert code == 0
    names = {p.name for p in out_dir.iterdir()}
    assert {"votes.csv", "results.csv", "results.tex", "fool_rate.png", "fool_rate.pdf", "participants.csv"} <= names
    votes = pd.read_csv(out_dir / "votes.csv")
    assert len(votes) == 90 and set(votes["real_side"]) == {"left", "right"}
    truth = votes[votes["phase"] != "practice"]
    assert (truth["correct"] == (truth["choice"] != truth["real_side"])).all()
    assert (out_dir / "fool_rate.pdf").read_bytes().startswith(b"%PDF") and (out_dir / "fool_rate.png").stat().st_size > 1000
    tex = (out_dir / "results.tex").read_text()
    assert "\\begin{tabular}" in tex and "hue40" in tex and "\\bottomrule" in tex
    parts = pd.read_csv(out_dir / "participants.csv")
    assert parts["completion_code"].str.len().eq(12).all()
    results = pd.read_csv(out_dir / "results.csv")
    # the analysis page shows the same numbers
    at = AppTest.from_file(str(PROJECT / "dashboard" / "views" / "study_analysis.py"), default_timeout=60)
    at.secrets["study_admin_token"] = "t"
    at.session_state["_study_admin_token"] = "t"
    at.run()
    page = at.dataframe[0].value.set_index("method")
    cli_res = results.set_index("method").loc[page.index]
    for col in ("participants", "excluded", "trials", "fooled"):
        assert page[col].tolist() == cli_res[col].tolist()
    for col in ("fool_rate", "wilson_lo", "wilson_hi", "boot_lo", "boot_hi", "p_vs_50"):
        assert page[col].to_numpy() == pytest.approx(cli_res[col].to_numpy(), nan_ok=True)
    assert results["fooled"].sum() == 4 * 6  # participants 0, 3, 6, 9 were fooled on all 6 scored trials
    assert run(capsys, "close", "cli-t")[0] == 0 and store.study("cli-t").status == "closed"


def test_arena_export_has_a_bradley_terry_figure(store, study_photos, capsys, tmp_path):
    folder = str(Path(study_photos[0]).parent)
    assert run(capsys, "create", "cli-a", "--kind", "arena", "--methods", "hue40,hue120", "--photos", folder, "--sample", "4",
               "--trials", "4", "--size", "32")[0] == 0  # fmt: skip
    run(capsys, "prepare", "cli-a")
    run(capsys, "open", "cli-a")
    d = store.study("cli-a").design
    for _ in range(3):
        p = store.join("cli-a")
        for t in plan(d, p.id, p.condition, store.ready_photos("cli-a")):
            store.record_vote(p, t, "left" if t.left == "hue40" else "right", 500)
    code, _, err = run(capsys, "export", "cli-a", "--out", str(tmp_path))
    assert code == 0 and "too few" in err  # 3 participants: the interval warning
    board = pd.read_csv(tmp_path / "results.csv")
    assert board.iloc[0]["method"] == "hue40" and board["strength"].sum() == pytest.approx(0, abs=1e-9)
    assert (tmp_path / "bradley_terry.pdf").exists() and (tmp_path / "win_probability.csv").exists()
    assert set(pd.read_csv(tmp_path / "votes.csv")["real_side"].fillna("")) == {""}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["status", "nope"], "no study named 'nope'"),
        (["create", "Bad Name", "--methods", "a", "--photos", "."], "study name"),
        (["create", "x", "--methods", "a", "--photos", "/no/such/folder"], "photo folder not found"),
        (["create", "x", "--kind", "arena", "--methods", "a", "--photos", "PHOTOS"], "at least two methods"),
        (["create", "x", "--methods", "a", "--photos", "PHOTOS"], "needs at least 54 photos"),
        (["open", "nope"], "no study named"),
        (["export", "nope", "--out", "x"], "no study named"),
        (["analyse", "x", "--conf", "2"], "--conf"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys, study_photos):
    argv = [str(Path(study_photos[0]).parent) if a == "PHOTOS" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_unknown_command_and_missing_arguments_exit_2():
    for argv in (["frobnicate"], ["create", "x"], []):
        proc = subprocess.run([sys.executable, "-m", "experiments.study", *argv], cwd=PROJECT, capture_output=True, text=True)
        assert proc.returncode == 2 and "error:" in proc.stderr
