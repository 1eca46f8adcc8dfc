"""Streamlit entrypoint: ``streamlit run dashboard/app.py``.

Routes the pages with ``st.navigation``. Participant-only mode (for user studies): open the app
with ``?study=<id>`` or set ``COLORIZE_STUDY=<id>``; then only participant pages are reachable
and the navigation is hidden.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from backends import threads  # noqa: E402 - passive OpenMP waiting and the thread count, before PyTorch loads

threads.configure()

import streamlit as st  # noqa: E402

from dashboard import common  # noqa: E402

common.keep_keras_session()
st.set_page_config(page_title="Colorization workbench", page_icon=":art:", layout="wide")
# Start checking which methods can run (a worker thread: it imports PyTorch) before any page
# renders, so the home page's method table is ready as early as possible.
common.statuses_in_background()

workbench = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("views/metrics.py", title="Metrics", icon=":material/bar_chart:"),
    st.Page("views/training.py", title="Training", icon=":material/show_chart:"),
    st.Page("views/history.py", title="History", icon=":material/history:"),
    st.Page("views/video.py", title="Video", icon=":material/movie:"),
]

participant = common.participant_mode()

# --- study pages (owned by the study helper) ---
# (file, title, icon, admin?, url path). Participant mode shows only the page of the study's kind
# (Turing test or arena). Admin pages are always routed and show their own login page, so a deep
# link such as /study-designer asks for the token instead of landing on Home. Participants get
# dashboard/participant_app.py, which has no workbench at all.
from experiments.study import ui as study_ui  # noqa: E402

STUDY_PAGES = [
    ("views/study_designer.py", "Study designer", ":material/design_services:", True, "study-designer"),
    ("views/study_participant.py", "Turing test", ":material/visibility:", False, "study"),
    ("views/arena.py", "Arena", ":material/sports_mma:", False, "arena"),
    ("views/study_analysis.py", "Study analysis", ":material/analytics:", True, "study-analysis"),
]
if participant:
    _keep = "arena" if study_ui.study_kind(participant) == "arena" else "study"
    _show = lambda admin, url: url == _keep  # noqa: E731
else:
    _show = lambda admin, url: True  # noqa: E731
study_pages = [
    st.Page(f, title=t, icon=i, url_path=u) for f, t, i, admin, u in STUDY_PAGES if (HERE / f).exists() and _show(admin, u)
]
# --- end study pages ---

if participant and study_pages:
    nav = st.navigation(study_pages, position="hidden")
else:
    sections = {"Workbench": workbench}
    if study_pages:
        sections["User studies"] = study_pages
    nav = st.navigation(sections)

common.page_setup()
nav.run()
