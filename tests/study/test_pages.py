"""AppTest of the four study pages, the participant app and the participant routing of app.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from experiments.study import ui
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


def next_after_feedback(at: AppTest) -> AppTest:
    nxt = [b for b in at.button if b.key and b.key.startswith("study_next_")]
    return nxt[0].click().run() if nxt else at


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
        assert html == ui.trial_html(store.url, "s1", d, t)  # exactly what the side-channel test examines
        assert len(re.findall(r'src="data:image/png;base64,', html)) == 2
        assert not [w for w in secret_words if w in html], "the page reveals what the images are"
        assert not at.code, "a completion code before the last trial"
        cap = at.caption[0].value
        assert cap == (f"Practice {i + 1} of 2 (with feedback)" if i < 2 else f"Pair {i - 1} of 8")
        at.button(key=f"vote_{t.fake_side}_{i}").click().run()  # always right
        if t.phase == "practice":  # the feedback comes with the pair that was judged
            assert "Correct" in at.success[0].value and f"fake was on the **{t.fake_side}**" in at.success[0].value
            assert iframes(at)[0] == ui.trial_html(
                store.url,
                "s1",
                d,
                t,
                0,
                ("Left: fake", "Right: real") if t.fake_side == "left" else ("Left: real", "Right: fake"),
            )
            at = next_after_feedback(at)
        else:
            assert not at.success or "All done" in at.success[0].value
    assert "All done" in at.success[0].value and not iframes(at)
    votes = store.votes_frame("s1")
    assert len(votes) == 10 and votes["rt_ms"].notna().all()
    assert store.participant(pid).finished_at is not None
    assert at.code[0].value == store.completion_code(pid) and pid[:10] not in at.code[0].value


def test_practice_mistake_feedback_names_the_side(store, make_study):
    d = make_study(trials=2, practice=1, vigilance=0)
    at = start(page("study_participant.py", study="s1"))
    t = plan(d, at.query_params["pid"], store.participant(at.query_params["pid"]).condition, store.ready_photos("s1"))[0]
    wrong = "left" if t.fake_side == "right" else "right"
    at.button(key=f"vote_{wrong}_0").click().run()
    assert "Not quite" in at.error[0].value and f"**{t.fake_side}**" in at.error[0].value
    assert current_trial(next_after_feedback(at)) == 1


def test_reload_resumes_and_a_second_tab_cannot_double_count(store, make_study):
    make_study(trials=4, practice=1)
    at = start(page("study_participant.py", study="s1"))
    pid = at.query_params["pid"]
    for _ in range(3):
        at = next_after_feedback(at.button(key=f"vote_left_{current_trial(at)}").click().run())
    reloaded = page("study_participant.py", study="s1", pid=pid)  # a reload: new session, same URL
    assert current_trial(reloaded) == 3 and reloaded.caption[0].value == "Pair 3 of 5"
    other_tab = page("study_participant.py", study="s1", pid=pid)
    reloaded.button(key="vote_right_3").click().run()
    other_tab.button(key="vote_left_3").click().run()  # same trial answered again from another tab
    votes = store.votes_frame("s1")
    assert len(votes) == 4 and votes.set_index("trial").loc[3, "choice"] == "right"
    assert current_trial(other_tab) == 4 and current_trial(reloaded) == 4
    assert len(store.participants_frame("s1")) == 1


def test_a_vote_after_the_study_closed_is_refused_with_a_message(store, make_study):
    make_study(trials=3, practice=0, vigilance=0)
    at = start(page("study_participant.py", study="s1"))
    at.button(key="vote_left_0").click().run()
    store.set_status("s1", "closed")  # the organiser closes while this tab is open
    at.button(key="vote_left_1").click().run()
    assert "not recorded" in at.warning[0].value and "closed" in at.info[0].value
    assert len(store.votes_frame("s1")) == 1 and not iframes(at) and not at.code


def test_invalid_links_show_nothing(store, make_study):
    make_study()
    assert "link you were given" in page("study_participant.py").info[0].value
    assert "not valid" in page("study_participant.py", study="nope").info[0].value
    assert "not valid" in page("study_participant.py", study="s1", pid="forged").error[0].value
    store.set_status("s1", "closed")
    assert "closed" in page("study_participant.py", study="s1").info[0].value
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


def test_designer_creates_studies_in_a_row_each_selected(store, study_photos, monkeypatch):
    monkeypatch.setenv("COLORIZE_STUDY_BASE_URL", "https://study.example.org")
    at = admin("study_designer.py")
    assert at.number_input(key="designer_trials").value == 40
    assert at.number_input(key="designer_practice").value == 10
    assert at.number_input(key="designer_vigilance").value == 10
    assert at.number_input(key="designer_size").value == 256
    assert "neural_style" not in at.multiselect(key="designer_methods").value  # the slow method is not a default
    assert "Preparing will take about" in at.caption[-1].value
    at.text_input(key="designer_folder").input(str(Path(study_photos[0]).parent))
    at.number_input(key="designer_photos").set_value(5)
    at.text_input(key="designer_name").input("pilot")
    at.multiselect(key="designer_methods").set_value(["classification", "gan"])
    at.button(key="designer_create").click().run()
    assert "needs at least 54 photos" in at.error[0].value  # 40 scored + 10 practice + 4 vigilance
    at.number_input(key="designer_trials").set_value(6)
    at.number_input(key="designer_practice").set_value(2)
    at.number_input(key="designer_photos").set_value(9)
    at.radio(key="designer_display").set_value("1 s, then hidden")
    at.button(key="designer_create").click().run()
    assert not at.exception and "Created **pilot** with 9 photos" in at.success[0].value
    s = store.study("pilot")
    assert s.design.methods == ["classification", "gan"] and s.design.display_ms == 1000 and len(s.design.photos) == 9
    assert (s.design.trials, s.design.practice, s.design.vigilance, s.status) == (6, 2, 0.1, "draft")
    assert at.selectbox(key="designer_pick").value == "pilot" and at.text_input(key="designer_name").value == ""
    at.text_input(key="designer_name").input("pilot")
    at.button(key="designer_create").click().run()
    assert "exists already" in at.error[0].value
    # a second and a third study right away (the old page failed here), each new one selected
    for name, kind in (("pilot-2", "arena"), ("pilot-3", "turing")):
        at.radio(key="designer_kind").set_value(kind).run()
        assert bool(at.get("checkbox")) == (kind == "arena")  # fields per kind: the tie option only in an arena
        at.text_input(key="designer_name").input(name)
        at.button(key="designer_create").click().run()
        assert not at.exception and f"Created **{name}**" in at.success[0].value
        assert at.selectbox(key="designer_pick").value == name
    table = at.dataframe[0].value
    assert table["study"].tolist() == ["pilot", "pilot-2", "pilot-3"]
    assert table["invite link"].tolist()[0] == "https://study.example.org/?study=pilot"
    at.button(key="designer_prepare").click().run()  # no checkpoints here: the page says how to fix it
    if not all(__import__("backends").status(m).available for m in ("classification", "gan")):
        assert "fix" in at.error[0].value
        assert at.button(key="designer_open").disabled


def test_designer_shows_the_full_invite_link_of_an_open_study(store, make_study, monkeypatch):
    monkeypatch.setenv("COLORIZE_STUDY_BASE_URL", "https://study.example.org/")
    make_study()
    at = admin("study_designer.py")
    assert at.code[0].value == "https://study.example.org/?study=s1"  # st.code: a copy button at its right
    at.text_input(key="designer_base").input("study.example.org").run()  # no scheme: named, not a traceback
    assert not at.exception and "http(s)://" in at.error[0].value and not at.code
    at.button(key="designer_close").click().run()
    assert store.study("s1").status == "closed" and not at.code


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
    assert res["participants"].sum() == 6 and "note" in res.columns
    assert any("Too few participants" in w.value for w in at.warning)  # 3 per method: no bootstrap interval
    assert at.dataframe[1].value[["a", "b"]].values.tolist() == [["hue40", "hue120"]]  # the pairwise differences
    assert at.get("download_button") and len(at.get("download_button")) == 4


def test_arena_flow_and_leaderboard(store, make_study):
    make_study(name="a1", kind="arena", methods=("hue40", "hue120"), trials=3, practice=0, vigilance=0)
    at = start(page("arena.py", study="a1"), "arena_consent", "arena_start")
    html = iframes(at)[0]
    assert "hue" not in html and "real" not in html
    at.button(key="arena_tie_0").click().run()
    at.button(key="arena_left_1").click().run()
    at.button(key="arena_right_2").click().run()
    assert "compared 3 pairs" in at.success[0].value
    pid = at.query_params["pid"]
    assert at.code[0].value == store.completion_code(pid)
    assert store.votes_frame("a1")["choice"].tolist() == ["tie", "left", "right"]
    board = admin("study_analysis.py")
    board.selectbox(key="analysis_pick").set_value("a1").run()
    lb = board.dataframe[0].value
    assert set(lb["method"]) == {"hue40", "hue120"} and lb["games"].tolist() == [3, 3]
    assert abs(lb["strength"].sum()) < 1e-9  # natural scale, centred at 0
    prob = board.dataframe[1].value
    assert prob.notna().all().all() and (prob.values.diagonal() == 0.5).all()  # no empty (None) cells


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


PARTICIPANT_APP = PAGES.parent / "participant_app.py"


def test_participant_app_routes_links_and_has_no_workbench(store, make_study):
    make_study()
    make_study(name="a1", kind="arena", trials=2, practice=0, vigilance=0)
    for study, header in (("s1", "Which one is fake?"), ("a1", "Which colorization looks more natural?"), (None, "Photo study")):
        at = AppTest.from_file(str(PARTICIPANT_APP), default_timeout=60)
        if study:
            at.query_params["study"] = study
        at.run()
        assert not at.exception and at.header[0].value == header
        for other in ("views/compare.py", "views/home.py", "views/study_designer.py", "views/metrics.py"):
            with pytest.raises(Exception, match="(?i)could not find|not found|page"):
                at.switch_page(other).run()
    source = PARTICIPANT_APP.read_text()
    pages = re.findall(r'st\.Page\("([^"]+)"', source)
    assert sorted(pages) == ["views/arena.py", "views/study_participant.py"]
