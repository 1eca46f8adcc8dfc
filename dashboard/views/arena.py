"""Colorization arena: which of two anonymous colorizations of the same photo looks more natural?

URL: ``?study=<arena study>`` (the invite link); after consent the page adds ``&pid=<opaque
id>`` so a reload resumes. Method pairs come in balanced blocks (each pair and each side equally
often, never the same pair twice in a row), with a tie option. Images arrive as inline,
uncompressed PNGs of identical size, so no method can be recognised by its file. The
Bradley-Terry leaderboard is on the study analysis page.
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
from experiments.study.storage import StudyStore  # noqa: E402


def stop(url: str, pid: str) -> None:
    StudyStore(url).finish(pid)


st.header("Which colorization looks more natural?")
store, s, participant = ui.open_participant("arena", "arena")
design = s.design

if participant is None:
    n = f"{design.trials} pairs" if design.trials else "as many pairs as you like"
    tie = ' - or "can\'t tell" when neither is better' if design.allow_tie else ""
    ui.consent_and_join(
        store,
        s,
        f"""
On each screen you see two computer colorizations of the same black-and-white photo. Pick the
one that looks **more natural**{tie}.
You will see {n}; at the end you get a completion code.

**Consent.** Taking part is voluntary. We record only your answers and response times, under a
random code; no name, e-mail or IP address. You may stop at any time.
""",
        "I agree to take part.",
        "arena",
    )

answers = store.answers(participant.id)
index = max(answers, default=-1) + 1
if participant.finished_at is not None or (design.trials and index >= design.trials):
    ui.finish_screen(store, participant.id, f"Thank you! You compared {len(answers)} pairs.")

try:
    trial = protocol.arena_trial(design, participant.id, index, ui.ready_photos(store.url, s.name))
except NotEnoughPhotos:
    st.info("This arena is not ready yet. Please try again later.")
    st.stop()
if design.trials:
    st.caption(f"Pair {index + 1} of {design.trials}")
    st.progress(index / design.trials)
else:
    st.caption(f"Pair {index + 1}")
st.session_state.setdefault(f"shown:{participant.id}:{index}", time.monotonic())
ui.show_trial(store.url, s.name, design, trial)
options = [("left", "Left looks more natural"), ("right", "Right looks more natural")]
if design.allow_tie:
    options.insert(1, ("tie", "Can't tell"))
for col, (choice, label) in zip(st.columns(len(options)), options):
    col.button(
        label,
        key=f"arena_{choice}_{index}",
        on_click=ui.submit_vote,
        args=(store.url, participant.id, trial, choice),
        width="stretch",
    )
if not design.trials:
    st.button("I'm done", key="arena_stop", on_click=stop, args=(store.url, participant.id))
