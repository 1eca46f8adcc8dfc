"""What the pages share: paths, input preparation, the comparison store (workspaces, deduplication,
deletion, retention), smoothing, the slider, the classification class count."""

import os
import time

import numpy as np
import pytest

from dashboard import common
from experiments import comparisons


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
    monkeypatch.setattr(comparisons, "MAX_UPLOAD_MB", 0)
    with pytest.raises(common.ImageError, match="too large"):
        common.read_upload(b"x" * 10, "../../evil.png")


def test_classification_blurb_gives_the_real_class_count():
    q = int(np.load(common.PROJECT_ROOT / "backends" / "assets" / "ab_gamut.npz")["bins"].shape[0])
    assert f"{q} classes" in common.METHOD_BLURB["classification"] and "313" not in common.METHOD_BLURB["classification"]


def _result(name="gan", value=0):
    return comparisons.MethodResult(name, image=np.full((8, 8, 3), value, np.uint8), seconds=0.1, device="cpu")


def test_comparison_ids_never_come_from_the_upload(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    grey = np.zeros((8, 8, 3), np.uint8)
    cid = comparisons.save_comparison(grey, None, [_result()], "upload:../../../etc/passwd", {})
    assert [p.name for p in (tmp_path / "comparisons").iterdir()] == [cid]
    assert comparisons.list_comparisons()[0]["id"] == cid
    with pytest.raises(ValueError):
        comparisons.comparison_images("../../etc")
    with pytest.raises(ValueError):
        comparisons.delete_comparison("../../etc")


def test_workspaces_are_private_and_the_same_photo_is_kept_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    mine, theirs = comparisons.new_workspace(), comparisons.new_workspace()
    grey = np.zeros((8, 8, 3), np.uint8)
    a = comparisons.save_comparison(grey, None, [_result("gan")], "sample:x", {"t": 1}, workspace=mine)
    b = comparisons.save_comparison(grey, None, [_result("fusion", 9)], "sample:x", {"t": 1}, workspace=mine)
    assert a == b  # same photo, same options, same workspace: one entry, methods merged
    (meta,) = comparisons.list_comparisons(mine)
    assert set(meta["methods"]) == {"gan", "fusion"}
    assert comparisons.save_comparison(grey, None, [_result()], "sample:x", {"t": 2}, workspace=mine) != a  # other options
    comparisons.save_comparison(grey, None, [_result()], "sample:x", {"t": 1}, workspace=theirs)
    assert len(comparisons.list_comparisons(mine)) == 2 and len(comparisons.list_comparisons(theirs)) == 1
    assert len(comparisons.list_comparisons(None)) == 3  # the admin's view
    grey2, truth, results, meta = comparisons.stored_results(a)
    assert {r.name for r in results} == {"gan", "fusion"} and all(r.cached.startswith("from History") for r in results)
    assert comparisons.delete_comparison(a) and len(comparisons.list_comparisons(mine)) == 1


def test_history_is_newest_first_within_the_same_second(tmp_path, monkeypatch):
    """Comparisons saved in one second (a fast machine, or a photo re-run at once) still list in the
    order they were made or updated - not by their ids' random suffix."""
    import datetime as dt

    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))

    class FrozenClock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2026, 12, 3, 13, 0, 0)

    monkeypatch.setattr(comparisons.dt, "datetime", FrozenClock)
    ws = comparisons.new_workspace()
    made = [
        comparisons.save_comparison(np.full((8, 8, 3), k, np.uint8), None, [_result()], f"sample:{k}", {}, workspace=ws)
        for k in range(6)
    ]
    assert [m["id"] for m in comparisons.list_comparisons(ws)] == made[::-1]
    comparisons.save_comparison(np.full((8, 8, 3), 2, np.uint8), None, [_result("fusion")], "sample:2", {}, workspace=ws)
    assert comparisons.list_comparisons(ws)[0]["id"] == made[2]  # updated last: first


