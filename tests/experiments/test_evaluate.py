"""experiments.evaluate: the reference rows, perfect and all-grey colorizers, the CLI's files, its
cache and its errors. Fake methods are registered in ``backends.METHODS`` (no checkpoints needed);
the cache goes to tmp_path, never to the repository's results/."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import backends
from backends import color
from backends.base import Colorizer
from backends.errors import BackendUnavailable
from experiments import evaluate as ev
from experiments import metrics as M

SIZE = 32
METRICS = list(M.PIXEL_COLUMNS)


# --- fake methods ---------------------------------------------------------------------------------------


def independent_truth(path: Path) -> np.ndarray:
    """The protocol's ground truth, computed without the runner: RGB squashed to SIZE, bicubic."""
    return np.asarray(Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC))


class _Fake(Colorizer):
    checkpoint_file: ClassVar[Path | None] = None
    calls: ClassVar[int] = 0  # images colorized since the last reset

    @classmethod
    def open(cls, checkpoint=None, device="auto", **options):
        obj = cls()
        obj.device, obj.checkpoint = device, cls.checkpoint_file
        return obj


class GreyColorizer(_Fake):
    """A backend through the real shared flow (L kept, ab upsampled and joined) that predicts ab = 0."""

    name = "fake_grey"
    working_size = SIZE

    def predict_ab(self, L, reference=None):
        type(self).calls += len(L)
        return np.zeros((len(L), 2, *L.shape[1:]), np.float32)


class OracleColorizer(_Fake):
    """The perfect colorizer: returns the colour original of the grey photo it is given."""

    name = "fake_oracle"
    answers: ClassVar[dict[bytes, np.ndarray]] = {}

    @classmethod
    def learn(cls, folder: Path) -> None:
        cls.answers = {}
        for p in sorted(folder.rglob("*.png")):
            truth = independent_truth(p)
            cls.answers[ev.gray_of(truth).tobytes()] = truth

    def colorize_batch(self, images, reference=None):
        type(self).calls += len(images)
        return [self.answers[np.asarray(im).tobytes()].copy() for im in images]


class AbOracleColorizer(_Fake):
    """Predicts the true ab through the shared flow: perfect up to the grey input's 8-bit L."""

    name = "fake_ab_oracle"
    working_size = SIZE
    answers: ClassVar[dict[bytes, np.ndarray]] = {}

    @classmethod
    def learn(cls, folder: Path) -> None:
        cls.answers = {}
        for p in sorted(folder.rglob("*.png")):
            truth = independent_truth(p)
            L = color.rgb_to_lab(ev.gray_of(truth))[..., 0]
            cls.answers[L.tobytes()] = color.rgb_to_lab(truth)[..., 1:].transpose(2, 0, 1)

    def predict_ab(self, L, reference=None):
        return np.stack([self.answers[np.ascontiguousarray(x).tobytes()] for x in L])


class MissingColorizer(_Fake):
    name = "fake_missing"

    @classmethod
    def open(cls, checkpoint=None, device="auto", **options):
        raise BackendUnavailable("fake_missing: no trained checkpoint at results/checkpoints/fake_missing.pt; fix: train one")


FAKES = (GreyColorizer, OracleColorizer, AbOracleColorizer, MissingColorizer)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setattr(ev, "CACHE_DIR", d)
    return d


@pytest.fixture
def val(tiny_data) -> Path:
    return tiny_data / "val"


@pytest.fixture
def fakes(monkeypatch, val):
    """Register the fake methods by name, as a new backend module would be."""
    for cls in FAKES:
        monkeypatch.setitem(backends.METHODS, cls.name, (__name__, cls.__name__))
        monkeypatch.setattr(cls, "calls", 0)
        monkeypatch.setattr(cls, "checkpoint_file", None)
    OracleColorizer.learn(val)
    AbOracleColorizer.learn(val)


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = ev.main(["--size", str(SIZE), "--device", "cpu", "--quiet", *args])  # later options override these
    return rc, out.getvalue(), err.getvalue()


def rows_of(df: pd.DataFrame, method: str) -> pd.DataFrame:
    return df[df["method"] == method].sort_values("image").reset_index(drop=True)


