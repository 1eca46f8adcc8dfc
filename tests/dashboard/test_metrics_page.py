"""Metrics page: an evaluation run from the page (experiments.evaluate), the compact table per metric
(mean [CI], best, paired difference from grey), dot-and-whisker chart, paired tests, best/worst
photos beside input and truth, CSV/LaTeX/PNG/PDF exports."""

import json
import os
import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP, no_exceptions


def metrics_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600).run()
    return at.switch_page("views/metrics.py").run()


def test_no_tables_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))
    at = metrics_page()
    no_exceptions(at)
    assert any("No evaluation tables yet" in i.value for i in at.info)


@pytest.fixture
def private_eval_cache(tmp_path, monkeypatch):
    from experiments import evaluate

    monkeypatch.setattr(evaluate, "CACHE_DIR", tmp_path / "eval_cache")


def test_evaluation_from_the_page_then_tables_charts_gallery_exports(results_root, trained_methods, tiny_data, private_eval_cache, monkeypatch):
    monkeypatch.setenv("COLORIZE_STUDY_ADMIN_TOKEN", "metrics-admin")  # writing under results/ needs it
    monkeypatch.setenv("COLORIZE_DATA_ROOTS", str(tiny_data))  # photo folders only under data roots
    at = metrics_page()
    no_exceptions(at)
    at.text_input(key="met_admin_token").input("metrics-admin").run()
    at.text_input(key="met_new_name").input("tiny").run()
    at.text_input(key="met_new_folder").input(str(tiny_data / "val")).run()
    at.multiselect(key="met_new_methods").set_value(trained_methods).run()
    at.number_input(key="met_new_limit").set_value(4).run()
    at.button(key="met_new_run").click().run()
    no_exceptions(at)
    assert not at.error, [e.value for e in at.error]
    assert any("tiny.csv" in s.value for s in at.success)
    assert (results_root / "metrics" / "tiny.summary.csv").exists()
    assert at.selectbox(key="met_eval").value == "tiny"

    # the compact table of the picked metric: rebalanced AuC first, mean [CI], paired difference from grey
    assert at.selectbox(key="met_metric").value == "auc_rebal"
    table = at.dataframe[0].value
    assert list(table["method"]) == ["gray", *trained_methods, "truth"]
    head = [c for c in table.columns if c.startswith("AuC rebal.")][0]
    assert all(re.fullmatch(r"[\d.]+ \[[\d.]+, [\d.]+\]", v) for v in table[head])
    assert table.set_index("method").loc["gray"].iloc[-1] == "(baseline)"

    at.selectbox(key="met_metric").set_value("ciede2000").run()
    no_exceptions(at)
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert "lower is better" in spec["layout"]["xaxis"]["title"]["text"] and "ΔE00" in spec["layout"]["xaxis"]["title"]["text"]
    assert spec["data"][0]["error_x"]["type"] == "data"
    lo, hi = spec["layout"]["xaxis"]["range"]
    assert lo > 0  # zoomed to the data, not from 0
    # paired comparisons: every pair of gray + methods, Holm-adjusted
    pairs = at.dataframe[2].value
    k = len(trained_methods) + 1
    assert len(pairs) == k * (k - 1) // 2 and {"Wilcoxon p", "Holm p"} <= set(pairs.columns)
    # by subject: the photos' labels (the class folders), the all-photos row first, the paired difference from grey
    subjects = at.dataframe[3].value
    assert subjects["subject"].iloc[0] == "all photos" and subjects["photos"].iloc[0] == 4
    assert set(subjects["subject"].iloc[1:]) <= {"meadow", "sunset"} and subjects["photos"].iloc[1:].sum() == 4
    assert all(re.fullmatch(r"[+-]\d+\.\d+", v) for m in trained_methods for v in subjects[m])
    assert set(subjects["best"]) <= set(trained_methods)

    # best and worst photos: a learned method by default, input / output / truth side by side
    assert at.selectbox(key="met_gal_method").value != "gray"
    at.selectbox(key="met_gal_method").set_value(trained_methods[0]).run()
    at.slider(key="met_gal_k").set_value(2).run()
    no_exceptions(at)
    caps = [c for im in at.image for c in im.captions]
    assert len(caps) == 12 and caps[0].startswith("input: ") and caps[2] == "ground truth"
    scores = [float(c.rsplit(" ", 1)[1]) for c in caps if c.startswith(trained_methods[0] + ":")]
    assert max(scores[:2]) <= min(scores[2:])  # lower CIEDE2000 is better

    labels = [b.label for b in at.get("download_button")]
    assert {"Table (CSV)", "Table (LaTeX)", "Chart (PNG)", "Chart (PDF)", "Pairs (CSV)"} <= set(labels)

    # the page names the checkpoint behind each method's rows, and warns once one has been replaced
    [made] = [c.value for c in at.caption if c.value.startswith("Made from: ")]
    assert all(f"{m} " in made for m in trained_methods) and "since replaced" not in made
    side = results_root / "metrics" / "tiny.json"
    meta = json.loads(side.read_text())
    meta["made_from"][trained_methods[0]]["sha256"] = "0" * 64  # as if that checkpoint had been retrained since
    side.write_text(json.dumps(meta))
    os.utime(results_root / "metrics" / "tiny.csv")  # a new table on disk
    at.run()
    no_exceptions(at)
    [warning] = [w.value for w in at.warning if w.value.startswith("Made from: ")]
    assert f"{trained_methods[0]} " in warning and "(00000000 - since replaced)" in warning
    assert f"The rows of {trained_methods[0]} are not the model at that path now" in warning


