"""Real browser runs (headless Chromium) of the study apps; screenshots go to
``$STUDY_SCREENSHOTS`` (default: the test's tmp folder).

1. Participants on the participant app (``dashboard/participant_app.py``): one at desktop size,
   one on a phone (390 x 844), each through consent, practice with feedback beside the judged
   pair, scored and vigilance trials, a reload, a double-click, to the completion code. The pair
   fits the phone without distortion; both images of every pair have the same byte length and
   size; the page names nothing; workbench paths lead nowhere.
2. An organiser on the workbench app: an admin deep link asks for the token, the login survives
   a reload, two studies are created in a row and both exported; the analysis page fits 1280 px.

Studies are prepared with stand-in colorizers on tiny photos, so no model is needed.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from experiments.study import prepare as prep
from experiments.study.protocol import StudyDesign, plan
from experiments.study.storage import StudyStore

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
TOKEN = "browser-admin-token"
FAKES = {"hue40": prep.hue_rotation_colorizer(40), "hue120": prep.hue_rotation_colorizer(120)}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make(store: StudyStore, name: str, photos: list[str], size: int = 96, **kw) -> StudyDesign:
    d = StudyDesign(name=name, methods=["hue40", "hue120"], photos=photos, size=size, seed=5, **kw)
    store.create_study(d)
    prep.prepare(store, name, FAKES)
    store.set_status(name, "open")
    return d


@pytest.fixture(scope="module")
def served(tmp_path_factory, study_photos):
    """One study database, served by the participant app and by the workbench app."""
    tmp = tmp_path_factory.mktemp("study_browser")
    url = f"sqlite:///{tmp / 'studies.sqlite'}"
    store = StudyStore(url)
    # 256 px, as in a real study: two of them do not fit a phone side by side unless they shrink
    make(store, "live", study_photos, size=256, trials=3, practice=1, vigilance=0.34, display_ms=1000)
    d = make(store, "seeded", study_photos, trials=6, practice=1, vigilance=0.34)
    for k in range(12):  # votes for the analysis page
        p = store.join("seeded")
        for t in plan(d, p.id, p.condition, store.ready_photos("seeded")):
            store.record_vote(p, t, t.real_side if (k % 3 == 0 and t.phase == "main") else t.fake_side, 700 + 10 * k)
        store.finish(p.id)
    env = dict(os.environ, COLORIZE_STUDY_DB=url, COLORIZE_STUDY_ADMIN_TOKEN=TOKEN, OMP_NUM_THREADS="1", PYTHONPATH=str(PROJECT))
    env["COLORIZE_STUDY_BASE_URL"] = "https://study.example.org"
    procs, bases = [], {}
    for app in ("participant_app", "app"):
        port = free_port()
        log = open(tmp / f"{app}.log", "w")
        cmd = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            f"dashboard/{app}.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ]
        cmd += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
        procs.append((subprocess.Popen(cmd, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
        bases[app] = f"http://127.0.0.1:{port}"
    try:
        for app, base in bases.items():
            for _ in range(240):
                try:
                    if urllib.request.urlopen(f"{base}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    time.sleep(0.5)
            else:
                raise RuntimeError((tmp / f"{app}.log").read_text())
        yield bases, store, tmp
    finally:
        for proc, log in procs:
            proc.terminate()
            proc.wait(20)
            log.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    out = Path(os.environ.get("STUDY_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def settled(page, timeout: float = 60.0) -> None:
    """Wait until the script run is over (no stale elements, no running indicator)."""
    end = time.time() + timeout
    while time.time() < end:
        stale = page.locator('[data-testid="stElementContainer"][data-stale="true"]').count()
        running = page.locator('[data-testid="stStatusWidgetRunningIcon"]').count()
        if not stale and not running:
            return
        time.sleep(0.05)


def state(page) -> tuple:
    cap = page.locator('[data-testid="stCaptionContainer"]')
    return (
        cap.first.inner_text() if cap.count() else "",
        page.get_by_role("button", name="Next pair").count(),
        page.get_by_text("All done").count(),
    )


def wait_change(page, old: tuple, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if state(page) != old:
                settled(page)
                if page.locator("iframe").count() or page.get_by_text("All done").count():
                    return
        except Exception:  # noqa: BLE001 - page re-rendering
            pass
        time.sleep(0.1)
    raise AssertionError(f"page did not move on from {old}")


def pair_facts(page) -> dict:
    """What the page delivered for the pair: src lengths, natural sizes, alt texts, on-screen boxes."""
    frame = page.frame_locator("iframe").first
    frame.locator("img").first.wait_for(state="attached", timeout=30_000)
    facts = frame.locator("img").evaluate_all(
        "els => els.map(e => ({len: e.src.length, w: e.naturalWidth, h: e.naturalHeight, alt: e.alt, "
        "bw: e.getBoundingClientRect().width, bh: e.getBoundingClientRect().height, "
        "right: e.getBoundingClientRect().right}))"
    )
    box = page.locator("iframe").first.bounding_box()
    return {"imgs": facts, "iframe": box, "scroll_w": page.evaluate("document.documentElement.scrollWidth")}


def take_study(browser, base: str, viewport: dict, who: str, shots: Path, secrets: list[str]) -> dict:
    phone = viewport == PHONE
    ctx = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, device_scale_factor=2 if phone else 1)
    page = ctx.new_page()
    notes: dict = {"pairs": [], "feedback": [], "steps": 0}
    page.goto(f"{base}/?study=live")
    page.get_by_text("I have read the above and agree").click()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url("**pid=*", timeout=60_000)
    page.locator("iframe").first.wait_for(timeout=60_000)
    settled(page)
    notes["pid"] = page.url.split("pid=")[1].split("&")[0]
    page.screenshot(path=str(shots / f"{who}-trial0.png"))
    html = page.content() + page.frame_locator("iframe").first.locator("html").inner_html()
    notes["leaks"] = [s for s in secrets if s in html]
    if not phone:  # the 1-s display limit hides the pair on the client
        time.sleep(1.5)
        notes["visibility"] = (
            page.frame_locator("iframe").first.locator("img").evaluate_all("els => els.map(e => getComputedStyle(e).visibility)")
        )
    while not page.get_by_text("All done").count():
        old = state(page)
        if old[1]:  # practice feedback, shown with the pair that was judged
            notes["feedback"].append(page.locator('[data-testid="stAlertContainer"]').first.inner_text())
            notes["feedback_pair"] = pair_facts(page)
            page.screenshot(path=str(shots / f"{who}-practice-feedback.png"))
            page.get_by_role("button", name="Next pair").click()
        else:
            notes["pairs"].append(pair_facts(page))
            button = page.get_by_role("button", name="The left one is fake" if notes["steps"] % 2 else "The right one is fake")
            if notes["steps"] == 1 and not phone:
                button.dblclick()  # counts once
            else:
                button.click()
            notes["steps"] += 1
        wait_change(page, old)
        if notes["steps"] == 3 and "reload" not in notes:
            before = state(page)
            page.reload()
            page.locator("iframe").first.wait_for(timeout=60_000)
            settled(page)
            notes["reload"] = (before, state(page), notes["pid"] in page.url)
    page.locator('[data-testid="stCode"]').first.wait_for(timeout=30_000)
    notes["code"] = page.locator('[data-testid="stCode"]').first.inner_text().strip()
    notes["iframes_left"] = page.locator("iframe").count()
    page.screenshot(path=str(shots / f"{who}-done.png"), full_page=True)
    # paths of the workbench lead nowhere in the participant app
    notes["deep"] = {}
    for path in ("/compare", "/metrics", "/study-designer", "/study-analysis", "/"):
        page.goto(base + path)
        page.get_by_text("open the link you were given").wait_for(timeout=30_000)
        notes["deep"][path] = page.locator("section.main, [data-testid='stMain']").first.inner_text()
    ctx.close()
    return notes


def test_participants_take_a_study_on_desktop_and_phone(served, shots, study_photos):
    from playwright.sync_api import sync_playwright

    bases, store, _ = served
    secrets = [
        "hue40",
        "hue120",
        "vigilance",
        ">real<",
        '"real"',
        *[Path(p).name for p in study_photos],
        *store.ready_photos("live"),
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            runs = {
                who: take_study(browser, bases["participant_app"], vp, who, shots, secrets)
                for who, vp in (("desktop", DESKTOP), ("phone", PHONE))
            }
        finally:
            browser.close()
    votes = store.votes_frame("live")
    for who, n in runs.items():
        pid = n["pid"]
        assert n["leaks"] == [], who
        assert n["steps"] == 5 and len(votes[votes["participant"] == pid]) == 5  # 1 practice + 3 scored + 1 vigilance, once each
        assert len(n["feedback"]) == 1 and "the fake was on the" in n["feedback"][0]
        assert n["code"] == store.completion_code(pid) and n["iframes_left"] == 0
        before, after, same = n["reload"]
        assert before == after and same
        for facts in n["pairs"]:
            a, b = facts["imgs"]
            assert (a["alt"], b["alt"]) == ("left image", "right image")
            assert a["len"] == b["len"] and (a["w"], a["h"]) == (b["w"], b["h"]) == (256, 256)  # no size side channel
            assert abs(a["bw"] - a["bh"]) < 1 and abs(b["bw"] - b["bh"]) < 1  # square: no distortion
        for path, text in n["deep"].items():
            assert "Compare" not in text and "Study designer" not in text and "Fool rate" not in text, path
    assert runs["desktop"]["visibility"] == ["hidden", "hidden"]
    for facts in runs["phone"]["pairs"] + [runs["phone"]["feedback_pair"]]:
        assert facts["scroll_w"] <= PHONE["width"]  # nothing sticks out sideways
        assert facts["iframe"]["x"] >= 0 and facts["iframe"]["x"] + facts["iframe"]["width"] <= PHONE["width"]
        assert all(img["right"] <= facts["iframe"]["width"] + 0.5 and 140 <= img["bw"] < 256 for img in facts["imgs"])
    assert not votes.duplicated(["participant", "trial"]).any()


def login(page, base: str, path: str) -> None:
    page.goto(base + path)
    page.get_by_text("enter the study admin token").wait_for(timeout=120_000)  # a clear login page, not Home
    # Type only once the script run is over: under load, a token typed into the box of a run still in
    # progress can be dropped when that run redraws the page, and the login then never happens.
    settled(page, timeout=120.0)
    page.get_by_label("Study admin token").fill(TOKEN)
    page.get_by_label("Study admin token").press("Enter")


def create(page, name: str, kind_label: str | None, folder: str) -> None:
    if kind_label:
        page.get_by_text(kind_label).click()
        settled(page)
    page.get_by_role("textbox", name="Name (lowercase letters, digits, - and _)").fill(name)
    page.get_by_role("textbox", name="Name (lowercase letters, digits, - and _)").press("Enter")
    page.get_by_role("textbox", name="Photo folder").fill(folder)
    page.get_by_role("textbox", name="Photo folder").press("Enter")
    settled(page)
    page.get_by_role("button", name="Create study").click()
    page.get_by_text(f"Created {name}").wait_for(timeout=180_000)  # colorizes its photos: minutes on a busy machine
    settled(page)


def pick(page, study: str) -> None:
    """Choose a study in the page's "Study" select box (type its name, then Enter)."""
    box = page.get_by_role("combobox", name="Study", exact=True)
    box.click()
    box.fill(study)
    page.keyboard.press("Enter")
    page.wait_for_function("name => document.querySelector('input[aria-label=Study]').value === name", arg=study, timeout=30_000)
    settled(page)


