"""Home page: what the product is, the five methods with their status, links to the pages."""

import time

from streamlit.testing.v1 import AppTest

import backends
import backends.base
from tests.dashboard.conftest import APP, no_exceptions


def run_until_status(at: AppTest, timeout: float = 120.0) -> AppTest:
    """The table shows at once what the files say ("checking..."); the full status comes from a
    worker thread: rerun until it is there."""
    t0 = time.time()
    at.run()
    while time.time() - t0 < timeout and (not at.dataframe or "checking..." in list(at.dataframe[0].value["status"])):
        time.sleep(0.5)
        at.run()
    return at


def test_home_shows_the_method_table_before_any_method_module_is_imported(results_root, monkeypatch):
    """The first run renders the table from the files alone (no PyTorch, no TensorFlow, no model)."""
    from dashboard import common

    monkeypatch.setattr(common, "statuses_in_background", lambda max_age=30.0: None)
    at = AppTest.from_file(APP, default_timeout=120).run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert list(table["method"]) == common.backends.names()
    assert set(table["status"]) == {"checking..."}
    blurb = table.set_index("method").loc["classification", "what"]
    assert "261 classes" in blurb or ("classes" in blurb and "313" not in blurb)  # the shipped gamut's real count


def test_home_lists_methods_with_status(results_root, trained_methods):
    at = run_until_status(AppTest.from_file(APP, default_timeout=120))
    no_exceptions(at)
    assert at.title[0].value == "Colorization workbench"
    table = at.dataframe[0].value
    assert list(table["method"]) == backends.names()  # every registered method, built-in ones first
    assert {"regression", "classification", "fusion", "gan", "neural_style"} <= set(table["method"])
    for _, row in table.iterrows():
        if row["method"] in trained_methods:
            assert row["status"] != "unavailable", row.to_dict()
            assert row["checkpoint"].startswith(row["method"] + ".")
    # every trained model's card, as the README and the report show it
    import json

    assert not [i.value for i in at.info if "model card" in i.value]
    cards = at.dataframe[1].value.set_index("method")
    assert sorted(cards.index) == trained_methods
    for m in trained_methods:
        meta = json.loads((results_root / "checkpoints" / f"{m}.json").read_text())
        assert cards.loc[m, "images seen"] == f"{meta['images_seen']:,}"
        assert cards.loc[m, "crops"] and cards.loc[m, "variant"].startswith("encoder:")
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
    assert any("No trained model has a model card" in i.value for i in at.info)


def test_report_button_builds_and_offers_html_and_pdf(tmp_path, monkeypatch):
    from experiments import report

    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(tmp_path))

    calls = []

    def fake_build(out, progress=None, **kw):  # the report itself is tested in tests/experiments/test_report.py
        for step in ("model cards", "writing HTML", "writing PDF"):
            progress(step)
        calls.append(out)
        paths = {"html": __import__("pathlib").Path(out) / "report.html", "pdf": __import__("pathlib").Path(out) / "report.pdf"}
        paths["html"].write_text("<html></html>")
        paths["pdf"].write_bytes(b"%PDF-1.4")
        return paths

    monkeypatch.setattr(report, "build", fake_build)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.button(key="home_report_build").click().run()
    no_exceptions(at)
    assert calls
    labels = {b.label for b in at.get("download_button")}
    assert {"Report (HTML)", "Report (PDF)"} <= labels
