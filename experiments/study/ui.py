"""Streamlit helpers shared by the study pages: the store, the admin gate, the image pair.

Participant pages receive images only as PNG bytes inlined into a sandboxed HTML component
(``data:`` URIs, neutral alt text "left image"/"right image"): no file names, image ids, method
names or real/fake labels reach the browser. The optional display time hides the images on the
client after ``display_ms`` with a few lines of inline JavaScript (no network, works offline).
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
    """A study's pre-generated PNG (participant pages), cached across reruns and sessions."""
    from .storage import StudyStore

    return StudyStore(url).image_png(study, photo, role)


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


def is_admin() -> bool:
    token = configured_token()
    given = st.session_state.get(_ADMIN_KEY) or ""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def _remember_token(widget_key: str) -> None:
    st.session_state[_ADMIN_KEY] = st.session_state.get(widget_key) or ""


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
        st.info("Enter the study admin token to continue.")
        st.stop()


def pair_html(left_png: bytes, right_png: bytes, size: int, display_ms: int = 0, tag: str = "") -> str:
    """Two images side by side; with ``display_ms`` > 0 they are hidden after that time."""

    def img(png: bytes, side: str) -> str:
        b64 = base64.b64encode(png).decode()
        return (
            f'<figure><img src="data:image/png;base64,{b64}" width="{size}" height="{size}" alt="{side} image">'
            f"<figcaption>{side.capitalize()}</figcaption></figure>"
        )

    hide = ""
    if display_ms > 0:
        hide = (
            "<script>setTimeout(function(){document.querySelectorAll('img').forEach(function(i){i.style.visibility='hidden';});"
            f"document.getElementById('gone').style.display='block';}},{int(display_ms)});</script>"
        )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><style>'
        "body{margin:0;font-family:sans-serif;}#pair{display:flex;gap:24px;justify-content:center;}"
        "figure{margin:0;text-align:center;}figcaption{margin-top:4px;color:#444;}"
        "#gone{display:none;text-align:center;color:#666;margin-top:6px;}"
        f'</style></head><body data-trial="{tag}"><div id="pair">{img(left_png, "left")}{img(right_png, "right")}</div>'
        f'<div id="gone">The images were shown for {display_ms / 1000:g} s.</div>{hide}</body></html>'
    )


def show_pair(left_png: bytes, right_png: bytes, size: int, display_ms: int = 0, tag: str = "") -> None:
    # Our own HTML (images from the study database, no user input), so an iframe with script is safe.
    st.iframe(pair_html(left_png, right_png, size, display_ms, tag), height=size + 70, alt="two photos to compare")


def study_kind(name: str | None) -> str | None:
    """``turing`` / ``arena`` for an existing study, else None (used to route participant links)."""
    if not name:
        return None
    try:
        s = store().study(name)
    except Exception:  # noqa: BLE001 - a broken database must not take the whole app down
        return None
    return s.kind if s else None
