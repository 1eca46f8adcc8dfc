"""Method registry: ``backends.load(name, device)`` -> an object with ``.colorize(image, reference=None)``.

Methods are imported lazily, so TensorFlow is imported only when the Keras ``regression``
backend loads. Unknown names raise ``ValueError`` listing the known ones; a method that cannot
run raises :class:`BackendUnavailable` with the reason and the fix.

Besides the built-in methods, methods from outside register without editing this project: an
entry point of the group ``colorization_workbench.methods``, ``COLORIZE_METHODS`` or a methods
file (see :mod:`backends.registry`). Every method declares itself with a :class:`MethodInfo`
(``describe(name)``): description, paper, reference use, speed and options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import registry, threads  # noqa: F401 - threads: passive OpenMP waiting, set before any method loads PyTorch
from .base import Colorizer, resolve_device
from .errors import (
    BackendUnavailable,
    CheckpointError,
    ColorizationError,
    ImageError,
    ReferenceRequired,
    WeightsUnavailable,
)
from .registry import ENTRY_POINT_GROUP, MethodInfo, MethodTable, Option, PluginColorizer, discover, info_of, problems

#: Live view name -> (module, class) of every registered method (built-in first, then from outside).
#: A built-in method is one module and one line in ``registry.BUILTIN``; others need no edit here.
METHODS = MethodTable()

__all__ = [
    "ENTRY_POINT_GROUP",
    "METHODS",
    "MethodInfo",
    "Option",
    "PluginColorizer",
    "BackendUnavailable",
    "CheckpointError",
    "ColorizationError",
    "Colorizer",
    "ImageError",
    "ReferenceRequired",
    "Status",
    "WeightsUnavailable",
    "builtin_names",
    "default_checkpoint",
    "describe",
    "load",
    "method_class",
    "names",
    "problems",
    "resolve_device",
    "source",
    "status",
]


def names(speed: str | None = None) -> list[str]:
    """Every registered method (``speed="fast"``/``"slow"``: only those of that kind)."""
    if speed is None:
        return list(METHODS)
    return [n for n in METHODS if describe(n).speed == speed]


def builtin_names() -> list[str]:
    return [n for n, e in discover().items() if e.builtin]


def _check_name(name: str) -> None:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")


def method_class(name: str) -> type[Colorizer]:
    """The backend class of ``name`` (imports its module; optional dependencies may be missing)."""
    _check_name(name)
    entry = discover()[name]
    try:
        return registry.resolve(entry)
    except ImportError as exc:
        if entry.builtin:
            raise BackendUnavailable(
                f"{name}: needs the Python package '{exc.name}', which is not installed; "
                f"fix: pip install -r requirements.txt"
            ) from None
        raise BackendUnavailable(
            f"{name}: {entry.target} ({entry.source}) could not be imported: {exc}; "
            f"fix: install what it needs, or correct the registration"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a broken method from outside must not break the others
        raise BackendUnavailable(f"{name}: {entry.target} ({entry.source}) could not be loaded: {type(exc).__name__}: {exc}") from None


def describe(name: str) -> MethodInfo:
    """The declaration of ``name``; for a method that cannot be imported, a stand-in saying why."""
    _check_name(name)
    try:
        info = info_of(method_class(name))
    except ColorizationError as exc:
        return MethodInfo(name, f"cannot be loaded: {str(exc).splitlines()[0][:150]}")
    return info if info is not None else MethodInfo(name, "(no description declared)")


def source(name: str) -> str:
    """Where ``name`` comes from: "built-in", "entry point of <dist>", "COLORIZE_METHODS" or a methods file."""
    _check_name(name)
    return discover()[name].source


def default_checkpoint(name: str) -> Path:
    return method_class(name).default_checkpoint()


def load(name: str, device: str = "auto", checkpoint: str | Path | None = None, **options) -> Colorizer:
    """Load method ``name`` ready to colorize (shipped checkpoint unless ``checkpoint`` is given).

    ``options`` override the method's inference options (e.g. ``temperature`` for classification).
    """
    cls = method_class(name)
    info = info_of(cls)
    if info is not None:
        options = info.check_options(options)  # ValueError naming the option and its range
    device = resolve_device(device)
    if hasattr(cls, "open"):
        return cls.open(checkpoint=checkpoint, device=device, **options)
    return cls(device=device, **options)  # a plain class with ``info`` and ``colorize``


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
        if not hasattr(cls, "availability"):
            return Status(name, True, "ready")
        ok, reason, ckpt = cls.availability()
    except ColorizationError as exc:
        return Status(name, False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a method from outside whose check fails
        return Status(name, False, f"{name}: availability check failed: {type(exc).__name__}: {exc}")
    return Status(name, ok, reason, ckpt)
