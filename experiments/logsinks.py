"""Training logs where researchers already look: TensorBoard and Weights & Biases, beside the CSV.

Off by default; the CSV logs (``log.csv``, ``val.csv``) are always written and stay the record the
dashboard reads. Switch sinks on with ``COLORIZE_LOG_SINKS`` (comma-separated):

    COLORIZE_LOG_SINKS=tensorboard python -m experiments.train --config experiments/configs/gan.toml
    tensorboard --logdir results/runs            # every run's events are in <run>/tensorboard/
    COLORIZE_LOG_SINKS=tensorboard,wandb WANDB_PROJECT=colorization python -m experiments.train ...

- ``tensorboard``: ``torch.utils.tensorboard`` event files in ``<run>/tensorboard`` (or
  ``COLORIZE_TENSORBOARD_DIR``); needs the ``tensorboard`` package (``pip install tensorboard``).
- ``wandb``: one W&B run per training run (project ``WANDB_PROJECT``, default
  ``colorization-workbench``; name = the run folder; the config as the run's config). Needs the
  ``wandb`` package and a login, or ``WANDB_MODE=offline``.

Scalars go as ``train/<loss>`` and ``val/<metric>`` at the training step; the sample grids as images.
A sink that was asked for but cannot start is an error naming the package to install (before any
training step), never a silent no-op. A sink failing mid-run is reported once and dropped; the
CSV logs go on.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

import numpy as np

ENV = "COLORIZE_LOG_SINKS"
KNOWN = ("tensorboard", "wandb")


class _TensorBoard:
    name = "tensorboard"

    def __init__(self, run_dir: Path, config: dict):
        try:
            # tensorboard imports TensorFlow when it is installed: PyTorch's compiler (torch._dynamo,
            # which the optimisers load) must come first, else the process aborts (both bundle LLVM)
            import torch._dynamo  # noqa: F401
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ValueError(f"{ENV}=tensorboard needs the Python package 'tensorboard'; fix: pip install tensorboard") from None
        self.dir = Path(os.environ.get("COLORIZE_TENSORBOARD_DIR") or run_dir / "tensorboard")
        self.writer = SummaryWriter(log_dir=str(self.dir))
        self.writer.add_text("config", "```\n" + _toml_like(config) + "\n```", 0)

    def scalars(self, step: int, values: dict, prefix: str) -> None:
        for k, v in values.items():
            self.writer.add_scalar(f"{prefix}/{k}", float(v), step)

    def image(self, step: int, name: str, rgb: np.ndarray) -> None:
        self.writer.add_image(name, np.asarray(rgb, np.uint8), step, dataformats="HWC")
        self.writer.flush()  # sample grids come with checkpoints: a run stopped later still shows them

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class _WandB:
    name = "wandb"

    def __init__(self, run_dir: Path, config: dict):
        try:
            import wandb
        except ImportError:
            raise ValueError(f"{ENV}=wandb needs the Python package 'wandb'; fix: pip install wandb (and wandb login, or WANDB_MODE=offline)") from None
        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "colorization-workbench"), name=run_dir.name,
                              dir=str(run_dir), config=config, resume="allow")  # fmt: skip

    def scalars(self, step: int, values: dict, prefix: str) -> None:
        self.run.log({f"{prefix}/{k}": float(v) for k, v in values.items()}, step=step)

    def image(self, step: int, name: str, rgb: np.ndarray) -> None:
        self.run.log({name: self.wandb.Image(np.asarray(rgb, np.uint8))}, step=step)

    def close(self) -> None:
        self.run.finish()


def _toml_like(d: dict, prefix: str = "") -> str:
    lines = []
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(_toml_like(v, f"{prefix}{k}."))
        else:
            lines.append(f"{prefix}{k} = {v!r}")
    return "\n".join(lines)


class Sinks:
    """The sinks of one run: ``scalars(step, {name: value}, "train")``, ``image(step, name, rgb)``, ``close()``."""

    def __init__(self, sinks: list):
        self.sinks = list(sinks)
        self.closed = False
        if self.sinks:
            atexit.register(self.close)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sinks]

    def _each(self, call: str, *args) -> None:
        for s in list(self.sinks):
            try:
                getattr(s, call)(*args)
            except Exception as exc:  # noqa: BLE001 - a logging service must not stop training
                print(f"warning: log sink {s.name} failed ({type(exc).__name__}: {exc}); the CSV logs go on without it", file=sys.stderr)
                self.sinks.remove(s)

    def scalars(self, step: int, values: dict, prefix: str = "train") -> None:
        numeric = {k: v for k, v in values.items() if isinstance(v, (int, float, np.floating, np.integer)) and np.isfinite(v)}
        if numeric:
            self._each("scalars", int(step), numeric, prefix)

    def image(self, step: int, name: str, rgb: np.ndarray) -> None:
        self._each("image", int(step), name, rgb)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._each("close")


def requested(spec: str | None = None) -> list[str]:
    """The sink names asked for (``COLORIZE_LOG_SINKS``); ``ValueError`` for an unknown one."""
    spec = os.environ.get(ENV, "") if spec is None else spec
    names = [s.strip().lower() for s in spec.split(",") if s.strip() and s.strip().lower() not in ("none", "off", "csv")]
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise ValueError(f"{ENV}={spec!r}: unknown sink(s) {', '.join(unknown)}; known: {', '.join(KNOWN)} (the CSV log is always written)")
    return list(dict.fromkeys(names))


def open_sinks(run_dir: str | Path, config: dict | None = None, spec: str | None = None) -> Sinks:
    """The sinks asked for, started for the run in ``run_dir`` (none: an empty :class:`Sinks`)."""
    makers = {"tensorboard": _TensorBoard, "wandb": _WandB}
    return Sinks([makers[n](Path(run_dir), dict(config or {})) for n in requested(spec)])
