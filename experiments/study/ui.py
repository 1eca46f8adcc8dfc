"""Streamlit helpers shared by the study pages: the store, the admin gate, the image pair and
the participant flow (link check, consent, votes, completion code).

Participant pages receive images only as PNG bytes inlined into one HTML document (``data:``
URIs, neutral alt text "left image"/"right image", both in the same message, so they load
together and nothing is cached by name): no file names, image ids, method names or real/fake
labels reach the browser. Every image is re-encoded by :func:`.prepare.wire_png` (uncompressed,
no metadata), so the two images of a pair have identical dimensions and byte length. The
optional display time hides the images on the client after ``display_ms`` with a few lines of
inline JavaScript (no network, works offline). The pair scales down with its aspect ratio kept,
so it fits a 360-px phone screen side by side.
"""

from __future__ import annotations

import base64
import hmac
import os
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:  # SQLAlchemy loads only when a study page or link needs the store
    from .storage import StudyStore

TOKEN_ENV = "COLORIZE_STUDY_ADMIN_TOKEN"
TOKEN_SECRET = "study_admin_token"
DB_SECRET = "study_db_url"
BASE_SECRET = "study_base_url"
_ADMIN_KEY = "_study_admin_token"


def _secret(name: str) -> str | None:
    try:
        value = st.secrets.get(name)
    except Exception:  # noqa: BLE001 - no secrets.toml at all is the common case
        return None
    return str(value) if value else None


def store() -> StudyStore:
    """The study store: ``COLORIZE_STUDY_DB``, else secret ``study_db_url``, else local SQLite."""
    from .storage import StudyStore

    return StudyStore(os.environ.get("COLORIZE_STUDY_DB") or _secret(DB_SECRET) or None)


@st.cache_data(max_entries=1024, show_spinner=False)
def image(url: str, study: str, photo: str, role: str) -> bytes:
    """A study's image as participants receive it (:func:`.prepare.wire_png`), cached across
    reruns and sessions."""
    from .prepare import wire_png
    from .storage import StudyStore

    return wire_png(StudyStore(url).image_png(study, photo, role))


@st.cache_data(max_entries=64, show_spinner=False, ttl=60)
def ready_photos(url: str, study: str) -> list[str]:
    from .storage import StudyStore

    return StudyStore(url).ready_photos(study)


def response_ms(pid: str, trial_index: int) -> int | None:
    """Milliseconds since the participant's trial was first shown (None if it never was)."""
    import time

    shown = st.session_state.get(f"shown:{pid}:{trial_index}")
    return int((time.monotonic() - shown) * 1000) if shown else None


def configured_token() -> str | None:
    return _secret(TOKEN_SECRET) or os.environ.get(TOKEN_ENV) or None


COOKIE = "colorize_study_admin"
#: An admin login lasts for the browser session (a session cookie), at most this long.
COOKIE_MAX_AGE_S = 12 * 3600


def _cookie_value(token: str, issued: int) -> str:
    mac = hmac.new(token.encode(), f"study-admin-session:{issued}".encode(), "sha256").hexdigest()
    return f"{issued}.{mac}"


def _cookie_ok(token: str) -> bool:
    """The browser holds a valid admin session cookie (set after a login; never the token)."""
    import time

    try:
        value = st.context.cookies.get(COOKIE) or ""
        issued = int(value.split(".", 1)[0])
    except (ValueError, AttributeError, RuntimeError):
        return False
    fresh = 0 <= time.time() - issued <= COOKIE_MAX_AGE_S
    return fresh and hmac.compare_digest(value.encode(), _cookie_value(token, issued).encode())


def is_admin() -> bool:
    token = configured_token()
    if not token:
        return False
    given = st.session_state.get(_ADMIN_KEY) or ""
    if hmac.compare_digest(given.encode(), token.encode()):
        return True
    if not st.session_state.get("_study_logged_out") and _cookie_ok(
        token
    ):  # a reload in the same browser session: still logged in
        st.session_state[_ADMIN_KEY] = token
        st.session_state["_study_cookie_set"] = True
        return True
    return False


