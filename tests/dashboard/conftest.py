"""Fixtures for the dashboard tests: a results folder with real (briefly trained) checkpoints.

Every feed-forward method whose backend trains is trained for a couple of steps on the tiny
synthetic photos (once per test session) and its checkpoint put in ``<root>/checkpoints`` -
the layout of ``results/`` - so the pages load real models through ``backends.load``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import backends.base
from dashboard.common import torch_before_tensorflow
from tests.conftest import synthetic_photo

# PyTorch (with torch._dynamo) must be imported before TensorFlow in one process: the other order
# aborts (both bundle LLVM). The dashboard does the same before loading any model.
torch_before_tensorflow()

PROJECT = Path(__file__).resolve().parents[2]
APP = str(PROJECT / "dashboard" / "app.py")
FEED_FORWARD = ("regression", "classification", "fusion", "gan")
#: Model overrides that fit the 32 px training crops of the tiny data.
SMALL = {"gan": {"ngf": 8, "ndf": 8, "n_down": 5}}


def train_checkpoint(method: str, data: Path, runs: Path, steps: int = 2) -> Path | None:
    """Train ``method`` a few steps with experiments.train; the run folder (None if it cannot train)."""
    from experiments.config import load_config
    from experiments.train import train

    raw = {
        "method": method,
        "data": {"train": str(data / "train"), "val": str(data / "val"), "crop": 32, "batch_size": 4, "workers": 0, "val_count": 4},
        "train": {"steps": steps, "log_every": 1, "checkpoint_every": steps, "seed": 0, "runs_dir": str(runs)},
        "model": dict(SMALL.get(method, {})),
    }
    return train(load_config(raw=raw), "cpu", progress=False)


@pytest.fixture(scope="session")
def trained_results(tiny_data, tmp_path_factory) -> Path:
    """A results root holding checkpoints/<method>.<ext> (+ .json) for every trainable method and
    their runs under runs/. Methods that cannot be trained here are left out (their pages say why)."""
    import backends

    root = tmp_path_factory.mktemp("results")
    (root / "checkpoints").mkdir()
    for method in FEED_FORWARD:
        try:
            cls = backends.method_class(method)
            run = train_checkpoint(method, tiny_data, root / "runs")
        except (backends.BackendUnavailable, ImportError, NotImplementedError) as exc:
            print(f"dashboard tests: {method} not trained ({exc})")
            continue
        shutil.copy(run / f"checkpoint{cls.checkpoint_ext}", root / "checkpoints" / f"{method}{cls.checkpoint_ext}")
        meta = json.loads((run / "checkpoint.json").read_text())
        (root / "checkpoints" / f"{method}.json").write_text(json.dumps(meta))
    return root


@pytest.fixture(scope="session")
def trained_methods(trained_results) -> list[str]:
    return sorted(p.stem for p in (trained_results / "checkpoints").iterdir() if p.suffix in (".pt", ".keras"))


@pytest.fixture
def results_root(trained_results, tmp_path, monkeypatch) -> Path:
    """A fresh results folder per test that sees the session's checkpoints (copied links)."""
    root = tmp_path / "results"
    (root / "checkpoints").mkdir(parents=True)
    for p in (trained_results / "checkpoints").iterdir():
        (root / "checkpoints" / p.name).symlink_to(p)
    monkeypatch.setenv("COLORIZE_RESULTS_DIR", str(root))
    # hermetic: the project's shipped checkpoints (results/checkpoints) are not seen either
    monkeypatch.setattr(backends.base, "CHECKPOINT_DIR", root / "checkpoints")
    return root


@pytest.fixture
def png_bytes():
    def make(size=(40, 56), grey=False, seed=3) -> bytes:
        import io

        rgb = synthetic_photo(np.random.default_rng(seed), max(size), 1)[: size[0], : size[1]]
        im = Image.fromarray(rgb).convert("L") if grey else Image.fromarray(rgb)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()

    return make


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
