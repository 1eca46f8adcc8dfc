"""Real browser: two visitors upload near-limit photos and press Colorize at the same moment.

The server (``streamlit run dashboard/app.py``, the session's tiny trained checkpoints) processes
photos up to 4 MP here (``COLORIZE_DASHBOARD_MAX_PIXELS``) and one colorization at a time
(``COLORIZE_MAX_JOBS=1``): the second visitor sees "Waiting: position 1", both get their results,
the server stays up, and its peak resident memory (``VmHWM``) stays under the stated ceiling.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.benchmark import CHROMIUM_ARGS, streamlit_app
from tests.conftest import synthetic_photo

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LIMIT = 4_000_000
#: Stated ceiling for the whole server process (Python, Streamlit, PyTorch, four loaded models,
#: two near-limit photos in flight one at a time, their results cached).
SERVER_CEILING_MB = 3 * 1024

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


def near_limit_png(seed: int) -> bytes:
    """A colour photo just under the limit (2480 x 1600 = 3.97 MP)."""
    tile = synthetic_photo(np.random.default_rng(seed), 160, seed % 2)
    big = np.asarray(Image.fromarray(tile).resize((2480, 1600), Image.BILINEAR))
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def server_pid(port: str) -> int:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(cmd) and port.encode() in cmd:
                return int(proc.name)
    raise AssertionError(f"no streamlit process on port {port}")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def idle(page, methods: int, timeout: float = 120) -> None:
    """Until the page's script run is over and shows the tiles of ``methods`` methods."""
    deadline = time.time() + timeout
    while time.time() < deadline and (
        page.locator('[data-testid="stStatusWidget"]').count() or page.get_by_text("not run for this photo").count() != methods
    ):
        time.sleep(0.2)
    time.sleep(0.5)


def test_two_visitors_at_once_queue_and_the_server_stays_up(trained_results, tmp_path):
    pw_api = pytest.importorskip("playwright.sync_api")
    root = tmp_path / "results"
    shutil.copytree(trained_results, root, symlinks=True)
    env = {**os.environ, "COLORIZE_RESULTS_DIR": str(root), "COLORIZE_DASHBOARD_MAX_PIXELS": str(LIMIT), "COLORIZE_MAX_JOBS": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}  # fmt: skip
    photos = []
    for i in range(2):
        photos.append(tmp_path / f"visitor{i}.png")
        photos[-1].write_bytes(near_limit_png(i))
    with (tmp_path / "streamlit.log").open("w") as log, streamlit_app(env, log, timeout=90) as (url, _, _):
        pid = server_pid(url.rsplit(":", 1)[1])
        with pw_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = []
            for photo in photos:  # two visitors: separate browser contexts (separate sessions)
                first = not pages
                page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
                page.goto(f"{url}/compare")
                page.locator("h1", has_text="Compare methods").first.wait_for(timeout=120_000)
                page.get_by_text("Upload", exact=True).first.click()
                page.locator('input[type="file"]').first.set_input_files(str(photo))
                page.get_by_text(f"upload:{photo.name}").first.wait_for(timeout=120_000)
                if not first:  # the first visitor runs the four default methods, the second classification only
                    box = page.locator('[data-testid="stMultiSelect"] input').first
                    box.click()
                    for _ in range(6):
                        box.press("Backspace")
                    box.type("classification")
                    box.press("Enter")
                    box.press("Escape")
                    page.get_by_text("Classification temperature").first.wait_for(timeout=60_000)
                idle(page, methods=1 if not first else 4)
                pages.append(page)
            run = [p.get_by_role("button", name="Colorize", exact=True) for p in pages]
            for b in run:
                b.wait_for(timeout=60_000)
            run[0].click()
            pages[0].get_by_text(re.compile(r"loading and running|: starting")).first.wait_for(timeout=120_000)
            run[1].click()  # while the first visitor's photo is being colorized
            pages[1].get_by_text("Waiting: position 1 in the queue").first.wait_for(timeout=120_000)
            pages[1].screenshot(path=tmp_path / "second_visitor_waiting.png")
            for i, page in enumerate(pages):  # both finish: the method's tile shows its time and device
                try:
                    page.get_by_text(re.compile(r"classification - [\d.]+ s on cpu")).first.wait_for(timeout=300_000)
                finally:
                    page.screenshot(path=tmp_path / f"visitor{i}_done.png", full_page=True)
                assert page.locator('[data-testid="stException"]').count() == 0
            browser.close()
        # still up: it answers its health check (a busy server on a loaded machine may take a while)
        assert urllib.request.urlopen(f"{url}/_stcore/health", timeout=120).read() == b"ok", "the server went down"
        peak = peak_rss_mb(pid)
    print(f"server peak RSS with two near-limit uploads: {peak:.0f} MB")
    assert peak < SERVER_CEILING_MB, f"server peak resident memory {peak:.0f} MB (ceiling {SERVER_CEILING_MB} MB)"
