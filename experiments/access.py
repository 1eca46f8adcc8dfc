"""What a dashboard visitor may make the server read and write (the CLI, run by the machine's own
user, is not limited by this).

* **Photo folders** of an evaluation started from a page lie under a configured data root:
  ``../shared/data`` (the project's data), the Compare page's ``COLORIZE_TEST_DIR`` and the folders
  listed in ``COLORIZE_DATA_ROOTS`` (separated by ``:``; ``;`` on Windows). Links are resolved
  first, so a link inside a root cannot point out of it. Anything else (``/etc``, a home folder) is
  refused: its images would be read by the server and shown in the metrics gallery to every visitor.
* **Evaluation tables** are never replaced silently: a name whose table exists needs an explicit
  ``replace=True`` (the page's confirmation), and :func:`free_name` proposes a new one. The shipped
  tables (``val*``, ``test*``) are named as such in the message.
* Writing needs the admin token at all (the pages check ``dashboard.common.is_admin``); these
  checks apply on top, inside the function that writes, so no page can skip them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from backends.base import PROJECT_ROOT
from backends.errors import ColorizationError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
SHIPPED_PREFIXES = ("val", "test")


def data_roots() -> list[Path]:
    """The folders (resolved) under which a page may point an evaluation."""
    roots = [PROJECT_ROOT.parent / "shared" / "data"]
    if os.environ.get("COLORIZE_TEST_DIR"):
        roots.append(Path(os.environ["COLORIZE_TEST_DIR"]).expanduser())
    roots += [Path(p).expanduser() for p in os.environ.get("COLORIZE_DATA_ROOTS", "").split(os.pathsep) if p.strip()]
    out: list[Path] = []
    for r in roots:
        r = r.resolve()
        if r not in out:
            out.append(r)
    return out


def check_data_folder(folder: str | Path) -> Path:
    """``folder`` resolved, when it is a folder under a data root; :class:`ColorizationError` otherwise."""
    raw = str(folder).strip()
    if not raw:
        raise ColorizationError("no photo folder given")
    path = Path(raw).expanduser().resolve()
    roots = data_roots()
    if not any(path == r or path.is_relative_to(r) for r in roots):
        listed = ", ".join(str(r) for r in roots)
        raise ColorizationError(
            f"{raw}: not under a configured data folder ({listed}); the server reads photos only from "
            "there - add the folder to COLORIZE_DATA_ROOTS and restart the app to allow it"
        )
    if not path.is_dir():
        raise ColorizationError(f"{raw}: not a folder of photos")
    return path


def existing_outputs(metrics_dir: Path, name: str) -> list[Path]:
    stems = [f"{name}.csv", f"{name}.summary.csv", f"{name}.md", f"{name}.tex", f"{name}.json"]
    return [metrics_dir / s for s in stems if (metrics_dir / s).exists()]


def is_shipped(name: str) -> bool:
    return name.lower().startswith(SHIPPED_PREFIXES)


def check_evaluation_name(metrics_dir: Path, name: str, replace: bool = False) -> str:
    """``name`` when ``metrics/<name>.*`` may be written: a valid name whose table does not exist
    yet, or does and ``replace`` says so explicitly."""
    if not NAME_RE.match(name or ""):
        raise ColorizationError(f"evaluation name {name!r}: use letters, digits, '-', '_' or '.' (at most 40, not starting with a dot)")
    found = existing_outputs(Path(metrics_dir), name)
    if found and not replace:
        what = "a shipped evaluation table" if is_shipped(name) else "an existing evaluation table"
        raise ColorizationError(
            f"{found[0]}: {what}; choose a new name (e.g. {free_name(metrics_dir, name)!r}) "
            "or confirm that it is to be replaced"
        )
    return name


def free_name(metrics_dir: Path, name: str) -> str:
    """``name`` if nothing of that name exists, else ``name-2``, ``name-3``, ..."""
    base = re.sub(r"-\d+$", "", name) or "evaluation"
    if not existing_outputs(Path(metrics_dir), name):
        return name
    k = 2
    while existing_outputs(Path(metrics_dir), f"{base}-{k}"):
        k += 1
    return f"{base}-{k}"
