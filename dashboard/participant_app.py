"""Participant-only app for user studies: ``streamlit run dashboard/participant_app.py``.

Serves the participant page of the study named in the invite link (``/?study=<name>``): the
Turing test or the arena, nothing else. No workbench page, no admin page and no photo folder
exists in this app, so removing or editing the query string leads nowhere but a neutral
"open the link you were given" page. Deploy it on its own port / host for participants
(`python -m experiments.study status NAME` prints the invite link) and keep ``dashboard/app.py``
for the organisers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

import streamlit as st  # noqa: E402

from experiments.study import ui as study_ui  # noqa: E402

st.set_page_config(page_title="Photo study", page_icon=":camera:", layout="centered", initial_sidebar_state="collapsed")


def landing() -> None:
    st.header("Photo study")
    st.info("To take part in a study, open the link you were given.")


kind = study_ui.study_kind(st.query_params.get("study") or os.environ.get("COLORIZE_STUDY"))
if kind == "turing":
    page = st.Page("views/study_participant.py", title="Photo study", url_path="study", default=True)
elif kind == "arena":
    page = st.Page("views/arena.py", title="Photo study", url_path="arena", default=True)
else:
    page = st.Page(landing, title="Photo study", url_path="welcome", default=True)
nav = st.navigation([page], position="hidden")  # the only route: any other path lands here
study_ui.participant_css()
nav.run()
