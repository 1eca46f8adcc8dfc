"""AppTest of the four study pages (and the participant routing of app.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from experiments.study.protocol import plan

PAGES = Path(__file__).resolve().parents[2] / "dashboard" / "views"
TOKEN = "s3cret-admin-token"


@pytest.fixture(autouse=True)
def study_env(store, monkeypatch):
    monkeypatch.setenv("COLORIZE_STUDY_DB", store.url)
    monkeypatch.delenv("COLORIZE_STUDY_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("COLORIZE_STUDY", raising=False)


def page(name: str, **query) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def iframes(at: AppTest) -> list[str]:
    return [e.proto.srcdoc for e in at.main if getattr(e, "type", "") == "iframe"]


def start(at: AppTest, consent_key="study_consent", start_key="study_start") -> AppTest:
    at.checkbox(key=consent_key).check().run()
    at.button(key=start_key).click().run()
    assert not at.exception
    return at


def current_trial(at: AppTest) -> int:
    keys = [b.key for b in at.button if b.key and b.key.startswith(("vote_", "arena_"))]
    return int(keys[0].rsplit("_", 1)[1])


def test_participant_takes_the_whole_study(store, make_study, study_photos):
    d = make_study(trials=6, practice=2, vigilance=0.34)  # 2 practice + 6 scored + 2 vigilance
    at = page("study_participant.py", study="s1")
    assert "fake" in at.markdown[0].value and not iframes(at)  # consent first, no images yet
    assert at.button(key="study_start").disabled
    start(at)
    pid = at.query_params["pid"]
    p = store.participant(pid)
    trials = plan(d, pid, p.condition, store.ready_photos("s1"))
    secret_words = ["hue40", "hue120", "real", "vigilance", *[Path(s).stem for s in study_photos], *store.ready_photos("s1")]
    for i, t in enumerate(trials):
        assert current_trial(at) == i
        html = iframes(at)[0]
        assert len(re.findall(r'src="data:image/png;base64,', html)) == 2
        assert not [w for w in secret_words if w in html], "the page reveals what the images are"
        cap = at.caption[0].value
        assert cap == (f"Practice {i + 1} of 2 (with feedback)" if i < 2 else f"Pair {i - 1} of 8")
        at.button(key=f"vote_{t.fake_side}_{i}").click().run()  # always right
        if t.phase == "practice":
            assert at.success and "Correct" in at.success[0].value
        else:
            assert not at.success or "All done" in at.success[0].value
    assert "All done" in at.success[0].value
    votes = store.votes_frame("s1")
    assert len(votes) == 10 and votes["rt_ms"].notna().all()
    assert store.participant(pid).finished_at is not None


def test_reload_resumes_and_a_second_tab_cannot_double_count(store, make_study):
    make_study(trials=4, practice=1)
    at = start(page("study_participant.py", study="s1"))
    pid = at.query_params["pid"]
    for _ in range(3):
        at.button(key=f"vote_left_{current_trial(at)}").click().run()
    reloaded = page("study_participant.py", study="s1", pid=pid)  # a reload: new session, same URL
    assert current_trial(reloaded) == 3 and reloaded.caption[0].value == "Pair 3 of 4"
    other_tab = page("study_participant.py", study="s1", pid=pid)
    reloaded.button(key="vote_right_3").click().run()
    other_tab.button(key="vote_left_3").click().run()  # same trial answered again from another tab
    votes = store.votes_frame("s1")
    assert len(votes) == 4 and votes.set_index("trial").loc[3, "choice"] == "right"
    assert current_trial(other_tab) == 4 and current_trial(reloaded) == 4
    assert len(store.participants_frame("s1")) == 1


def test_invalid_links_show_nothing(store, make_study):
    make_study()
    assert "link you were given" in page("study_participant.py").info[0].value
    assert "not valid" in page("study_participant.py", study="nope").info[0].value
    assert "not valid" in page("study_participant.py", study="s1", pid="forged").error[0].value
    store.set_status("s1", "closed")
    assert "not open" in page("study_participant.py", study="s1").info[0].value
    for at in (page("study_participant.py", study="s1"), page("study_participant.py")):
        assert not iframes(at) and not at.button


@pytest.mark.parametrize("name", ["study_designer.py", "study_analysis.py"])
def test_admin_pages_without_a_configured_token_only_say_how_to_set_one(make_study, name):
    make_study()
    at = page(name)
    assert "COLORIZE_STUDY_ADMIN_TOKEN" in at.warning[0].value and "study_admin_token" in at.warning[0].value
    assert not at.dataframe and not at.text_input and not at.selectbox and not at.button


@pytest.mark.parametrize("name", ["study_designer.py", "study_analysis.py"])
def test_admin_pages_need_the_token(make_study, monkeypatch, name):
    make_study()
    monkeypatch.setenv("COLORIZE_STUDY_ADMIN_TOKEN", TOKEN)
    at = page(name)
    assert not at.dataframe and not at.selectbox
    at.text_input(key="study_admin_login_page").input("guess").run()
    assert "Wrong admin token" in at.error[0].value and not at.dataframe and not at.selectbox
    at.text_input(key="study_admin_login_page").input(TOKEN).run()
    assert not at.exception and at.selectbox and not at.error


def admin(name: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    at.secrets["study_admin_token"] = TOKEN
    at.session_state["_study_admin_token"] = TOKEN
    return at.run()


def test_designer_creates_a_study_with_zhang_defaults(store, study_photos):
    at = admin("study_designer.py")
    assert at.number_input(key="designer_trials").value == 40
    assert at.number_input(key="designer_practice").value == 10
    assert at.number_input(key="designer_vigilance").value == 10
    assert at.number_input(key="designer_size").value == 256
    at.text_input(key="designer_name").input("pilot")
    at.multiselect(key="designer_methods").set_value(["classification", "gan"])
    at.text_input(key="designer_folder").input(str(Path(study_photos[0]).parent))
    at.number_input(key="designer_photos").set_value(5)
    at.radio(key="designer_display").set_value("1 s, then hidden")
    at.button[-1].click().run()  # the form's submit button
    assert not at.exception and "Created **pilot** with 5 photos" in at.success[0].value
    s = store.study("pilot")
    assert s.design.methods == ["classification", "gan"] and s.design.display_ms == 1000 and len(s.design.photos) == 5
    assert (s.design.trials, s.design.practice, s.design.vigilance, s.status) == (40, 10, 0.1, "draft")
    assert at.dataframe[0].value["study"].tolist() == ["pilot"]
    at.text_input(key="designer_name").input("pilot")
    at.button[-1].click().run()
    assert "exists already" in at.error[0].value
    at.button(key="designer_prepare").click().run()  # no checkpoints here: the page says how to fix it
    if not all(__import__("backends").status(m).available for m in ("classification", "gan")):
        assert "fix" in at.error[0].value
        assert at.button(key="designer_open").disabled


def test_analysis_reports_fool_rates_and_exports(store, make_study):
    d = make_study(trials=6, practice=1, vigilance=0.34)
    for k in range(6):
        p = store.join("s1")
        for t in plan(d, p.id, p.condition, store.ready_photos("s1")):
            fooled = k % 3 == 0 and t.phase == "main"
            store.record_vote(p, t, ("right" if t.fake_side == "left" else "left") if fooled else t.fake_side, 700)
    at = admin("study_analysis.py")
    assert not at.exception
    res = at.dataframe[0].value.set_index("method")
    assert set(res.index) == {"hue40", "hue120"} and res["trials"].sum() == 36
    assert res["fooled"].sum() == 12 and (res["wilson_lo"] <= res["fool_rate"]).all()
    assert at.get("download_button") and len(at.get("download_button")) == 2


def test_arena_flow_and_leaderboard(store, make_study):
    make_study(name="a1", kind="arena", methods=("hue40", "hue120"), trials=3, practice=0, vigilance=0)
    at = start(page("arena.py", study="a1"), "arena_consent", "arena_start")
    html = iframes(at)[0]
    assert "hue" not in html and "real" not in html
    at.button(key="arena_tie_0").click().run()
    at.button(key="arena_left_1").click().run()
    at.button(key="arena_right_2").click().run()
    assert "compared 3 pairs" in at.success[0].value
    assert store.votes_frame("a1")["choice"].tolist() == ["tie", "left", "right"]
    board = admin("study_analysis.py")
    board.selectbox(key="analysis_pick").set_value("a1").run()
    lb = board.dataframe[0].value
    assert set(lb["method"]) == {"hue40", "hue120"} and lb["games"].tolist() == [3, 3]


def test_app_routes_participant_links_to_their_page_only(store, make_study, monkeypatch):
    app = PAGES.parent / "app.py"
    if "study pages (owned by the study helper)" not in app.read_text():
        pytest.skip("dashboard/app.py has no study block yet")
    make_study()
    make_study(name="a1", kind="arena", trials=2, practice=0, vigilance=0)
    for study, header in (("s1", "Which one is fake?"), ("a1", "Which colorization looks more natural?")):
        at = AppTest.from_file(str(app), default_timeout=60)
        at.query_params["study"] = study
        at.run()
        assert not at.exception and at.header[0].value == header