def download_zip(page, study: str) -> zipfile.ZipFile:
    pick(page, study)
    for _ in range(5):  # on a busy machine the button can still be the previous study's for a moment
        page.get_by_role("button", name="Everything (zip)").wait_for(timeout=60_000)
        with page.expect_download(timeout=60_000) as dl:
            page.get_by_role("button", name="Everything (zip)").click()
        if dl.value.suggested_filename == f"{study}-study.zip":
            break
        settled(page)
    assert dl.value.suggested_filename == f"{study}-study.zip", dl.value.suggested_filename
    return zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes()))


def test_organiser_logs_in_creates_two_studies_and_exports_both(served, shots, study_photos):
    from playwright.sync_api import sync_playwright

    bases, store, _ = served
    base = bases["app"]
    folder = str(Path(study_photos[0]).parent)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(viewport=DESKTOP, accept_downloads=True).new_page()
            login(page, base, "/study-designer")
            page.get_by_text("New study").wait_for(timeout=120_000)
            settled(page)
            page.reload()  # the login survives a reload in the same browser session
            page.get_by_text("New study").wait_for(timeout=120_000)
            settled(page)
            assert page.get_by_label("Study admin token").count() == 0
            # Turing test with few trials, so the 12 tiny photos are enough
            for label, value in (
                ("Scored trials per participant", "3"),
                ("Practice trials (with feedback)", "1"),
                ("Photos (sampled)", "6"),
            ):
                box = page.get_by_role("spinbutton", name=label)
                box.fill(value)
                box.press("Enter")
                settled(page)
            create(page, "first", None, folder)
            create(page, "second", "Arena (method vs method)", folder)
            page.screenshot(path=str(shots / "designer-after-two.png"), full_page=True)
            assert store.study("first").kind == "turing" and store.study("second").kind == "arena"
            assert page.get_by_text("Traceback").count() == 0 and page.get_by_text("Error").count() == 0
            page.goto(base + "/study-analysis")
            page.get_by_text("Bootstrap resamples").wait_for(timeout=120_000)
            settled(page)
            zips = {s: download_zip(page, s) for s in ("first", "second")}
            assert {"first/votes.csv", "first/results.tex", "first/fool_rate.pdf"} <= set(zips["first"].namelist())
            assert {"second/results.csv", "second/bradley_terry.png"} <= set(zips["second"].namelist())
            # the analysis of a study with votes fits 1280 px
            pick(page, "seeded")
            page.get_by_text("Differences between methods").wait_for(timeout=60_000)
            settled(page)
            page.screenshot(path=str(shots / "analysis-1280.png"))
            page.get_by_text("Photos that fooled most").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "analysis-1280-differences.png"))
            assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
        finally:
            browser.close()