def test_chart_and_table_exports(results_root):
    import pandas as pd

    from experiments import charts, tables

    summary = pd.DataFrame({"method": ["gray", "b"], "psnr": [20.0, 22.0], "psnr_lo": [19.0, 21.0], "psnr_hi": [21.0, 23.5]})
    fig = charts.dot_whisker(summary, "psnr", "t")
    assert charts.to_bytes(fig, "png")[:8] == b"\x89PNG\r\n\x1a\n" and charts.to_bytes(fig, "pdf")[:5] == b"%PDF-"
    assert fig.axes[0].get_xlim()[0] > 18  # zoomed
    assert "dB" in fig.axes[0].get_xlabel() and "higher is better" in fig.axes[0].get_xlabel()
    assert tables.metric_columns(summary) == ["psnr"]
    assert tables.ci_columns(summary, "psnr") == ("psnr_lo", "psnr_hi")
    assert tables.metric_direction("ciede2000") == -1 and tables.metric_direction("psnr") == 1


def test_bad_evaluation_name_is_refused(results_root, tiny_data):
    from dashboard import common

    with pytest.raises(ValueError, match="evaluation name"):
        common.run_evaluation("../../etc/x", tiny_data / "val", ["gan"])


def test_an_evaluation_from_the_page_can_keep_each_photos_shape(results_root, trained_methods, tmp_path, private_eval_cache, monkeypatch):
    """The page's "keep each photo's shape" box: the evaluation scores every photo at its own shape
    (longer side 256), and the page says so beside the table, where the others say squashed."""
    import numpy as np
    from PIL import Image

    from tests.conftest import synthetic_photo

    photos = tmp_path / "wide"
    photos.mkdir()
    rng = np.random.default_rng(5)
    for i in range(2):
        Image.fromarray(synthetic_photo(rng, 96, i)[:48]).save(photos / f"wide{i}.png")  # 48 x 96
    monkeypatch.setenv("COLORIZE_STUDY_ADMIN_TOKEN", "metrics-admin")
    monkeypatch.setenv("COLORIZE_DATA_ROOTS", str(photos))
    at = metrics_page()
    at.text_input(key="met_admin_token").input("metrics-admin").run()
    at.text_input(key="met_new_name").input("shape").run()
    at.text_input(key="met_new_folder").input(str(photos)).run()
    at.multiselect(key="met_new_methods").set_value(trained_methods[:1]).run()
    at.number_input(key="met_new_limit").set_value(0).run()
    at.checkbox(key="met_new_aspect").check().run()
    at.button(key="met_new_run").click().run()
    no_exceptions(at)
    assert not at.error, [e.value for e in at.error]
    meta = json.loads((results_root / "metrics" / "shape.json").read_text())
    assert meta["resize"].startswith("longer side to size, aspect ratio kept")
    assert any("2 photos from" in c.value and "each at its own shape" in c.value for c in at.caption)
    from experiments import evaluate

    assert evaluate.load_truth(photos / "wide0.png", 256, evaluate.keeps_aspect(meta)).shape == (128, 256, 3)
