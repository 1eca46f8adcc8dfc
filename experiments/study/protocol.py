"""Study designs, balanced condition assignment and per-participant trial plans.

Turing test (Zhang, Isola & Efros, ECCV 2016, Sec. 4.1): each participant is assigned ONE
method (between-subjects), sees a few practice pairs with feedback, then ``trials`` pairs of
the real photo and that method's colorization of it side by side in random order and answers
"which one is fake?". Vigilance trials pair the real photo with an obviously wrong recolouring;
failing more than ``vigilance_max_fail`` of them excludes the participant from the analysis.
Fool rate = share of main trials where the participant picked the real photo as fake; a perfect
colorizer scores 50 %.

Arena: "which colorization looks more natural?" between two methods on the same photo, the pair
drawn uniformly at random (sides random too), with a tie option; rated by Bradley-Terry.

Everything random is a pure function of the study seed and the participant id, so a reload (or
another app instance) rebuilds exactly the same plan, and the seed recorded with the study
reproduces every participant's trials.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

KINDS = ("turing", "arena")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: Image roles: the real photo, the obviously wrong recolouring, otherwise a method name.
REAL = "real"
VIGILANCE = "vigilance"
PHASES = ("practice", "main", "vigilance")


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
        if not NAME_RE.match(self.name or ""):
            raise ValueError(f"study name {self.name!r}: use 1-63 lowercase letters, digits, '-' or '_'")
        if self.kind not in KINDS:
            raise ValueError(f"unknown study kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if len(set(self.methods)) != len(self.methods) or not self.methods:
            raise ValueError("choose at least one method, each once")
        if self.kind == "arena" and len(self.methods) < 2:
            raise ValueError("an arena needs at least two methods")
        if any(m in (REAL, VIGILANCE) for m in self.methods):
            raise ValueError(f"'{REAL}' and '{VIGILANCE}' are reserved names")
        if self.kind == "turing" and self.trials < 1:
            raise ValueError("trials per participant must be at least 1")
        if self.trials < 0 or self.practice < 0 or self.vigilance_max_fail < 0:
            raise ValueError("trial counts cannot be negative")
        if not 0.0 <= self.vigilance < 1.0:
            raise ValueError("vigilance share must be in [0, 1)")
        if self.display_ms < 0:
            raise ValueError("display time cannot be negative (0 = unlimited)")
        if not 32 <= self.size <= 1024:
            raise ValueError("image size must be between 32 and 1024 px")
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


def _draw(rng: np.random.Generator, items: list[str], k: int) -> list[str]:
    """``k`` items, without repetition until every item has been used once."""
    out: list[str] = []
    while len(out) < k and items:
        out.extend(items[i] for i in rng.permutation(len(items)))
    return out[:k]


def turing_plan(design: StudyDesign, participant: str, condition: str, photos: list[str]) -> list[Trial]:
    """Practice trials (index 0..practice-1), then scored trials with vigilance trials mixed in."""
    photos = sorted(photos)
    if not photos:
        raise ValueError(f"study {design.name!r} has no prepared photos")
    rng = rng_for(design.seed, "turing", participant)
    n_main, n_vig = design.trials, design.n_vigilance
    drawn = _draw(rng, photos, design.practice + n_main)
    practice, main = drawn[n_main:], drawn[:n_main]
    if len(photos) > n_main:  # practice photos differ from scored ones when the set allows it
        rest = [p for p in photos if p not in set(main)]
        practice = _draw(rng, rest, design.practice)
    vig_photos = _draw(rng, photos, n_vig)
    seq: list[tuple[str, str, str]] = [("main", p, condition) for p in main]
    for pos, p in zip(sorted(rng.choice(n_main + n_vig, n_vig, replace=False).tolist()), vig_photos):
        seq.insert(pos, ("vigilance", p, VIGILANCE))
    trials = []
    for i, (phase, photo, fake) in enumerate([("practice", p, condition) for p in practice] + seq):
        pair = (REAL, fake) if rng.random() < 0.5 else (fake, REAL)
        trials.append(Trial(i, phase, photo, *pair))
    return trials


def arena_trial(design: StudyDesign, participant: str, index: int, photos: list[str]) -> Trial:
    """Comparison ``index`` of a participant: a uniformly random pair of distinct methods (random
    sides) on a random photo."""
    photos = sorted(photos)
    if not photos:
        raise ValueError(f"study {design.name!r} has no prepared photos")
    rng = rng_for(design.seed, "arena", participant, index)
    a, b = rng.choice(len(design.methods), 2, replace=False)
    photo = photos[int(rng.integers(len(photos)))]
    return Trial(index, "main", photo, design.methods[int(a)], design.methods[int(b)])


def plan(design: StudyDesign, participant: str, condition: str, photos: list[str], upto: int | None = None) -> list[Trial]:
    """All trials of a participant (arena with unlimited trials: the first ``upto``)."""
    if design.kind == "turing":
        return turing_plan(design, participant, condition, photos)
    n = design.trials or (upto if upto is not None else 0)
    return [arena_trial(design, participant, i, photos) for i in range(n)]


def roles_needed(design: StudyDesign) -> list[str]:
    """Image roles every photo needs before the study can run."""
    if design.kind == "turing":
        return [REAL, VIGILANCE, *design.methods]
    return list(design.methods)