def assert_same_scores(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 0.0) -> None:
    assert list(a["image"]) == list(b["image"])
    for c in METRICS:
        np.testing.assert_allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=rtol, atol=rtol, err_msg=c)


# --- reference rows ----------------------------------------------------------------------------------------


def test_truth_row_is_perfect(val):
    res = ev.evaluate(val, [], size=SIZE, device="cpu", model_metrics=False, progress=False)
    truth = rows_of(res.per_image, "truth")
    assert len(truth) == 6 and set(truth["label"]) == {"meadow", "sunset"}
    assert np.isinf(truth["psnr"]).all()
    np.testing.assert_allclose(truth["ssim"], 1.0, atol=1e-12)
    np.testing.assert_allclose(truth["ciede2000"], 0.0, atol=1e-12)
    np.testing.assert_allclose(truth["colorfulness_diff"], 0.0, atol=1e-12)
    np.testing.assert_allclose(truth["auc"], 1.0)
    np.testing.assert_allclose(truth["auc_rebal"], 1.0)
    # colourfulness of the truth row is the photos' own M3 (hand formula on the independent truth)
    for name, m3 in zip(truth["image"], truth["colorfulness"]):
        rgb = independent_truth(val / name).reshape(-1, 3).astype(np.float64)
        rg, yb = rgb[:, 0] - rgb[:, 1], 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
        assert m3 == pytest.approx(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()), rel=1e-9)
    s = res.summary.set_index("method")
    assert s.loc["truth", "status"] == "reference" and s.loc["truth", "n"] == 6
    assert (s.loc["truth", "auc"], s.loc["truth", "auc_lo"], s.loc["truth", "auc_hi"]) == (1.0, 1.0, 1.0)


def test_gray_row_scores_the_truths_lightness_with_ab_zero(val):
    res = ev.evaluate(val, [], size=SIZE, device="cpu", model_metrics=False, progress=False)
    gray, truth = rows_of(res.per_image, "gray"), rows_of(res.per_image, "truth")
    for i, name in enumerate(gray["image"]):
        t = independent_truth(val / name)
        g = ev.gray_of(t)
        assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()  # really grey
        lab_t, lab_g = rgb2lab(t), rgb2lab(g)
        assert np.abs(lab_g[..., 0] - lab_t[..., 0]).max() < 0.5  # same lightness up to 8 bits
        row = gray.iloc[i]
        assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(t, g, data_range=255), rel=1e-6)
        wang = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1, data_range=255)
        ref_ssim = structural_similarity(g.astype(float), t.astype(float), **wang)
        assert row["ssim"] == pytest.approx(ref_ssim, rel=1e-6)
        assert row["ciede2000"] == pytest.approx(deltaE_ciede2000(lab_g, lab_t).mean(), rel=1e-5)
        assert row["colorfulness"] == 0
        assert row["colorfulness_diff"] == pytest.approx(-truth.iloc[i]["colorfulness"], rel=1e-9)
        # AuC of predicting ab = 0 against the truth's ab (scikit-image Lab)
        ab_t = torch.from_numpy(lab_t[..., 1:]).permute(2, 0, 1)[None]
        assert row["auc"] == pytest.approx(float(M.ab_auc(torch.zeros_like(ab_t), ab_t)), abs=5e-3)
        assert row["auc_rebal"] == pytest.approx(float(M.ab_auc(torch.zeros_like(ab_t), ab_t, rebalanced=True)), abs=5e-3)
    # grey is clearly worse than the truth on every colour metric
    assert (gray["ciede2000"] > 1).all() and (gray["auc"] < 0.99).all() and np.isfinite(gray["psnr"]).all()
    assert (gray["auc_rebal"] < gray["auc"]).all()  # the colours grey misses are the rarer ones


