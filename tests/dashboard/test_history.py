"""History page: earlier comparisons (the source reports' 'previous predictions')."""

from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP, no_exceptions


def test_history_lists_and_opens_earlier_comparisons(results_root, trained_methods):
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("views/history.py").run()
    no_exceptions(at)
    assert any("No comparisons yet" in i.value for i in at.info)

    for sample in ("astronaut", "coffee"):
        at.switch_page("views/compare.py").run()
        at.selectbox(key="cmp_sample").set_value(sample).run()
        at.multiselect(key="cmp_methods").set_value(trained_methods[:2]).run()
        at.button(key="cmp_run").click().run()
        no_exceptions(at)
    at.switch_page("views/history.py").run()
    no_exceptions(at)
    table = at.dataframe[0].value
    assert list(table["photo"]) == ["sample:coffee", "sample:astronaut"]  # newest first
    first = table["id"].iloc[1]
    at.selectbox(key="hist_pick").set_value(first).run()
    no_exceptions(at)
    caps = [c for im in at.image for c in im.captions]
    assert caps[0] == "grey input" and caps[-1] == "ground truth"
    assert [c.split(" - ")[0] for c in caps[1:-1]] == trained_methods[:2]
    assert set(at.dataframe[1].value["method"]) == set(trained_methods[:2])
