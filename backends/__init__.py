"""Method registry: ``backends.load(name, device)`` -> an object with ``.colorize(image, reference=None)``.

Methods are imported lazily, so TensorFlow is imported only when the Keras ``regression``
backend loads. Unknown names raise ``ValueError`` listing the known ones; a method that cannot
run raises :class:`BackendUnavailable` with the reason and the fix.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .base import Colorizer, resolve_device
from .errors import (
    BackendUnavailable,
    CheckpointError,
    ColorizationError,
    ImageError,
    ReferenceRequired,
    WeightsUnavailable,
)

#: name -> (module, class). Adding a method = adding one module and one line here.
METHODS: dict[str, tuple[str, str]] = {
    "regression": ("backends.regression", "RegressionColorizer"),
    "classification": ("backends.classification", "ClassificationColorizer"),
    "fusion": ("backends.fusion", "FusionColorizer"),
    "gan": ("backends.gan", "GANColorizer"),
    "neural_style": ("backends.neural_style", "NeuralStyleColorizer"),
}

__all__ = [
    "METHODS",
    "BackendUnavailable",
    "CheckpointError",
    "ColorizationError",
    "Colorizer",
    "ImageError",
    "ReferenceRequired",
    "Status",
    "WeightsUnavailable",
    "default_checkpoint",
    "load",
    "method_class",
    "names",
    "resolve_device",
    "status",
]


def names() -> list[str]:
    return list(METHODS)


def _check_name(name: str) -> None:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")


def method_class(name: str) -> type[Colorizer]:
    """The backend class of ``name`` (imports its module; optional dependencies may be missing)."""
    _check_name(name)
    module, cls = METHODS[name]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise BackendUnavailable(
            f"{name}: needs the Python package '{exc.name}', which is not installed; "
            f"fix: pip install -r requirements.txt"
        ) from None


def default_checkpoint(name: str) -> Path:
    return method_class(name).default_checkpoint()


def load(name: str, device: str = "auto", checkpoint: str | Path | None = None, **options) -> Colorizer:
    """Load method ``name`` ready to colorize (shipped checkpoint unless ``checkpoint`` is given).

    ``options`` override the method's inference options (e.g. ``temperature`` for classification).
    """
    cls = method_class(name)
    device = resolve_device(device)
    return cls.open(checkpoint=checkpoint, device=device, **options)


@dataclass
class Status:
    name: str
    available: bool
    reason: str
    checkpoint: str | None = None


def status(name: str) -> Status:
    """Whether ``name`` can run here, without loading its model."""
    try:
        cls = method_class(name)
        ok, reason, ckpt = cls.availability()
    except ColorizationError as exc:
        return Status(name, False, str(exc))
    return Status(name, ok, reason, ckpt)
