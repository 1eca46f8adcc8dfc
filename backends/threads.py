"""Thread policy for a CPU shared with other work: passive OpenMP waiting, a default thread count.

PyTorch's OpenMP workers spin-wait for each other between parallel regions by default. On a
machine where another process is busy, a spinning worker takes a core the other process needs
and waits for a worker that is not scheduled: torch at 2 threads measured 3-4x slower than at 1
thread (classification's forward pass, 0.62 s against 0.17 s) until ``OMP_WAIT_POLICY=PASSIVE``
brought 2 threads back to parity. The OpenMP runtime reads that variable once, when PyTorch
loads, so it has to be in the environment before the first ``import torch``: importing this
module sets it (unless the user already chose a policy), and every entry point imports it first
(``experiments/__init__.py`` for ``python -m experiments.*``, ``dashboard/app.py`` for the
dashboard). The Python API (``import backends``) does the same, before any method loads torch.

Thread count (``apply``, called by the CLI, the dashboard and the benchmark): ``COLORIZE_THREADS``
when set (a positive integer), else an ``OMP_NUM_THREADS`` the user set, else the cores this
process may run on, at most ``MAX_DEFAULT``. The benchmark's busy-machine mode measures the
result (``python -m experiments.benchmark --busy``: 2 threads against 1 with a competing
CPU-bound process).
"""

from __future__ import annotations

import contextlib
import os
import sys

ENV = "COLORIZE_THREADS"
#: Default thread count ceiling: past it, small convolutions gain little and a shared machine loses.
MAX_DEFAULT = 8
#: Environment variables the thread count goes into (read by OpenMP, MKL, OpenBLAS and TensorFlow).
COUNT_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")

#: True when this module set the passive policy before PyTorch was loaded (so it took effect).
PASSIVE_BEFORE_TORCH = "torch" not in sys.modules
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _positive(name: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name}={value!r}: not a positive whole number of threads; fix: e.g. {name}=2, or unset it")
    return n


def thread_count() -> int:
    """The thread count the policy gives (``ValueError`` naming the variable for a bad value)."""
    if os.environ.get(ENV, "").strip():
        return _positive(ENV, os.environ[ENV].strip())
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return _positive("OMP_NUM_THREADS", os.environ["OMP_NUM_THREADS"].strip())
    return min(available_cores(), MAX_DEFAULT)


def apply(threads: int | None = None) -> int:
    """Set the thread count (``threads``, else :func:`thread_count`) for every library: the
    environment variables for those not loaded yet, and PyTorch's own count when it is loaded.
    It is also the ceiling :func:`fit_to_load` works under. Returns the count."""
    global CEILING
    n = int(threads) if threads is not None else thread_count()
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    CEILING = n
    for var in COUNT_VARS:
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads") and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def configure() -> int:
    """What entry points call before loading models: :func:`apply` with the policy's count; a
    bad ``COLORIZE_THREADS`` / ``OMP_NUM_THREADS`` is named in one line on stderr and the default
    is used instead (a run is never lost to a typo in a thread count)."""
    global SOURCE
    try:
        SOURCE = ENV if os.environ.get(ENV, "").strip() else "OMP_NUM_THREADS" if os.environ.get("OMP_NUM_THREADS", "").strip() else "default"
        return apply()
    except ValueError as exc:
        SOURCE = "default"
        n = min(available_cores(), MAX_DEFAULT)
        print(f"warning: {exc}; using {n} thread(s)", file=sys.stderr)
        return apply(n)


#: Where the count of the last :func:`configure` came from: COLORIZE_THREADS, OMP_NUM_THREADS or default.
SOURCE: str | None = None

#: The thread count :func:`apply` set last (None: never called - the Python API without an entry point).
CEILING: int | None = None
#: ``COLORIZE_ADAPT_THREADS=0`` keeps the configured count even on a busy machine.
ADAPT_ENV = "COLORIZE_ADAPT_THREADS"


def others_running(samples: int = 3) -> int | None:
    """Threads of the whole machine that are running or runnable, besides the caller (Linux's
    ``/proc/loadavg``, the least of a few readings, so a passing process does not count); None
    where the system does not tell."""
    seen = []
    for _ in range(samples):
        try:
            with open("/proc/loadavg") as f:
                seen.append(int(f.read().split()[3].split("/")[0]) - 1)  # the reading thread itself runs
        except (OSError, ValueError, IndexError):
            return None
    return max(0, min(seen))


