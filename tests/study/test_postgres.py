"""The same storage guarantees on PostgreSQL (the multi-instance deployment).

Starts a throw-away PostgreSQL cluster (initdb + pg_ctl, trust auth on 127.0.0.1) when the
server binaries and the psycopg driver are installed; skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest

from experiments.study.protocol import plan
from experiments.study.storage import StudyStore
from tests.study.conftest import bare_study

INITDB = shutil.which("initdb") or next((p for p in ("/usr/lib/postgresql/15/bin/initdb",) if os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(INITDB is None, reason="PostgreSQL server binaries (initdb) not installed")


@pytest.fixture(scope="module")
def pg_url():
    pytest.importorskip("psycopg")
    root = Path(tempfile.mkdtemp(prefix="study-pg-"))  # not under pytest's 0700 tmp: the server user must reach it
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        os.chmod(root, 0o777)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pg_ctl = os.path.join(os.path.dirname(INITDB), "pg_ctl")
    subprocess.run([*as_user, INITDB, "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    opts = f"-p {port} -h 127.0.0.1 -k {root} -c fsync=on"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"], check=True, capture_output=True
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_50_concurrent_participants_exact_counts(pg_url):
    store = StudyStore(pg_url)
    d = bare_study(store, name="pg", seed=2)  # open, 50 photos with every image
    photos = store.ready_photos("pg")
    barrier, errors, ok = threading.Barrier(50), [], []

    def participant(k: int) -> None:
        try:
            barrier.wait()
            p = store.join("pg")
            trials = plan(d, p.id, p.condition, photos)
            ok.extend(store.record_vote(p, t, "left" if (t.index + k) % 2 else "right", 1) for t in trials)
            if k % 2 == 0:
                ok.extend(store.record_vote(p, t, "right", 1) for t in trials)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=participant, args=(k,)) for k in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    df = store.votes_frame("pg")
    assert len(df) == 2000 and sum(ok) == 2000 and len(ok) == 3000
    assert not df.duplicated(["participant", "trial"]).any() and (df.groupby("participant")["choice"].first() != "").all()
    parts = store.participants_frame("pg")
    assert sorted(parts["seq"]) == list(range(50)) and Counter(parts["condition"]) == {"a": 25, "b": 25}
