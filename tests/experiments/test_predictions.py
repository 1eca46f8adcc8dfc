"""Colorizations made elsewhere: ``evaluate --predictions NAME=DIR`` scores them beside the built-in
methods with the same metrics and reference rows; studies can show them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from backends import color
from experiments import evaluate
from experiments.predictions import PredictionFolder, study_colorizer
from experiments.study.prepare import square
from tests.conftest import synthetic_photo


def half_chroma(rgb: np.ndarray) -> np.ndarray:
    lab = color.rgb_to_lab(rgb)
    lab[..., 1:] *= 0.5
    return color.lab_to_rgb_uint8(lab)


@pytest.fixture
def photos_and_predictions(tmp_path):
    """6 colour photos (two classes) and, for 5 of them, the truth at half chroma as a PNG at twice
    the size (made "elsewhere"); sunset_2 has none."""
    data, pred = tmp_path / "photos", tmp_path / "elsewhere"
    rng = np.random.default_rng(1)
    for k, label in enumerate(("meadow", "sunset")):
        (data / label).mkdir(parents=True)
        for i in range(3):
            rgb = synthetic_photo(rng, 64, k)
            Image.fromarray(rgb).save(data / label / f"{label}_{i}.jpg", quality=95)
            if (label, i) != ("sunset", 2):
                pred.mkdir(exist_ok=True)
                big = np.asarray(Image.fromarray(half_chroma(rgb)).resize((128, 128), Image.BICUBIC))
                Image.fromarray(big).save(pred / f"{label}_{i}.png")
    return data, pred


def test_evaluate_scores_an_outside_folder_beside_built_in_methods(photos_and_predictions, tmp_path, capsys):
    data, pred = photos_and_predictions
    out = tmp_path / "m" / "outside.csv"
    rc = evaluate.main(["--data", str(data), "--methods", "gan", "--predictions", f"half={pred}", "--out", str(out),
                        "--size", "64", "--no-models", "--no-cache", "--quiet", "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "half: no prediction" in err and "sunset/sunset_2.jpg" in err  # the missing file is named
    summary = pd.read_csv(out.with_name("outside.summary.csv")).set_index("method")
    assert list(summary.index) == ["gray", "gan", "half", "truth"]  # beside the built-in one, with the reference rows
    assert summary.loc["half", "n"] == 5 and summary.loc["gan", "n"] == 6
    for col in ("psnr", "colorfulness"):
        assert summary.loc["half", f"{col}_lo"] <= summary.loc["half", col] <= summary.loc["half", f"{col}_hi"]
    # quality known in advance: half the truth's chroma -> about half its colourfulness, and closer
    # to the truth than the grey input on every pixel measure
    per = pd.read_csv(out)
    truth_m3 = per[(per.method == "truth") & per.image.isin(per[per.method == "half"].image)].colorfulness.mean()
    assert summary.loc["half", "colorfulness"] == pytest.approx(0.5 * truth_m3, rel=0.15)
    assert summary.loc["half", "psnr"] > summary.loc["gray", "psnr"] + 2
    assert summary.loc["half", "ciede2000"] < 0.7 * summary.loc["gray", "ciede2000"]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["predictions"] == {"half": str(pred)} and meta["missing_predictions"] == {"half": ["sunset/sunset_2.jpg"]}
    md = out.with_suffix(".md").read_text()
    assert "| half | 5 |" in md and "no prediction for 1 photo(s): sunset/sunset_2.jpg" in md
    # the dashboard reads the same tables (Metrics page)
    loaded = evaluate.load_results(out)
    assert "half" in set(loaded["summary"]["method"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [("half", "expected NAME=DIR"), ("gan={pred}", "is taken"), ("x={data}/../nowhere", "not a folder"), ("x={empty}", "no images")],
)
def test_bad_predictions_end_with_one_line_and_status_2(photos_and_predictions, tmp_path, capsys, spec, message):
    data, pred = photos_and_predictions
    (tmp_path / "empty").mkdir()
    spec = spec.format(pred=pred, data=data, empty=tmp_path / "empty")
    rc = evaluate.main(["--data", str(data), "--methods", "none", "--predictions", spec, "--out", str(tmp_path / "x.csv"), "--no-models"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1 and not (tmp_path / "x.csv").exists()


def test_a_folder_matching_no_photo_is_reported_not_scored(photos_and_predictions, tmp_path):
    data, _ = photos_and_predictions
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(other / "unrelated.png")
    res = evaluate.evaluate(data, {"other": PredictionFolder("other", other)}, size=32, model_metrics=False, use_cache=False, progress=False)
    assert "no prediction" in res.skipped["other"] and "other" not in set(res.per_image["method"])


def test_study_images_from_a_predictions_folder_keep_the_real_lightness(photos_and_predictions):
    data, pred = photos_and_predictions
    photos = sorted(str(p) for p in data.rglob("meadow_*.jpg"))
    colorize = study_colorizer(pred, photos, size=32, name="half")
    for p in photos:
        real = square(np.asarray(Image.open(p).convert("RGB")), 32)
        fake = colorize(real)
        assert fake.shape == real.shape
        np.testing.assert_allclose(color.rgb_to_lab(fake)[..., 0], color.rgb_to_lab(real)[..., 0], atol=1.0)
        chroma = lambda im: np.hypot(*np.moveaxis(color.rgb_to_lab(im)[..., 1:], -1, 0)).mean()  # noqa: E731
        assert chroma(fake) == pytest.approx(0.5 * chroma(real), rel=0.2)
    with pytest.raises(ValueError, match="sunset_2.jpg"):
        study_colorizer(pred, [str(data / "sunset" / "sunset_2.jpg")], size=32)
