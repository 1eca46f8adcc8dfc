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


# --- real browser ---------------------------------------------------------------------------------


@pytest.mark.browser
def test_browser_colorizes_the_sample_clip_and_plays_the_grid(trained_results, tmp_path):
    """Headless Chromium against ``streamlit run``: the sample clip through the page (progress with ETA
    and a Stop button while it runs), then the grid video plays (H.264) beside the flicker chart.
    Screenshots in ``$COLORIZE_SCREENSHOTS`` (default: the test's tmp folder)."""
    import os
    import re
    import shutil
    import time
    from pathlib import Path

    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright

    from experiments.benchmark import streamlit_app
    from tests.dashboard.test_app_browser import ARGS, CHROMIUM, settle, shoot

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    root = tmp_path / "results"
    shutil.copytree(trained_results, root, symlinks=True)
    env = {**os.environ, "COLORIZE_RESULTS_DIR": str(root), "COLORIZE_VIDEO_MAX_SECONDS": "0.6", "COLORIZE_VIDEO_MAX_SIDE": "160"}
    shots = Path(os.environ.get("COLORIZE_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with (
        (tmp_path / "streamlit.log").open("w") as log,
        streamlit_app(env, log, timeout=60) as (url, _, _),
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/video", timeout=300_000)
        page.get_by_role("button", name="Colorize clip").wait_for(timeout=600_000)  # the sample clip is made on the first visit
        settle(page, "Video")
        assert page.get_by_text("first 0.6 s are colorized").count() == 1
        chips = page.locator('[data-testid="stMultiSelect"]').first.get_by_role("button", name=re.compile("^Remove "))
        while chips.count() > 1:  # one method is enough here (the AppTest runs two)
            chips.first.click()
            time.sleep(1.0)
        page.get_by_role("button", name="Colorize clip").click()
        page.get_by_role("button", name="Stop").wait_for(timeout=300_000)  # the progress bar and its Stop button
        page.get_by_text("frames/s").first.wait_for(timeout=300_000)
        page.screenshot(path=shots / "video_running.png")
        page.get_by_text("Side by side", exact=True).wait_for(timeout=600_000)  # the heading, not the "grid (side by side)" download
        settle(page, "Video")
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        video = page.locator("video").first
        video.wait_for(timeout=60_000)
        assert video.evaluate("v => v.canPlayType('video/mp4; codecs=\"avc1.64001e\"')") != ""
        page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.readyState >= 2 && v.duration > 0.3; }",
                               timeout=60_000)  # fmt: skip
        assert page.get_by_role("button", name="grid (side by side) (.mp4)").count() == 1
        shoot(page, shots / "video_results.png", 1280)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone.goto(f"{url}/video", timeout=300_000)
        phone.get_by_role("button", name="Colorize clip").wait_for(timeout=300_000)
        settle(phone, "Video")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1
        phone.screenshot(path=shots / "phone_video.png")
        browser.close()