def test_retention_prunes_old_comparisons(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    old = comparisons.save_comparison(np.zeros((8, 8, 3), np.uint8), None, [_result()], "a", {})
    past = time.time() - 3 * 86400
    os.utime(tmp_path / "comparisons" / old / "meta.json", (past, past))
    monkeypatch.setenv("COLORIZE_COMPARISONS_KEEP_DAYS", "2")
    new = comparisons.save_comparison(np.ones((8, 8, 3), np.uint8), None, [_result()], "b", {})
    assert [m["id"] for m in comparisons.list_comparisons()] == [new]
    monkeypatch.setenv("COLORIZE_COMPARISONS_KEEP_DAYS", "0")  # keep forever
    assert comparisons.prune() == 0


def test_ema_smooths_and_zero_is_raw():
    x = [4.0, 0.0, 4.0, 0.0]
    assert common.ema(x, 0.0).tolist() == x
    s = common.ema(x, 0.9).to_numpy()
    assert s[0] == 4.0 and np.ptp(s[1:]) < np.ptp(x[1:])


def test_slider_compares_any_two_and_is_self_contained():
    html = common.slider_html(np.zeros((4, 6, 3), np.uint8), np.full((4, 6, 3), 255, np.uint8), "gan", "ground truth", key="a b")
    assert html.count("data:image/png;base64,") == 2 and "http" not in html
    assert 'type="range"' in html and "clip-path" in html and "pointermove" in html  # draggable on the image
    assert "left: gan" in html and "right: ground truth" in html


def test_comparison_figure_is_a_labelled_png_and_pdf():
    grey = np.zeros((16, 16, 3), np.uint8)
    r = _result()
    r.metrics = {"psnr": 20.0, "auc_rebal": 0.8}
    assert comparisons.caption_metrics(r.metrics) == "PSNR 20.0 dB, AuC-r 0.800"
    png = comparisons.comparison_figure(grey, grey, [r], "t", "png")
    pdf = comparisons.comparison_figure(grey, grey, [r], "t", "pdf")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and pdf[:5] == b"%PDF-"
    assert [p[0] for p in comparisons.figure_panels(grey, grey, [r])] == ["input (grey)", "gan", "ground truth"]


def test_reruns_keep_the_keras_session_but_still_close_matplotlib_figures(monkeypatch):
    """Streamlit clears the Keras session after every rerun (a full garbage collection, ~0.35 CPU-s
    per click); the app keeps it - the regression model is cached - and still closes figures."""
    import sys
    import types

    from streamlit.runtime.scriptrunner import script_runner

    cleared, closed = [], []
    fake_keras = types.SimpleNamespace(backend=types.SimpleNamespace(clear_session=lambda: cleared.append(1)))
    fake_plt = types.SimpleNamespace(close=lambda which: closed.append(which))
    monkeypatch.setitem(sys.modules, "keras", fake_keras)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", fake_plt)
    hook = script_runner._clean_problem_modules  # Streamlit's own, or ours when a page already ran in this process
    monkeypatch.setattr(script_runner, "_clean_problem_modules", getattr(hook, "_streamlit_original", hook))
    script_runner._clean_problem_modules()
    assert cleared == [1]  # Streamlit's own hook, as installed
    common.keep_keras_session()
    common.keep_keras_session()  # idempotent
    script_runner._clean_problem_modules()
    assert cleared == [1] and closed == ["all", "all"]


def test_is_colour_on_a_grid_of_a_large_photo_agrees_with_the_full_photo():
    photo = common.sample_photo("astronaut")
    big = np.repeat(np.repeat(photo, 3, 0), 3, 1)  # 1536 x 1536
    assert comparisons.is_colour(big) and not comparisons.is_colour(comparisons.to_grey(big))
    faint = (np.full((900, 900, 3), 128) + np.array([3, 0, -3])).astype(np.uint8)  # chroma ~4 everywhere
    assert comparisons.is_colour(faint) and not comparisons.is_colour(faint, threshold=8.0)


def test_a_checkpoint_registered_as_a_method_is_ready_before_the_background_check(tmp_path, monkeypatch):
    """Compare's default methods come from the quick status: a second model of a method, given
    as its checkpoint file, must count as ready there (not only after the modules are imported)."""
    ckpt = tmp_path / "gan-gpu-x" / "model.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"weights")
    (ckpt.parent / "model.json").write_text('{"method": "gan"}')
    monkeypatch.setenv("COLORIZE_METHODS_FILE", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("COLORIZE_METHODS", f"gan_gpu={ckpt},gone={tmp_path / 'nope.pt'}")
    s = common.quick_status("gan_gpu")
    assert s.available and s.checkpoint == str(ckpt)
    assert not common.quick_status("gone").available
