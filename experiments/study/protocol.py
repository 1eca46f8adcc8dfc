"""Study designs, balanced condition assignment and per-participant trial plans.

Turing test (Zhang, Isola & Efros, ECCV 2016, Sec. 4.1): each participant is assigned ONE
method (between-subjects), sees a few practice pairs with feedback, then ``trials`` pairs of
the real photo and that method's colorization of it side by side in random order and answers
"which one is fake?". Vigilance trials pair the real photo with an obviously wrong recolouring;
failing more than ``vigilance_max_fail`` of them excludes the participant from the analysis.
Fool rate = share of main trials where the participant picked the real photo as fake; a perfect
colorizer scores 50 %.

Sampling within a participant: every photo is used at most once (practice, scored and vigilance
photos are all different - a photo seen with feedback, or as an obvious vigilance fake, would
give its scored trial away), so a Turing study needs ``practice + trials + vigilance`` photos.
The fake's side is a fair coin per trial (no pattern to learn from the practice feedback).

Arena: "which colorization looks more natural?" between two methods on the same photo. Method
pairs come in shuffled blocks of all pairs, and each pair's sides alternate between blocks, so
every participant sees each pair and each side equally often (within one); photos are drawn
without replacement (reshuffled only once all are used), and no trial repeats the previous
trial's photo or method pair. Rated by Bradley-Terry.

Everything random is a pure function of the study seed and the participant id, so a reload (or
another app instance) rebuilds exactly the same plan, and the seed recorded with the study
reproduces every participant's trials.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

from .errors import InvalidDesign, NotEnoughPhotos

KINDS = ("turing", "arena")
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
METHOD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
#: Image roles: the real photo, the obviously wrong recolouring, otherwise a method name.
REAL = "real"
VIGILANCE = "vigilance"
PHASES = ("practice", "main", "vigilance")
MAX_TRIALS = 10_000


def valid_name(name) -> bool:
    """A study name: 1-63 lowercase letters, digits, '-' or '_' (the whole string)."""
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


def _int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidDesign(f"{name} must be a whole number, got {value!r}")
    if not lo <= int(value) <= hi:
        raise InvalidDesign(f"{name} must be between {lo} and {hi}, got {value}")
    return int(value)


@dataclass
class StudyDesign:
    """What the study designer sets. Defaults follow Zhang et al.'s protocol."""

    name: str
    methods: list[str]
    kind: str = "turing"
    #: Photo files (paths); the designer samples them from a folder.
    photos: list[str] = field(default_factory=list)
    #: Scored trials per participant (turing) or comparisons per participant (arena; 0 = unlimited).
    trials: int = 40
    practice: int = 10
    #: Vigilance trials as a share of the scored trials, interleaved at random positions.
    vigilance: float = 0.10
    #: A participant failing more vigilance trials than this is excluded.
    vigilance_max_fail: int = 0
    #: 0 = images stay on screen; otherwise they are hidden on the client after this many ms.
    display_ms: int = 0
    #: Side of the square images shown (centre crop, then resize).
    size: int = 256
    seed: int = 0
    #: Arena only: offer "can't tell" (recorded as a tie).
    allow_tie: bool = True

    def validate(self) -> StudyDesign:
        """Check every field (types included); raises :class:`InvalidDesign` naming the field."""
        if not valid_name(self.name):
            raise InvalidDesign(f"study name {self.name!r}: use 1-63 lowercase letters, digits, '-' or '_'")
        if self.kind not in KINDS:
            raise InvalidDesign(f"unknown study kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if not isinstance(self.methods, (list, tuple)) or not self.methods:
            raise InvalidDesign("methods: choose at least one method")
        for m in self.methods:
            if not isinstance(m, str) or not METHOD_RE.fullmatch(m):
                raise InvalidDesign(f"method name {m!r}: use letters, digits, '.', '-' or '_'")
        if len(set(self.methods)) != len(self.methods):
            raise InvalidDesign("methods: each method once")
        if self.kind == "arena" and len(self.methods) < 2:
            raise InvalidDesign("an arena needs at least two methods")
        if any(m in (REAL, VIGILANCE) for m in self.methods):
            raise InvalidDesign(f"'{REAL}' and '{VIGILANCE}' are reserved names")
        if not isinstance(self.photos, (list, tuple)) or not all(isinstance(p, str) for p in self.photos):
            raise InvalidDesign("photos must be a list of file paths")
        if len(set(self.photos)) != len(self.photos):
            raise InvalidDesign("photos: each file once")
        _int("trials", self.trials, 1 if self.kind == "turing" else 0, MAX_TRIALS)
        _int("practice", self.practice, 0, 1000)
        _int("vigilance_max_fail", self.vigilance_max_fail, 0, MAX_TRIALS)
        _int("display_ms", self.display_ms, 0, 600_000)
        _int("size", self.size, 32, 1024)
        _int("seed", self.seed, 0, 2**63 - 1)
        if isinstance(self.vigilance, bool) or not isinstance(self.vigilance, Real) or not 0.0 <= self.vigilance < 1.0:
            raise InvalidDesign(f"vigilance must be a share in [0, 1), got {self.vigilance!r}")
        if not isinstance(self.allow_tie, bool):
            raise InvalidDesign(f"allow_tie must be true or false, got {self.allow_tie!r}")
        if self.photos and len(self.photos) < self.photos_needed:
            raise NotEnoughPhotos(self.not_enough(len(self.photos), "photos"))
        return self

    @property
    def n_vigilance(self) -> int:
        return int(round(self.trials * self.vigilance)) if self.kind == "turing" else 0

    @property
    def total_trials(self) -> int:
        """Trials a participant answers, practice included (arena: 0 = unlimited)."""
        if self.kind == "arena":
            return self.trials
        return self.practice + self.trials + self.n_vigilance

    @property
    def photos_needed(self) -> int:
        """Photos one participant uses (each at most once): Turing practice + scored + vigilance;
        an arena runs with any number (photos are reshuffled once all were used)."""
        return self.total_trials if self.kind == "turing" else 1

    def not_enough(self, have: int, what: str = "prepared photos") -> str:
        return (
            f"study {self.name!r} needs at least {self.photos_needed} {what} (practice {self.practice} + "
            f"scored {self.trials} + vigilance {self.n_vigilance}; each photo at most once per participant), has {have}"
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StudyDesign:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Trial:
    """One screen: ``left`` and ``right`` are image roles (``real``, ``vigilance`` or a method)."""

    index: int
    phase: str
    photo: str
    left: str
    right: str

    @property
    def fake_side(self) -> str | None:
        """Turing trials: the side holding the colorized (or recoloured) image."""
        if self.left == REAL:
            return "right"
        if self.right == REAL:
            return "left"
        return None

    @property
    def real_side(self) -> str | None:
        """Turing trials: the side holding the real photo."""
        return {"left": "right", "right": "left"}.get(self.fake_side or "")


def stable_key(*parts) -> int:
    """A stable 64-bit integer from strings/ints (Python's hash() is salted per process)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little")


def rng_for(seed: int, *parts) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stable_key(*parts)])


def condition_for(design: StudyDesign, seq: int) -> str:
    """Condition of the ``seq``-th participant (0-based): permuted blocks, so after every
    ``len(methods)`` participants each method has exactly one more, and the order within a block
    is random (seeded)."""
    if design.kind == "arena":
        return "arena"
    n = len(design.methods)
    perm = rng_for(design.seed, "block", seq // n).permutation(n)
    return design.methods[int(perm[seq % n])]


def turing_plan(design: StudyDesign, participant: str, condition: str, photos: list[str]) -> list[Trial]:
    """Practice trials (index 0..practice-1), then scored trials with vigilance trials mixed in.
    Every trial has its own photo; raises :class:`NotEnoughPhotos` when there are too few."""
    photos = sorted(photos)
    if len(photos) < design.photos_needed:
        raise NotEnoughPhotos(design.not_enough(len(photos)))
    rng = rng_for(design.seed, "turing", participant)
    n_prac, n_main, n_vig = design.practice, design.trials, design.n_vigilance
    drawn = [photos[i] for i in rng.permutation(len(photos))[: n_prac + n_main + n_vig]]
    practice, main, vig = drawn[:n_prac], drawn[n_prac : n_prac + n_main], drawn[n_prac + n_main :]
    seq: list[tuple[str, str, str]] = [("main", p, condition) for p in main]
    for pos, p in zip(sorted(rng.choice(n_main + n_vig, n_vig, replace=False).tolist()), vig):
        seq.insert(pos, ("vigilance", p, VIGILANCE))
    trials = []
    for i, (phase, photo, fake) in enumerate([("practice", p, condition) for p in practice] + seq):
        pair = (REAL, fake) if rng.random() < 0.5 else (fake, REAL)
        trials.append(Trial(i, phase, photo, *pair))
    return trials


def _photo_stream(rng: np.random.Generator, photos: list[str], n: int) -> list[str]:
    """``n`` photos without replacement, reshuffled once all were used; a reshuffle never starts
    with the photo that ended the previous round."""
    out: list[str] = []
    while len(out) < n:
        order = [photos[i] for i in rng.permutation(len(photos))]
        if out and len(order) > 1 and order[0] == out[-1]:
            order[0], order[1] = order[1], order[0]
        out.extend(order)
    return out[:n]


def arena_plan(design: StudyDesign, participant: str, photos: list[str], n: int) -> list[Trial]:
    """The first ``n`` comparisons of a participant: method pairs in shuffled blocks of all pairs,
    each pair's sides flipping from block to block, photos without replacement."""
    photos = sorted(photos)
    if not photos:
        raise NotEnoughPhotos(f"study {design.name!r} has no prepared photos")
    # Two streams, so the first k trials are the same whatever n is (a reload, a longer plan).
    rng, photo_rng = rng_for(design.seed, "arena", participant), rng_for(design.seed, "arena-photos", participant)
    methods = list(design.methods)
    pairs = list(itertools.combinations(range(len(methods)), 2))
    first_flip = rng.integers(2, size=len(pairs))
    order: list[tuple[int, int]] = []
    block = 0
    while len(order) < n:
        ks = [int(k) for k in rng.permutation(len(pairs))]
        if order and len(ks) > 1 and set(pairs[ks[0]]) == set(order[-1]):
            ks[0], ks[1] = ks[1], ks[0]
        for k in ks:
            a, b = pairs[k]
            order.append((b, a) if (first_flip[k] + block) % 2 else (a, b))
        block += 1
    stream = _photo_stream(photo_rng, photos, n)
    return [Trial(i, "main", stream[i], methods[a], methods[b]) for i, (a, b) in enumerate(order[:n])]


def arena_trial(design: StudyDesign, participant: str, index: int, photos: list[str]) -> Trial:
    """Comparison ``index`` of a participant (see :func:`arena_plan`)."""
    return arena_plan(design, participant, photos, index + 1)[index]


def plan(design: StudyDesign, participant: str, condition: str, photos: list[str], upto: int | None = None) -> list[Trial]:
    """All trials of a participant (arena with unlimited trials: the first ``upto``)."""
    if design.kind == "turing":
        return turing_plan(design, participant, condition, photos)
    n = design.trials or (upto if upto is not None else 0)
    return arena_plan(design, participant, photos, n) if n else []


def roles_needed(design: StudyDesign) -> list[str]:
    """Image roles every photo needs before the study can run."""
    if design.kind == "turing":
        return [REAL, VIGILANCE, *design.methods]
    return list(design.methods)