def test_perfect_colorizer_scores_the_truth_row_and_all_grey_one_the_gray_row(val, fakes):
    methods = {"oracle": OracleColorizer(), "grey": GreyColorizer(), "ab_oracle": AbOracleColorizer()}
    res = ev.evaluate(val, methods, size=SIZE, device="cpu", model_metrics=False, progress=False)
    df = res.per_image
    assert list(dict.fromkeys(df["method"])) == ["gray", "oracle", "grey", "ab_oracle", "truth"]
    assert GreyColorizer.calls == 6 and OracleColorizer.calls == 6
    # the truth row holds the identities exactly (AuC 1, SSIM 1); the oracle's are computed, equal to rounding
    assert_same_scores(rows_of(df, "oracle"), rows_of(df, "truth"), rtol=1e-12)
    assert_same_scores(rows_of(df, "grey"), rows_of(df, "gray"))
    s = res.summary.set_index("method")
    for a, b, tol in (("oracle", "truth", 1e-12), ("grey", "gray", 0.0)):
        for c in METRICS:
            cols = [c, f"{c}_lo", f"{c}_hi"]
            np.testing.assert_allclose(s.loc[a, cols].to_numpy(float), s.loc[b, cols].to_numpy(float), rtol=tol, atol=tol,
                                       err_msg=f"{a} {c}")  # fmt: skip
    # the true ab through the real flow: near the ceiling, far from grey (only the 8-bit L differs)
    ab = rows_of(df, "ab_oracle")
    assert (ab["ciede2000"] < 1.0).all() and (ab["auc"] > 0.99).all() and (ab["psnr"] > 35).all()
    assert (ab["ciede2000"] < rows_of(df, "gray")["ciede2000"] / 5).all()


# --- the command line -----------------------------------------------------------------------------------------


def test_cli_writes_per_image_csv_summary_markdown_latex_and_json(val, fakes, tmp_path, cache_dir):
    out = tmp_path / "metrics" / "val.csv"
    rc, stdout, stderr = run_cli("--data", str(val), "--methods", "fake_oracle,fake_grey", "--out", str(out), "--no-models")
    assert rc == 0, stderr
    df = pd.read_csv(out)
    assert list(df.columns[:3]) == ["method", "image", "label"] and set(METRICS) <= set(df.columns)
    assert list(dict.fromkeys(df["method"])) == ["gray", "fake_oracle", "fake_grey", "truth"]
    assert df.groupby("method").size().to_dict() == {"gray": 6, "fake_oracle": 6, "fake_grey": 6, "truth": 6}
    assert sorted(rows_of(df, "truth")["image"]) == sorted(p.relative_to(val).as_posix() for p in val.rglob("*.png"))
    # what the user reads back from the file: perfect == truth, all grey == gray
    assert_same_scores(rows_of(df, "fake_oracle"), rows_of(df, "truth"))
    assert_same_scores(rows_of(df, "fake_grey"), rows_of(df, "gray"))
    assert np.isinf(rows_of(df, "truth")["psnr"]).all()

    summary = pd.read_csv(tmp_path / "metrics" / "val.summary.csv").set_index("method")
    assert list(summary.index) == ["gray", "fake_oracle", "fake_grey", "truth"]
    assert summary.loc["gray", "status"] == "reference" and summary.loc["fake_grey", "status"] == "ok"
    assert (summary["n"] == 6).all()
    for c in ("ssim", "ciede2000", "auc"):
        lo, mean, hi = summary.loc["gray", [f"{c}_lo", c, f"{c}_hi"]]
        assert lo <= mean <= hi and lo < hi
        assert mean == pytest.approx(rows_of(df, "gray")[c].mean(), rel=1e-5)

    md = (tmp_path / "metrics" / "val.md").read_text()
    assert md == stdout.split("\nwrote ")[0]  # the table printed is the table written
    lines = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln}
    assert set(lines) >= {"method", "gray", "fake_oracle", "fake_grey", "truth"}
    assert lines["gray"].startswith("| gray | 6 | ") and "AuC" in lines["method"]
    # the perfect method's table row reads as the truth row, the all-grey one as the gray row (bold aside)
    cells = {m: ln.replace("**", "").split("|")[2:] for m, ln in lines.items()}
    assert cells["fake_oracle"] == cells["truth"] and cells["fake_grey"] == cells["gray"]
    assert "**1.000** [1.000, 1.000]" in lines["fake_oracle"]  # best method in bold (SSIM, AuC) ...
    assert "**" not in lines["truth"] and "**" not in lines["gray"]  # ... never a reference row
    assert "[" in lines["gray"]  # bootstrap intervals shown
    # then the headline by subject (the class folders), paired against grey: the oracle gains, all-grey does not
    by = md.split("## By subject: AuC rebal., mean per-photo difference from grey")[1]
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in by.splitlines() if ln.startswith("| ")}
    assert rows["subject"][:3] == ["photos", "fake_oracle", "fake_grey"] and rows["subject"][-1] == "best"
    assert rows["all photos"][0] == "6" and rows["meadow"][0] == "3" and rows["sunset"][0] == "3"
    for label in ("all photos", "meadow", "sunset"):
        assert float(rows[label][1]) > 0.05 and rows[label][2] == "+0.000" and rows[label][-1] == "fake_oracle"
    tex = (tmp_path / "metrics" / "val.tex").read_text()
    assert "\\begin{tabular}" in tex and "\\end{tabular}" in tex
    assert "fake\\_grey & 6 &" in tex and "truth & 6 &" in tex and "fake_grey" not in tex
    meta = json.loads((tmp_path / "metrics" / "val.json").read_text())
    assert meta["photos"] == 6 and meta["size"] == SIZE and meta["skipped"] == {}
    assert len(list(cache_dir.glob("*.json"))) == 2  # gray and truth, under tmp_path (fakes without checkpoint: none)