def fit_to_load() -> int | None:
    """Before a forward pass: PyTorch's thread count for the cores free right now - the configured
    count (:data:`CEILING`) on an idle machine, fewer while other work runs. With a core taken by
    another process, 2 threads measured 1.03-1.17x slower than 1 (even with passive waiting: every
    parallel region waits for the thread that shares its core), so a busy machine gets 1. The count
    used, or None when not adapting (PyTorch not loaded, no ceiling set, ``COLORIZE_ADAPT_THREADS=0``,
    no /proc/loadavg)."""
    torch = sys.modules.get("torch")
    if torch is None or CEILING is None or os.environ.get(ADAPT_ENV, "").strip() == "0":
        return None
    busy = others_running() if CEILING > 1 else 0
    if busy is None:
        return None
    n = max(1, min(CEILING, available_cores() - busy))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    global LAST_FIT
    LAST_FIT = n
    return n


#: The count the last :func:`fit_to_load` chose (the benchmark reports it).
LAST_FIT: int | None = None


@contextlib.contextmanager
def fitted():
    """:func:`fit_to_load` for the block, then the count as it was when the caller had set its own
    (a training loop that validates through ``colorize_batch`` keeps its count afterwards). A count
    that was the policy's own (:data:`CEILING`) stays fitted until the next block fits it again:
    changing PyTorch's count makes the next forward pass pay for it (fusion at 512 px, 1 thread:
    45.8 against 43.6 ms after a 2 -> 1 switch), which a dashboard on a busy machine paid twice a call."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    n = fit_to_load()
    try:
        yield n
    finally:
        if n is not None and before is not None and before != CEILING and torch.get_num_threads() != before:
            torch.set_num_threads(before)


#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Batch work that frees and re-allocates the same large buffers (the evaluation's batches of
    float tensors): keep freed memory in the process instead of returning it to the OS and taking
    a page fault on every page of the next batch. glibc's default moves buffers of a few MB between
    mmap and the heap and trims the heap when 2x its threshold is free; here buffers under
    ``mmap_threshold`` come from the heap and up to ``trim_threshold`` of free heap is kept.
    Measured on the 91 test photos (``experiments.evaluate --methods gray --no-models``): system
    time 3.3-3.5 s -> 1.9-2.1 s, peak RSS 1.25 -> 1.35 GB. Only on glibc, and not when the user set
    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` or ``COLORIZE_MALLOC=default``; True when applied."""
    if os.environ.get("COLORIZE_MALLOC", "").strip().lower() == "default":
        return False
    if any(os.environ.get(v) for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")):
        return False
    libc = _glibc()
    mallopt = getattr(libc, "mallopt", None) if libc else None
    if mallopt is None:  # not glibc (macOS, Windows, musl without mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))


_libc = None


def _glibc():
    """The C library through ctypes (loaded once), or None where it cannot be loaded."""
    global _libc
    if _libc is None:
        try:
            import ctypes
            import ctypes.util

            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _libc = False
    return _libc or None


def release_freed_memory() -> bool:
    """Return the heap's free pages to the OS (glibc ``malloc_trim(0)``); True when it ran.

    For streaming work whose batches allocate and free the same large buffers in a different
    order each time (video: decoded frames, float tensors at full size, encoder buffers): glibc
    reuses free chunks only where a new one fits, so the heap's high-water mark - the process's
    peak resident memory - creeps up with the clip's length although nothing is kept. Measured on
    a 30 s 480p clip (fusion, batches of 8): current RSS after each batch 836-948 MB wandering and
    the peak 895 -> 1003 MB over the clip without it; 802-824 MB and a peak flat from frame 176
    on (991 MB) with it, at the same speed (77.8 vs 80.3 s). Only on glibc; a no-op elsewhere."""
    libc = _glibc()
    if not libc or not hasattr(libc, "malloc_trim"):
        return False
    libc.malloc_trim(0)
    return True


def describe() -> dict:
    """What the process runs with (for the benchmark's table)."""
    torch = sys.modules.get("torch")
    return {
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "passive_before_torch": PASSIVE_BEFORE_TORCH,
        "threads": int(torch.get_num_threads()) if torch is not None else os.environ.get("OMP_NUM_THREADS"),
        "source": SOURCE,
    }
