"""Colorization arena: which of two anonymous colorizations of the same photo looks more natural?

URL: ``?study=<arena study>``; after consent the page adds ``&pid=<opaque id>`` so a reload
resumes. Pairs of methods are drawn uniformly at random (sides random), with a tie option. The
Bradley-Terry leaderboard is on the study analysis page.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from experiments.study import protocol, ui  # noqa: E402
from experiments.study.storage import StudyStore  # noqa: E402

image, ready_photos = ui.image, ui.ready_photos


def answer(url: str, pid: str, trial: protocol.Trial, choice: str) -> None:
    store = StudyStore(url)
    rt_ms = ui.response_ms(pid, trial.index)
    store.record_vote(store.participant(pid), trial, choice, rt_ms)


def stop(url: str, pid: str) -> None:
    StudyStore(url).finish(pid)


st.header("Which colorization looks more natural?")
store = ui.store()
name = st.query_params.get("study") or os.environ.get("COLORIZE_STUDY")
if not name:
    open_arenas = [s.name for s in store.studies() if s.kind == "arena" and s.status == "open"]
    if not open_arenas:
        st.info("No arena is open at the moment.")
        st.stop()
    pick = st.selectbox("Arena", open_arenas, key="arena_pick")
    if st.button("Take part", key="arena_go"):
        st.query_params["study"] = pick
        st.rerun()
    st.stop()
s = store.study(name)
if s is None or s.kind != "arena":
    st.info("This arena link is not valid.")
    st.stop()
if s.status != "open":
    st.info("This arena is not open at the moment. Thank you for your interest.")
    st.stop()
design = s.design

participant = None
pid = st.query_params.get("pid")
if pid:
    participant = store.participant(pid, s.name)
    if participant is None:
        st.error("This participant link is not valid. Open the arena link you were given to start.")
        st.stop()

if participant is None:
    n = f"{design.trials} pairs" if design.trials else "as many pairs as you like"
    st.markdown(
        f"""
On each screen you see two computer colorizations of the same black-and-white photo. Pick the
one that looks **more natural** - or "can't tell" when neither is better. You will see {n}.

**Consent.** Taking part is voluntary. We record only your answers and response times, under a
random code; no name, e-mail or IP address. You may stop at any time.
"""
    )
    agree = st.checkbox("I agree to take part.", key="arena_consent")
    if st.button("Start", key="arena_start", type="primary", disabled=not agree):
        participant = store.join(s.name)
        st.query_params["pid"] = participant.id
        st.rerun()
    st.stop()

answers = store.answers(participant.id)
index = max(answers, default=-1) + 1
if participant.finished_at is not None or (design.trials and index >= design.trials):
    store.finish(participant.id)
    st.success(f"Thank you! You compared {len(answers)} pairs.")
    st.stop()

trial = protocol.arena_trial(design, participant.id, index, ready_photos(store.url, s.name))
if design.trials:
    st.caption(f"Pair {index + 1} of {design.trials}")
    st.progress(index / design.trials)
else:
    st.caption(f"Pair {index + 1}")
st.session_state.setdefault(f"shown:{participant.id}:{index}", time.monotonic())
ui.show_pair(
    image(store.url, s.name, trial.photo, trial.left),
    image(store.url, s.name, trial.photo, trial.right),
    design.size,
    design.display_ms,
    tag=str(index),
)
options = [("left", "Left looks more natural"), ("right", "Right looks more natural")]
if design.allow_tie:
    options.insert(1, ("tie", "Can't tell"))
for col, (choice, label) in zip(st.columns(len(options)), options):
    col.button(
        label, key=f"arena_{choice}_{index}", on_click=answer, args=(store.url, participant.id, trial, choice), width="stretch"
    )
if not design.trials:
    st.button("I'm done", key="arena_stop", on_click=stop, args=(store.url, participant.id))