def test_cli_limit_samples_the_same_photos_for_every_method(val, fakes, tmp_path):
    out = tmp_path / "lim.csv"
    rc, _, stderr = run_cli("--data", str(val), "--methods", "fake_grey", "--out", str(out), "--no-models", "--limit", "3")
    assert rc == 0, stderr
    df = pd.read_csv(out)
    images = {m: sorted(g["image"]) for m, g in df.groupby("method")}
    assert set(images) == {"gray", "fake_grey", "truth"} and all(len(v) == 3 for v in images.values())
    assert images["gray"] == images["fake_grey"] == images["truth"]
    assert set(df["label"]) == {"meadow", "sunset"}  # a random sample, not the first folder's photos
    assert run_cli("--data", str(val), "--methods", "truth", "--out", str(out), "--no-models", "--limit", "3")[0] == 0
    assert sorted(rows_of(pd.read_csv(out), "truth")["image"]) == images["truth"]  # the same sample again (seed 0)


def grey_with_checkpoint(tmp_path, monkeypatch) -> Path:
    """fake_grey reading a checkpoint file (contents b"v1"): its path."""
    ckpt = tmp_path / "fake_grey.pt"
    ckpt.write_bytes(b"v1")
    monkeypatch.setattr(GreyColorizer, "checkpoint_file", ckpt)
    return ckpt


def test_cli_second_run_reads_the_cache(val, fakes, tmp_path, cache_dir, monkeypatch):
    ckpt = grey_with_checkpoint(tmp_path, monkeypatch)
    out = tmp_path / "m.csv"
    args = ("--data", str(val), "--methods", "fake_grey", "--out", str(out), "--no-models")
    assert run_cli(*args)[0] == 0
    first = out.read_text()
    assert GreyColorizer.calls == 6
    cached = sorted(p.name.split("-")[0] for p in cache_dir.glob("*.json"))
    assert cached == ["fake_grey", "gray", "truth"]

    scored = []
    real_score = ev._score_batch
    monkeypatch.setattr(ev, "_score_batch", lambda preds, *a, **k: scored.append(len(preds)) or real_score(preds, *a, **k))
    assert run_cli(*args)[0] == 0
    assert GreyColorizer.calls == 6 and scored == []  # nothing colorized or scored again
    assert out.read_text() == first

    ckpt.write_bytes(b"v2, retrained")  # a new checkpoint invalidates that method only
    assert run_cli(*args)[0] == 0
    assert GreyColorizer.calls == 12 and scored == [6]
    assert out.read_text() == first

    assert run_cli(*args, "--no-cache")[0] == 0  # --no-cache recomputes everything
    assert GreyColorizer.calls == 18 and scored == [6, 6, 6, 6]


