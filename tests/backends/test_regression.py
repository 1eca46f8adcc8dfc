"""The Keras regression baseline: lazy TensorFlow, training, resume, checkpoints, colorize."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import backends
from backends import color
from backends.base import TorchColorizer
from backends.errors import CheckpointError
from backends.regression import Config, RegressionColorizer
from experiments.config import load_config
from experiments.train import read_log, train
from tests.conftest import PROJECT

#: A narrower network for the tests (the shipped default has filters = 32).
SMALL = {"filters": 8, "depth": 3, "lr": 3e-3}


def batch(seed: int = 0, n: int = 4, size: int = 32) -> dict:
    """Lab batch whose colour follows its lightness (bright = blue sky, dark = green grass)."""
    g = torch.Generator().manual_seed(seed)
    L = torch.rand(n, 1, size, size, generator=g) * 100
    sky = (L > 50).float()
    ab = torch.cat([sky * -10 + (1 - sky) * -40, sky * -40 + (1 - sky) * 40], 1)
    return {"L": L, "ab": ab, "label": torch.full((n,), -1)}


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """One 40-step run on the tiny data shared by the tests of this module -> its run folder."""
    raw = {
        "method": "regression",
        "data": {
            "train": str(tiny_data / "train"),
            "val": str(tiny_data / "val"),
            "crop": 32,
            "batch_size": 4,
            "workers": 0,
            "val_count": 4,
        },
        "train": {
            "steps": 40,
            "log_every": 1,
            "checkpoint_every": 40,
            "seed": 0,
            "runs_dir": str(tmp_path_factory.mktemp("runs")),
        },
        "model": SMALL,
    }
    return train(load_config(raw=raw), "cpu", progress=False)


def test_importing_backends_does_not_import_tensorflow():
    code = (
        "import sys, backends, backends.regression\n"
        "backends.status('regression'); backends.method_class('regression')\n"
        "bad = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_pytorch_methods_still_run_after_tensorflow_loaded():
    """TensorFlow and Triton both bundle LLVM: a process that loads this backend and then a
    PyTorch method (whose first optimiser imports Triton) must not abort."""
    code = (
        "import torch, backends\n"
        "from backends.regression import Config, RegressionColorizer\n"
        "RegressionColorizer(Config(filters=4, depth=1), 'cpu')\n"
        "torch.optim.Adam([torch.zeros(1, requires_grad=True)])\n"
        "print('both ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "both ok" in out.stdout, out.stderr[-2000:]


def test_training_lowers_the_loss(trained):
    rows = read_log(trained / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 41))
    assert {"loss", "loss_l2", "epoch", "wall_s", "images_seen"} <= set(rows[0])
    first = np.mean([float(r["loss"]) for r in rows[:5]])
    last = np.mean([float(r["loss"]) for r in rows[-5:]])
    assert last < 0.7 * first, (first, last)
    assert (trained / "checkpoint.keras").exists() and (trained / "samples" / "step_0000040.png").exists()


def test_colorize_keeps_size_and_lightness_and_adds_colour(trained, photo):
    model = backends.load("regression", device="cpu", checkpoint=trained / "checkpoint.keras")
    assert model.checkpoint == trained / "checkpoint.keras" and model.config.filters == SMALL["filters"]
    grey = color.lab_to_rgb_uint8(color.rgb_to_lab(photo) * np.array([1, 0, 0]))
    out = model.colorize(grey)
    assert out.shape == photo.shape and out.dtype == np.uint8
    lab_out, lab_true = color.rgb_to_lab(out), color.rgb_to_lab(photo)
    assert np.abs(lab_out[..., 0] - lab_true[..., 0]).mean() < 1.0
    # after 40 steps on sky-over-meadow photos its colours are closer to the truth than grey is
    err = np.linalg.norm(lab_out[..., 1:] - lab_true[..., 1:], axis=-1).mean()
    err_grey = np.linalg.norm(lab_true[..., 1:], axis=-1).mean()
    assert err < 0.7 * err_grey, (err, err_grey)


def test_resumed_run_continues_the_log(tiny_config):
    train(load_config(raw=tiny_config("regression", steps=10, model=SMALL)), "cpu", progress=False)
    run = train(load_config(raw=tiny_config("regression", steps=20, model=SMALL)), "cpu", progress=False)
    steps = [int(r["step"]) for r in read_log(run / "log.csv")]
    assert steps == list(range(1, 21))
    images = [int(r["images_seen"]) for r in read_log(run / "log.csv")]
    assert images == [4 * s for s in steps]


def test_resume_continues_exactly_and_half_loads_as_float32(tmp_path):
    a = RegressionColorizer(Config(**SMALL), "cpu")
    for i in range(3):
        a.train_step(batch(i))
    a.step = 3
    path = a.save(tmp_path / "ck.keras", {"step": 3, "epoch": 1, "wall_s": 2.5, "images_seen": 12})
    assert {"config.json", "model.weights.h5", "workbench.json", "optimizer.npz"} <= set(zipfile.ZipFile(path).namelist())
    b = RegressionColorizer(Config(**SMALL), "cpu")
    meta = b.load(path, training=True)
    assert meta == {"step": 3, "epoch": 1, "wall_s": 2.5, "images_seen": 12} and b.step == 3
    # the next step is the same step: same weights, same Adam moments and step count
    la, lb = a.train_step(batch(7)), b.train_step(batch(7))
    assert la == pytest.approx(lb, rel=1e-5)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)

    half = a.save(tmp_path / "half.keras", training=False, half=True)
    assert os.path.getsize(half) < 0.5 * os.path.getsize(path)  # float16, no optimiser state
    c = RegressionColorizer.from_checkpoint(half, "cpu")
    assert all(w.dtype == np.float32 for w in c.model.get_weights())
    L = batch(9)["L"][:, 0].numpy()
    assert np.abs(c.predict_ab(L) - a.predict_ab(L)).max() < 2.0  # ab units
    # a BatchNorm moving variance past float16's 65,504 (seen in training) is kept: float32, not inf
    var = next(v for v in a.model.weights if "moving_variance" in v.path)
    var.assign(np.full(var.shape, 1.1e5, np.float32))
    kept = a.save(tmp_path / "big.keras", training=False, half=True)
    d = RegressionColorizer.from_checkpoint(kept, "cpu")
    assert all(np.isfinite(w).all() for w in d.model.get_weights())
    assert np.abs(d.predict_ab(L) - a.predict_ab(L)).max() < 1e-3


def test_predict_ab_any_size_and_huber_option():
    m = RegressionColorizer(Config(**SMALL, loss="huber", huber_delta=5.0), "cpu")
    ab = m.predict_ab(np.full((2, 37, 50), 60.0, np.float32))
    assert ab.shape == (2, 2, 37, 50) and ab.dtype == np.float32 and np.abs(ab).max() <= color.AB_SCALE
    fixed = batch(0)
    losses = [m.train_step(fixed) for _ in range(15)]
    assert {"loss", "loss_huber", "loss_l2"} <= set(losses[0])
    assert losses[0]["loss"] == losses[0]["loss_huber"]
    # Huber is 0.5 e^2 below delta and linear beyond it, so never above half the squared error
    assert all(x["loss_huber"] <= 0.5 * x["loss_l2"] * (1 + 1e-5) for x in losses)
    assert losses[-1]["loss"] < 0.7 * losses[0]["loss"]


def test_config_is_checked():
    with pytest.raises(ValueError, match="loss"):
        Config(loss="l1")
    with pytest.raises(ValueError, match="decay"):
        Config(decay_steps=-1)


def test_linear_decay_reaches_zero_and_a_step_at_zero_changes_nothing():
    """The optional linear decay: constant, then linearly to 0; Adam takes it before each step, so
    a step at learning rate 0 leaves every weight as it was."""
    m = RegressionColorizer(Config(**SMALL, decay_start=3, decay_steps=4), "cpu")
    lrs = [m.lr_at(s) for s in range(10)]
    assert lrs[:3] == [SMALL["lr"]] * 3 and all(a > b for a, b in zip(lrs[2:7], lrs[3:7])) and lrs[7] == 0.0 == lrs[9]
    assert Config().decay_steps == 0  # off unless the config asks
    m.step = 5
    m.train_step(batch(0))
    assert float(m.optimizer.learning_rate) == pytest.approx(m.lr_at(5))
    m.step = 8
    before = [w.copy() for w in m.model.get_weights()]
    m.train_step(batch(1))
    trainable = {id(v) for v in m.model.trainable_weights}
    moved = [not np.array_equal(a, b) for a, b, v in zip(before, m.model.get_weights(), m.model.weights) if id(v) in trainable]
    assert moved and not any(moved)


class Other(TorchColorizer):
    """A PyTorch method, for a checkpoint that is not this method's."""

    name = "other"

    @dataclass
    class Config:
        width: int = 4

    def __init__(self, config=None, device="auto"):
        super().__init__(config, device)
        self.nets = {"net": torch.nn.Conv2d(1, self.config.width, 3)}
        self.optims = {"adam": torch.optim.Adam(self.nets["net"].parameters())}
        self._finish_init()


