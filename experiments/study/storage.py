"""Study storage: SQLAlchemy Core tables, SQLite in WAL mode by default, PostgreSQL by URL.

Where: ``COLORIZE_STUDY_DB`` (an SQLAlchemy URL, e.g. ``postgresql+psycopg://...`` when a study
runs on several app instances) or ``sqlite:///<results>/studies/studies.sqlite`` (results root
``COLORIZE_RESULTS_DIR``, default ``results/``). The pre-generated images live in the same
database, so every app instance serves the same pictures.

Votes: one row per (participant, trial), enforced by a UNIQUE constraint and inserted with
``INSERT ... ON CONFLICT DO NOTHING`` in its own transaction - a vote is committed atomically
or not at all, and double-clicks, replays and a second tab cannot count twice (the first answer
wins). SQLite runs with ``journal_mode=WAL``, ``synchronous=FULL`` (a committed vote survives a
killed process and a power cut) and ``BEGIN IMMEDIATE`` transactions (writers queue on the busy
timeout instead of failing with "database is locked").

A vote is checked against the server's own plan of that participant (same photo, same sides)
and refused once the study is not open (:class:`~.errors.StudyNotOpen`). Once a participant has
joined, the study's images are frozen (:class:`~.errors.StudyLocked`): every plan depends on the
photo set. Every bad argument raises a named error from :mod:`.errors`.

Completion codes are an HMAC-SHA256 of the participant id under a server secret
(``COLORIZE_STUDY_SECRET``, else a random secret created once and kept in the database, so every
app instance agrees), given out only once the participant has finished.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import pandas as pd
from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError

from .errors import (
    InvalidArgument,
    InvalidVote,
    MissingImage,
    NotEnoughPhotos,
    StudyExists,
    StudyLocked,
    StudyNotOpen,
    UnknownParticipant,
    UnknownStudy,
)
from .protocol import PHASES, StudyDesign, Trial, condition_for, plan, roles_needed, stable_key, valid_name

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHOICES = ("left", "right", "tie")
STATUSES = ("draft", "open", "closed")
SECRET_ENV = "COLORIZE_STUDY_SECRET"
#: Longest response time stored (a day); anything longer is a broken clock, not an answer.
MAX_RT_MS = 86_400_000

metadata = MetaData()

studies = Table(
    "studies",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("design", Text, nullable=False),
    Column("status", String(16), nullable=False, default="draft"),
    Column("created_at", Float, nullable=False),
)

photos = Table(
    "photos",
    metadata,
    Column("id", String(32), primary_key=True),  # opaque, random
    Column("study", String(64), ForeignKey("studies.name", ondelete="CASCADE"), nullable=False, index=True),
    Column("source", Text, nullable=False),  # file the photo came from (admin pages only)
    UniqueConstraint("study", "source", name="uq_photo_source"),
)

images = Table(
    "images",
    metadata,
    Column("id", String(32), primary_key=True),  # opaque, random
    Column("study", String(64), ForeignKey("studies.name", ondelete="CASCADE"), nullable=False, index=True),
    Column("photo", String(32), ForeignKey("photos.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(64), nullable=False),  # "real", "vigilance" or a method name
    Column("png", LargeBinary, nullable=False),
    UniqueConstraint("study", "photo", "role", name="uq_image_role"),
)

participants = Table(
    "participants",
    metadata,
    Column("id", String(64), primary_key=True),  # opaque, random; the participant's URL key
    Column("study", String(64), ForeignKey("studies.name", ondelete="CASCADE"), nullable=False, index=True),
    Column("seq", Integer, nullable=False),  # join order, drives balanced assignment
    Column("condition", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    UniqueConstraint("study", "seq", name="uq_participant_seq"),
)

votes = Table(
    "votes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study", String(64), ForeignKey("studies.name", ondelete="CASCADE"), nullable=False, index=True),
    Column("participant", String(64), ForeignKey("participants.id", ondelete="CASCADE"), nullable=False),
    Column("trial", Integer, nullable=False),
    Column("phase", String(16), nullable=False),
    Column("photo", String(32), nullable=False),
    Column("left", String(64), nullable=False),
    Column("right", String(64), nullable=False),
    Column("choice", String(8), nullable=False),
    Column("rt_ms", Integer),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("participant", "trial", name="uq_vote_trial"),
)


settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


def default_url() -> str:
    url = os.environ.get("COLORIZE_STUDY_DB")
    if url:
        return url
    root = Path(os.environ.get("COLORIZE_RESULTS_DIR") or PROJECT_ROOT / "results")
    return f"sqlite:///{(root / 'studies' / 'studies.sqlite').resolve()}"


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _sqlite_engine(url: str) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": 120, "check_same_thread": False},
        pool_size=8,
        max_overflow=8,
        pool_timeout=600,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # the driver must not BEGIN on its own; see _on_begin
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=120000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Take the write lock up front: a deferred transaction that reads and then writes can
        # fail at once with SQLITE_BUSY instead of waiting its turn.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def engine_for(url: str | None = None) -> Engine:
    """One engine (connection pool) per URL and process; tables are created on first use."""
    url = url or default_url()
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _sqlite_engine(url) if url.startswith("sqlite") else create_engine(url, pool_pre_ping=True)
            metadata.create_all(engine)
            _engines[url] = engine
        return engine


def _insert(dialect: str):
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        return None
    return insert


@dataclass
class Participant:
    id: str
    study: str
    seq: int
    condition: str
    created_at: float
    finished_at: float | None


@dataclass
class Study:
    name: str
    kind: str
    design: StudyDesign
    status: str
    created_at: float


def _check_name(name) -> str:
    if not valid_name(name):
        raise InvalidArgument(f"study name {name!r}: use 1-63 lowercase letters, digits, '-' or '_'")
    return name


def _check_id(value, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise InvalidArgument(f"{what} must be a non-empty string of at most 64 characters, got {value!r}")
    return value


class StudyStore:
    """All reads and writes of the study pages, the CLI and the analysis go through here."""

    def __init__(self, url: str | None = None):
        if url is not None and not isinstance(url, str):
            raise InvalidArgument(f"database URL must be a string, got {url!r}")
        self.url = url or default_url()
        try:
            self.engine = engine_for(self.url)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise InvalidArgument(f"database URL {self.url!r}: {exc}") from None

    # -- studies -------------------------------------------------------------------------------
    def create_study(self, design: StudyDesign) -> Study:
        if not isinstance(design, StudyDesign):
            raise InvalidArgument(f"create_study needs a StudyDesign, got {type(design).__name__}")
        design.validate()
        try:
            with self.engine.begin() as c:
                c.execute(
                    studies.insert().values(
                        name=design.name,
                        kind=design.kind,
                        design=json.dumps(design.to_dict()),
                        status="draft",
                        created_at=time.time(),
                    )
                )
        except IntegrityError:
            raise StudyExists(f"a study named {design.name!r} exists already; choose another name") from None
        return self.study(design.name)

    def study(self, name: str) -> Study | None:
        """The study, or None if there is none of that name."""
        _check_name(name)
        with self.engine.connect() as c:
            row = c.execute(select(studies).where(studies.c.name == name)).mappings().first()
        if row is None:
            return None
        return Study(row["name"], row["kind"], StudyDesign.from_dict(json.loads(row["design"])), row["status"], row["created_at"])

    def require(self, name: str) -> Study:
        """The study; :class:`UnknownStudy` if there is none of that name."""
        s = self.study(name)
        if s is None:
            raise UnknownStudy(f"no study named {name!r}")
        return s

    def studies(self) -> list[Study]:
        with self.engine.connect() as c:
            names = c.execute(select(studies.c.name).order_by(studies.c.created_at)).scalars().all()
        return [self.study(n) for n in names]

    def set_status(self, name: str, status: str) -> None:
        if status not in STATUSES:
            raise InvalidArgument(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        s = self.require(name)
        if status == "open":
            ready = len(self.ready_photos(name))
            if ready < s.design.photos_needed:
                raise NotEnoughPhotos(s.design.not_enough(ready) + "; prepare the study's images first")
        with self.engine.begin() as c:
            c.execute(update(studies).where(studies.c.name == name).values(status=status))

    def delete_study(self, name: str) -> None:
        self.require(name)
        with self.engine.begin() as c:
            for t in (votes, participants, images, photos):
                c.execute(t.delete().where(t.c.study == name))
            c.execute(studies.delete().where(studies.c.name == name))

    # -- photos and images ---------------------------------------------------------------------
    def _unlocked(self, c, study: str) -> None:
        if c.execute(select(participants.c.id).where(participants.c.study == study).limit(1)).first() is not None:
            raise StudyLocked(
                f"study {study!r} has participants: its images (and so every participant's trials) can no longer change"
            )

    def photo_id(self, study: str, source: str) -> str:
        """The opaque id of ``source`` in ``study`` (created on first use)."""
        self.require(study)
        if not isinstance(source, str) or not source:
            raise InvalidArgument(f"photo source must be a file path, got {source!r}")
        with self.engine.begin() as c:
            pid = c.execute(select(photos.c.id).where(photos.c.study == study, photos.c.source == source)).scalar()
            if pid is None:
                self._unlocked(c, study)
                pid = secrets.token_hex(8)
                c.execute(photos.insert().values(id=pid, study=study, source=source))
        return pid

    def has_image(self, study: str, photo: str, role: str) -> bool:
        _check_name(study)
        with self.engine.connect() as c:
            q = select(images.c.id).where(images.c.study == study, images.c.photo == photo, images.c.role == role)
            return c.execute(q).first() is not None

    def add_image(self, study: str, photo: str, role: str, png: bytes) -> str:
        """Store (or replace) one image; refused once participants have joined."""
        self.require(study)
        _check_id(photo, "photo id")
        _check_id(role, "image role")
        if not isinstance(png, (bytes, bytearray)) or not bytes(png).startswith(b"\x89PNG\r\n\x1a\n"):
            raise InvalidArgument("image must be PNG bytes")
        iid = secrets.token_hex(12)
        with self.engine.begin() as c:
            self._unlocked(c, study)
            if c.execute(select(photos.c.id).where(photos.c.id == photo, photos.c.study == study)).first() is None:
                raise InvalidArgument(f"study {study!r} has no photo {photo!r}; get its id from photo_id()")
            c.execute(images.delete().where(images.c.study == study, images.c.photo == photo, images.c.role == role))
            c.execute(images.insert().values(id=iid, study=study, photo=photo, role=role, png=bytes(png)))
        return iid

    def image_png(self, study: str, photo: str, role: str) -> bytes:
        _check_name(study)
        with self.engine.connect() as c:
            q = select(images.c.png).where(images.c.study == study, images.c.photo == photo, images.c.role == role)
            png = c.execute(q).scalar()
        if png is None:
            raise MissingImage(f"study {study!r}: no {role!r} image for photo {photo!r}; prepare the study's images first")
        return bytes(png)

    def ready_photos(self, study: str) -> list[str]:
        """Photos that have every image the study needs (only these enter trial plans)."""
        s = self.study(study)
        if s is None:
            return []
        need = set(roles_needed(s.design))
        with self.engine.connect() as c:
            rows = c.execute(select(images.c.photo, images.c.role).where(images.c.study == study)).all()
        have: dict[str, set] = {}
        for photo, role in rows:
            have.setdefault(photo, set()).add(role)
        return sorted(p for p, r in have.items() if need <= r)

    def photo_sources(self, study: str) -> dict[str, str]:
        _check_name(study)
        with self.engine.connect() as c:
            return dict(c.execute(select(photos.c.id, photos.c.source).where(photos.c.study == study)).all())

    # -- participants --------------------------------------------------------------------------
    def join(self, study: str) -> Participant:
        """A new participant with a balanced, randomised condition (permuted blocks by join order).
        Only an open study takes participants (:class:`StudyNotOpen`)."""
        s = self.require(study)
        if s.status != "open":
            raise StudyNotOpen(f"study {study!r} is {s.status}, not open: nobody can join")
        for _ in range(50):  # PostgreSQL: two instances may race for the same seq
            try:
                with self.engine.begin() as c:
                    if self.engine.dialect.name == "postgresql":  # serialise joins of one study across instances
                        c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": stable_key(study) & 0x7FFFFFFFFFFFFFFF})
                    seq = c.execute(
                        select(func.coalesce(func.max(participants.c.seq) + 1, 0)).where(participants.c.study == study)
                    ).scalar()
                    pid = secrets.token_urlsafe(16)
                    row = dict(
                        id=pid, study=study, seq=int(seq), condition=condition_for(s.design, int(seq)), created_at=time.time()
                    )
                    c.execute(participants.insert().values(**row))
                return Participant(**row, finished_at=None)
            except IntegrityError:
                time.sleep(0.005 + 0.02 * (secrets.randbelow(1000) / 1000))
        raise RuntimeError("could not register the participant; try again")

    def participant(self, pid: str, study: str | None = None) -> Participant | None:
        """The participant, or None if there is none with that id (in that study)."""
        _check_id(pid, "participant id")
        q = select(participants).where(participants.c.id == pid)
        if study is not None:
            q = q.where(participants.c.study == _check_name(study))
        with self.engine.connect() as c:
            row = c.execute(q).mappings().first()
        return Participant(**row) if row else None

    def require_participant(self, pid: str, study: str | None = None) -> Participant:
        p = self.participant(pid, study)
        if p is None:
            raise UnknownParticipant(f"no participant {pid!r}" + (f" in study {study!r}" if study else ""))
        return p

    def finish(self, pid: str) -> None:
        """Mark the participant as finished (idempotent)."""
        self.require_participant(pid)
        with self.engine.begin() as c:
            c.execute(
                update(participants)
                .where(participants.c.id == pid, participants.c.finished_at.is_(None))
                .values(finished_at=time.time())
            )

    # -- completion codes ----------------------------------------------------------------------
    def _secret(self) -> bytes:
        env = os.environ.get(SECRET_ENV)
        if env:
            return env.encode()
        with self.engine.begin() as c:
            value = c.execute(select(settings.c.value).where(settings.c.key == "completion_secret")).scalar()
            if value is None:
                value = secrets.token_hex(32)
                c.execute(settings.insert().values(key="completion_secret", value=value))
        return value.encode()

    def code_for(self, pid: str) -> str:
        """The completion code of a participant id: HMAC-SHA256 under the server secret, 12
        base-32 characters (60 bits; guessing one is hopeless)."""
        _check_id(pid, "participant id")
        digest = hmac.new(self._secret(), pid.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode()[:12]

    def completion_code(self, pid: str) -> str:
        """The code a participant gets once finished (:class:`StudyNotOpen`-free: a finished
        participant of a closed study still sees it); refused before the last trial."""
        p = self.require_participant(pid)
        if p.finished_at is None:
            raise InvalidArgument(f"participant {pid!r} has not finished; the completion code comes after the last trial")
        return self.code_for(pid)

    def verify_code(self, study: str, code: str) -> Participant | None:
        """The finished participant of ``study`` whose completion code is ``code``, else None."""
        if not isinstance(code, str):
            raise InvalidArgument(f"completion code must be a string, got {code!r}")
        want = code.strip().upper()
        for pid in self.participants_frame(study).query("finished_at.notna()")["id"]:
            if hmac.compare_digest(self.code_for(pid), want):
                return self.participant(pid)
        return None

    # -- votes ---------------------------------------------------------------------------------
    def _check_vote(self, c, participant: Participant, trial: Trial, choice: str, rt_ms) -> None:
        if not isinstance(participant, Participant):
            raise InvalidArgument(f"participant must be a Participant (from join() or participant()), got {participant!r}")
        if not isinstance(trial, Trial):
            raise InvalidArgument(f"trial must be a Trial from the participant's plan, got {trial!r}")
        if choice not in CHOICES:
            raise InvalidVote(f"choice must be one of {', '.join(CHOICES)}, got {choice!r}")
        if rt_ms is not None and (isinstance(rt_ms, bool) or not isinstance(rt_ms, Integral) or not 0 <= rt_ms <= MAX_RT_MS):
            raise InvalidVote(f"rt_ms must be whole milliseconds between 0 and {MAX_RT_MS} (or None), got {rt_ms!r}")
        if isinstance(trial.index, bool) or not isinstance(trial.index, int) or trial.index < 0 or trial.phase not in PHASES:
            raise InvalidVote(f"trial {trial!r}: index must be a whole number >= 0 and phase one of {', '.join(PHASES)}")
        row = (
            c.execute(
                select(participants.c.condition, studies.c.status, studies.c.design, studies.c.name, studies.c.created_at)
                .join(studies, studies.c.name == participants.c.study)
                .where(participants.c.id == _check_id(participant.id, "participant id"))
            )
            .mappings()
            .first()
        )
        if row is None or row["name"] != participant.study:
            raise UnknownParticipant(f"no participant {participant.id!r} in study {participant.study!r}")
        if row["status"] != "open":
            raise StudyNotOpen(f"study {participant.study!r} is {row['status']}: votes are no longer accepted")
        design = StudyDesign.from_dict(json.loads(row["design"]))
        if choice == "tie" and (design.kind != "arena" or not design.allow_tie):
            raise InvalidVote(f"study {participant.study!r} offers no 'tie' answer")
        ready = self._frozen_photos(c, participant.study, row["created_at"], design)
        expected = plan(design, participant.id, row["condition"], ready, upto=trial.index + 1)
        if trial.index >= len(expected) or expected[trial.index] != trial:
            raise InvalidVote(f"trial {trial.index} does not match participant {participant.id!r}'s plan")

    def _frozen_photos(self, c, study: str, created_at: float, design: StudyDesign) -> list[str]:
        # Safe to cache: a study with participants cannot change its images (StudyLocked).
        key = (study, created_at)
        cache = self.__dict__.setdefault("_photo_cache", {})
        if key not in cache:
            need = set(roles_needed(design))
            have: dict[str, set] = {}
            for photo, role in c.execute(select(images.c.photo, images.c.role).where(images.c.study == study)).all():
                have.setdefault(photo, set()).add(role)
            cache[key] = sorted(p for p, r in have.items() if need <= r)
        return cache[key]

    def record_vote(self, participant: Participant, trial: Trial, choice: str, rt_ms: int | None = None) -> bool:
        """Commit one answer atomically. True if stored now, False if this trial was answered
        before (replay, double-click, second tab): the first answer stands. Raises
        :class:`StudyNotOpen` once the study is closed, :class:`InvalidVote` for a choice, time
        or trial that does not fit, :class:`UnknownParticipant` for an unknown participant."""
        with self.engine.begin() as c:
            self._check_vote(c, participant, trial, choice, rt_ms)
            row = dict(
                study=participant.study,
                participant=participant.id,
                trial=int(trial.index),
                phase=trial.phase,
                photo=trial.photo,
                left=trial.left,
                right=trial.right,
                choice=choice,
                rt_ms=None if rt_ms is None else int(rt_ms),
                created_at=time.time(),
            )
            insert = _insert(self.engine.dialect.name)
            if insert is not None:  # RETURNING: rowcount is not reliable across drivers
                stmt = (
                    insert(votes)
                    .values(**row)
                    .on_conflict_do_nothing(index_elements=["participant", "trial"])
                    .returning(votes.c.id)
                )
                return c.execute(stmt).first() is not None
        try:  # other databases: rely on the unique constraint
            with self.engine.begin() as c:
                c.execute(votes.insert().values(**row))
            return True
        except IntegrityError:
            return False

    def answers(self, pid: str) -> dict[int, str]:
        """trial index -> choice of one participant."""
        self.require_participant(pid)
        with self.engine.connect() as c:
            return dict(c.execute(select(votes.c.trial, votes.c.choice).where(votes.c.participant == pid)).all())

    # -- analysis ------------------------------------------------------------------------------
    def votes_frame(self, study: str) -> pd.DataFrame:
        """Every vote with its participant's condition (one row per participant and trial)."""
        _check_name(study)
        q = (
            select(votes, participants.c.condition, participants.c.seq)
            .join(participants, participants.c.id == votes.c.participant)
            .where(votes.c.study == study)
            .order_by(votes.c.id)
        )
        with self.engine.connect() as c:
            df = pd.DataFrame(c.execute(q).mappings().all())
        cols = [c.name for c in votes.columns] + ["condition", "seq"]
        return df if len(df) else pd.DataFrame(columns=cols)

    def participants_frame(self, study: str) -> pd.DataFrame:
        _check_name(study)
        with self.engine.connect() as c:
            df = pd.DataFrame(
                c.execute(select(participants).where(participants.c.study == study).order_by(participants.c.seq)).mappings().all()
            )
        return df if len(df) else pd.DataFrame(columns=[c.name for c in participants.columns])
