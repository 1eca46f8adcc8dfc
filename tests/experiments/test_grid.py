"""experiments.grid: one photo per class, a column per method that can run, and beside the image
the record of which photos and which checkpoint each column shows."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from PIL import Image

import backends
from backends.errors import BackendUnavailable
from experiments import grid


class Sepia:
    """A colorizer with a checkpoint file: one warm tone over the grey input's lightness."""

    def __init__(self, checkpoint):
        self.checkpoint = checkpoint

    def colorize(self, grey, reference=None):
        out = grey.astype(np.float32) * np.array([1.0, 0.8, 0.55], np.float32)
        return out.clip(0, 255).astype(np.uint8)


def test_grid_has_a_column_per_method_that_runs_and_records_its_checkpoint(tiny_data, tmp_path, monkeypatch, capsys):
    weights = tmp_path / "sepia.pt"
    weights.write_bytes(b"sepia weights")

    def load(name, device="auto", **kw):
        if name == "missing":
            raise BackendUnavailable("missing: no trained checkpoint at results/checkpoints/missing.pt")
        return Sepia(weights)

    monkeypatch.setattr(backends, "load", load)
    out = tmp_path / "grid.jpg"
    assert grid.main(["--data", str(tiny_data / "val"), "--count", "2", "--methods", "sepia,missing", "--size", "40",
                      "--device", "cpu", "--out", str(out)]) == 0  # fmt: skip
    assert "skipping missing: missing: no trained checkpoint" in capsys.readouterr().err
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert img.shape == (22 + 2 * 40, 3 * 40, 3)  # grey input, sepia, ground truth; two rows
    tile = img[22 + 5 : 22 + 35, 45:75]  # the sepia column is warm: red over blue
    assert (tile[..., 0] - tile[..., 2]).mean() > 20
    side = json.loads(grid.sidecar(out).read_text())
    assert side["made_from"] == {"sepia": {"checkpoint": str(weights), "sha256": hashlib.sha256(b"sepia weights").hexdigest()}}
    assert [p.split("/")[-2] for p in side["photos"]] == ["meadow", "sunset"]  # one photo per class
    assert all((grid.PROJECT_ROOT / p).resolve().is_file() for p in side["photos"])  # named from the project
