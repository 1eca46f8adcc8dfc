"""Colorization Turing test, participant side (Zhang et al., ECCV 2016 protocol).

URL: ``?study=<name>`` (the invite link); after consent the page adds ``&pid=<opaque id>`` so a
reload resumes the same participant at the first unanswered trial. Images arrive as inline PNG
bytes only; nothing on the page says which is real or which method made the other.
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


def answer(url: str, pid: str, trial: protocol.Trial, side: str) -> None:
    """Button callback: commit the vote (idempotent per participant and trial)."""
    store = StudyStore(url)
    participant = store.participant(pid)
    rt_ms = ui.response_ms(pid, trial.index)
    stored = store.record_vote(participant, trial, side, rt_ms)
    if trial.phase == "practice" and stored:
        st.session_state["study_feedback"] = (side == trial.fake_side, trial.fake_side)


st.header("Which one is fake?")
store = ui.store()
name = st.query_params.get("study") or os.environ.get("COLORIZE_STUDY")
s = store.study(name) if name else None
if s is None or s.kind != "turing":
    st.info("To take part in a study, open the link you were given." if not name else "This study link is not valid.")
    st.stop()
if s.status != "open":
    st.info("This study is not open at the moment. Thank you for your interest.")
    st.stop()
design = s.design

participant = None
pid = st.query_params.get("pid")
if pid:
    participant = store.participant(pid, s.name)
    if participant is None:
        st.error("This participant link is not valid. Open the study link you were given to start.")
        st.stop()

if participant is None:
    st.markdown(
        f"""
**What you will do.** On each screen you see two colour photos of the same scene. One is a real
photograph; the other was coloured by a computer from a black-and-white version. Click the button
under the one you think is **fake**.

- {design.practice} practice pairs first, with feedback; then {design.trials + design.n_vigilance} pairs without feedback.
- {"Each pair is shown for " + f"{design.display_ms / 1000:g} s, then hidden; answer after it disappears." if design.display_ms else "Take as long as you like, but go with your first impression."}
- It takes about {max(1, round(design.total_trials * 4 / 60))} min. Some pairs are easy checks of attention.

**Consent.** Taking part is voluntary. We record only your answers and response times, under a
random code; no name, e-mail or IP address. You may stop at any time by closing the page.
"""
    )
    agree = st.checkbox("I have read the above and agree to take part.", key="study_consent")
    if st.button("Start", key="study_start", type="primary", disabled=not agree):
        participant = store.join(s.name)
        st.query_params["pid"] = participant.id
        st.rerun()
    st.stop()

photos = ready_photos(store.url, s.name)
trials = protocol.plan(design, participant.id, participant.condition, photos)
answers = store.answers(participant.id)

feedback = st.session_state.pop("study_feedback", None)
if feedback is not None:
    correct, fake_side = feedback
    (st.success if correct else st.error)(f"{'Correct' if correct else 'Not quite'}: the fake was on the **{fake_side}**.")

todo = [t for t in trials if t.index not in answers]
if not todo:
    store.finish(participant.id)
    st.success("All done - thank you for taking part!")
    st.markdown(f"Your completion code: `{participant.id[:10]}`")
    st.stop()

trial = todo[0]
n_practice = design.practice
if trial.phase == "practice":
    st.caption(f"Practice {trial.index + 1} of {n_practice} (with feedback)")
    done, total = trial.index, n_practice
else:
    if trial.index == n_practice and n_practice:
        st.info("Practice is over. From now on there is no feedback.")
    done, total = trial.index - n_practice, len(trials) - n_practice
    st.caption(f"Pair {done + 1} of {total}")
st.progress(done / max(total, 1))

st.session_state.setdefault(f"shown:{participant.id}:{trial.index}", time.monotonic())
ui.show_pair(
    image(store.url, s.name, trial.photo, trial.left),
    image(store.url, s.name, trial.photo, trial.right),
    design.size,
    design.display_ms,
    tag=str(trial.index),
)
c1, c2 = st.columns(2)
for col, side in ((c1, "left"), (c2, "right")):
    col.button(
        f"The {side} one is fake",
        key=f"vote_{side}_{trial.index}",
        on_click=answer,
        args=(store.url, participant.id, trial, side),
        width="stretch",
    )
