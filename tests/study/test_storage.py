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

from experiments.study import errors
from experiments.study.protocol import StudyDesign, Trial, plan
from experiments.study.storage import Participant, StudyStore
from tests.study.conftest import TINY_PNG, bare_study

PROJECT = Path(__file__).resolve().parents[2]


def test_sqlite_runs_in_wal_mode_with_full_sync(store):
    bare_study(store)
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_vote_is_idempotent_first_answer_stands(store):
    d = bare_study(store)
    p = store.join("c")
    t = plan(d, p.id, p.condition, store.ready_photos("c"))[0]
    assert store.record_vote(p, t, "left", 812) is True
    assert store.record_vote(p, t, "right", 90) is False  # replay / double-click / second tab
    df = store.votes_frame("c")
    assert len(df) == 1 and df.iloc[0]["choice"] == "left" and df.iloc[0]["rt_ms"] == 812
    assert store.answers(p.id) == {0: "left"}
    with pytest.raises(errors.InvalidVote):
        store.record_vote(p, t, "both")


def test_votes_need_a_registered_participant(store):
    bare_study(store)
    ghost = Participant("nobody", "c", 0, "a", 0.0, None)
    with pytest.raises(errors.UnknownParticipant, match="nobody"):
        store.record_vote(ghost, Trial(0, "main", "ph1", "real", "a"), "left")


def test_duplicate_study_names_are_refused(store):
    bare_study(store)
    with pytest.raises(errors.StudyExists, match="exists already"):
        bare_study(store)


def test_every_bad_argument_gets_a_named_error(store):
    d = bare_study(store)
    p = store.join("c")
    t = plan(d, p.id, p.condition, store.ready_photos("c"))[0]
    bad_calls = [
        (errors.InvalidVote, lambda: store.record_vote(p, t, "left", rt_ms=2**70)),
        (errors.InvalidVote, lambda: store.record_vote(p, t, "left", rt_ms=-1)),
        (errors.InvalidVote, lambda: store.record_vote(p, t, "left", rt_ms="fast")),
        (errors.InvalidVote, lambda: store.record_vote(p, t, "tie")),  # a Turing test has no tie
        (errors.InvalidVote, lambda: store.record_vote(p, Trial(0, "main", t.photo, t.right, t.left), "left")),  # not the plan
        (errors.InvalidVote, lambda: store.record_vote(p, Trial(-1, "main", t.photo, t.left, t.right), "left")),
        (errors.InvalidArgument, lambda: store.record_vote("pid", t, "left")),
        (errors.InvalidArgument, lambda: store.record_vote(p, "trial", "left")),
        (errors.UnknownParticipant, lambda: store.finish("nobody")),
        (errors.UnknownParticipant, lambda: store.answers("nobody")),
        (errors.UnknownParticipant, lambda: store.completion_code("nobody")),
        (errors.InvalidArgument, lambda: store.completion_code(p.id)),  # not finished yet
        (errors.InvalidArgument, lambda: store.participant(42)),
        (errors.InvalidArgument, lambda: store.study("c\n")),  # full match: no trailing newline
        (errors.InvalidArgument, lambda: store.study(None)),
        (errors.InvalidArgument, lambda: store.set_status("c", "paused")),
        (errors.UnknownStudy, lambda: store.set_status("nope", "open")),
        (errors.UnknownStudy, lambda: store.join("nope")),
        (errors.UnknownStudy, lambda: store.delete_study("nope")),
        (errors.MissingImage, lambda: store.image_png("c", "nophoto", "real")),
        (errors.InvalidArgument, lambda: store.add_image("c", "nophoto", "real", b"not a png")),
        (errors.StudyLocked, lambda: store.add_image("c", store.ready_photos("c")[0], "a", TINY_PNG)),
        (errors.StudyLocked, lambda: store.photo_id("c", "new.png")),
        (errors.InvalidArgument, lambda: store.create_study({"name": "x"})),
        (errors.InvalidArgument, lambda: StudyStore("not a database url")),
        (errors.InvalidArgument, lambda: StudyStore("nosuchdialect://x")),
        (errors.InvalidDesign, lambda: store.create_study(StudyDesign(name="x", methods=["a"], trials="abc"))),
    ]
    for expected, call in bad_calls:
        with pytest.raises(expected) as info:
            call()
        assert str(info.value) and "\n" not in str(info.value)
    assert len(store.votes_frame("c")) == 0  # nothing half-stored


def test_closed_study_refuses_votes_and_new_participants(store):
    d = bare_study(store)
    p = store.join("c")
    trials = plan(d, p.id, p.condition, store.ready_photos("c"))
    assert store.record_vote(p, trials[0], "left", 500)
    store.set_status("c", "closed")
    with pytest.raises(errors.StudyNotOpen, match="no longer accepted"):
        store.record_vote(p, trials[1], "left", 500)
    with pytest.raises(errors.StudyNotOpen):
        store.join("c")
    assert len(store.votes_frame("c")) == 1


def test_completion_codes_are_hmacs_given_only_after_finishing(store, monkeypatch):
    bare_study(store)
    p, q = store.join("c"), store.join("c")
    store.finish(p.id)
    code = store.completion_code(p.id)
    assert len(code) == 12 and code.isalnum() and code not in p.id and p.id[:10] not in code
    assert code != store.code_for(q.id) and store.completion_code(p.id) == code  # stable, per participant
    assert store.verify_code("c", code.lower()).id == p.id and store.verify_code("c", store.code_for(q.id)) is None
    monkeypatch.setenv("COLORIZE_STUDY_SECRET", "another server secret")
    assert store.completion_code(p.id) != code  # keyed by the server secret


def test_opening_needs_enough_prepared_photos(store):
    with pytest.raises(errors.NotEnoughPhotos, match="needs at least 4 prepared photos"):
        bare_study(store, name="few", n_photos=3, trials=4, practice=0, vigilance=0.0)
    assert store.study("few").status == "draft"


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
            trials = plan(d, p.id, p.condition, s.ready_photos("c"))
            ok = [s.record_vote(p, t, "left" if (t.index + k) % 2 else "right", t.index) for t in trials]
            if k % 2 == 0:
                ok += [s.record_vote(p, t, "right" if t.index % 3 else "left", 1) for t in trials]
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
    photos = store.ready_photos("c")
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
