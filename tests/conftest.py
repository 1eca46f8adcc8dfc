"""Shared fixtures: tiny synthetic photo folders (no network, no ../shared needed)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_NUM_THREADS", "2")
# training caches of the tests' tiny photo folders go to a temporary folder, not results/cache
os.environ.setdefault("COLORIZE_CACHE_DIR", tempfile.mkdtemp(prefix="colorize-cache-"))

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared"


def synthetic_photo(rng: np.random.Generator, size: int = 48, kind: int = 0) -> np.ndarray:
    """A colourful photo-like image whose colours follow its structure (sky over grass / sunset)."""
    h = w = size
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0, 1, w)[None, :, None]
    horizon = 0.45 + 0.15 * rng.random()
    if kind == 0:
        top = np.array([0.35, 0.6, 0.95]) * (0.7 + 0.3 * (1 - y))
        bottom = np.array([0.2, 0.65, 0.2]) * (0.6 + 0.4 * x)
    else:
        top = np.array([0.95, 0.5, 0.2]) * (0.6 + 0.4 * y)
        bottom = np.array([0.45, 0.25, 0.15]) * (0.7 + 0.3 * (1 - x))
    img = np.where(y < horizon, top, bottom) * np.ones((h, w, 3))
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """``root/{train,val}/{meadow,sunset}/*.png``: 8 training and 3 validation photos per class."""
    root = tmp_path_factory.mktemp("tiny_data")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 3)):
        for k, label in enumerate(("meadow", "sunset")):
            d = root / split / label
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(synthetic_photo(rng, 48, k)).save(d / f"{label}_{i}.png")
    return root


@pytest.fixture
def tiny_config(tiny_data, tmp_path):
    """Raw config dict for ``method`` on the tiny data, writing runs under tmp_path."""

    def make(method: str, steps: int = 30, model: dict | None = None, **train) -> dict:
        return {
            "method": method,
            "data": {"train": str(tiny_data / "train"), "val": str(tiny_data / "val"), "crop": 32, "batch_size": 4, "workers": 0, "val_count": 4},
            "train": {"steps": steps, "log_every": 1, "checkpoint_every": steps, "seed": 0, "runs_dir": str(tmp_path / "runs"), **train},
            "model": dict(model or {}),
        }

    return make


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 70 x 90 colour test photo (odd size on purpose)."""
    return synthetic_photo(np.random.default_rng(1), 90, 0)[:70]
