"""Home page: what the product is, the five methods with their status, links to the pages."""

import time

from streamlit.testing.v1 import AppTest

import backends
import backends.base
from tests.dashboard.conftest import APP, no_exceptions


def run_until_status(at: AppTest, timeout: float = 120.0) -> AppTest:
    """The status table is filled by a worker thread; rerun until it is there."""
    t0 = time.time()
    at.run()
    while not at.dataframe and time.time() - t0 < timeout:
        time.sleep(0.5)
        at.run()
    return at


def test_home_lists_methods_with_status(results_root, trained_methods):
    at = run_until_status(AppTest.from_file(APP, default_timeout=120))
    no_exceptions(at)
    assert at.title[0].value == "Colorization workbench"
    table = at.dataframe[0].value
    assert list(table["method"]) == backends.names()  # every registered method, built-in ones first
    assert list(table["method"])[:5] == ["regression", "classification", "fusion", "gan", "neural_style"]
    for _, row in table.iterrows():
        if row["method"] in trained_methods:
            assert row["status"] != "unavailable", row.to_dict()
            assert row["checkpoint"].startswith(row["method"] + ".")
    # links to every page of the workbench
    links = [el.proto.page for el in at.get("page_link")]
    assert {"compare", "metrics", "training", "history"} <= set(links)


def test_home_says_why_a_method_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(backends.base, "CHECKPOINT_DIR", tmp_path / "empty" / "checkpoints")  # nor the shipped ones
    at = run_until_status(AppTest.from_file(APP, default_timeout=120))
    no_exceptions(at)
    table = at.dataframe[0].value
    gan = table[table["method"] == "gan"].iloc[0]
    assert gan["status"] == "unavailable"
    assert "no trained checkpoint" in gan["details"]
    assert any("can run here" in i.value for i in at.info)
