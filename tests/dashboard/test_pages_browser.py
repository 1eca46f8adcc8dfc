"""Real browser (Debian's headless Chromium via Playwright): Metrics, Training and Compare at a desktop
width (1280 px) and a phone width (390 px). Each page renders without an exception box and nothing is
wider than the screen; Metrics shows its compact table, chart, paired tests and gallery; Training its
panels and labelled sample grid; Compare shows each result and the figure export. Screenshots go to
``$COLORIZE_SCREENSHOTS`` (default: the test's tmp folder) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.dashboard.test_app_browser import ARGS, CHROMIUM, settle, shoot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


def write_evaluation(root: Path, photos: Path, methods: list[str]) -> None:
    """An evaluation of the tiny validation photos as experiments.evaluate writes it."""
    rng = np.random.default_rng(0)
    files = sorted(str(p.relative_to(photos)) for p in photos.rglob("*.png"))
    rows = []
    for k, m in enumerate(["gray", *methods, "truth"]):
        for f in files:
            auc = 1.0 if m == "truth" else 0.78 + 0.01 * k + rng.normal(0, 0.01)
            rows.append({"method": m, "image": f, "label": f.split("/")[0], "psnr": 20 + 20 * (auc - 0.78), "ciede2000": 12 - 30 * (auc - 0.78),
                         "auc_rebal": auc})  # fmt: skip
    per = pd.DataFrame(rows)
    (root / "metrics").mkdir(parents=True, exist_ok=True)
    per.to_csv(root / "metrics" / "tiny.csv", index=False)
    g = per.groupby("method", sort=False)
    s = g.size().rename("n").reset_index()
    for c in ("auc_rebal", "psnr", "ciede2000"):
        s[c], s[f"{c}_lo"], s[f"{c}_hi"] = g[c].mean().to_numpy(), g[c].quantile(0.1).to_numpy(), g[c].quantile(0.9).to_numpy()
    s.to_csv(root / "metrics" / "tiny.summary.csv", index=False)
    (root / "metrics" / "tiny.json").write_text(
        json.dumps({"data": str(photos), "photos": len(files), "size": 64, "created": "test"})
    )


@pytest.fixture
def app(trained_results, trained_methods, tiny_data, tmp_path):
    pytest.importorskip("playwright.sync_api")
    from experiments.benchmark import streamlit_app

    root = tmp_path / "results"
    shutil.copytree(trained_results, root, symlinks=True)
    write_evaluation(root, tiny_data / "val", trained_methods)
    env = {
        **os.environ,
        "COLORIZE_RESULTS_DIR": str(root),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
        "COLORIZE_DATA_ROOTS": str(tiny_data),
    }  # pages open photos only under the data roots
    with (tmp_path / "streamlit.log").open("w") as log, streamlit_app(env, log, timeout=60) as (url, _, _):
        yield url, root


def images_loaded(page, timeout: float = 120.0) -> None:
    """Every image of the page has loaded (a screenshot shows what a user sees)."""
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)", timeout=timeout * 1000)


def no_overflow(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_metrics_training_compare_on_desktop_and_phone(app, trained_methods, tmp_path):
    from playwright.sync_api import sync_playwright

    url, root = app
    shots = Path(os.environ.get("COLORIZE_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for width, height in ((1280, 900), (390, 844)):
            phone = width < 500
            page = browser.new_page(viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone)

            waits = {
                "metrics": [
                    "text=who wins",
                    ".js-plotly-plot .main-svg",
                    "text=Paired comparisons",
                    "text=ground truth",
                ],
                "training": [".js-plotly-plot .main-svg", '[data-testid="stImage"] img', "text=images seen"],
            }
            for name, title in (("metrics", "Evaluation metrics"), ("training", "Training runs")):
                page.goto(f"{url}/{name}")
                settle(page, title)
                for sel in waits[name]:  # the metrics gallery (input, output, truth) colorizes its photos first
                    page.locator(sel).first.wait_for(timeout=600_000)
                settle(page, title)
                assert page.locator('[data-testid="stImage"] img').count() >= (9 if name == "metrics" else 1)
                images_loaded(page)
                no_overflow(page, width)
                shoot(page, shots / f"{name}_{width}.png", width)

            page.goto(f"{url}/compare")
            settle(page, "Compare methods")
            page.get_by_label("Methods").first.wait_for(timeout=30_000)
            # by default the methods that can run here and are fast (neural_style is opt-in)
            page.get_by_role("button", name="Colorize").first.click()
            page.get_by_text("Saved as comparison").wait_for(timeout=600_000)
            settle(page, "Compare methods")
            captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
            for m in trained_methods:
                assert any(c.startswith(f"{m} - ") for c in captions), captions
            assert page.get_by_role("button", name="Figure (PNG)").count() == 1
            images_loaded(page)
            no_overflow(page, width)
            shoot(page, shots / f"compare_{width}.png", width)
            page.close()
        browser.close()