def test_json_names_the_checkpoint_each_methods_rows_come_from(val, fakes, tmp_path, monkeypatch):
    """A table says which weights made it, so one made before a new checkpoint shipped is caught."""
    import hashlib

    from experiments import provenance

    ckpt = grey_with_checkpoint(tmp_path, monkeypatch)
    out = tmp_path / "m.csv"
    args = ("--data", str(val), "--methods", "fake_grey,fake_oracle,fake_missing", "--out", str(out), "--no-models")
    assert run_cli(*args)[0] == 0
    made = json.loads((tmp_path / "m.json").read_text())["made_from"]
    assert made["fake_grey"] == {"checkpoint": str(ckpt), "sha256": hashlib.sha256(b"v1").hexdigest()}
    assert made["fake_oracle"] == {"checkpoint": None}  # no weights file: nothing to name
    assert "fake_missing" not in made and "gray" not in made and "truth" not in made  # skipped; reference rows
    assert provenance.stale(made, "m", {"fake_grey": ckpt}) == []

    ckpt.write_bytes(b"v2, retrained")  # a new model ships: the old table is stale, and says which method
    [line] = provenance.stale(made, "m", {"fake_grey": ckpt})
    assert "fake_grey rows were made from an earlier" in line and hashlib.sha256(b"v1").hexdigest()[:12] in line
    assert run_cli(*args)[0] == 0  # evaluating again records the new weights
    assert provenance.stale(json.loads((tmp_path / "m.json").read_text())["made_from"], "m", {"fake_grey": ckpt}) == []


