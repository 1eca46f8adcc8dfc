"""A fresh virtual environment for install tests that works offline.

``python -m venv --without-pip`` makes it in a second; a ``.pth`` file lends it this environment's
site-packages (PyTorch, Streamlit, pip, setuptools...) so nothing is downloaded. What is installed
into it (``pip install --no-deps --no-build-isolation``) lands in its own site-packages and
``bin/``, exactly as on a user's machine, and never touches the project's environment.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
#: What a source distribution of the project holds (no results/, tests/ or tools).
SOURCE = ["backends", "experiments", "dashboard", ".streamlit", "pyproject.toml", "README.md"]


def child_venv(root: Path) -> Path:
    """A new venv at ``root``; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    py = root / "bin" / "python"
    inner = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    Path(inner, "zz_parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return py


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without this test run's PYTHONPATH (the project must come from the install)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def pip(py: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [str(py), "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=clean_env(PIP_NO_INDEX="1"), timeout=600)


def copy_source(dst: Path) -> Path:
    """The project's package sources, copied (a build writes build/ and *.egg-info beside them)."""
    for name in SOURCE:
        src = PROJECT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dst / name)
    return dst
