"""Real browser: Debian's headless Chromium (via Playwright) against ``streamlit run dashboard/app.py``.

Starts the app on a free port with the session's trained checkpoints, runs a comparison, visits
every page (desktop and a 390 x 844 phone viewport) and fails on any exception box. Screenshots
go to ``$COLORIZE_SCREENSHOTS`` (default: the test's tmp folder) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from experiments.benchmark import CHROMIUM_ARGS, streamlit_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = CHROMIUM_ARGS
#: url path -> the page's title (what shows once it has rendered)
PAGES = {"": "Colorization workbench", "compare": "Compare methods", "metrics": "Evaluation metrics", "training": "Training runs",
         "history": "History"}  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
def app_url(trained_results, tmp_path):
    pytest.importorskip("playwright.sync_api")
    root = tmp_path / "results"
    shutil.copytree(trained_results, root, symlinks=True)
    env = {**os.environ, "COLORIZE_RESULTS_DIR": str(root), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    with (tmp_path / "streamlit.log").open("w") as log, streamlit_app(env, log, timeout=60) as (url, t0, _):
        yield url, t0, root


def settle(page, title: str, timeout: float = 300.0) -> None:
    """Wait for the page's title, then until the script run is over (no 'running' status widget);
    fail on any exception box."""
    page.locator("h1", has_text=title).first.wait_for(timeout=120_000)
    deadline = time.time() + timeout
    time.sleep(1.0)
    while time.time() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            break
        time.sleep(0.25)
    # widgets whose code loads lazily show grey skeletons first: what a user sees is after them
    while time.time() < deadline and page.locator('[data-testid="stSkeleton"]:visible').count():
        time.sleep(0.25)
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


def shoot(page, path: Path, width: int) -> None:
    """Screenshot of the whole page (Streamlit scrolls inside its own container: grow the viewport)."""
    h = page.viewport_size["height"]
    page.set_viewport_size({"width": width, "height": 2600})
    time.sleep(1.0)
    try:  # what a user sees: the images loaded
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)", timeout=60_000)
    except Exception:  # noqa: BLE001 - a screenshot is still worth having
        pass
    page.screenshot(path=path)
    page.set_viewport_size({"width": width, "height": h})


def test_browser_runs_a_comparison_and_visits_every_page(app_url, tmp_path):
    from playwright.sync_api import sync_playwright

    url, t0, root = app_url
    shots = Path(os.environ.get("COLORIZE_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.get_by_text("Colorization workbench").first.wait_for(timeout=120_000)
        page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=120_000)
        ready = time.perf_counter() - t0
        settle(page, PAGES[""])
        print(f"home page ready {ready:.1f} s after start")
        shoot(page, shots / "home.png", 1280)

        # a comparison of all five methods on the default sample photo
        page.goto(f"{url}/compare")
        settle(page, PAGES["compare"])
        page.get_by_role("button", name="Colorize").click()
        page.get_by_text("Saved as comparison").wait_for(timeout=600_000)
        settle(page, PAGES["compare"])
        assert page.locator('[data-testid="stImage"]').count() >= 3
        # the slider's two photos load, from the app's media endpoint (not inlined in the page's HTML)
        slider = page.frame_locator("iframe").first.locator("img")
        slider.last.wait_for(timeout=60_000)
        page.wait_for_function("() => [...document.querySelector('iframe').contentDocument.images].every(i => i.complete && i.naturalWidth > 0)")
        assert all("/media/" in s for s in slider.evaluate_all("els => els.map(e => e.src)"))
        shoot(page, shots / "compare.png", 1280)
        assert len(list((root / "comparisons").iterdir())) == 1

        # History is per workspace (?ws= in the address, set by the app): stay in this visitor's one
        from urllib.parse import parse_qs, urlparse

        ws = parse_qs(urlparse(page.url).query).get("ws", [""])[0]
        assert ws, f"no workspace in the address: {page.url}"
        for name in ("metrics", "training", "history"):
            page.goto(f"{url}/{name}?ws={ws}")
            settle(page, PAGES[name])
            if name == "training":  # the runs trained for the session: curves and a sample grid render
                page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
                page.locator('[data-testid="stImage"] img').first.wait_for(timeout=60_000)
            if name == "history":
                page.locator('[data-testid="stImage"] img').first.wait_for(timeout=60_000)
            shoot(page, shots / f"{name}.png", 1280)

        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        for name, title in PAGES.items():
            phone.goto(f"{url}/{name}")
            settle(phone, title)
            # nothing wider than the phone's screen
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1
            phone.screenshot(path=shots / f"phone_{name or 'home'}.png")
            shoot(phone, shots / f"phone_{name or 'home'}_full.png", 390)
        browser.close()