def test_cli_cache_notices_a_changed_photo(val, tmp_path, fakes):
    data = tmp_path / "photos"
    for p in val.rglob("*.png"):
        (data / p.parent.name).mkdir(parents=True, exist_ok=True)
        (data / p.parent.name / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "m.csv"
    args = ("--data", str(data), "--methods", "truth", "--out", str(out), "--no-models")
    assert run_cli(*args)[0] == 0
    before = rows_of(pd.read_csv(out), "gray").set_index("image")
    changed = data / "meadow" / "meadow_0.png"
    Image.fromarray(np.asarray(Image.open(changed).convert("RGB"))[..., ::-1]).save(changed)  # swap red and blue
    assert run_cli(*args)[0] == 0
    after = rows_of(pd.read_csv(out), "gray").set_index("image")
    assert after.loc["meadow/meadow_0.png", "ciede2000"] != before.loc["meadow/meadow_0.png", "ciede2000"]
    assert after.drop("meadow/meadow_0.png")[METRICS].equals(before.drop("meadow/meadow_0.png")[METRICS])


def test_cli_skips_a_method_that_cannot_run_and_still_evaluates_the_others(val, fakes, tmp_path):
    out = tmp_path / "m.csv"
    rc, stdout, stderr = run_cli("--data", str(val), "--methods", "fake_missing,fake_grey", "--out", str(out), "--no-models")
    assert rc == 0
    assert "skipped fake_missing: fake_missing: no trained checkpoint" in stderr
    df = pd.read_csv(out)
    assert set(df["method"]) == {"gray", "fake_grey", "truth"}
    summary = pd.read_csv(tmp_path / "m.summary.csv").set_index("method")
    assert summary.loc["fake_missing", "status"].startswith("unavailable: fake_missing: no trained checkpoint")
    assert summary.loc["fake_missing", "n"] == 0
    assert "Methods not evaluated:\n- `fake_missing`: fake_missing: no trained checkpoint" in (tmp_path / "m.md").read_text()


def _one_line_error(rc: int, stdout: str, stderr: str) -> str:
    assert rc == 2
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize("kind", ["missing", "empty", "text-files", "broken-images"])
def test_cli_bad_data_folder_exits_2_with_one_line_naming_it(kind, tmp_path):
    folder = tmp_path / "photos"
    if kind != "missing":
        (folder / "cls").mkdir(parents=True)
    if kind == "text-files":
        (folder / "notes.txt").write_text("not a photo")
        (folder / "cls" / "readme.md").write_text("# nor this")
    if kind == "broken-images":  # image names, not images: must not pass as a run where every row was "skipped"
        (folder / "cls" / "a.png").write_text("not a png")
        (folder / "cls" / "b.jpg").write_bytes(b"")
    out = tmp_path / "out" / "m.csv"
    line = _one_line_error(*run_cli("--data", str(folder), "--methods", "truth", "--out", str(out), "--no-models"))
    assert str(folder) in line
    if kind == "broken-images":
        assert "cls/a.png" in line or "cls/b.jpg" in line
    assert not out.exists() and not out.parent.exists()


def test_cli_unknown_method_exits_2_listing_the_known_ones(val, tmp_path):
    line = _one_line_error(*run_cli("--data", str(val), "--methods", "truth,nope", "--out", str(tmp_path / "m.csv")))
    assert "nope" in line
    known = line.split("known:")[1]
    assert all(name in known for name in backends.names())
    assert not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize(
    "extra, needle",
    [
        (("--size", "8"), "--size"),
        (("--limit", "0"), "--limit"),
        (("--limit-method", "nope=3"), "nope=3"),
        (("--methods", ","), "none"),
    ],
    ids=["size", "limit", "limit-method", "no-methods"],
)
def test_cli_bad_options_exit_2(val, tmp_path, extra, needle):
    args = ["--data", str(val), "--out", str(tmp_path / "m.csv"), "--no-models", "--methods", "truth", *extra]
    rc, stdout, stderr = run_cli(*args)
    assert needle in _one_line_error(rc, stdout, stderr)


# --- --update: re-evaluate some methods, keep the others' rows -----------------------------------------------


def test_update_reevaluates_only_the_named_methods_and_writes_what_a_full_run_would(val, fakes, tmp_path, monkeypatch):
    """After one method's checkpoint is replaced, ``--update --methods it`` colorizes with it alone and
    leaves files equal to evaluating everything again; the sidecar names the new weights."""
    import hashlib

    ckpt = grey_with_checkpoint(tmp_path, monkeypatch)
    part, full = tmp_path / "part" / "val.csv", tmp_path / "full" / "val.csv"
    common = ("--data", str(val), "--no-models", "--no-cache", "--limit", "5")
    assert run_cli(*common, "--methods", "fake_oracle,fake_grey", "--out", str(part))[0] == 0
    assert (OracleColorizer.calls, GreyColorizer.calls) == (5, 5)
    ckpt.write_bytes(b"v2, retrained")

    rc, _, err = run_cli(*common, "--methods", "fake_grey", "--out", str(part), "--update")
    assert rc == 0, err
    assert (OracleColorizer.calls, GreyColorizer.calls) == (5, 10)  # the oracle's rows were kept, not recomputed
    assert run_cli(*common, "--methods", "fake_oracle,fake_grey", "--out", str(full))[0] == 0
    for ext in (".csv", ".summary.csv", ".md", ".tex"):
        assert part.with_suffix("").with_name("val" + ext).read_text() == full.with_suffix("").with_name("val" + ext).read_text(), ext
    meta = json.loads((tmp_path / "part" / "val.json").read_text())
    assert meta["made_from"] == {"fake_oracle": {"checkpoint": None}, "fake_grey": {"checkpoint": str(ckpt), "sha256": hashlib.sha256(b"v2, retrained").hexdigest()}}
    assert meta["updated"]["methods"] == ["fake_grey"] and meta["updated"]["kept"] == ["fake_oracle"]
    first_made = json.loads((tmp_path / "full" / "val.json").read_text())["created"]  # not the kept rows' date, but close
    assert meta["rows_made"]["fake_grey"] == meta["created"] and meta["rows_made"]["fake_oracle"] <= first_made

    # a method the evaluation did not have joins it, before the truth row
    OracleColorizer.calls = 0
    assert run_cli(*common, "--methods", "fake_ab_oracle", "--out", str(part), "--update")[0] == 0
    summary = pd.read_csv(tmp_path / "part" / "val.summary.csv")
    assert list(summary["method"]) == ["gray", "fake_oracle", "fake_grey", "fake_ab_oracle", "truth"] and (summary["n"] == 5).all()
    assert OracleColorizer.calls == 0
    rows_made = json.loads((tmp_path / "part" / "val.json").read_text())["rows_made"]
    assert rows_made["fake_oracle"] == meta["rows_made"]["fake_oracle"] and list(rows_made) == ["fake_oracle", "fake_grey", "fake_ab_oracle"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--methods", "fake_grey", "--limit", "4"), "another protocol (limit 5 there, 4 here)"),
        (("--methods", "fake_grey", "--limit", "5", "--size", "48"), "another protocol (size 32 there, 48 here)"),
        (("--methods", "fake_missing", "--limit", "5"), "fake_missing (fake_missing: no trained checkpoint"),
        (("--methods", "all", "--limit", "5"), "name the methods to re-evaluate"),
        (("--methods", "fake_grey", "--limit", "5", "--out", "NEW"), "has no evaluation to update"),
        (("--methods", "fake_grey", "--limit", "5", "OLD-METRICS"), "scored by metrics version 3, this is"),
    ],
)
def test_update_that_cannot_be_honest_exits_2_and_writes_nothing(val, fakes, tmp_path, extra, needle):
    out = tmp_path / "val.csv"
    assert run_cli("--data", str(val), "--no-models", "--limit", "5", "--methods", "fake_oracle", "--out", str(out))[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.glob("val.*")}
    if "OLD-METRICS" in extra:  # rows scored by an earlier version of the metrics
        meta = json.loads((tmp_path / "val.json").read_text())
        (tmp_path / "val.json").write_text(json.dumps({**meta, "metrics_version": 3}))
        before = {p.name: p.read_bytes() for p in tmp_path.glob("val.*")}
        extra = extra[:-1]
    extra = tuple(str(tmp_path / "new.csv") if a == "NEW" else a for a in extra)
    rc, stdout, stderr = run_cli("--data", str(val), "--no-models", "--out", str(out), *extra, "--update")
    assert rc == 2 and needle in stderr and stderr.splitlines()[-1].startswith("error: --update: ")
    assert {p.name: p.read_bytes() for p in tmp_path.glob("val.*")} == before and not (tmp_path / "new.csv").exists()


