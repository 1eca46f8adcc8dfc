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


def test_thread_count_fits_the_free_cores_before_each_forward_pass(monkeypatch):
    """With another process on a core, the configured 2 threads run as 1 (2 measured 1.03-1.17x
    slower there); on an idle machine the configured count; never above it; off on request."""
    import torch

    from backends import threads

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    try:
        threads.apply(2)
        monkeypatch.setattr(threads, "others_running", lambda samples=3: 1)
        assert threads.fit_to_load() == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "others_running", lambda samples=3: 0)
        assert threads.fit_to_load() == 2 and torch.get_num_threads() == 2
        monkeypatch.setattr(threads, "available_cores", lambda: 16)
        assert threads.fit_to_load() == 2  # the configured count is the ceiling
        monkeypatch.setattr(threads, "others_running", lambda samples=3: 40)
        assert threads.fit_to_load() == 1  # at least one
        monkeypatch.setattr(threads, "others_running", lambda samples=3: 1)
        monkeypatch.setattr(threads, "available_cores", lambda: 2)
        torch.set_num_threads(3)  # a caller's own count (a training loop's): back to it after the block
        with threads.fitted() as n:
            assert n == 1 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
        torch.set_num_threads(2)  # the policy's own count: stays fitted (no switch back and forth per call)
        with threads.fitted() as n:
            assert n == 1 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "others_running", lambda samples=3: 0)
        with threads.fitted() as n:  # the machine free again: the next block fits it back
            assert n == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv(threads.ADAPT_ENV, "0")
        torch.set_num_threads(2)
        assert threads.fit_to_load() is None and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
        threads.CEILING = None


def test_others_running_reads_the_machine(monkeypatch):
    from backends import threads

    n = threads.others_running()
    assert n is None or 0 <= n < 10_000
    # a hog running beside this process is seen (Linux)
    if n is not None:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            import time

            time.sleep(0.5)
            assert any(threads.others_running(samples=1) >= 1 for _ in range(20))
        finally:
            hog.kill()
            hog.wait()


def test_evaluation_keeps_freed_memory_unless_told_otherwise():
    code = "from backends import threads; print(threads.keep_freed_memory())"
    assert _run(code).stdout.strip() == ("True" if sys.platform.startswith("linux") else "False")
    assert _run(code, COLORIZE_MALLOC="default").stdout.strip() == "False"
    assert _run(code, MALLOC_TRIM_THRESHOLD_="1000000").stdout.strip() == "False"


def test_released_memory_goes_back_to_the_os():
    """A long clip frees buffers between the heap's live ones; without returning those pages the
    resident set stays at its high-water mark (the video memory row's creep)."""
    if not sys.platform.startswith("linux"):
        return
    code = """
import numpy as np
from backends import threads
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
# 64 KB blocks come from the heap (under glibc's mmap threshold); every second one stays alive, so
# the freed ones are holes in the heap that glibc's automatic trim (top of heap only) cannot return
blocks = [np.ones(64 * 1024 // 8) for _ in range(3000)]
keep = blocks[1::2]
del blocks
before = rss()
ran = threads.release_freed_memory()
print(ran, round(before - rss()))
"""
    out = _run(code).stdout.split()
    assert out[0] == "True"
    assert int(out[1]) > 50, f"only {out[1]} MB of ~94 MB freed went back"
