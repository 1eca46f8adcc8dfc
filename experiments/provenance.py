"""Which checkpoints a committed table or grid was made from, and whether they still ship.

``experiments.evaluate`` records, in its JSON sidecar (``made_from``), the path and SHA-256 of the
checkpoint behind every method's rows; ``experiments.grid`` does the same beside the grid
(``results/sample_grid.json``). :func:`stale` compares such a record with the checkpoints in
``results/checkpoints`` now: a table made from a checkpoint that has since been replaced says so
(``python -m experiments.readme --check``, the Metrics page, the report), instead of passing old
numbers off as the shipped model's.
"""

from __future__ import annotations

from pathlib import Path

from backends.base import CHECKPOINT_DIR, PROJECT_ROOT
from backends.weights import sha256_of

#: What a shipped checkpoint's weights file ends with (PyTorch backends, the Keras regression).
CHECKPOINT_SUFFIXES = (".pt", ".keras")


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def checkpoint_record(model) -> dict:
    """``{"checkpoint": path relative to the project (or absolute), "sha256": ...}`` of a loaded
    colorizer; ``{"checkpoint": None}`` for a method without one (neural_style, the oracles)."""
    path = getattr(model, "checkpoint", None)
    if not path or not Path(path).is_file():
        return {"checkpoint": None}
    return {"checkpoint": _rel(Path(path)), "sha256": sha256_of(path)}


def shipped() -> dict[str, Path]:
    """method -> its shipped checkpoint file, for every model card in ``results/checkpoints``."""
    out = {}
    for card in sorted(CHECKPOINT_DIR.glob("*.json")):  # the weights beside the card (.pt, .keras): no backend imported
        files = [p for p in sorted(CHECKPOINT_DIR.glob(f"{card.stem}.*")) if p.suffix in CHECKPOINT_SUFFIXES]
        if files:
            out[card.stem] = files[0]
    return out


def stale(made_from: dict | None, what: str, methods: dict[str, Path] | None = None) -> list[str]:
    """One line per shipped method whose rows in ``what`` were not made from the checkpoint that
    ships now (or cannot be shown to have been); ``[]`` when all of them were."""
    methods = shipped() if methods is None else methods
    if not methods:
        return []
    if not isinstance(made_from, dict):
        return [f"{what} does not record the checkpoints it was made from (made before they were recorded); "
                f"regenerate it: python -m experiments.readme --refresh"]  # fmt: skip
    out = []
    digests: dict[Path, str] = {}
    for name, path in methods.items():
        rec = made_from.get(name)
        if not isinstance(rec, dict) or not rec.get("checkpoint"):
            out.append(f"{what}: no {name} rows made from a checkpoint (the shipped one is {_rel(path)})")
            continue
        if rec["checkpoint"] != _rel(path):
            out.append(f"{what}: {name} rows were made from {rec['checkpoint']}, not the shipped {_rel(path)}")
            continue
        digest = digests.setdefault(path, sha256_of(path))
        if rec.get("sha256") != digest:
            out.append(f"{what}: {name} rows were made from an earlier {_rel(path)} (sha256 {str(rec.get('sha256'))[:12]}); "
                       f"the shipped one is {digest[:12]}")  # fmt: skip
    return out


def describe(made_from: dict | None) -> tuple[str, bool]:
    """One sentence naming the checkpoint behind each method's rows, and whether any of them has
    been replaced or removed since (the Metrics page warns, the report says so)."""
    if not isinstance(made_from, dict):
        return "Which checkpoints made these rows is not recorded (an evaluation from before it was).", False
    parts, changed = [], []
    for name, rec in made_from.items():
        path = rec.get("checkpoint") if isinstance(rec, dict) else None
        if not path:
            continue
        file = Path(path) if Path(path).is_absolute() else PROJECT_ROOT / path
        state = ""
        if not file.is_file():
            state = " - since removed"
        elif sha256_of(file) != rec.get("sha256"):
            state = " - since replaced"
        if state:
            changed.append(name)
        parts.append(f"{name} {path} ({str(rec.get('sha256'))[:8]}{state})")
    if not parts:
        return "No method here reads a checkpoint.", False
    text = "Made from: " + "; ".join(parts) + "."
    if changed:
        text += f" The rows of {', '.join(changed)} are not the model at that path now: evaluate again to compare it."
    return text, bool(changed)