def test_keep_aspect_scores_each_photo_at_its_own_shape(fakes, tmp_path):
    """--keep-aspect: a non-square photo is not squashed - its truth keeps its shape with the longer
    side at --size, the method is handed that shape, and the rows are another protocol (--update
    refuses to mix them)."""
    from tests.conftest import synthetic_photo

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(3)
    shapes = {"wide.png": (48, 96), "tall.png": (96, 48), "square.png": (64, 64)}
    for name, (h, w) in shapes.items():
        Image.fromarray(synthetic_photo(rng, 96, 0)[:h, :w]).save(folder / name)
    rc, _, err = run_cli("--data", str(folder), "--no-models", "--methods", "fake_grey", "--out", str(tmp_path / "a.csv"), "--keep-aspect")
    assert rc == 0, err  # evaluate refuses a method whose output is not the truth's shape
    df = pd.read_csv(tmp_path / "a.csv")
    gray = rows_of(df, "gray").set_index("image")
    for name, (h, w) in shapes.items():
        k = SIZE / max(h, w)
        t = np.asarray(Image.open(folder / name).convert("RGB").resize((round(w * k), round(h * k)), Image.BICUBIC))
        assert t.shape[:2] == {"wide.png": (16, 32), "tall.png": (32, 16), "square.png": (32, 32)}[name]
        ab_t = torch.from_numpy(rgb2lab(t)[..., 1:]).permute(2, 0, 1)[None]
        assert gray.loc[name, "auc_rebal"] == pytest.approx(float(M.ab_auc(torch.zeros_like(ab_t), ab_t, rebalanced=True)), abs=5e-3)
    assert_same_scores(rows_of(df, "fake_grey"), rows_of(df, "gray"))  # the grey method's output came back at each photo's shape
    assert ev.keeps_aspect(json.loads((tmp_path / "a.json").read_text())) and "at their own shape, longer side 32 px" in (tmp_path / "a.md").read_text()
    # the squashed protocol scores the non-square photos on other pixels
    assert run_cli("--data", str(folder), "--no-models", "--methods", "fake_grey", "--out", str(tmp_path / "b.csv"))[0] == 0
    squashed = rows_of(pd.read_csv(tmp_path / "b.csv"), "gray").set_index("image")
    assert squashed.loc["square.png", "auc_rebal"] == pytest.approx(gray.loc["square.png", "auc_rebal"], abs=1e-9)
    assert squashed.loc["wide.png", "ciede2000"] != pytest.approx(gray.loc["wide.png", "ciede2000"], rel=1e-3)
    rc, _, err = run_cli("--data", str(folder), "--no-models", "--methods", "fake_grey", "--out", str(tmp_path / "b.csv"), "--keep-aspect", "--update")
    assert rc == 2 and "resize" in err