def remember_login() -> None:
    """Once per session after a login: a session cookie (gone when the browser closes; holds
    an HMAC of the time, not the token) so that a reload keeps the admin logged in."""
    import time

    token = configured_token()
    if not token or not is_admin() or st.session_state.get("_study_cookie_set"):
        return
    st.session_state["_study_cookie_set"] = True
    value = _cookie_value(token, int(time.time()))
    _run_script(f"window.parent.document.cookie = '{COOKIE}={value}; path=/; SameSite=Strict';")


def _run_script(js: str) -> None:
    # st.iframe runs our own inline HTML same-origin, so the script can set the app's cookie.
    # In the sidebar, 1 px high: nothing to see, no gap in the page.
    st.sidebar.iframe(f"<!doctype html><html><body style='margin:0'><script>{js}</script></body></html>", height=1)


def logout() -> None:
    st.session_state.pop(_ADMIN_KEY, None)
    st.session_state.pop("_study_cookie_set", None)
    st.session_state["_study_logged_out"] = True  # the browser still sends the old cookie until a reload
    _run_script(f"window.parent.document.cookie = '{COOKIE}=; path=/; max-age=0; SameSite=Strict';")


def _remember_token(widget_key: str) -> None:
    st.session_state[_ADMIN_KEY] = st.session_state.get(widget_key) or ""
    st.session_state.pop("_study_logged_out", None)


def admin_login(where=st, key: str = "study_admin_login") -> bool:
    """A password box that unlocks the admin pages for this browser session."""
    if is_admin():
        return True
    where.text_input("Study admin token", type="password", key=key, on_change=_remember_token, args=(key,))
    if st.session_state.get(_ADMIN_KEY) and not is_admin():
        where.error("Wrong admin token.")
    return is_admin()


def admin_gate() -> None:
    """Stop the page unless this session holds the admin token."""
    if configured_token() is None:
        st.warning(
            "Study admin pages are locked: no admin token is configured. Set one in "
            f'`.streamlit/secrets.toml` (`{TOKEN_SECRET} = "a long random string"`) or in the '
            f"environment variable `{TOKEN_ENV}`, then restart the app."
        )
        st.stop()
    if not admin_login(st, key="study_admin_login_page"):
        st.info("This page is for the study's organisers: enter the study admin token to continue.")
        st.stop()
    remember_login()


def pair_html(
    left_png: bytes,
    right_png: bytes,
    size: int,
    display_ms: int = 0,
    tag: str = "",
    captions: tuple[str, str] = ("Left", "Right"),
) -> str:
    """Two images side by side, each at most ``size`` px and shrinking with the screen (aspect
    ratio kept); with ``display_ms`` > 0 they are hidden after that time."""

    def img(png: bytes, side: str, caption: str) -> str:
        b64 = base64.b64encode(png).decode()
        return (
            f'<figure><img src="data:image/png;base64,{b64}" width="{size}" height="{size}" alt="{side} image">'
            f"<figcaption>{caption}</figcaption></figure>"
        )

    hide = ""
    if display_ms > 0:
        hide = (
            "<script>setTimeout(function(){document.querySelectorAll('img').forEach(function(i){i.style.visibility='hidden';});"
            f"document.getElementById('gone').style.display='block';}},{int(display_ms)});</script>"
        )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><style>'
        "html,body{margin:0;font-family:sans-serif;}"
        "#pair{display:flex;gap:12px;justify-content:center;align-items:flex-start;}"
        f"figure{{margin:0;text-align:center;flex:0 1 {size}px;min-width:0;}}"
        "img{display:block;width:100%;height:auto;aspect-ratio:1/1;}"
        "figcaption{margin-top:4px;color:#444;}"
        "#gone{display:none;text-align:center;color:#666;margin-top:6px;}"
        f'</style></head><body data-trial="{tag}"><div id="pair">{img(left_png, "left", captions[0])}'
        f"{img(right_png, 'right', captions[1])}</div>"
        f'<div id="gone">The images were shown for {display_ms / 1000:g} s.</div>{hide}</body></html>'
    )


def trial_html(url: str, study: str, design, trial, display_ms: int | None = None, captions=("Left", "Right")) -> str:
    """Exactly what a participant's browser receives for ``trial`` (the cheating tests read it)."""
    return pair_html(
        image(url, study, trial.photo, trial.left),
        image(url, study, trial.photo, trial.right),
        design.size,
        design.display_ms if display_ms is None else display_ms,
        tag=str(trial.index),
        captions=captions,
    )


