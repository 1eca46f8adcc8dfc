"""Metrics page: an evaluation run from the page (experiments.evaluate), the sortable summary with
confidence intervals, the chart per metric, best/worst photos, CSV/LaTeX/PNG exports."""

import json

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


def test_evaluation_from_the_page_then_tables_charts_gallery_exports(results_root, trained_methods, tiny_data, private_eval_cache):
    at = metrics_page()
    no_exceptions(at)
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

    summary = at.dataframe[0].value
    assert list(summary["method"]) == ["gray", *trained_methods, "truth"]
    assert {"psnr", "psnr_lo", "psnr_hi", "n"} <= set(summary.columns)
    methods = summary[summary["method"] != "truth"]  # truth's PSNR is infinite
    assert (methods["psnr_lo"] <= methods["psnr"]).all() and (methods["psnr"] <= methods["psnr_hi"]).all()

    at.selectbox(key="met_metric").set_value("ciede2000").run()
    no_exceptions(at)
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert "lower is better" in spec["layout"]["title"]["text"]
    assert spec["data"][0]["error_y"]["type"] == "data"

    # best and worst photos of a method by the chosen metric
    at.selectbox(key="met_gal_method").set_value(trained_methods[0]).run()
    at.slider(key="met_gal_k").set_value(2).run()
    no_exceptions(at)
    caps = [c for im in at.image for c in im.captions]
    assert len(caps) == 4 and all("ciede2000" in c for c in caps)
    best = [float(c.rsplit(" ", 1)[1]) for c in caps[:2]]
    worst = [float(c.rsplit(" ", 1)[1]) for c in caps[2:]]
    assert max(best) <= min(worst)  # lower CIEDE2000 is better

    labels = [b.label for b in at.get("download_button")]
    assert {"CSV", "LaTeX", "PNG chart"} <= set(labels)


def test_png_and_latex_exports(results_root):
    import pandas as pd

    from dashboard import common

    table = pd.DataFrame({"method": ["a", "b"], "psnr": [20.0, 22.0], "psnr_lo": [19.0, 21.0], "psnr_hi": [21.0, 23.5]})
    png = common.bar_chart_png(table, "psnr", "t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert common.metric_columns(table) == ["psnr"]
    assert common.ci_columns(table, "psnr") == ("psnr_lo", "psnr_hi")
    assert common.metric_direction("ciede2000") == -1 and common.metric_direction("psnr") == 1


def test_bad_evaluation_name_is_refused(results_root, tiny_data):
    from dashboard import common

    with pytest.raises(ValueError, match="evaluation name"):
        common.run_evaluation("../../etc/x", tiny_data / "val", ["gan"])
