"""Video page (AppTest): the sample clip colorized by the session's trained methods with and without
the stabiliser - progress, results (grid video, flicker chart, table, downloads) -, a bad upload's
named error, and Stop. The clips are tiny; the work runs in experiments.video.VideoJob."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from experiments import video as V
from tests.dashboard.conftest import APP, no_exceptions


def video_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    return at.switch_page("views/video.py").run()


def wait_for_job(at: AppTest, timeout: float = 300) -> AppTest:
    job = at.session_state["vid_job"]
    assert job.wait(timeout), f"job still {job.status} after {timeout} s"
    return at.run()


@pytest.fixture
def small_clips(monkeypatch):
    """The page's limits made tiny (the sample clip is 2 s at 320 x 240: keep 0.4 s at 96 px)."""
    monkeypatch.setattr(V, "PAGE_MAX_SECONDS", 0.4)
    monkeypatch.setattr(V, "PAGE_MAX_SIDE", 96)


def test_sample_clip_with_and_without_stabiliser_gives_grid_chart_table_and_downloads(results_root, trained_methods, small_clips):
    at = video_page()
    no_exceptions(at)
    assert "first 0.4 s are colorized" in at.caption[0].value
    methods = trained_methods[:2]
    at.multiselect(key="vid_methods").set_value(methods).run()
    assert at.radio(key="vid_stab").value == "both (compare)"
    at.button(key="vid_run").click().run()
    no_exceptions(at)
    job = at.session_state["vid_job"]
    at = wait_for_job(at)
    no_exceptions(at)
    assert job.status == "done", job.message
    assert job.done == job.total == 10  # 0.4 s at 25 fps
    assert set(job.outputs) == {m for m in methods} | {f"{m}+stab" for m in methods}
    assert not at.error, [e.value for e in at.error]
    assert any("10 frames" in s.value for s in at.success)
    # one H.264 grid video, the flicker chart, the table, downloads
    assert len(at.get("video")) == 1
    grid = V.probe(job.grid)
    assert grid.codec == "h264" and grid.frames == 10 and grid.width % 2 == 0 and grid.height % 2 == 0
    table = at.dataframe[0].value
    assert set(table["track"]) == set(job.outputs) and "warp_error" in table and "auc_rebal" in table
    assert len(at.get("plotly_chart")) == 1
    labels = [b.label for b in at.get("download_button")]
    assert "grid (side by side) (.mp4)" in labels and "per-frame numbers (.csv)" in labels
    for m in methods:
        out = V.probe(job.outputs[f"{m}+stab"])
        assert (out.width, out.height) == (96, 72) and out.frames == 10
    # the stabilised tracks flicker less than the plain ones (same method, same frames)
    s = job.summary().set_index("track")["warp_error"]
    for m in methods:
        assert s[f"{m}+stab"] <= s[m] + 1e-6


def test_bad_upload_is_named_on_the_page(results_root, small_clips):
    at = video_page()
    at.radio(key="vid_source").set_value("Upload").run()
    at.file_uploader(key="vid_upload").upload("holiday.mp4", b"not a video at all" * 50, "video/mp4").run()
    no_exceptions(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "holiday.mp4" in errors[0] and "not a video" in errors[0], errors


def test_stop_ends_the_job_and_keeps_nothing(results_root, trained_methods, small_clips, monkeypatch):
    monkeypatch.setattr(V, "PAGE_MAX_SECONDS", 2.0)
    at = video_page()
    at.multiselect(key="vid_methods").set_value(trained_methods[:1]).run()
    at.button(key="vid_run").click().run()
    job = at.session_state["vid_job"]
    job.stop()  # what the Stop button does (the fragment's button is pressed in the browser test)
    assert job.wait(120)
    at.run()
    no_exceptions(at)
    assert job.status == "stopped" and not job.outputs and job.grid is None
    assert any("Stopped" in w.value for w in at.warning)
    assert not list(job.out_dir.glob("*.mp4"))


def test_grid_frame_is_even_and_labelled():
    tiles = [(f"t{k}", np.full((9, 13, 3), 40 * k, np.uint8)) for k in range(4)]
    g = V.grid_frame(tiles, 3)
    assert g.shape[0] % 2 == 0 and g.shape[1] % 2 == 0 and g.shape[1] >= 39
