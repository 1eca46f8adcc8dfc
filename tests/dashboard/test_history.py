"""History page: this session's earlier comparisons (deduplicated), re-open in Compare, download,
delete with the admin token; other sessions' comparisons are never listed."""

import io
import zipfile

import numpy as np
from streamlit.testing.v1 import AppTest

from experiments import comparisons
from tests.dashboard.conftest import APP, no_exceptions


def run_comparison(at: AppTest, sample: str, methods: list[str]) -> None:
    at.switch_page("views/compare.py").run()
    at.selectbox(key="cmp_sample").set_value(sample).run()
    at.multiselect(key="cmp_methods").set_value(methods).run()
    at.button(key="cmp_run").click().run()
    no_exceptions(at)


def test_history_lists_opens_reopens_and_deletes(results_root, trained_methods, monkeypatch):
    monkeypatch.setenv("COLORIZE_STUDY_ADMIN_TOKEN", "s3cret-token")
    # someone else's comparison, in another workspace: never listed here
    other = comparisons.save_comparison(
        np.zeros((8, 8, 3), np.uint8), None, [], "upload:private.png", {}, workspace=comparisons.new_workspace()
    )
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("views/history.py").run()
    no_exceptions(at)
    assert any("No comparisons yet" in i.value for i in at.info)

    # the same photo twice (a second method added later): kept once, its methods merged
    for sample, methods in (("astronaut", trained_methods[:2]), ("coffee", trained_methods[:1]), ("coffee", trained_methods[:2])):
        run_comparison(at, sample, methods)
    at.switch_page("views/history.py").run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert list(table["photo"]) == ["sample:coffee", "sample:astronaut"]  # newest first, no duplicate
    assert other not in set(table["id"]) and "upload:private.png" not in set(table["photo"])
    first = table["id"].iloc[1]
    at.selectbox(key="hist_pick").set_value(first).run()
    no_exceptions(at)
    caps = [c for im in at.image for c in im.captions]
    assert caps[0].startswith("input (grey)") and caps[-1].startswith("ground truth")
    assert [c.split(" - ")[0] for c in caps[1:-1]] == trained_methods[:2]
    assert set(at.dataframe[1].value["method"]) == set(trained_methods[:2])
    (zip_button,) = [b for b in at.get("download_button") if "zip" in b.label]

    # re-open in Compare: the stored results are shown without running anything
    at.button(key="hist_reopen").click().run()
    no_exceptions(at)
    assert at.radio(key="cmp_source").value == "From History"
    caps = [c for im in at.image for c in im.captions]
    assert any(c.startswith(f"{trained_methods[0]} - from History {first}") for c in caps), caps

    # delete needs the admin token
    at.switch_page("views/history.py").run()
    assert not [b for b in at.button if b.key == "hist_delete"]
    at.text_input(key="hist_admin").input("s3cret-token").run()
    at.selectbox(key="hist_pick").set_value(first).run()
    at.button(key="hist_delete").click().run()
    no_exceptions(at)
    assert list(at.dataframe[0].value["photo"]) == ["sample:coffee"]
    assert len(comparisons.list_comparisons(None)) == 2  # the other workspace's is still there


def test_download_of_a_stored_comparison_holds_its_images(results_root):
    grey = np.zeros((8, 8, 3), np.uint8)
    r = comparisons.MethodResult("gan", image=np.full((8, 8, 3), 7, np.uint8), seconds=0.1, device="cpu")
    cid = comparisons.save_comparison(grey, grey, [r], "x", {})
    g, t, results, meta = comparisons.stored_results(cid)
    z = zipfile.ZipFile(io.BytesIO(comparisons.comparison_zip(g, t, results, meta)))
    assert {"input_grey.png", "ground_truth.png", "gan.png", "metrics.csv", "meta.json"} <= set(z.namelist())
