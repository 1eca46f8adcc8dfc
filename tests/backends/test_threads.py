"""The thread policy: passive OpenMP waiting before PyTorch loads, COLORIZE_THREADS, bad values named."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import PROJECT

#: What PyTorch will read when it loads (OMP_NUM_THREADS, OMP_WAIT_POLICY): set, and torch not loaded yet.
PROBE = ("import sys, os, experiments, backends; assert 'torch' not in sys.modules; "
         "print(os.environ['OMP_NUM_THREADS'], os.environ['OMP_WAIT_POLICY'])")  # fmt: skip


def _run(code: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "COLORIZE_THREADS")}
    env.update(env_vars, PYTHONPATH=str(PROJECT))
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT, capture_output=True, text=True, timeout=120)


def test_entry_points_set_passive_waiting_and_the_thread_count_before_torch():
    r = _run(PROBE, COLORIZE_THREADS="1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "PASSIVE"]
    # a policy the user chose is kept; OMP_NUM_THREADS is honoured when COLORIZE_THREADS is unset
    r = _run(PROBE, OMP_WAIT_POLICY="ACTIVE", OMP_NUM_THREADS="1")
    assert r.stdout.split() == ["1", "ACTIVE"]
    # the dashboard's entry point imports the policy before Streamlit and PyTorch
    app = (PROJECT / "dashboard" / "app.py").read_text()
    assert app.index("threads.configure()") < app.index("import streamlit")


def test_bad_thread_count_is_named_and_the_default_used():
    r = _run(PROBE, COLORIZE_THREADS="abc")
    assert r.returncode == 0
    assert "COLORIZE_THREADS='abc'" in r.stderr and "positive whole number" in r.stderr
    n, policy = r.stdout.split()
    assert int(n) >= 1 and policy == "PASSIVE"
