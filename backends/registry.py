"""What a method declares about itself, and where methods come from.

Every method - the built-in ones and any method from outside - carries one :class:`MethodInfo`
as the class attribute ``method_info``: its name, a one-line description, its paper,
whether it uses a colour reference photo, whether it is a fast feed-forward method or optimises
each photo, and its inference options (:class:`Option`: type, range, default). The pages render
their option widgets from these declarations, the benchmark reads its method kinds from them, and
``backends.load`` checks option values against them.

Methods are found in four places, in this order (a name taken earlier wins; a clash is reported):

1. the built-in methods (:data:`BUILTIN`);
2. Python entry points of the group ``colorization_workbench.methods`` of any installed
   distribution (``name = "package.module:Class"`` in its ``pyproject.toml``);
3. ``COLORIZE_METHODS``: comma-separated ``[name=]target`` items;
4. a methods file (``COLORIZE_METHODS_FILE``, else ``~/.config/colorization-workbench/methods.toml``)
   with a ``[methods]`` table of ``name = "target"``.

A target is ``package.module:Class``, ``package.module`` (every class in it that declares a
``method_info``), ``/path/to/file.py[:Class]``, or a checkpoint file of a built-in method
(``results/runs/<run>/model.pt``: a run's model, a GPU round's import; relative paths from the
project folder too) with its provenance file beside it (``model.json``): that method with that
checkpoint, under its own name (unnamed: the run folder's), so a second model of one method sits
beside the shipped one on every page, in the evaluation and the studies. A target that cannot be imported stays listed, as
unavailable with the reason, so a broken plugin never takes the app down.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import stat
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import tomllib

from .base import PROJECT_ROOT, Colorizer, resolve_device

ENTRY_POINT_GROUP = "colorization_workbench.methods"
ENV_METHODS = "COLORIZE_METHODS"
ENV_METHODS_FILE = "COLORIZE_METHODS_FILE"
DEFAULT_METHODS_FILE = Path("~/.config/colorization-workbench/methods.toml")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
OPTION_TYPES = ("float", "int", "bool", "choice", "str")
REFERENCE_MODES = ("none", "optional", "required")
SPEEDS = ("fast", "slow")

#: The built-in methods: name -> import target.
BUILTIN: dict[str, str] = {
    "regression": "backends.regression:RegressionColorizer",
    "classification": "backends.classification:ClassificationColorizer",
    "fusion": "backends.fusion:FusionColorizer",
    "koalarization": "backends.fusion:KoalarizationColorizer",
    "gan": "backends.gan:GANColorizer",
    "neural_style": "backends.neural_style:NeuralStyleColorizer",
    "zhang_eccv16": "backends.zhang_published:ZhangECCV16",
    "zhang_siggraph17": "backends.zhang_published:ZhangSIGGRAPH17",
}


# --- declarations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One inference option: what the pages show as a widget and ``backends.load`` accepts."""

    name: str
    type: str = "float"  # float | int | bool | choice | str
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple = ()
    label: str = ""
    help: str = ""

    def __post_init__(self):
        if not re.match(r"^[a-z_][a-z0-9_]*$", self.name):
            raise ValueError(f"option name {self.name!r}: use lower-case letters, digits and _")
        if self.type not in OPTION_TYPES:
            raise ValueError(f"option {self.name}: type {self.type!r} is not one of {', '.join(OPTION_TYPES)}")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"option {self.name}: a choice needs choices")
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.default is not None:
            self.coerce(self.default, "")  # the default must itself be valid

    def coerce(self, value: Any, method: str = "") -> Any:
        """``value`` as this option's type, inside its range; ``ValueError`` naming both otherwise."""
        where = f"{method}: option {self.name}" if method else f"option {self.name}"
        try:
            if self.type == "bool":
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError
                    return value.lower() in ("true", "1", "yes")
                return bool(value)
            if self.type == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                v: Any = int(value)
            elif self.type == "float":
                v = float(value)
            elif self.type == "choice":
                if value not in self.choices:
                    raise ValueError
                return value
            else:
                return str(value)
        except (TypeError, ValueError):
            expected = f"one of {', '.join(map(str, self.choices))}" if self.type == "choice" else f"a {self.type}"
            raise ValueError(f"{where}: {value!r} is not {expected}") from None
        if self.min is not None and v < self.min:
            raise ValueError(f"{where}: {v} is below the minimum {self.min}")
        if self.max is not None and v > self.max:
            raise ValueError(f"{where}: {v} is above the maximum {self.max}")
        return v

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "", ())}


