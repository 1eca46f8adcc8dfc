"""One real browser run: two participants take a Turing test at once in headless Chromium.

Starts ``streamlit run dashboard/app.py`` on a free port against a temporary study database,
drives two browser contexts concurrently (async Playwright), and checks the database, the
page source (nothing tells real from fake), the 1-s display limit, a reload and a double-click.
Screenshots go to ``$STUDY_SCREENSHOTS`` (default: the test's tmp folder).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from experiments.study import prepare as prep
from experiments.study.protocol import StudyDesign
from experiments.study.storage import StudyStore

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, study_photos):
    url = f"sqlite:///{tmp_path / 'studies.sqlite'}"
    store = StudyStore(url)
    store.create_study(
        StudyDesign(
            name="live",
            methods=["hue40", "hue120"],
            photos=study_photos,
            trials=3,
            practice=1,
            vigilance=0.34,
            display_ms=1000,
            size=96,
            seed=5,
        )
    )
    prep.prepare(store, "live", {"hue40": prep.hue_rotation_colorizer(40), "hue120": prep.hue_rotation_colorizer(120)})
    store.set_status("live", "open")
    port = free_port()
    env = dict(os.environ, COLORIZE_STUDY_DB=url, OMP_NUM_THREADS="1", PYTHONPATH=str(PROJECT))
    env.pop("COLORIZE_STUDY_ADMIN_TOKEN", None)
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "dashboard/app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError((tmp_path / "streamlit.log").read_text())
        yield f"http://127.0.0.1:{port}", store
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


async def caption(page) -> str:
    return (await page.locator('[data-testid="stCaptionContainer"]').first.inner_text()).strip()


async def settled(page) -> None:
    """Wait until the script run is over: no stale elements left from the previous run (a click
    on a stale button answers the previous trial again, which is ignored)."""
    for _ in range(300):
        stale = await page.locator('[data-testid="stElementContainer"][data-stale="true"]').count()
        running = await page.locator('[data-testid="stStatusWidgetRunningIcon"]').count()
        if not stale and not running:
            return
        await asyncio.sleep(0.05)


async def wait_caption_change(page, old: str) -> None:
    for _ in range(300):
        if await page.get_by_text("All done").count():
            return
        try:
            if await caption(page) != old:
                return await settled(page)
        except Exception:  # noqa: BLE001 - page re-rendering
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"page did not move on from {old!r}")


async def participant(browser, base: str, who: str, shots: Path, secrets: list[str], notes: dict) -> str:
    ctx = await browser.new_context(viewport={"width": 1000, "height": 900})
    page = await ctx.new_page()
    await page.goto(f"{base}/?study=live")
    await page.get_by_text("I have read the above and agree").click()
    await page.get_by_role("button", name="Start").click()
    await page.wait_for_url("**pid=*", timeout=30_000)
    await page.locator("iframe").first.wait_for(timeout=30_000)
    await settled(page)
    pid = page.url.split("pid=")[1].split("&")[0]
    frame = page.frame_locator("iframe").first
    await frame.locator("img").first.wait_for()
    await page.screenshot(path=str(shots / f"{who}-trial0.png"))
    # nothing in the page or the image frame says which image is real or what made the other
    html = await page.content() + await frame.locator("html").inner_html()
    notes[f"{who}-leaks"] = [s for s in secrets if s in html]
    notes[f"{who}-alts"] = await frame.locator("img").evaluate_all("els => els.map(e => e.alt)")
    # the 1-s display limit: hidden on the client
    await asyncio.sleep(1.5)
    notes[f"{who}-visibility"] = await frame.locator("img").evaluate_all("els => els.map(e => getComputedStyle(e).visibility)")
    await page.screenshot(path=str(shots / f"{who}-trial0-after-1s.png"))
    step = 0
    while not await page.get_by_text("All done").count():
        old = await caption(page)
        button = page.get_by_role("button", name="The left one is fake" if step % 2 else "The right one is fake")
        t0 = time.perf_counter()
        if step == 0 and who == "p1":
            await button.dblclick()  # a double-click must count once
        else:
            await button.click()
        await wait_caption_change(page, old)
        notes.setdefault("turnaround_s", []).append(time.perf_counter() - t0)
        step += 1
        if step == 2:
            before = await caption(page)
            await page.reload()  # resumes the same participant at the same trial
            await page.locator("iframe").first.wait_for(timeout=30_000)
            await settled(page)
            notes[f"{who}-reload"] = (before, await caption(page), pid in page.url)
    await page.locator("iframe").first.wait_for(state="detached", timeout=15_000)  # no images left once done
    await page.screenshot(path=str(shots / f"{who}-done.png"))
    notes[f"{who}-steps"] = step
    await ctx.close()
    return pid


def test_two_participants_at_once_in_chromium(server, tmp_path, study_photos):
    from playwright.async_api import async_playwright

    base, store = server
    shots = Path(os.environ.get("STUDY_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    secrets = [
        "hue40",
        "hue120",
        "vigilance",
        ">real<",
        '"real"',
        *[Path(p).name for p in study_photos],
        *store.ready_photos("live"),
    ]
    notes: dict = {}

    async def run():
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                return await asyncio.gather(*(participant(browser, base, w, shots, secrets, notes) for w in ("p1", "p2")))
            finally:
                await browser.close()

    pids = asyncio.run(run())
    votes = store.votes_frame("live")
    assert len(set(pids)) == 2
    assert sorted(votes.groupby("participant").size().tolist()) == [5, 5]  # 1 practice + 3 scored + 1 vigilance each
    assert not votes.duplicated(["participant", "trial"]).any()
    assert notes["p1-steps"] == notes["p2-steps"] == 5  # the double-click advanced one trial, not two
    for who in ("p1", "p2"):
        assert notes[f"{who}-leaks"] == []
        assert notes[f"{who}-alts"] == ["left image", "right image"]
        assert notes[f"{who}-visibility"] == ["hidden", "hidden"]
        before, after, same_pid = notes[f"{who}-reload"]
        assert before == after and same_pid
    assert all(store.participant(p).finished_at for p in pids)
    turn = sorted(notes["turnaround_s"])
    print(f"\nclick -> next trial on screen: median {turn[len(turn) // 2]:.2f} s, max {turn[-1]:.2f} s (two browsers at once)")