def test_bad_checkpoints_raise_checkpoint_error_naming_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="corrupt.keras"):
        backends.load("regression", device="cpu", checkpoint=corrupt)

    other = Other().save(tmp_path / "other.keras")  # another method's checkpoint, whatever its name
    with pytest.raises(CheckpointError, match="other.keras"):
        RegressionColorizer.from_checkpoint(other, "cpu")

    small = RegressionColorizer(Config(**SMALL), "cpu").save(tmp_path / "small.keras")
    with pytest.raises(CheckpointError, match="small.keras.*does not match"):
        RegressionColorizer(Config(filters=4, depth=3), "cpu").load(small)
    with pytest.raises(CheckpointError, match="small.keras"):
        RegressionColorizer.from_checkpoint(small, "cpu", depth=2)

    missing = tmp_path / "missing.keras"
    with pytest.raises(CheckpointError, match="missing.keras"):
        backends.load("regression", device="cpu", checkpoint=missing)


def test_a_nearest_checkpoint_loads_into_the_bilinear_decoder_by_layer_name(tmp_path):
    """Switching a run's decoder to bilinear adds weightless smoothing layers, which reorders the
    graph: the weights must still land on the layers of the same name, not shift by position."""
    a = RegressionColorizer(Config(**SMALL), "cpu")
    a.train_step(batch(0))
    path = a.save(tmp_path / "nearest.keras", {"step": 1})
    b = RegressionColorizer(Config(**SMALL, upsample="bilinear"), "cpu")
    b.load(path, training=True)
    want = {v.path: v.numpy() for v in a.model.weights}
    for v in b.model.weights:
        np.testing.assert_array_equal(v.numpy(), want[v.path])
    L = batch(3)["L"][:, 0].numpy()
    assert b.predict_ab(L).shape == a.predict_ab(L).shape  # runs at any size in the traced predict
