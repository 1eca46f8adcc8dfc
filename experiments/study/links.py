"""Invite links: full URLs of the participant app (``streamlit run dashboard/participant_app.py``).

The base URL is where participants reach that app: ``COLORIZE_STUDY_BASE_URL`` (for example
``https://study.example.org``), else ``http://localhost:8502`` (the port the README starts the
participant app on). The designer page can also take it from the ``study_base_url`` secret or a
text box.
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlsplit

BASE_ENV = "COLORIZE_STUDY_BASE_URL"
DEFAULT_BASE = "http://localhost:8502"


def base_url(configured: str | None = None) -> str:
    base = (configured or os.environ.get(BASE_ENV) or DEFAULT_BASE).strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"participant app URL {base!r}: give http(s)://host[:port][/path], without ? or #")
    return base


def invite_url(study: str, base: str | None = None) -> str:
    """The link to send participants: ``<base>/?study=<name>``."""
    return f"{base_url(base)}/?study={quote(study)}"
