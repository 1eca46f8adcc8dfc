"""The heavy-job queue, the byte-bounded cache and the dashboard's photo size limit (no server)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from backends.errors import ColorizationError, ImageError
from experiments import jobs


def test_queue_runs_one_job_at_a_time_in_arrival_order_and_reports_positions():
    q = jobs.JobQueue(slots=1, max_waiting=8)
    order, seen, running_now, peak = [], {}, [0], [0]
    gate = threading.Event()

    def job(i):
        def on_wait(pos, running):
            seen.setdefault(i, []).append(pos)

        with q.slot(on_wait, poll=0.01, refresh=60):
            running_now[0] += 1
            peak[0] = max(peak[0], running_now[0])
            order.append(i)
            if i == 0:
                gate.wait(5)
            time.sleep(0.01)
            running_now[0] -= 1

    threads = [threading.Thread(target=job, args=(0,))]
    threads[0].start()
    while q.state() != (1, 0):
        time.sleep(0.005)
    for i in (1, 2, 3):  # arrive one after the other while job 0 holds the slot
        threads.append(threading.Thread(target=job, args=(i,)))
        threads[-1].start()
        while q.state()[1] != i:
            time.sleep(0.005)
    assert seen[3][0] == 3, "the third visitor to wait is told position 3"
    gate.set()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3] and peak[0] == 1
    # counts down as jobs finish (a 10-ms poll on a loaded machine may miss a short-lived position)
    assert seen[3] == sorted(set(seen[3]), reverse=True) and seen[3][0] == 3 and len(seen[3]) >= 2, seen[3]
    assert 0 not in seen, "a job that finds the slot free does not wait"
    assert q.state() == (0, 0)


def test_queue_full_is_refused_and_places_are_given_up_on_errors():
    q = jobs.JobQueue(slots=1, max_waiting=1)
    hold, release = threading.Event(), threading.Event()

    def holder():
        with q.slot():
            hold.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    hold.wait(5)

    def leave(pos, running):  # the visitor closes the page while waiting
        raise RuntimeError("session stopped")

    with pytest.raises(RuntimeError):
        with q.slot(leave):
            pass
    assert q.state() == (1, 0), "a visitor who left gives up the place"
    waiter = threading.Thread(target=lambda: q.slot().__enter__())
    waiter.daemon = True
    waiter.start()
    while q.state()[1] != 1:
        time.sleep(0.005)
    with pytest.raises(jobs.QueueFull, match="busy"):
        with q.slot():
            pass
    release.set()
    t.join(5)
    with pytest.raises(ValueError):
        with jobs.JobQueue().slot():
            raise ValueError("the job failed")


def test_byte_cache_is_bounded_by_bytes_not_entries():
    c = jobs.ByteCache(max_bytes=3 * 1000)
    for i in range(10):
        c.put(i, np.zeros(1000, np.uint8))
        assert c.bytes <= 3000
    assert len(c) == 3 and c.get(0) is None and c.get(9) is not None
    c.get(7)  # recently used: kept
    c.put("big", np.zeros(2000, np.uint8))
    assert c.get(7) is not None and c.get(8) is None
    c.put("huge", np.zeros(10_000, np.uint8))
    assert c.get("huge") is None and c.bytes <= 3000
    assert jobs.nbytes((np.zeros((10, 10, 3), np.uint8), 1.5)) >= 300


def test_settings_are_validated_with_named_errors(monkeypatch):
    monkeypatch.setenv("COLORIZE_MAX_JOBS", "two")
    with pytest.raises(ColorizationError, match="COLORIZE_MAX_JOBS='two'"):
        jobs.env_int("COLORIZE_MAX_JOBS", 1)
    monkeypatch.setenv("COLORIZE_DASHBOARD_MAX_PIXELS", "0")
    with pytest.raises(ColorizationError, match="COLORIZE_DASHBOARD_MAX_PIXELS"):
        jobs.dashboard_max_pixels()
    monkeypatch.setenv("COLORIZE_DASHBOARD_MAX_PIXELS", "1_000")
    assert jobs.dashboard_max_pixels() == 1000


def test_oversize_photos_are_refused_for_processing_and_downscaled_for_display(monkeypatch):
    monkeypatch.setenv("COLORIZE_DASHBOARD_MAX_PIXELS", "10000")
    ok, big = np.zeros((100, 100, 3), np.uint8), np.full((300, 500), 128, np.uint8)
    jobs.check_processing_size(ok)
    with pytest.raises(ImageError, match=r"big.png: 500x300 = 0.1 megapixels .* COLORIZE_DASHBOARD_MAX_PIXELS"):
        jobs.check_processing_size(big, "big.png")
    small = jobs.display_copy(big, side=100)
    assert small.shape == (60, 100) and small.dtype == np.uint8 and int(small.mean()) == 128
    assert jobs.display_copy(ok) is ok
