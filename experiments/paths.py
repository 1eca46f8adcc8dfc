"""Where the results live: ``COLORIZE_RESULTS_DIR`` (default ``results/``) holds ``checkpoints/``,
``runs/``, ``metrics/``, ``benchmarks/``, ``studies/`` and ``comparisons/``.

One place for the CLI, the report and the dashboard, so a results folder pointed at by the
environment variable (tests, another set of models) is seen the same way by all of them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def results_dir() -> Path:
    return _results_dir(os.environ.get("COLORIZE_RESULTS_DIR"))


@lru_cache(maxsize=8)
def _results_dir(env: str | None) -> Path:  # resolved once per value (a page asks many times a rerun)
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / "results"


def checkpoints_dir() -> Path:
    return results_dir() / "checkpoints"


def runs_dir() -> Path:
    return results_dir() / "runs"


def metrics_dir() -> Path:
    return results_dir() / "metrics"


def benchmarks_dir() -> Path:
    return results_dir() / "benchmarks"


def comparisons_dir() -> Path:
    return results_dir() / "comparisons"


def test_folder() -> Path | None:
    """The photo folder offered on Compare (``COLORIZE_TEST_DIR``, else ../shared/data/test)."""
    env = os.environ.get("COLORIZE_TEST_DIR")
    p = Path(env).expanduser() if env else PROJECT_ROOT.parent / "shared" / "data" / "test"
    return p if p.is_dir() else None