@dataclass(frozen=True)
class MethodInfo:
    """A method's declaration (the class attribute ``method_info`` of every method)."""

    name: str
    #: One line: what the method does (the pages' method tables show it).
    description: str
    #: The paper it follows ("Authors, Title, Venue Year"), and a link.
    paper: str = ""
    url: str = ""
    #: Colour reference photo: "none", "optional" (picked automatically when not given) or "required".
    reference: str = "none"
    #: "fast": one forward pass; "slow": optimises each photo (the benchmark times it less often).
    speed: str = "fast"
    framework: str = ""
    options: tuple[Option, ...] = ()

    def __post_init__(self):
        if not NAME_RE.match(self.name or ""):
            raise ValueError(f"method name {self.name!r}: 1-40 lower-case letters, digits and _, starting with a letter")
        if not self.description or "\n" in self.description or len(self.description) > 200:
            raise ValueError(f"{self.name}: description must be one line of at most 200 characters")
        if self.reference not in REFERENCE_MODES:
            raise ValueError(f"{self.name}: reference {self.reference!r} is not one of {', '.join(REFERENCE_MODES)}")
        if self.speed not in SPEEDS:
            raise ValueError(f"{self.name}: speed {self.speed!r} is not one of {', '.join(SPEEDS)}")
        opts = tuple(o if isinstance(o, Option) else Option(**o) for o in self.options)
        if len({o.name for o in opts}) != len(opts):
            raise ValueError(f"{self.name}: option names must be unique")
        object.__setattr__(self, "options", opts)

    @property
    def needs_reference(self) -> bool:
        return self.reference == "required"

    @property
    def uses_reference(self) -> bool:
        return self.reference != "none"

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options if o.default is not None}

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Declared options coerced and range-checked; others pass through (a method may accept
        more settings than it shows, e.g. any field of its Config)."""
        out = {}
        for k, v in options.items():
            o = self.option(k)
            out[k] = o.coerce(v, self.name) if o is not None else v
        return out

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "options"}
        d["options"] = [o.to_dict() for o in self.options]
        return d


def keep_aspect_option(label: str, gain: str = "", measured: str | None = None) -> Option:
    """The ``keep_aspect`` box of a method whose config has it (:func:`backends.base.aspect_kept_shape`):
    ``label`` as Compare shows it, ``gain`` its measured rebalanced-AuC gain for the help text, or
    ``measured`` a whole sentence saying what was measured instead."""
    measured = measured or ("On 400 hold-out validation photos cut to 3:2 / 4:3 shapes, rebalanced AuC "
                            f"{gain} for keeping the shape (+0.004-0.011 on natural scene photos, about 0 on photos squashed before).")
    return Option("keep_aspect", "bool", True, label=label,
                  help="A non-square photo meets the network undistorted, its longer side at the working size (square photos are "
                       f"unaffected); off: squashed to the working square first. {measured}")  # fmt: skip


def info_of(obj: Any) -> MethodInfo | None:
    """The declaration a class or object carries as ``method_info`` (a MethodInfo, or a dict of its fields)."""
    info = getattr(obj, "method_info", None)
    if isinstance(info, MethodInfo):
        return info
    if isinstance(info, dict):
        return MethodInfo(**info)
    return None


# --- a base for methods from outside ---------------------------------------------------------------


class PluginColorizer(Colorizer):
    """Base for a method that needs no checkpoint of this project.

    Subclass it, set ``method_info`` and implement ``predict_ab`` (``N x H x W`` L in [0, 100] at the
    working size -> ``N x 2 x h x w`` ab; the shared flow keeps the input's size and lightness) - or
    override ``colorize_batch`` outright. ``__init__`` receives the device and the declared
    options, filled with their defaults.
    """

    method_info: ClassVar[MethodInfo]

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        info = info_of(cls)
        if info is not None:
            cls.name = info.name
            cls.uses_reference = info.uses_reference

    def __init__(self, device: str = "cpu", **options):
        self.device = device
        self.options = options

    @classmethod
    def open(cls, checkpoint=None, device: str = "auto", **options):
        info = info_of(cls)
        obj = cls(device=resolve_device(device), **{**(info.defaults() if info else {}), **options})
        obj.checkpoint = Path(checkpoint) if checkpoint else None
        return obj

    @classmethod
    def availability(cls):
        return True, "ready (needs no checkpoint)", None


# --- discovery --------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One registered method: where it comes from and how to import it."""

    name: str
    target: str
    source: str  # "built-in", "entry point of <dist>", "COLORIZE_METHODS", "<methods file>"
    error: str | None = None
    obj: Any = field(default=None, repr=False)

    @property
    def builtin(self) -> bool:
        return self.source == "built-in"


_FILE_MODULES: dict[str, Any] = {}


def _import_module(module: str):
    if module.endswith(".py") or os.sep in module or "/" in module:
        path = Path(module).expanduser().resolve()
        if str(path) in _FILE_MODULES:
            return _FILE_MODULES[str(path)]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        mod_name = f"colorize_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            sys.modules.pop(mod_name, None)
            raise
        _FILE_MODULES[str(path)] = mod
        return mod
    return importlib.import_module(module)


def _split_target(target: str) -> tuple[str, str | None]:
    target = target.strip()
    # "C:\\x.py:Cls" is not a concern here; split at the last colon that follows the module part
    if target.count(":") and not target.endswith(".py"):
        module, _, attr = target.rpartition(":")
        return module, attr or None
    return target, None


CHECKPOINT_SUFFIXES = (".pt", ".keras")


def is_checkpoint_target(target: str) -> bool:
    return target.strip().lower().endswith(CHECKPOINT_SUFFIXES)


def _checkpoint_name(path: Path) -> str:
    """A method name for an unnamed checkpoint target: its run folder's (``model.pt``, ``best.pt``,
    ``checkpoint.pt`` of ``results/runs/<run>/``), else the file's stem, made a valid name."""
    stem = path.parent.name if path.stem in ("model", "best", "checkpoint", "resume") else path.stem
    name = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")
    return (name if name[:1].isalpha() else f"m_{name}")[:40]


def checkpoint_path(target: str) -> Path:
    """The file a checkpoint target names: as given, else from the project folder."""
    raw = Path(target.strip()).expanduser()
    return raw if raw.is_absolute() or raw.exists() else PROJECT_ROOT / raw


def checkpoint_target(target: str, name: str | None = None) -> type:
    """The class of a checkpoint target (see the module text): the built-in method its provenance
    file names, declared under ``name`` with the checkpoint as its default and the checkpoint's
    images seen and hardware in its description. Raises naming the file when it cannot be used."""
    path = checkpoint_path(target)
    if not path.is_file():
        raise FileNotFoundError(f"{target}: no such checkpoint file")
    side = path.with_suffix(".json")
    try:
        meta = json.loads(side.read_text())
        method = meta["method"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{target}: its provenance file {side.name} is missing or names no method ({type(exc).__name__}: {exc}); "
                         "every checkpoint this project's training writes has one beside it") from None  # fmt: skip
    if method not in BUILTIN:
        raise ValueError(f"{target}: a checkpoint of {method!r}; only the built-in methods' checkpoints register as a file ({', '.join(BUILTIN)})")
    (base,) = load_target(BUILTIN[method])
    name = name or _checkpoint_name(path)
    where = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
    seen = meta.get("images_seen")
    about = [f"{seen:,} images seen" if isinstance(seen, int) else "", str(meta.get("hardware") or "")]
    if meta.get("averaged"):
        about.append(f"weights averaged over {len(meta['averaged'].get('checkpoints') or [])} checkpoints")
    about_text = "; ".join(a for a in about if a)
    base_info = info_of(base)

    def own(label: str) -> str:  # its widgets must not read as the shipped model's ("gan: ..." twice on Compare)
        if label[: len(method)].lower() == method:
            return name + label[len(method) :]
        return f"{name}: {label}" if label else label

    info = dataclasses.replace(
        base_info, name=name, description=f"{method} with the checkpoint {where}" + (f" ({about_text})" if about_text else ""),
        options=tuple(dataclasses.replace(o, label=own(o.label)) for o in base_info.options),
    )  # fmt: skip

    def default_checkpoint(cls) -> Path:
        return path

    return type(f"{base.__name__}_{name}", (base,), {
        "method_info": info, "default_checkpoint": classmethod(default_checkpoint),
        "__module__": base.__module__, "__doc__": base.__doc__,
    })  # fmt: skip


def load_target(target: str) -> list[Any]:
    """The method classes ``target`` names (one, or every declaring class of a module)."""
    if is_checkpoint_target(target):
        return [checkpoint_target(target)]
    module, attr = _split_target(target)
    mod = _import_module(module)
    if attr:
        obj = mod
        for part in attr.split("."):
            obj = getattr(obj, part)
        if info_of(obj) is None and not hasattr(obj, "colorize"):
            raise TypeError(f"{target}: has neither a 'method_info' declaration (a backends.MethodInfo) nor a colorize method")
        return [obj]
    found = [v for v in vars(mod).values() if isinstance(v, type) and v.__module__ == mod.__name__ and info_of(v) is not None]
    if not found:
        raise TypeError(f"{target}: no class with a 'method_info' declaration (a backends.MethodInfo) in it")
    return found


def _methods_file() -> Path | None:
    p = os.path.expanduser(os.environ.get(ENV_METHODS_FILE) or DEFAULT_METHODS_FILE)
    return Path(p) if os.path.isfile(p) else None


def _outside_items() -> list[tuple[str | None, str, str]]:
    """(name or None, target, source) from the environment variable and the methods file."""
    items: list[tuple[str | None, str, str]] = []
    for raw in (os.environ.get(ENV_METHODS) or "").split(","):
        raw = raw.strip()
        if raw:
            name, eq, target = raw.partition("=")
            items.append((name.strip(), target.strip(), ENV_METHODS) if eq else (None, raw, ENV_METHODS))
    path = _methods_file()
    if path is not None:
        try:
            table = tomllib.loads(path.read_text()).get("methods", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            _problems.append(f"{path}: not a readable methods file ({exc})")
            table = {}
        for name, target in table.items():
            items.append((str(name), str(target), str(path)))
    return items


_cache: dict[str, Any] = {"key": None, "entries": {}}
_problems: list[str] = []
#: Methods registered in this process (``backends.METHODS[name] = (module, class)``), e.g. by tests.
_runtime: dict[str, Entry] = {}


def _cache_key() -> tuple:
    # checked on every lookup (a page asks dozens of times a run), so one stat on a string path
    p = os.path.expanduser(os.environ.get(ENV_METHODS_FILE) or DEFAULT_METHODS_FILE)
    try:
        st = os.stat(p)
    except OSError:
        st = None
    is_file = st is not None and stat.S_ISREG(st.st_mode)
    return (os.environ.get(ENV_METHODS, ""), str(Path(p)) if is_file else "", st.st_mtime_ns if is_file else 0)


def _add(entries: dict[str, Entry], entry: Entry) -> None:
    if not NAME_RE.match(entry.name):
        _problems.append(f"{entry.source}: {entry.target}: method name {entry.name!r} is not valid "
                         "(1-40 lower-case letters, digits and _, starting with a letter)")  # fmt: skip
        return
    if entry.name in entries:
        _problems.append(f"{entry.source}: {entry.target}: the name {entry.name!r} is taken by {entries[entry.name].source} "
                         f"({entries[entry.name].target}); this one is ignored")  # fmt: skip
        return
    entries[entry.name] = entry


def discover(refresh: bool = False) -> dict[str, Entry]:
    """name -> :class:`Entry` of every method (cached until the environment or methods file changes)."""
    key = _cache_key()
    if not refresh and _cache["key"] == key:
        return _cache["entries"]
    _problems.clear()
    entries: dict[str, Entry] = {}
    for name, target in BUILTIN.items():
        entries[name] = Entry(name, target, "built-in")
    try:
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # noqa: BLE001 - a broken distribution must not hide the built-in methods
        eps = []
        _problems.append(f"entry points could not be read: {exc}")
    for ep in sorted(eps, key=lambda e: e.name):
        dist = getattr(getattr(ep, "dist", None), "name", None)
        _add(entries, Entry(ep.name, ep.value, f"entry point of {dist}" if dist else "entry point"))
    for name, target, source in _outside_items():
        if name:
            _add(entries, Entry(name, target, source))
            continue
        if is_checkpoint_target(target):  # named after its run folder; nothing imported until used
            _add(entries, Entry(_checkpoint_name(checkpoint_path(target)), target, source))
            continue
        try:
            classes = load_target(target)
        except Exception as exc:  # noqa: BLE001
            _problems.append(f"{source}: {target}: could not be loaded ({type(exc).__name__}: {exc})")
            continue
        for cls in classes:
            _add(entries, Entry(info_of(cls).name, f"{cls.__module__}:{cls.__qualname__}", source, obj=cls))
    for msg in _problems:
        warnings.warn(f"colorization methods: {msg}", stacklevel=2)
    base = dict(entries)
    entries.update(_runtime)  # registered in this process: override everything else
    _cache.update(key=key, entries=entries, base=base)
    return entries


def problems() -> list[str]:
    """Registrations that were ignored (bad name, clash, import failure of an unnamed target)."""
    discover()
    return list(_problems)


def resolve(entry: Entry) -> Any:
    """The class of ``entry`` (imported once). Raises the import's exception."""
    if entry.obj is None:
        if is_checkpoint_target(entry.target):
            entry.obj = checkpoint_target(entry.target, entry.name)
            return entry.obj
        (cls,) = load_target(entry.target)[:1]
        info = info_of(cls)
        if info is not None and info.name != entry.name:
            raise TypeError(f"{entry.target} declares the name {info.name!r}, but is registered as {entry.name!r}")
        entry.obj = cls
    return entry.obj


class MethodTable(Mapping):
    """Live, read-only view ``name -> (module, class)`` of every registered method."""

    def _entries(self) -> dict[str, Entry]:
        return discover()

    def __getitem__(self, name: str) -> tuple[str, str]:
        module, attr = _split_target(self._entries()[name].target)
        return module, attr or ""

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())

    def __contains__(self, name: object) -> bool:
        return name in self._entries()

    def __setitem__(self, name: str, value: tuple[str, str]) -> None:
        """Register ``name`` in this process: ``METHODS[name] = (module, class)``."""
        module, attr = value
        discover()
        base = _cache.get("base", {}).get(name)
        if base is not None and base.target == f"{module}:{attr}":
            _runtime.pop(name, None)  # back to what was found (monkeypatch restoring a value)
        else:
            _runtime[name] = Entry(name, f"{module}:{attr}", "registered at run time")
        _cache["key"] = None

    def __delitem__(self, name: str) -> None:
        if name not in _runtime:
            raise KeyError(f"{name}: only methods registered at run time can be removed")
        del _runtime[name]
        _cache["key"] = None

    def __repr__(self) -> str:
        return f"MethodTable({list(self)})"
