"""Typed experiment configuration, filled from ``experiments/configs/<method>.toml``.

A config has four parts: ``method``, ``[data]`` and ``[train]`` (read by the runner, the same
for every method) and ``[model]`` (the method's own dataclass, ``Cls.Config``). Overrides on
the command line use dotted keys: ``train.steps=100 data.crop=128 model.lr=1e-4``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from backends.base import PROJECT_ROOT, config_from_dict


@dataclass
class DataConfig:
    #: One training folder or a list of them (one label space: their class folder names).
    train: str | list[str] = "../shared/data/train"
    val: str = "../shared/data/val"
    crop: int = 64
    max_scale: float = 1.25
    batch_size: int = 16
    workers: int = 2
    #: Use at most this many training photos (0: all) - for smoke tests.
    limit: int = 0
    #: Validation photos used for the sample grid and the validation loss.
    val_count: int = 32
    #: Decode the training photos once into a memory-mapped cache (experiments/datacache.py) and
    #: draw a step-exact stream from it (exact resume); false: the image-folder loader.
    cache: bool = True
    #: Shorter side of the photos in the cache (never enlarged); >= crop * max_scale.
    cache_short: int = 160
    #: Crop schedule by images seen: [[from_images, crop, batch_size], ...] (empty: crop, batch_size).
    schedule: list = field(default_factory=list)
    #: Fixed validation photos scored with the full colorize flow (rebalanced AuC ...) at each checkpoint.
    val_photos: int = 200

    @property
    def train_roots(self) -> list[str]:
        return [self.train] if isinstance(self.train, str) else list(self.train)


@dataclass
class TrainConfig:
    steps: int = 1000
    #: Stop at this many images seen instead (0: use steps) - equal budgets across methods.
    images: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    seed: int = 0
    #: Run folder name under results/runs (default: the method name).
    run: str = ""
    #: Folder that holds the runs (default results/runs; tests point it elsewhere).
    runs_dir: str = "results/runs"
    #: Precision of the training steps (PyTorch methods): "auto" - bfloat16 autocast with
    #: channels-last networks on a CPU that has native bfloat16 (AVX512-BF16, AMX), float16 AMP on
    #: CUDA, else float32 - or "bf16" / "float32" to force one. Inference is float32 either way.
    precision: str = "auto"
    #: From this many images seen on (0: never), every checkpoint also keeps the run's weights as
    #: ``snapshots/images_<n>.<ext>`` (float16, no optimiser state): the trajectory that
    #: ``python -m experiments.average`` averages at the end of the run. Not committed (a few MB each).
    snapshots_from: int = 0


@dataclass
class ExperimentConfig:
    method: str
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model: dict = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return project_path(self.train.runs_dir) / (self.train.run or self.method)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def project_path(p: str | Path) -> Path:
    """Relative paths in configs are relative to the project root, not the current folder."""
    p = Path(p).expanduser()
    return p if p.is_absolute() else (PROJECT_ROOT / p).resolve()


def parse_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        d = raw
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = parse_value(value.strip())
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, raw: dict | None = None) -> ExperimentConfig:
    if raw is None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: config file not found")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc})") from None
    raw = apply_overrides(dict(raw), overrides or [])
    if "method" not in raw:
        raise ValueError(f"{path}: config has no 'method' key")
    return ExperimentConfig(
        method=raw["method"],
        data=config_from_dict(DataConfig, raw.get("data")),
        train=config_from_dict(TrainConfig, raw.get("train")),
        model=dict(raw.get("model", {})),
    )


def dump_toml(d: dict) -> str:
    """Minimal TOML writer for the flat-section configs above."""

    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    top = [f"{k} = {val(v)}" for k, v in d.items() if not isinstance(v, dict)]
    sections = [f"\n[{k}]\n" + "\n".join(f"{kk} = {val(vv)}" for kk, vv in v.items() if vv is not None) for k, v in d.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n" + "\n".join(sections) + "\n"
