"""Writes from the pages need the admin token; evaluations read only configured data folders and
never replace a table (a shipped one above all) unless asked; oversize uploads are not processed."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from backends.errors import ColorizationError
from experiments import access
from tests.conftest import PROJECT
from tests.dashboard.conftest import APP, no_exceptions

TOKEN = "s3cret-metrics-admin"
TOKEN_ENV = "COLORIZE_STUDY_ADMIN_TOKEN"


def metrics_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600).run()
    return at.switch_page("views/metrics.py").run()


@pytest.fixture
def shipped_copy(results_root):
    """results/metrics/test.* as shipped, in the test's results folder."""
    metrics = results_root / "metrics"
    metrics.mkdir()
    for p in (PROJECT / "results" / "metrics").glob("test.*"):
        shutil.copy(p, metrics / p.name)
    return metrics


@pytest.fixture
def private_eval_cache(tmp_path, monkeypatch):
    from experiments import evaluate

    monkeypatch.setattr(evaluate, "CACHE_DIR", tmp_path / "eval_cache")


def test_running_an_evaluation_needs_the_admin_token(results_root, shipped_copy, tiny_data, monkeypatch):
    monkeypatch.setenv("COLORIZE_DATA_ROOTS", str(tiny_data))
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    at = metrics_page()
    no_exceptions(at)
    assert at.button(key="met_new_run").disabled
    assert any("no admin token configured" in c.value for c in at.caption)

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    at = metrics_page()
    at.text_input(key="met_new_name").input("visitor").run()
    at.text_input(key="met_new_folder").input(str(tiny_data / "val")).run()
    assert at.button(key="met_new_run").disabled
    at.text_input(key="met_admin_token").input("guess").run()
    assert any("Wrong admin token" in e.value for e in at.error)
    no_exceptions(at)
    assert not (shipped_copy / "visitor.csv").exists() and not at.success
    at.text_input(key="met_admin_token").input(TOKEN).run()
    assert not at.button(key="met_new_run").disabled


def test_folders_outside_the_data_roots_and_shipped_tables_are_refused(results_root, shipped_copy, trained_methods, tiny_data,
                                                                       private_eval_cache, monkeypatch):  # fmt: skip
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("COLORIZE_DATA_ROOTS", str(tiny_data))
    before = (shipped_copy / "test.csv").read_bytes()
    at = metrics_page()
    at.text_input(key="met_admin_token").input(TOKEN).run()
    at.multiselect(key="met_new_methods").set_value(trained_methods[:1]).run()
    at.number_input(key="met_new_limit").set_value(2).run()

    at.text_input(key="met_new_name").input("etc").run()
    at.text_input(key="met_new_folder").input("/etc").run()
    at.button(key="met_new_run").click().run()
    no_exceptions(at)
    assert any("/etc: not under a configured data folder" in e.value and "COLORIZE_DATA_ROOTS" in e.value for e in at.error)
    assert not (shipped_copy / "etc.csv").exists()

    at.text_input(key="met_new_name").input("test").run()
    at.text_input(key="met_new_folder").input(str(tiny_data / "val")).run()
    at.button(key="met_new_run").click().run()
    no_exceptions(at)
    assert any("a shipped evaluation table" in e.value and "'test-2'" in e.value for e in at.error), [e.value for e in at.error]
    assert (shipped_copy / "test.csv").read_bytes() == before, "the shipped table was overwritten"

    at.checkbox(key="met_new_replace").check().run()  # explicit confirmation
    at.button(key="met_new_run").click().run()
    no_exceptions(at)
    assert any("test.csv" in s.value for s in at.success), [e.value for e in at.error]
    assert (shipped_copy / "test.csv").read_bytes() != before


def test_data_roots_and_names(tmp_path, monkeypatch):
    inside, outside = tmp_path / "data" / "photos", tmp_path / "elsewhere"
    inside.mkdir(parents=True)
    outside.mkdir()
    (inside / "escape").symlink_to(outside)
    monkeypatch.setenv("COLORIZE_DATA_ROOTS", str(tmp_path / "data"))
    assert access.check_data_folder(inside) == inside.resolve()
    for bad in (outside, inside / "escape", "/etc", inside / ".." / ".." / "elsewhere"):
        with pytest.raises(ColorizationError, match="not under a configured data folder"):
            access.check_data_folder(bad)
    with pytest.raises(ColorizationError, match="not a folder"):
        access.check_data_folder(tmp_path / "data" / "missing")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "val.csv").write_text("x")
    (tmp_path / "m" / "mine.md").write_text("x")
    assert access.check_evaluation_name(tmp_path / "m", "new") == "new"
    with pytest.raises(ColorizationError, match="shipped"):
        access.check_evaluation_name(tmp_path / "m", "val")
    with pytest.raises(ColorizationError, match="an existing evaluation table; choose a new name \\(e.g. 'mine-2'\\)"):
        access.check_evaluation_name(tmp_path / "m", "mine")
    assert access.check_evaluation_name(tmp_path / "m", "val", replace=True) == "val"
    for bad in ("../x", ".hidden", "a/b", ""):
        with pytest.raises(ColorizationError, match="evaluation name"):
            access.check_evaluation_name(tmp_path / "m", bad)


def test_gallery_shows_no_photo_outside_the_data_roots(tmp_path, monkeypatch):
    from dashboard import common

    root = tmp_path / "data"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(root / "a.png")
    monkeypatch.setenv("COLORIZE_DATA_ROOTS", str(root))
    assert common.eval_photo({"data": str(root)}, "a.png") == (root / "a.png").resolve()
    assert common.eval_photo({"data": "/etc"}, "hostname") is None


def test_oversize_upload_is_shown_downscaled_and_not_processed(results_root, monkeypatch):
    monkeypatch.setenv("COLORIZE_DASHBOARD_MAX_PIXELS", "20000")
    buf = io.BytesIO()
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(buf, "PNG")
    at = AppTest.from_file(APP, default_timeout=300).run()
    at = at.switch_page("views/compare.py").run()
    at.radio(key="cmp_source").set_value("Upload").run()
    at.file_uploader(key="cmp_upload").upload("big.png", buf.getvalue(), "image/png").run()
    no_exceptions(at)
    (err,) = [e.value for e in at.error]
    assert "big.png" in err and "300x200" in err and "COLORIZE_DASHBOARD_MAX_PIXELS" in err and "experiments.colorize" in err
    assert any("shown downscaled" in c for im in at.image for c in im.captions)
    assert not any(b.key == "cmp_run" and not b.disabled for b in at.button)  # nothing to run: refused
    assert not list((results_root / "comparisons").glob("*")) if (results_root / "comparisons").exists() else True


def test_server_listens_on_this_machine_only_unless_told_otherwise():
    import tomllib

    config = tomllib.loads((PROJECT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] in ("localhost", "127.0.0.1"), "the dashboard would listen on every interface"
