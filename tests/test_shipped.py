"""What a fresh clone gets: the shipped models colorize through the CLI with no training, and
their provenance and measured numbers are committed beside them (results/)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import backends
from backends import color
from tests.conftest import PROJECT, SHARED, synthetic_photo

CHECKPOINTS = PROJECT / "results" / "checkpoints"
LEARNED = ["regression", "classification", "fusion", "gan"]
PROVENANCE = ["config", "commit", "hardware", "step", "wall_s", "images_seen", "validation", "precision"]


def photo_file(tmp_path):
    """A real out-of-distribution test photo when ../shared is there, else a synthetic one."""
    test = sorted((SHARED / "data" / "test").rglob("*.jpg")) if (SHARED / "data" / "test").exists() else []
    if test:
        return test[0]
    path = tmp_path / "photo.png"
    Image.fromarray(synthetic_photo(np.random.default_rng(0), 96)).save(path)
    return path


@pytest.mark.parametrize("name", LEARNED)
def test_shipped_checkpoint_has_provenance_and_stays_small(name):
    ext = backends.method_class(name).checkpoint_ext
    ckpt = CHECKPOINTS / f"{name}{ext}"
    assert ckpt.exists(), f"{ckpt} is not shipped"
    meta = json.loads((CHECKPOINTS / f"{name}.json").read_text())
    missing = [k for k in PROVENANCE if k not in meta]
    assert not missing, f"{name}.json lacks {missing}"
    assert meta["step"] > 0 and meta["images_seen"] >= meta["step"] and meta["wall_s"] > 0
    assert not meta["shipped_from"].startswith("/"), "provenance relative to the project, so it holds in any clone"
    assert (PROJECT / meta["shipped_from"] / "log.csv").exists(), "the loss log of the run that made it is shipped"
    assert ckpt.stat().st_size < 40 * 2**20


def test_all_shipped_checkpoints_together_are_well_under_150_mb():
    assert sum(p.stat().st_size for p in CHECKPOINTS.iterdir()) < 100 * 2**20


@pytest.mark.parametrize("name", LEARNED + ["neural_style"])
def test_fresh_clone_colorizes_through_the_cli_without_training(name, tmp_path):
    if not backends.status(name).available:
        pytest.fail(f"{name} is unavailable out of the box: {backends.status(name).reason}")
    src = photo_file(tmp_path)
    out = tmp_path / "out.png"
    extra = ["--set", "iterations=3", "--set", "working_size=64"] if name == "neural_style" else []
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.colorize", "--method", name, "--input", str(src), "--output", str(out), "--device", "cpu", *extra],
        cwd=PROJECT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    truth = np.asarray(Image.open(src).convert("RGB"))
    got = np.asarray(Image.open(out).convert("RGB"))
    assert got.shape == truth.shape
    lab_in, lab_out = color.rgb_to_lab(truth), color.rgb_to_lab(got)
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).mean() < 1.0, "lightness changed"
    assert color.chroma(lab_out).mean() > 3.0, f"{name} returned an (almost) grey photo"


def test_shipped_metrics_beat_grey_on_rebalanced_auc():
    """The committed evaluation tables (README) show every learned method above ab = 0."""
    for split in ("val", "test"):
        path = PROJECT / "results" / "metrics" / f"{split}.summary.csv"
        assert path.exists(), f"{path} is not shipped"
        with path.open(newline="") as f:
            rows = {r["method"]: r for r in csv.DictReader(f)}
        grey = float(rows["gray"]["auc_rebal"])
        for name in LEARNED:
            assert float(rows[name]["auc_rebal"]) > grey, f"{split}: {name} does not beat grey on rebalanced AuC"


def test_readme_tables_and_grid_are_the_shipped_checkpoints():
    """Every number in the README's generated tables comes from the checkpoints shipped now, with
    the README's protocol; the grid too. A new checkpoint lands with its own numbers or not at all."""
    from experiments import readme

    found = readme.problems()
    assert not found, "\n".join(found) + "\nfix: python -m experiments.readme --refresh"
