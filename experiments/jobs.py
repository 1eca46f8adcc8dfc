"""Bounded work for a server shared by many visitors: a queue for heavy jobs, caches bounded by
bytes, and the dashboard's size limit for photos it processes.

* :class:`JobQueue` lets at most ``COLORIZE_MAX_JOBS`` (default 1) heavy jobs - colorizing a photo
  with its methods, an evaluation - run at once in this server process, first come first served;
  a waiting visitor sees its position. More than ``COLORIZE_MAX_QUEUE`` (default 8) waiting: the
  next one is told the server is busy instead of waiting without end.
* :class:`ByteCache` is a least-recently-used cache bounded by the bytes of what it holds
  (``COLORIZE_CACHE_MB``, default 256), not by a count of entries of any size.
* :func:`check_processing_size`: photos above ``COLORIZE_DASHBOARD_MAX_PIXELS`` (default 12 MP)
  are shown downscaled (:func:`display_copy`) and refused for processing, with a message that
  names the limit and the way out (the CLI, whose memory does not grow with the photo).

Plain Python (no Streamlit): the dashboard and experiments.comparisons use one instance of each per
server process, shared by every session.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from backends.errors import ColorizationError, ImageError

DEFAULT_MAX_JOBS = 1
DEFAULT_MAX_QUEUE = 8
DEFAULT_CACHE_MB = 256
DEFAULT_DASHBOARD_MAX_PIXELS = 12_000_000
DISPLAY_SIDE = 1600


def env_int(name: str, default: int, low: int = 1) -> int:
    """A whole-number setting from the environment; a named error when it is not one (or < ``low``)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = None
    if value is None or value < low:
        raise ColorizationError(f"{name}={raw!r}: expected a whole number >= {low} (default {default}); fix or unset it")
    return value


class QueueFull(ColorizationError):
    """Too many visitors already wait for a heavy job."""


class JobQueue:
    """At most ``slots`` jobs at once; the others wait in arrival order and are told their position."""

    def __init__(self, slots: int = DEFAULT_MAX_JOBS, max_waiting: int = DEFAULT_MAX_QUEUE):
        self.slots, self.max_waiting = slots, max_waiting
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._running = 0

    def state(self) -> tuple[int, int]:
        """(running, waiting) right now."""
        with self._cond:
            return self._running, len(self._waiting)

    @contextmanager
    def slot(self, on_wait: Callable[[int, int], None] | None = None, poll: float = 0.25, refresh: float = 2.0) -> Iterator[None]:
        """Hold one of the slots for the ``with`` block. While waiting, ``on_wait(position, running)``
        is called (outside the lock) when the position changes and every ``refresh`` seconds -
        position 1 is next. An exception from ``on_wait`` (the visitor left or pressed something:
        Streamlit raises it from the next page update) gives up the place; the slot is always
        released, whatever the job raises."""
        ticket = object()
        last = time.monotonic()
        with self._cond:
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(
                    f"the server is busy: {self._running} job(s) running and {len(self._waiting)} waiting "
                    f"(COLORIZE_MAX_QUEUE={self.max_waiting}); try again in a minute"
                )
            self._waiting.append(ticket)
        try:
            shown = None
            while True:
                with self._cond:
                    pos = self._waiting.index(ticket)
                    if pos == 0 and self._running < self.slots:
                        self._waiting.popleft()
                        self._running += 1
                        break
                    running = self._running
                    if pos == shown and time.monotonic() - last < refresh:
                        self._cond.wait(poll)
                        continue
                shown, last = pos, time.monotonic()
                if on_wait is not None:
                    on_wait(pos + 1, running)
        except BaseException:
            with self._cond:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._cond.notify_all()
            raise
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()


class ByteCache:
    """Least-recently-used mapping whose values together hold at most ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[object, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key, default=None):
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key, value) -> None:
        size = nbytes(value)
        with self._lock:
            if key in self._items:
                self.bytes -= self._items.pop(key)[1]
            if size > self.max_bytes:
                return  # larger than the whole cache: not kept
            self._items[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, old) = self._items.popitem(last=False)
                self.bytes -= old

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0


def nbytes(value) -> int:
    """Memory held by a cached value: arrays and bytes by their size, containers summed."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value) + 64
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values()) + 64
    return 64


def array_key(a: np.ndarray | None) -> str | None:
    """A short content hash of an array (shape and dtype included), for cache keys."""
    if a is None:
        return None
    h = hashlib.blake2b(digest_size=16)
    h.update(str((a.shape, a.dtype.str)).encode())
    h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


_lock = threading.Lock()
_queue: JobQueue | None = None
_cache: ByteCache | None = None


def heavy_jobs() -> JobQueue:
    """The server process's queue for heavy jobs (one for all sessions)."""
    global _queue
    with _lock:
        if _queue is None:
            _queue = JobQueue(env_int("COLORIZE_MAX_JOBS", DEFAULT_MAX_JOBS), env_int("COLORIZE_MAX_QUEUE", DEFAULT_MAX_QUEUE))
        return _queue


def result_cache() -> ByteCache:
    """The server process's cache of colorized images, bounded by ``COLORIZE_CACHE_MB``."""
    global _cache
    with _lock:
        if _cache is None:
            _cache = ByteCache(env_int("COLORIZE_CACHE_MB", DEFAULT_CACHE_MB, low=0) * 2**20)
        return _cache


def dashboard_max_pixels() -> int:
    return env_int("COLORIZE_DASHBOARD_MAX_PIXELS", DEFAULT_DASHBOARD_MAX_PIXELS)


def check_processing_size(image: np.ndarray, name: str = "photo") -> None:
    """:class:`ImageError` when the dashboard will not process a photo this large."""
    h, w = image.shape[:2]
    limit = dashboard_max_pixels()
    if h * w > limit:
        raise ImageError(
            name,
            f"{w}x{h} = {h * w / 1e6:.1f} megapixels is more than the dashboard processes "
            f"({limit / 1e6:g} MP, COLORIZE_DASHBOARD_MAX_PIXELS); it is shown downscaled only. "
            "Colorize it with the command line (python -m experiments.colorize), or upload a smaller copy",
        )


def display_copy(image: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """``image`` with its longer side at most ``side`` pixels (area-averaged), for showing on a page."""
    from PIL import Image

    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).reduce(max(1, int(1 / scale))).resize(size, Image.BILINEAR))


def wait_message(position: int, running: int) -> str:
    return (
        f"Waiting: position {position} in the queue - {running} colorization(s) running on this server. "
        "Your photo starts automatically; keep this page open."
    )
