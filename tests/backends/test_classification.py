"""Zhang et al. 2016 classification backend: training, checkpoints, temperature, runner and CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import backends
from backends import color
from backends.classification import ClassificationColorizer, Config, lr_at
from backends.errors import CheckpointError
from experiments.config import load_config
from experiments.train import read_log, train
from tests.conftest import PROJECT

#: Small network for the tests (the shipped default is wider); a higher lr so 30 steps show learning.
SMALL = {"widths": [8, 16, 16, 16], "lr": 3e-3}


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """One 30-step run on the tiny data shared by the tests of this module -> its run folder."""
    raw = {
        "method": "classification",
        "data": {"train": str(tiny_data / "train"), "val": str(tiny_data / "val"), "crop": 32, "batch_size": 4, "workers": 0, "val_count": 4},
        "train": {"steps": 30, "log_every": 1, "checkpoint_every": 30, "seed": 0, "runs_dir": str(tmp_path_factory.mktemp("runs"))},
        "model": SMALL,
    }
    return train(load_config(raw=raw), "cpu", progress=False)


def test_training_lowers_the_loss(trained):
    rows = read_log(trained / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    first = np.mean([float(r["loss"]) for r in rows[:3]])
    last = np.mean([float(r["loss"]) for r in rows[-3:]])
    assert last < 0.8 * first, (first, last)
    assert float(rows[-1]["loss_cls"]) < float(rows[0]["loss_cls"])


def test_colorize_keeps_size_and_lightness_and_adds_colour(trained, photo):
    model = backends.load("classification", device="cpu", checkpoint=trained / "checkpoint.pt")
    assert isinstance(model, ClassificationColorizer) and model.q == color.load_gamut().q
    grey = color.lab_to_rgb_uint8(color.rgb_to_lab(photo) * np.array([1, 0, 0]))
    out = model.colorize(grey)
    assert out.shape == photo.shape and out.dtype == np.uint8
    lab = color.rgb_to_lab(out)
    assert np.abs(lab[..., 0] - color.rgb_to_lab(grey)[..., 0]).mean() < 1.0
    assert color.chroma(lab).mean() > 3.0  # it colours a grey photo
    ab = model.predict_ab(color.rgb_to_lab(grey)[None, :64, :64, 0])
    assert ab.shape == (1, 2, 16, 16)  # prediction at 1/4 resolution


def test_temperature_override_changes_colourfulness(trained, photo):
    ckpt = trained / "checkpoint.pt"
    L = color.rgb_to_lab(photo)[None, ..., 0]
    chroma = {}
    for t in (1.0, 0.38, 0.1):
        model = backends.load("classification", device="cpu", checkpoint=ckpt, temperature=t)
        assert model.config.temperature == t
        ab = model.predict_ab(L)
        chroma[t] = float(np.hypot(ab[:, 0], ab[:, 1]).mean())
    assert chroma[1.0] < chroma[0.38] < chroma[0.1], chroma
    # the declared option range (backends.registry) refuses it before the checkpoint is read
    with pytest.raises((ValueError, CheckpointError), match="temperature"):
        backends.load("classification", device="cpu", checkpoint=ckpt, temperature=0)


def test_prior_correction_takes_the_rebalancing_back_out(trained, photo):
    ckpt = trained / "checkpoint.pt"
    L = color.rgb_to_lab(photo)[None, ..., 0]
    assert backends.load("classification", device="cpu", checkpoint=ckpt).config.prior_correction == 0.5  # the default
    paper = backends.load("classification", device="cpu", checkpoint=ckpt, prior_correction=0.0)
    full = backends.load("classification", device="cpu", checkpoint=ckpt, prior_correction=1.0)
    # by hand: the network's distribution divided by the rebalancing weights, then the annealed mean
    with torch.no_grad():
        logits = paper.logits(paper.to_tensor(L)[:, None]).float()
        want = color.annealed_mean_logits(logits - torch.log(paper.weights.float()).view(1, -1, 1, 1), paper.bins, 0.38)
    np.testing.assert_allclose(full.predict_ab(L), want.numpy(), atol=1e-3)
    # rebalancing favours rare (vivid) colours; taking it out gives duller ones
    chroma = [float(np.hypot(*m.predict_ab(L)[0]).mean()) for m in (paper, full)]
    assert chroma[1] < chroma[0], chroma
    with pytest.raises((ValueError, CheckpointError), match="prior_correction"):
        backends.load("classification", device="cpu", checkpoint=ckpt, prior_correction=1.5)


def test_soft_targets_and_rebalanced_loss():
    model = ClassificationColorizer(Config(**SMALL), "cpu")
    ab = torch.tensor([[[[0.0, 37.0]], [[0.0, -52.0]]]])  # N x 2 x 1 x 2
    z = color.soft_encode(ab, model.bins, model.config.k, model.config.sigma)
    np.testing.assert_allclose(z.sum(1).numpy(), 1.0, atol=1e-5)
    assert torch.all((z > 0).sum(1) == 5)
    # the weights come from the prior and favour rare colours: a saturated blue outweighs grey
    grey = int(torch.cdist(torch.zeros(1, 2), model.bins).argmin())
    blue = int(torch.cdist(torch.tensor([[10.0, -60.0]]), model.bins).argmin())
    assert model.weights[blue] > 1.0 > model.weights[grey]


def test_checkpoint_is_self_contained(trained, tmp_path):
    state = torch.load(trained / "checkpoint.pt", map_location="cpu", weights_only=True)
    extra = state["extra"]
    assert extra["bins"].shape == (color.load_gamut().q, 2) and extra["weights"].shape[0] == extra["bins"].shape[0]
    # a model trained with another bin set (here 5 bins fewer) keeps its own bins after its
    # gamut file is gone, even though the shipped asset has a different Q
    full = color.load_gamut()
    fewer = color.ABGamut(full.bins[:-5], full.prior[:-5] / full.prior[:-5].sum(), full.strict_count, "test")
    fewer.save(tmp_path / "fewer.npz")
    model = ClassificationColorizer(Config(**SMALL, gamut=str(tmp_path / "fewer.npz")), "cpu")
    assert model.q == full.q - 5
    p = model.save(tmp_path / "fewer_bins.pt")
    (tmp_path / "fewer.npz").unlink()
    color.load_gamut.cache_clear()
    again = ClassificationColorizer.from_checkpoint(p, "cpu")
    assert again.q == full.q - 5
    np.testing.assert_array_equal(again.bins.numpy(), fewer.bins)
    assert again.predict_ab(np.full((1, 32, 32), 50.0, np.float32)).shape == (1, 2, 8, 8)


def test_mismatched_config_is_a_named_checkpoint_error(trained):
    ckpt = trained / "checkpoint.pt"
    wider = ClassificationColorizer(Config(widths=[8, 16, 32, 32]), "cpu")
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        wider.load(ckpt)
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        ClassificationColorizer.from_checkpoint(ckpt, "cpu", widths=[16, 16, 16, 16])
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        ClassificationColorizer.from_checkpoint(ckpt, "cpu", no_such_option=1)


def test_lr_schedule_steps_down():
    assert lr_at(0, 3e-4, [10, 20], 0.1) == 3e-4
    assert lr_at(10, 3e-4, [10, 20], 0.1) == pytest.approx(3e-5)
    assert lr_at(25, 3e-4, [10, 20], 0.1) == pytest.approx(3e-6)


def test_linear_decay_option_takes_the_stepped_rate_to_zero():
    """The optional linear decay scales the stepped rate down to 0 (off by default); Adam takes it
    before each step, so a step at rate 0 leaves every trainable weight as it was."""
    assert Config().decay_steps == 0
    with pytest.raises(ValueError, match="decay"):
        Config(decay_steps=-1)
    assert [lr_at(s, 9e-4, [2], 1 / 3, 3, 4) for s in (0, 2, 3, 6, 7, 9)] == pytest.approx([9e-4, 3e-4, 2.4e-4, 0.6e-4, 0.0, 0.0])
    torch.manual_seed(0)
    m = ClassificationColorizer(Config(**SMALL, decay_start=1, decay_steps=2), "cpu")
    batch = {"L": torch.rand(2, 1, 32, 32) * 100, "ab": torch.randn(2, 2, 32, 32) * 20}
    m.step = 1
    m.train_step(batch)
    assert m.optims["adam"].param_groups[0]["lr"] == pytest.approx(2e-3)
    m.step = 3
    before = [p.detach().clone() for p in m.nets["net"].parameters() if p.requires_grad]
    m.train_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(before, (p for p in m.nets["net"].parameters() if p.requires_grad)))


def test_resumed_run_continues_its_loss_log(tiny_config):
    raw = tiny_config("classification", steps=10, model=SMALL, checkpoint_every=5)
    run = train(load_config(raw=raw), "cpu", progress=False)
    assert [int(r["step"]) for r in read_log(run / "log.csv")] == list(range(1, 11))
    raw["train"]["steps"] = 20
    train(load_config(raw=raw), "cpu", progress=False)
    rows = read_log(run / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    assert all(int(r["images_seen"]) == 4 * int(r["step"]) for r in rows)
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 20


def run_cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT)}
    return subprocess.run([sys.executable, "-m", "experiments.colorize", *map(str, args)], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)


def test_cli_colorizes_and_names_bad_inputs(trained, photo, tmp_path):
    src, dst = tmp_path / "photo.png", tmp_path / "out.png"
    Image.fromarray(photo).save(src)
    ckpt = trained / "checkpoint.pt"
    r = run_cli("--method", "classification", "--checkpoint", ckpt, "--input", src, "--output", dst, "--device", "cpu", "--set", "temperature=0.2")
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(dst))
    assert out.shape == photo.shape

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image\n")
    jpeg = tmp_path / "full.jpg"
    Image.fromarray(photo).save(jpeg, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    for bad in (empty, text, cut):
        r = run_cli("--method", "classification", "--checkpoint", ckpt, "--input", bad, "--output", tmp_path / "x.png", "--device", "cpu")
        assert r.returncode != 0, bad
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and bad.name in lines[0] and lines[0].startswith("error:"), r.stderr
        assert "Traceback" not in r.stderr


def test_working_size_comes_from_the_config_and_travels_with_the_checkpoint(tmp_path):
    """A model trained at one scale colorizes at the size its config names (the shipped squeezenet
    runs use 160), any photo size still comes back whole, and the checkpoint keeps the size."""
    seen = []
    m = ClassificationColorizer(Config(**SMALL, working_size=96), device="cpu")
    real = m.predict_ab
    m.predict_ab = lambda L, reference=None: (seen.append(L.shape), real(L))[1]
    out = m.colorize(np.random.default_rng(0).integers(0, 255, (70, 130), dtype=np.uint8))
    assert out.shape == (70, 130, 3) and seen == [(1, 48, 96)]  # the longer side at 96, aspect kept (keep_aspect)
    m.save(tmp_path / "m.pt", {"step": 0})
    assert ClassificationColorizer.from_checkpoint(tmp_path / "m.pt", device="cpu").working_size == 96
    assert ClassificationColorizer(Config(**SMALL), device="cpu").working_size == 256  # older checkpoints: the paper's
    with pytest.raises(ValueError, match="working_size"):
        ClassificationColorizer(Config(**SMALL, working_size=8), device="cpu")
