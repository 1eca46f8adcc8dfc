"""experiments.report and the modules it reads through (tables, runlogs, charts): a self-contained
HTML report with every method and >= 8 figures, its PDF, the paired tests, the compact table."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from experiments import report, runlogs, tables

METHODS = ["regression", "classification", "fusion", "gan", "neural_style"]


def write_evaluation(root: Path, name: str, n: int = 30, seed: int = 0) -> None:
    """An evaluation as experiments.evaluate writes it: per-image CSV, summary with intervals, meta."""
    rng = np.random.default_rng(seed)
    shift = {
        "gray": 0.0,
        "regression": 0.004,
        "classification": 0.03,
        "fusion": 0.02,
        "gan": 0.0,
        "neural_style": -0.01,
        "truth": 0.2,
    }
    rows = []
    base = rng.normal(0.8, 0.03, n)
    for m, s in shift.items():
        for i in range(n if m != "neural_style" else 8):
            auc = base[i] + s + rng.normal(0, 0.005)
            rows.append({"method": m, "image": f"{'cd'[i % 2]}/{i}.png", "label": "cd"[i % 2], "psnr": 22 + 10 * (auc - 0.8) + rng.normal(0, 0.3),
                         "ciede2000": 10 - 20 * (auc - 0.8), "auc_rebal": auc})  # fmt: skip
    per = pd.DataFrame(rows)
    d = root / "metrics"
    d.mkdir(parents=True, exist_ok=True)
    per.to_csv(d / f"{name}.csv", index=False)
    g = per.groupby("method", sort=False)
    summ = g.size().rename("n").reset_index()
    for c in ("psnr", "ciede2000", "auc_rebal"):
        summ[c] = g[c].mean().to_numpy()
        summ[f"{c}_lo"] = summ[c] - 0.01
        summ[f"{c}_hi"] = summ[c] + 0.01
    summ.insert(1, "status", "ok")
    summ.to_csv(d / f"{name}.summary.csv", index=False)
    (d / f"{name}.json").write_text(json.dumps({"data": "/nowhere", "photos": n, "size": 64, "created": "2026-01-01"}))


@pytest.fixture
def results(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "results"
    write_evaluation(root, "val")
    write_evaluation(root, "test", seed=1)
    (root / "checkpoints").mkdir(parents=True)
    for m in METHODS[:4]:
        (root / "checkpoints" / f"{m}.json").write_text(json.dumps({
            "step": 100, "images_seen": 3200, "wall_s": 360.0, "hardware": "CPU test, 2 cores", "commit": "abc1234",
            "saved_at": "2026-01-01T00:00:00", "config": {"data": {"train": "data/train", "crop": 64, "batch_size": 32}, "model": {"loss": "l2"}},
        }))  # fmt: skip
        run = root / "runs" / m
        (run / "samples").mkdir(parents=True)
        (run / "config.toml").write_text(f'method = "{m}"\n')
        cols = "step,epoch,wall_s,images_seen,loss,loss_g,d_real,d_fake" if m == "gan" else "step,epoch,wall_s,images_seen,loss"
        lines = [cols] + [
            ",".join(
                str(v) for v in ([s, 0, s * 2.0, s * 32, 10 / s, 1.0, 0.7, 0.3] if m == "gan" else [s, 0, s * 2.0, s * 32, 1 / s])
            )
            for s in range(1, 11)
        ]
        (run / "log.csv").write_text("\n".join(lines) + "\n")
        val = "step,wall_s,val_ab_rmse,images_seen,val_auc_rebal\n5,10,20,160,0.80\n10,20,19,320,0.81\n"
        (run / "val.csv").write_text(val if m != "fusion" else "step,wall_s,val_ab_rmse\n5,10,20\n10,20,19\n")  # an older run
        Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(run / "samples" / "step_0000010.png")
    Image.fromarray(np.full((22 + 2 * 32, 7 * 32, 3), 200, np.uint8)).save(root / "sample_grid.jpg")
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "cpu.md").write_text(
        "# Benchmark\n\n| method | median (s) |\n|---|---:|\n| gan | 0.1 |\n| neural_style | 9.9 |\n"
    )
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(root))
    monkeypatch.delenv("COLORIZE_STUDY_DB", raising=False)
    return root


# --- statistics -----------------------------------------------------------------------------------


def test_holm_matches_the_step_down_procedure():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    adj = tables.holm(p)
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert np.allclose(adj[:4], [0.03, 0.06, 0.06, 0.02]) and np.isnan(adj[4])


def test_paired_tests_find_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    base = rng.normal(0.8, 0.05, 60)
    per = pd.concat([
        pd.DataFrame({"method": "a", "image": range(60), "auc_rebal": base + 0.01 + rng.normal(0, 0.002, 60)}),
        pd.DataFrame({"method": "b", "image": range(60), "auc_rebal": base}),
        pd.DataFrame({"method": "c", "image": range(60), "auc_rebal": base + rng.normal(0, 0.002, 60)}),
    ])  # fmt: skip
    pairs = tables.paired_comparisons(per, "auc_rebal", n_boot=500).set_index(["a", "b"])
    # a beats b by 0.01 on every photo: far beyond the between-photo spread that unpaired intervals would see
    assert pairs.loc[("a", "b"), "better"] == "a" and pairs.loc[("a", "b"), "p_holm"] < 1e-6
    assert pairs.loc[("a", "b"), "lo"] > 0.009 and pairs.loc[("a", "b"), "hi"] < 0.011
    assert pairs.loc[("b", "c"), "p_holm"] > 0.05 and not pairs.loc[("b", "c"), "significant"]
    assert (pairs["p_holm"] >= pairs["p"]).all()


def test_compact_table_bolds_the_best_and_gives_the_paired_difference_from_grey(results):
    ev = tables.read_evaluation("val")
    t = tables.compact_table(ev, ["auc_rebal", "ciede2000"], n_boot=200)
    assert tables.metric_columns(ev["summary"])[0] == "auc_rebal"  # the headline first
    assert t.attrs["best"]["auc_rebal"] == {"classification"} and t.attrs["best"]["ciede2000"] == {"classification"}
    row = t.set_index("method").loc["classification"]
    assert re.fullmatch(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", row["auc_rebal"])
    diff = float(row["diff"].split(" ")[0])
    assert 0.025 < diff < 0.035 and row["diff"].startswith("+")
    assert t.set_index("method").loc["gray", "diff"] == "(baseline)"
    assert r"\textbf{" in tables.to_latex(t) and "<b>" in tables.to_html(t)


# --- run logs ------------------------------------------------------------------------------------


def test_by_subject_finds_the_label_a_method_fails_on_and_says_how_sure():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        label = "cars" if i < 30 else "dogs"
        base = rng.normal(0.8, 0.03)
        # "a" is good on cars, no better than grey on dogs; "b" is modestly good on both
        for m, gain in (("gray", 0.0), ("a", 0.05 if label == "cars" else 0.0), ("b", 0.02), ("truth", 0.2)):
            rows.append({"method": m, "image": f"{label}/{i}.png", "label": label, "auc_rebal": base + gain + rng.normal(0, 0.004),
                         "ciede2000": 10.0})  # fmt: skip
    per = pd.DataFrame(rows)
    t = tables.by_label(per, "auc_rebal", n_boot=300)
    assert list(t["label"]) == ["all photos", "dogs", "cars"]  # the hardest subject first
    assert list(t["n"]) == [60, 30, 30] and t.attrs["methods"] == ["a", "b"] and t.attrs["relative"]
    by = t.set_index("label")
    assert by.loc["cars", "a"] == pytest.approx(0.05, abs=0.004) and by.loc["dogs", "a"] == pytest.approx(0.0, abs=0.004)
    assert by.loc["all photos", "a"] == pytest.approx(0.025, abs=0.004)
    assert 0 < by.loc["cars", "half_width"] < 0.004  # a 30-photo interval of a 0.0057-sd difference
    lo, hi = t.attrs["intervals"]["a"]["cars"]
    assert lo < 0.05 < hi
    shown = tables.by_label_display(t).set_index("subject")
    assert shown.loc["cars", "best"] == "a" and shown.loc["dogs", "best"] == "b" and shown.loc["dogs", "b"] == "+0.020"
    styled = tables.by_label_styled(t)  # the page's table: the same text, method cells shaded by value
    assert styled.data.equals(tables.by_label_display(t)) and styled.to_html().count("background-color") >= 2
    long = tables.by_label_long(t)
    assert len(long) == 6 and set(long.columns) == {"label", "n", "method", "value", "lo", "hi"}
    # a lower-is-better metric: the hardest subject is the one with the largest difference, shaded red
    per["ciede2000"] = 10.0 - 100 * (per["auc_rebal"] - 0.8)
    lower = tables.by_label(per, "ciede2000", n_boot=0)
    assert list(lower["label"]) == ["all photos", "dogs", "cars"] and lower.set_index("label").loc["cars", "a"] < 0
    assert tables.by_label_display(lower).set_index("subject").loc["cars", "best"] == "a"
    # one label (or a set metric): nothing to break down
    assert tables.by_label(per.assign(label="all"), "auc_rebal").empty
    assert tables.by_label(per, "fid").empty
    # without the grey row: plain means
    means = tables.by_label(per[per["method"] != "gray"], "auc_rebal", n_boot=0)
    assert not means.attrs["relative"] and means.set_index("label").loc["cars", "a"] > 0.8


def test_validation_curves_use_images_seen_and_skip_runs_without_the_metric(results):
    frame, metric, left_out = runlogs.validation_curves()
    assert metric == "val_auc_rebal" and left_out == ["fusion"]
    assert set(frame["run"]) == {"regression", "classification", "gan"}
    assert frame["images_seen"].tolist()[:2] == [160, 320]


def test_model_card_is_the_readmes_card_of_this_results_folder(results):
    """The report's model cards are experiments.modelcard's (the README's): variant, crop schedule,
    and val / test numbers from this results folder's evaluations, for every method with provenance."""
    import pandas as pd

    from experiments.modelcard import auc_cell

    card = runlogs.model_card("gan")
    assert card["images_seen"] == 3200 and card["hardware"] == "CPU test, 2 cores" and card["crops"] == ["64 px (batch 32)"]
    assert card["variant"].startswith("encoder: learned from scratch") and card["saved_at"].startswith("2026-01-01")
    val = pd.read_csv(results / "metrics" / "val.summary.csv").set_index("method")
    assert card["val"]["auc_rebal"][0] == round(val.loc["gan", "auc_rebal"], 4)
    assert card["val"]["auc_rebal_minus_gray"] == round(val.loc["gan", "auc_rebal"] - val.loc["gray", "auc_rebal"], 4)
    assert auc_cell(card["test"]).endswith(f"({card['test']['auc_rebal_minus_gray']:+.3f})")
    assert runlogs.model_card("neural_style") == {}

    rep = report.Report("test")
    report.cards_section(rep, METHODS)
    (_, table, _, _) = rep.blocks[-1]
    rows = table.set_index("method")
    # every method with a provenance file has its variant (the old table knew only some methods' keys)
    assert not rows.loc[METHODS[:4], "variant"].str.contains("no model card").any()
    assert rows.loc["gan", "crops"] == "64 px (batch 32)" and rows.loc["gan", "val AuC rebal. (vs grey)"] == auc_cell(card["val"])
    assert rows.loc["neural_style", "variant"].startswith("no training")


# --- the report ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_is_self_contained_with_every_method_and_its_pdf(results, tmp_path):
    weights = tmp_path / "gan.pt"
    weights.write_bytes(b"retrained since")  # the val table was made from other weights at that path
    meta = json.loads((results / "metrics" / "val.json").read_text())
    meta["made_from"] = {"gan": {"checkpoint": str(weights), "sha256": "ab" * 32}, "neural_style": {"checkpoint": None}}
    (results / "metrics" / "val.json").write_text(json.dumps(meta))
    out = tmp_path / "rep"
    assert report.main(["--out", str(out), "--boot", "200", "--quiet"]) == 0
    html = (out / "report.html").read_text()
    figures = re.findall(r'<img src="data:image/png;base64,', html)
    assert len(figures) >= 8, len(figures)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing from the network
    assert "<script" not in html
    for m in METHODS:
        assert m in html
    assert "Holm" in html and "Wilcoxon" in html and "<b>" in html  # paired tests; best in bold
    assert "Benchmark" in html and "9.9" in html and "commit" in html
    # each evaluation names the weights behind its rows (test: from before that was recorded)
    assert f"Made from: gan {weights} (abababab - since replaced)" in html and "The rows of gan are not the model" in html
    assert "Which checkpoints made these rows is not recorded" in html
    # both val and test: the goal's criteria against them (fusion's val gain here is +0.02, short of +0.04)
    assert "Against the project&#x27;s goal" in html or "Against the project's goal" in html
    assert "val: rebalanced AuC over grey, each" in html and "no (" in html
    assert html.count("by subject") == 2 and "all photos" in html  # val and test, each broken down by label ...
    assert {"val_by_subject.png", "test_by_subject.png"} <= {p.name for p in (out / "figures").glob("*.png")}  # ... and its heat map
    pdf = (out / "report.pdf").read_bytes()
    assert pdf[:5] == b"%PDF-" and pdf.count(b"/Type /Page") >= 10
    assert len(list((out / "figures").glob("*.png"))) == len(figures)


def test_report_refuses_an_output_that_is_a_file(results, tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert report.main(["--out", str(f), "--no-pdf"]) == 2
    assert "file.txt" in capsys.readouterr().err
    assert report.main(["--out", str(tmp_path / "r"), "--evaluations", "nope"]) == 2


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_report_opens_offline_in_chromium_without_a_broken_image(results, tmp_path):
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright

    from experiments.benchmark import CHROMIUM_ARGS

    out = tmp_path / "rep"
    report.build(out, n_boot=100, pdf=False)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests = []
        page.route(
            "**/*",
            lambda route: (
                requests.append(route.request.url),
                route.continue_() if route.request.url.startswith(("file:", "data:")) else route.abort(),
            ),
        )
        page.goto((out / "report.html").as_uri())
        page.wait_for_load_state("load")
        state = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
        browser.close()
    assert len(state) >= 8 and all(done and width > 0 for done, width in state), state
    assert all(u.startswith(("file:", "data:")) for u in requests), requests


def test_training_figures_follow_the_shipped_runs_and_experiments_get_a_panel_per_method(results):
    """With shipped models, the loss and validation figures and sample grids are those of the runs
    the models came from (a report of 20 runs was unreadable); every run's validation is still
    there, one panel per method, and the runs table says which run shipped as what."""
    for m in ("gan", "classification"):
        (results / "checkpoints" / f"{m}.json").write_text(json.dumps({"shipped_from": f"results/runs/{m}"}))
    exp = results / "runs" / "gan-experiment"
    shutil.copytree(results / "runs" / "gan", exp)
    rep = report.Report("t")
    report.training_section(rep, lambda text: None)
    figures = [name for name, _ in rep.figures]
    assert figures == ["learning_curves", "validation_curves", "validation_by_method", "samples_classification", "samples_gan"]
    (runs_table,) = [b[1] for b in rep.blocks if b[0] == "table"]
    assert dict(zip(runs_table["run"], runs_table["shipped as"])) == {
        "classification": "classification", "fusion": "", "gan": "gan", "gan-experiment": "", "regression": ""}  # fmt: skip
    captions = {b[1]: b[3] for b in rep.blocks if b[0] == "fig"}
    assert "of the shipped models' runs" in captions["validation_curves"]
    by_method = next(b[4] for b in rep.blocks if b[0] == "fig" and b[1] == "validation_by_method")
    titles = [ax.get_title(loc="left") for ax in by_method.axes if ax.get_visible()]
    assert titles == ["classification", "gan", "regression"]  # fusion's older run has no val_auc_rebal
    gan_panel = by_method.axes[titles.index("gan")]
    assert [t.get_text() for t in gan_panel.get_legend().get_texts()] == ["gan (shipped)", "gan-experiment"]


def test_a_second_build_into_the_same_folder_leaves_no_stale_figure(results, tmp_path):
    out = tmp_path / "rep"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "samples_an-old-run.png").write_bytes(b"old")
    report.build(out, n_boot=50, pdf=False)
    html = (out / "report.html").read_text()
    assert not (out / "figures" / "samples_an-old-run.png").exists()
    assert len(list((out / "figures").glob("*.png"))) == html.count('<img src="data:image/png;base64,')


def test_sample_grid_rows_are_labelled_from_its_sidecar(tmp_path):
    """Each row of the grid gets its photo's class/file, level with the row (the grid's sidecar
    names the photos in order); a grid without one is shown as it is."""
    from experiments.grid import HEAD

    rows, cols, tile = 12, 8, 40  # as experiments.grid draws it: 12 photos, 8 columns
    path = tmp_path / "sample_grid.jpg"
    Image.fromarray(np.full((HEAD + rows * tile, cols * tile, 3), 255, np.uint8)).save(path)
    plain = report.labelled_grid(path)
    assert plain.shape == (HEAD + rows * tile, cols * tile, 3)  # no sidecar: unlabelled
    photos = [f"../shared/data/val/class{i}/photo{i}.jpg" for i in range(rows)]
    path.with_suffix(".json").write_text(json.dumps({"photos": photos, "made_from": {}}))
    assert report.grid_rows(path)[3] == "class3/photo3"
    out = report.labelled_grid(path)
    assert out.shape == (HEAD + rows * tile, cols * tile + 150, 3)
    strip = out[:, :150].min(axis=2) < 128  # dark text in the label column
    for i in range(rows):
        band = strip[HEAD + i * tile : HEAD + (i + 1) * tile]
        assert band.any(), f"row {i} has no label"
    assert not strip[:HEAD].any()