def show_trial(url: str, study: str, design, trial, display_ms: int | None = None, captions=("Left", "Right")) -> None:
    # Our own HTML (images from the study database, no user input), so an iframe with script is safe.
    st.iframe(trial_html(url, study, design, trial, display_ms, captions), height="content", alt="two photos to compare")


def study_kind(name: str | None) -> str | None:
    """``turing`` / ``arena`` for an existing study, else None (used to route participant links)."""
    from .protocol import valid_name

    if not valid_name(name):
        return None
    try:
        s = store().study(name)
    except Exception:  # noqa: BLE001 - a broken database must not take the whole app down
        return None
    return s.kind if s else None


def invite_base() -> str:
    """Base URL of the participant app: ``study_base_url`` secret, else ``COLORIZE_STUDY_BASE_URL``."""
    from .links import base_url

    return base_url(_secret(BASE_SECRET))


# -- the participant flow (Turing test and arena pages) --------------------------------------
CLOSED_KEY = "_study_vote_refused"


def open_participant(kind: str, noun: str):
    """The study of the link (``?study=``) and the participant (``&pid=``), or stop the page
    with a message. Returns ``(store, study, participant or None)``."""
    from .protocol import valid_name

    store_ = store()
    name = st.query_params.get("study") or os.environ.get("COLORIZE_STUDY")
    s = store_.study(name) if valid_name(name) else None
    if s is None or s.kind != kind:
        st.info(f"To take part in a {noun}, open the link you were given." if not name else f"This {noun} link is not valid.")
        st.stop()
    participant = None
    pid = st.query_params.get("pid")
    if pid:
        participant = store_.participant(pid, s.name) if 0 < len(pid) <= 64 else None
        if participant is None:
            st.error(f"This participant link is not valid. Open the {noun} link you were given to start.")
            st.stop()
    refused = st.session_state.pop(CLOSED_KEY, None)
    if participant is not None and participant.finished_at is not None:
        return store_, s, participant
    if s.status != "open":
        if refused:
            st.warning(refused)
        st.info(
            f"This {noun} is closed. Thank you for your interest." if s.status == "closed" else f"This {noun} is not open yet."
        )
        st.stop()
    return store_, s, participant


def consent_and_join(store_, s, text: str, consent_label: str, prefix: str) -> None:
    """The information sheet, the consent box and the Start button; stops the page."""
    from .errors import StudyNotOpen

    st.markdown(text)
    agree = st.checkbox(consent_label, key=f"{prefix}_consent")
    if st.button("Start", key=f"{prefix}_start", type="primary", disabled=not agree):
        try:
            participant = store_.join(s.name)
        except StudyNotOpen:
            st.info("This study closed a moment ago. Thank you for your interest.")
            st.stop()
        st.query_params["pid"] = participant.id
        st.rerun()
    st.stop()


def submit_vote(url: str, pid: str, trial, choice: str) -> bool:
    """Button callback: commit the vote (idempotent per participant and trial). A vote after
    the study closed is refused; the page then says so."""
    from .errors import StudyNotOpen
    from .storage import StudyStore

    store_ = StudyStore(url)
    try:
        return store_.record_vote(store_.require_participant(pid), trial, choice, response_ms(pid, trial.index))
    except StudyNotOpen:
        st.session_state[CLOSED_KEY] = "The study closed before this answer arrived, so it was not recorded."
        return False


def finish_screen(store_, pid: str, message: str) -> None:
    """Mark the participant finished and show the completion code; stops the page."""
    store_.finish(pid)
    st.success(message)
    st.markdown("Your completion code (copy it into the form that sent you here):")
    st.code(store_.completion_code(pid), language=None)
    st.stop()


PARTICIPANT_CSS = """<style>
[data-testid="stToolbar"], [data-testid="stSidebarCollapsedControl"], footer { display: none !important; }
@media (max-width: 480px) {
  .block-container, [data-testid="stMainBlockContainer"] { padding: 1.2rem 0.5rem 2rem !important; }
  h2 { font-size: 1.35rem !important; }
}
</style>"""


def participant_css() -> None:
    """Participant app: no toolbar or sidebar control; narrow margins on a phone."""
    st.html(PARTICIPANT_CSS)
