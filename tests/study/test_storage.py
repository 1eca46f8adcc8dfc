"""Storage: atomic, idempotent votes under concurrency, replays and a killed process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from experiments.study.protocol import StudyDesign, Trial, plan
from experiments.study.storage import StudyStore

PROJECT = Path(__file__).resolve().parents[2]


def bare_study(store: StudyStore, name="c", methods=("a", "b"), **kw) -> StudyDesign:
    d = StudyDesign(name=name, methods=list(methods), photos=[], trials=36, practice=0, vigilance=0.1, seed=1, **kw)
    store.create_study(d)
    return d


PHOTOS = [f"ph{i}" for i in range(50)]


def test_sqlite_runs_in_wal_mode_with_full_sync(store):
    bare_study(store)
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_vote_is_idempotent_first_answer_stands(store):
    d = bare_study(store)
    p = store.join("c")
    t = plan(d, p.id, p.condition, PHOTOS)[0]
    assert store.record_vote(p, t, "left", 812) is True
    assert store.record_vote(p, t, "right", 90) is False  # replay / double-click / second tab
    df = store.votes_frame("c")
    assert len(df) == 1 and df.iloc[0]["choice"] == "left" and df.iloc[0]["rt_ms"] == 812
    assert store.answers(p.id) == {0: "left"}
    with pytest.raises(ValueError):
        store.record_vote(p, t, "both")


def test_votes_need_a_registered_participant(store):
    bare_study(store)
    from experiments.study.storage import Participant

    ghost = Participant("nobody", "c", 0, "a", 0.0, None)
    with pytest.raises(IntegrityError):
        store.record_vote(ghost, Trial(0, "main", "ph1", "real", "a"), "left")


def test_duplicate_study_names_are_refused(store):
    bare_study(store)
    with pytest.raises(ValueError, match="exists already"):
        bare_study(store)


def test_50_concurrent_participants_lose_and_duplicate_nothing(store):
    """50 threads join at once and each answer 40 trials (36 scored + 4 vigilance) through the
    storage API into one SQLite file; half of them then replay every vote (some with another
    answer). Exactly 50 x 40 votes must exist, each with its first answer."""
    d = bare_study(store)
    n_threads, barrier = 50, threading.Barrier(50)
    results: dict[str, tuple[int, list[bool]]] = {}
    errors: list[BaseException] = []

    def participant(k: int) -> None:
        try:
            barrier.wait()
            s = StudyStore(store.url)  # what each Streamlit session does
            p = s.join("c")
            trials = plan(d, p.id, p.condition, PHOTOS)
            ok = [s.record_vote(p, t, "left" if (t.index + k) % 2 else "right", t.index) for t in trials]
            if k % 2 == 0:
                ok += [s.record_vote(p, t, "tie" if t.index % 3 else "left", 1) for t in trials]
            results[p.id] = (k, ok)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=participant, args=(k,)) for k in range(n_threads)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    assert not errors, errors[:3]
    assert len(results) == 50
    df = store.votes_frame("c")
    assert len(df) == 50 * 40
    assert df.groupby("participant").size().eq(40).all()
    assert not df.duplicated(["participant", "trial"]).any()
    for pid, (k, ok) in results.items():
        assert sum(ok) == 40 and not any(ok[40:])  # replays were all refused
        mine = df[df["participant"] == pid].set_index("trial")["choice"].sort_index()
        assert list(mine) == ["left" if (i + k) % 2 else "right" for i in range(40)]  # first answers stand
    assert Counter(store.participants_frame("c")["condition"]) == {"a": 25, "b": 25}  # balanced
    assert sorted(store.participants_frame("c")["seq"]) == list(range(50))
    print(f"\n50 participants x 40 votes + 1000 replays: {elapsed:.1f} s")


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from experiments.study.protocol import StudyDesign, plan
    from experiments.study.storage import StudyStore
    store = StudyStore(sys.argv[1])
    d = store.study("c").design
    photos = [f"ph{i}" for i in range(50)]
    while True:
        p = store.join("c")
        for t in plan(d, p.id, p.condition, photos):
            store.record_vote(p, t, "left" if t.index % 2 else "right", 5)
            print(p.id, t.index, flush=True)   # acknowledged only after the commit returned
    """
)


def test_sigkill_mid_run_keeps_every_acknowledged_vote(store, tmp_path):
    bare_study(store)
    store.engine.dispose()
    script = tmp_path / "voter.py"
    script.write_text(KILL_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(PROJECT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), store.url], stdout=subprocess.PIPE, text=True, env=env, cwd=PROJECT)
    acked = []
    try:
        while len(acked) < 150:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(tuple(line.split()))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    acked += [tuple(line.split()) for line in proc.stdout.read().splitlines() if len(line.split()) == 2]
    assert proc.returncode == -signal.SIGKILL and len(acked) >= 150
    db = store.url.split("///", 1)[1]
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {(p, str(t)) for p, t in con.execute("SELECT participant, trial FROM votes")}
    finally:
        con.close()
    assert set(acked) <= stored
    assert len(stored) - len(set(acked)) <= 1  # at most the vote committed but not yet printed
