"""Colorization Turing test, participant side (Zhang et al., ECCV 2016 protocol).

URL: ``?study=<name>`` (the invite link); after consent the page adds ``&pid=<opaque id>`` so a
reload resumes the same participant at the first unanswered trial. Images arrive as inline,
uncompressed PNGs of identical size; nothing on the page says which is real or which method made
the other. Practice answers get their feedback beside the pair that was judged. The completion
code (an HMAC of the participant id) appears only after the last trial.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from experiments.study import protocol, ui  # noqa: E402
from experiments.study.errors import NotEnoughPhotos  # noqa: E402


def answer(url: str, pid: str, trial: protocol.Trial, side: str) -> None:
    """Button callback: commit the vote; a practice answer keeps its pair on screen with feedback."""
    if ui.submit_vote(url, pid, trial, side) and trial.phase == "practice":
        st.session_state[f"feedback:{pid}"] = (trial.index, side == trial.fake_side)


def next_pair(pid: str) -> None:
    st.session_state.pop(f"feedback:{pid}", None)


st.header("Which one is fake?")
store, s, participant = ui.open_participant("turing", "study")
design = s.design

if participant is None:
    ui.consent_and_join(
        store,
        s,
        f"""
**What you will do.** On each screen you see two colour photos of the same scene. One is a real
photograph; the other was coloured by a computer from a black-and-white version. Click the button
under the one you think is **fake**.

- {design.practice} practice pairs first, with feedback; then {design.trials + design.n_vigilance} pairs without feedback.
- {"Each pair is shown for " + f"{design.display_ms / 1000:g} s, then hidden; answer after it disappears." if design.display_ms else "Take as long as you like, but go with your first impression."}
- It takes about {max(1, round(design.total_trials * 4 / 60))} min. Some pairs are easy checks of attention.
- At the end you get a completion code.

**Consent.** Taking part is voluntary. We record only your answers and response times, under a
random code; no name, e-mail or IP address. You may stop at any time by closing the page.
""",
        "I have read the above and agree to take part.",
        "study",
    )

try:
    trials = protocol.plan(design, participant.id, participant.condition, ui.ready_photos(store.url, s.name))
except NotEnoughPhotos:
    st.info("This study is not ready yet. Please try again later.")
    st.stop()
answers = store.answers(participant.id)

feedback = st.session_state.get(f"feedback:{participant.id}")
if feedback is not None and feedback[0] in answers and participant.finished_at is None:
    index, correct = feedback
    judged = trials[index]
    fake = judged.fake_side
    st.caption(f"Practice {index + 1} of {design.practice} (with feedback)")
    (st.success if correct else st.error)(
        f"{'Correct' if correct else 'Not quite'}: the fake was on the **{fake}**, the real photo on the {judged.real_side}."
    )
    labels = ("Left: fake", "Right: real") if fake == "left" else ("Left: real", "Right: fake")
    ui.show_trial(store.url, s.name, design, judged, display_ms=0, captions=labels)
    st.button("Next pair", key=f"study_next_{index}", type="primary", on_click=next_pair, args=(participant.id,), width="stretch")
    st.stop()

todo = [t for t in trials if t.index not in answers]
if not todo or participant.finished_at is not None:
    ui.finish_screen(store, participant.id, "All done - thank you for taking part!")

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
ui.show_trial(store.url, s.name, design, trial)
c1, c2 = st.columns(2)
for col, side in ((c1, "left"), (c2, "right")):
    col.button(
        f"The {side} one is fake",
        key=f"vote_{side}_{trial.index}",
        on_click=answer,
        args=(store.url, participant.id, trial, side),
        width="stretch",
    )
