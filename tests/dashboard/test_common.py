"""The dashboard's shared module: paths, input preparation, storage, smoothing, the slider."""

import numpy as np
import pytest

from dashboard import common


def test_results_dir_is_configurable(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    assert common.runs_dir() == tmp_path / "runs" and common.comparisons_dir() == tmp_path / "comparisons"
    monkeypatch.delenv("COLORIZE_RESULTS_DIR")
    assert common.results_dir() == common.PROJECT_ROOT / "results"


def test_colour_photo_becomes_grey_input_and_ground_truth():
    photo = common.sample_photo("astronaut")
    grey, truth = common.prepare_input(photo)
    assert grey.shape == photo.shape
    assert np.abs(grey.astype(int) - grey[..., :1]).max() <= 1  # neutral: R = G = B up to rounding
    assert truth is not None and (truth == photo).all()
    grey2, truth2 = common.prepare_input(grey[..., 0])
    assert truth2 is None and grey2.shape == photo.shape


def test_sample_photos_ship_offline():
    for key in common.SAMPLE_PHOTOS.values():
        im = common.sample_photo(key)
        assert im.ndim == 3 and im.shape[2] == 3 and common.is_colour(im)


def test_upload_size_limit(monkeypatch):
    monkeypatch.setattr(common, "MAX_UPLOAD_MB", 0)
    with pytest.raises(common.ImageError, match="too large"):
        common.read_upload(b"x" * 10, "../../evil.png")


def test_comparison_ids_never_come_from_the_upload(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    grey = np.zeros((8, 8, 3), np.uint8)
    res = common.MethodResult("gan", image=grey, seconds=0.1, device="cpu")
    cid = common.save_comparison(grey, None, [res], "upload:../../../etc/passwd", {})
    assert [p.name for p in (tmp_path / "comparisons").iterdir()] == [cid]
    assert common.list_comparisons()[0]["id"] == cid
    with pytest.raises(ValueError):
        common.comparison_images("../../etc")


def test_ema_smooths_and_zero_is_raw():
    x = [4.0, 0.0, 4.0, 0.0]
    assert common.ema(x, 0.0).tolist() == x
    s = common.ema(x, 0.9).to_numpy()
    assert s[0] == 4.0 and np.ptp(s[1:]) < np.ptp(x[1:])


def test_before_after_slider_is_self_contained():
    html = common.before_after_html(np.zeros((4, 6, 3), np.uint8), np.full((4, 6, 3), 255, np.uint8), key="a b")
    assert html.count("data:image/png;base64,") == 2 and "http" not in html
    assert 'type="range"' in html and "clip-path" in html
