"""pix2pix backend: training lowers L1 and logs both players, 70x70 PatchGAN, resumable, colorizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import backends
from backends import color
from backends.gan import GANColorizer, PatchDiscriminator, receptive_field
from experiments.config import load_config
from experiments.train import read_log, train

# small widths so ~30 steps take seconds on one thread; n_down = 5 fits the 32 px test crops; at
# these widths the paper's lr (2e-4) needs a few hundred steps to show, so the smoke tests use 1e-3
TINY = {"ngf": 8, "ndf": 8, "n_down": 5, "lr": 1e-3}


def col(rows: list[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) for r in rows])


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """One 30-step training run on the tiny photos, shared by the tests below."""
    torch.set_num_threads(1)
    runs = tmp_path_factory.mktemp("gan_runs")
    raw = {
        "method": "gan",
        "data": {
            "train": str(tiny_data / "train"),
            "val": str(tiny_data / "val"),
            "crop": 32,
            "batch_size": 4,
            "workers": 0,
            "val_count": 4,
        },
        "train": {"steps": 30, "log_every": 1, "checkpoint_every": 30, "seed": 0, "runs_dir": str(runs)},
        "model": TINY,
    }
    return train(load_config(raw=raw), "cpu", progress=False)


def test_training_lowers_l1_and_logs_both_losses(trained):
    rows = read_log(trained / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    for key in ("loss", "loss_g", "loss_l1", "loss_d", "d_real", "d_fake"):
        assert key in rows[0], f"log.csv lacks {key}"
        assert np.isfinite(col(rows, key)).all()
    l1 = col(rows, "loss_l1")
    assert l1[-5:].mean() < 0.7 * l1[:5].mean()
    # the total is the GAN term plus the (weighted) L1 term; D's loss is a real two-player number
    assert np.allclose(col(rows, "loss"), col(rows, "loss_g") + l1, atol=1e-4)
    assert (col(rows, "loss_d") > 0).all() and col(rows, "loss_g").std() > 0


def test_patchgan_receptive_field_is_70x70():
    D = PatchDiscriminator(ndf=8, n_layers=3)
    assert receptive_field(D) == 70
    assert receptive_field(GANColorizer(device="cpu").nets["D"]) == 70  # the shipped default
    # measured: the gradient of one interior output patch w.r.t. a 256 px input covers 70 x 70 pixels
    D.eval()
    x = torch.randn(1, 3, 256, 256, requires_grad=True)
    out = D(x)
    assert out.shape[-2:] == (30, 30)
    out[0, 0, 15, 15].backward()
    support = (x.grad[0].abs().sum(0) > 0).numpy()
    rows, cols = np.nonzero(support)
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70
    assert support.sum() == 70 * 70


def test_discriminator_is_conditional_on_lightness():
    """D sees (L, ab): the same ab with a different L gives different patch logits."""
    m = GANColorizer(GANColorizer.Config(**TINY), "cpu")
    ab = torch.randn(1, 2, 64, 64) * 0.2
    L1, L2 = torch.zeros(1, 1, 64, 64), torch.rand(1, 1, 64, 64) - 0.5
    with torch.no_grad():
        a, b = m.nets["D"](torch.cat([L1, ab], 1)), m.nets["D"](torch.cat([L2, ab], 1))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("mode", ["vanilla", "lsgan"])
def test_train_step_updates_both_players(mode):
    torch.manual_seed(0)
    m = GANColorizer(GANColorizer.Config(**TINY, gan_mode=mode), "cpu").train()
    g0 = [p.detach().clone() for p in m.nets["G"].parameters()]
    d0 = [p.detach().clone() for p in m.nets["D"].parameters()]
    batch = {"L": torch.rand(2, 1, 32, 32) * 100, "ab": torch.randn(2, 2, 32, 32) * 20, "label": torch.full((2,), -1)}
    out = m.train_step(batch)
    assert set(out) >= {"loss", "loss_g", "loss_l1", "loss_d"}
    assert any(not torch.equal(a, p) for a, p in zip(g0, m.nets["G"].parameters()))
    assert any(not torch.equal(a, p) for a, p in zip(d0, m.nets["D"].parameters()))
    assert all(p.requires_grad for p in m.nets["D"].parameters())  # unfrozen after G's step


def test_sizes_are_checked_and_predict_pads():
    m = GANColorizer(GANColorizer.Config(**TINY), "cpu")
    bad = {"L": torch.rand(2, 1, 40, 40) * 100, "ab": torch.zeros(2, 2, 40, 40), "label": torch.full((2,), -1)}
    with pytest.raises(ValueError, match="divisible by 2 \\*\\* n_down = 32"):
        m.train_step(bad)
    ab = m.predict_ab(np.full((1, 45, 70), 50.0, np.float32))
    assert ab.shape == (1, 2, 45, 70) and np.isfinite(ab).all()
    with pytest.raises(ValueError, match="gan_mode"):
        GANColorizer(GANColorizer.Config(gan_mode="wgan"), "cpu")


@pytest.mark.parametrize("shape", [(64, 96), (45, 70)])  # a multiple of 2 ** n_down, and one that is padded
def test_mirror_average_is_the_mean_of_the_photo_and_its_mirror(trained, shape):
    """``mirror_average``: the mirrored photo gets exactly the mirrored colours, and each is the mean
    of the plain prediction and the mirror's prediction mirrored back."""
    torch.set_num_threads(1)
    plain = GANColorizer.from_checkpoint(trained / "checkpoint.pt", "cpu")
    both = GANColorizer.from_checkpoint(trained / "checkpoint.pt", "cpu", mirror_average=True)
    L = np.random.default_rng(0).uniform(0, 100, (2, *shape)).astype(np.float32)
    a, b = plain.predict_ab(L), plain.predict_ab(L[..., ::-1].copy())[..., ::-1]
    assert np.abs(a - b).mean() > 0.01  # the plain gan is not mirror-symmetric: there is something to average
    got = both.predict_ab(L)
    np.testing.assert_allclose(got, (a + b) / 2, atol=1e-4)
    np.testing.assert_allclose(both.predict_ab(L[..., ::-1].copy())[..., ::-1], got, atol=1e-4)
    assert backends.describe("gan").option("mirror_average").default is False  # not the paper's: opt-in


def test_colorize_from_checkpoint_keeps_size_and_lightness(trained, photo, tmp_path):
    torch.set_num_threads(1)
    ckpt = trained / "checkpoint.pt"
    model = backends.load("gan", device="cpu", checkpoint=ckpt)
    assert isinstance(model, GANColorizer)
    out = model.colorize(photo)  # 70 x 90, not square
    assert out.shape == photo.shape and out.dtype == np.uint8
    lab_in, lab_out = color.rgb_to_lab(photo), color.rgb_to_lab(out)
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).mean() < 1.0
    assert color.chroma(lab_out).mean() > 3.0  # it adds colour, not just grey
    # deterministic by default (dropout off at test time)...
    assert np.array_equal(model.colorize(photo), out)
    # ...and a shipped-style checkpoint (half precision, no optimiser state) gives the same colours
    shipped = model.save(tmp_path / "gan.pt", {"note": "shipped"}, training=False, half=True)
    out_half = backends.load("gan", device="cpu", checkpoint=shipped).colorize(photo)
    assert np.abs(out_half.astype(int) - out.astype(int)).mean() < 2.0
    # the paper's test-time dropout is an inference option
    noisy = backends.load("gan", device="cpu", checkpoint=shipped, test_dropout=True)
    assert noisy.config.test_dropout and noisy.colorize(photo).shape == photo.shape
    torch.manual_seed(0)
    assert not np.array_equal(noisy.colorize(photo), noisy.colorize(photo))  # dropout on at every call
    assert not any(m.training for m in noisy.nets["G"].modules())  # and off again after it
    # a network in training mode (validation during a run) comes back in training mode, dropout included
    G = model.nets["G"].train()
    model.colorize(photo)
    assert G.training and all(m.training for m in G.modules() if isinstance(m, torch.nn.Dropout))


def test_resume_continues_log_with_both_optimisers(tiny_config, tmp_path):
    torch.set_num_threads(1)
    cfg = load_config(raw=tiny_config("gan", steps=12, model=TINY, checkpoint_every=12))
    run = train(cfg, "cpu", progress=False)
    before = read_log(run / "log.csv")
    # both optimisers' states are in the checkpoint and come back on load
    m = GANColorizer(GANColorizer.Config(**TINY), "cpu")
    m.load(run / "checkpoint.pt", training=True)
    assert m.step == 12
    for name in ("G", "D"):
        states = list(m.optims[name].state.values())
        assert states and all(int(s["step"]) == 12 for s in states), name

    cfg = load_config(raw=tiny_config("gan", steps=20, model=TINY, checkpoint_every=20))
    train(cfg, "cpu", progress=False)
    rows = read_log(run / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    assert rows[:12] == before
    l1 = col(rows, "loss_l1")
    # the resumed run goes on from where it was, not from a fresh model's loss
    assert abs(l1[12:15].mean() - l1[9:12].mean()) < 0.5 * (l1[0] - l1[9:12].mean())
    m.load(run / "checkpoint.pt", training=True)
    assert m.step == 20 and all(int(s["step"]) == 20 for s in m.optims["D"].state.values())


def test_linear_decay_policy_reaches_zero_and_is_applied(tiny_data):
    """pix2pix's 'linear' policy: constant, then linearly to 0; the optimisers use it."""
    model = GANColorizer(GANColorizer.Config(ngf=8, ndf=8, n_down=3, decay_start=10, decay_steps=10), device="cpu")
    lrs = [model.lr_at(s) for s in range(25)]
    assert lrs[:10] == [2e-4] * 10
    assert all(a > b for a, b in zip(lrs[9:20], lrs[10:20])) and lrs[20] == 0.0 == lrs[24]
    assert GANColorizer.Config().decay_steps == 0  # off unless the config asks (constant 2e-4)
    model.step = 15
    x = torch.rand(2, 1, 32, 32) * 100
    model.train_step({"L": x, "ab": torch.zeros(2, 2, 32, 32), "label": torch.zeros(2)})
    assert model.optims["G"].param_groups[0]["lr"] == pytest.approx(model.lr_at(15))
    assert model.optims["D"].param_groups[0]["lr"] == pytest.approx(model.lr_at(15))


def test_bfloat16_training_on_the_cpu(monkeypatch):
    """train.precision: bf16 runs the training step's convolutions in bfloat16 (channels-last),
    keeps the weights, losses and inference in float32, and learns; auto picks it only where the
    CPU has native bfloat16; a wrong value is named."""
    from backends import base

    torch.manual_seed(0)
    m = GANColorizer(GANColorizer.Config(**TINY), "cpu")
    monkeypatch.setattr(base, "_native_cpu_bf16", lambda: False)
    assert m.set_train_precision("auto") == "float32" and not m.cpu_bf16
    with pytest.raises(ValueError, match="bf16"):
        m.set_train_precision("half")
    assert m.set_train_precision("bf16") == "bf16"
    conv = next(x for x in m.nets["G"].modules() if isinstance(x, torch.nn.Conv2d))
    assert conv.weight.dtype == torch.float32 and conv.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    hook = conv.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    m.train()
    batch = {"L": torch.rand(4, 1, 32, 32) * 100, "ab": torch.randn(4, 2, 32, 32) * 20, "label": torch.full((4,), -1)}
    first = m.train_step(batch)["loss_l1"]
    assert seen and seen[0] == torch.bfloat16
    for _ in range(30):
        last = m.train_step(batch)["loss_l1"]
    assert np.isfinite(last) and last < first  # it learns the batch
    hook.remove()
    ab = m.predict_ab(np.full((1, 32, 32), 50.0, np.float32))
    assert ab.dtype == np.float32 and np.isfinite(ab).all()
    assert all(p.dtype == torch.float32 for p in m.nets["G"].parameters())


def test_a_new_checkout_continues_from_the_committed_resume_weights(tiny_config, capsys):
    """The run checkpoint (with the optimisers) is not committed; resume.pt is. Without the
    checkpoint, --init-from resume.pt continues at the same step and images seen, with the same
    weights, and the log goes on from there."""
    torch.set_num_threads(1)
    cfg = load_config(raw=tiny_config("gan", steps=12, model=TINY, checkpoint_every=12))
    run = train(cfg, "cpu", progress=False)
    resume, meta = run / "resume.pt", json.loads((run / "resume.json").read_text())
    assert resume.exists() and meta["step"] == 12 and meta["images_seen"] > 0
    assert resume.stat().st_size < 0.7 * (run / "checkpoint.pt").stat().st_size  # float16, no optimiser state
    saved = GANColorizer.from_checkpoint(resume, "cpu")
    for p in (run / "checkpoint.pt", run / "checkpoint.json"):
        p.unlink()  # as on a new checkout
    before = read_log(run / "log.csv")
    capsys.readouterr()
    cfg = load_config(raw=tiny_config("gan", steps=16, model=TINY, checkpoint_every=16))
    train(cfg, "cpu", progress=False, init_from=resume)
    assert f"from step 12 ({resume})" in capsys.readouterr().err
    rows = read_log(run / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 17)) and rows[:12] == before  # the log goes on
    m = GANColorizer(GANColorizer.Config(**TINY), "cpu")
    state = m.load(run / "checkpoint.pt", training=True)
    assert m.step == 16 and state["images_seen"] == meta["images_seen"] * 16 // 12
    assert "continued_from" not in state  # its own weights: the same run, not a continuation of another
    # four steps on from the resume weights
    w_resume = next(iter(saved.nets["G"].parameters())).detach()
    w_now = next(iter(m.nets["G"].parameters())).detach()
    assert 0 < (w_now - w_resume).abs().mean() < 0.5 * w_resume.abs().mean()


def test_a_run_continued_from_another_records_where_it_began(tiny_config):
    """A new run started with --init-from another run's weights says so in every checkpoint it
    writes (and the model card shows it), also after resuming from its own checkpoint."""
    torch.set_num_threads(1)
    first = train(load_config(raw=tiny_config("gan", steps=4, model=TINY, checkpoint_every=4, run="base")), "cpu", progress=False)
    seen = json.loads((first / "resume.json").read_text())["images_seen"]
    raw = tiny_config("gan", steps=6, model={**TINY, "lr": 1e-4}, checkpoint_every=2, run="base-more")
    more = train(load_config(raw=raw), "cpu", progress=False, init_from=first / "resume.pt")
    want = {"run": "base", "images_seen": seen, "file": str(first / "resume.pt")}
    assert json.loads((more / "checkpoint.json").read_text())["continued_from"] == want
    raw["train"]["steps"] = 8
    train(load_config(raw=raw), "cpu", progress=False)  # resumes from base-more's own checkpoint
    meta = json.loads((more / "checkpoint.json").read_text())
    assert meta["step"] == 8 and meta["continued_from"] == want
    from experiments.modelcard import make_card

    assert f"continued from run base at {seen:,} images" in make_card("gan", meta)["variant"]
    assert "dropout in" not in make_card("gan", meta)["variant"]  # the paper's three blocks
    meta["config"]["model"]["dropout_blocks"] = 1
    assert "dropout in 1 decoder block (the paper: 3)" in make_card("gan", meta)["variant"]
    meta["config"]["model"].update(encoder="squeezenet", ngf_decoder=16)
    assert "decoder widths" not in make_card("gan", meta)["variant"]  # the first runs' width
    meta["config"]["model"]["ngf_decoder"] = 32
    assert "decoder widths from 32 (ngf_decoder" in make_card("gan", meta)["variant"]


def test_cpu_inference_in_slices_gives_the_whole_batch_result(monkeypatch):
    """A batch runs a few photos per forward pass on the CPU; without test-time dropout the
    result is the whole batch's."""
    m = GANColorizer(GANColorizer.Config(**TINY, test_dropout=False), "cpu")
    L = np.random.default_rng(4).uniform(0, 100, (3, 64, 64)).astype(np.float32)
    monkeypatch.setattr(GANColorizer, "cpu_slice_pixels", None)
    whole = m.predict_ab(L)
    monkeypatch.setattr(GANColorizer, "cpu_slice_pixels", 64 * 64)
    assert m.slice_sizes(3, 64, 64) == [1, 1, 1]
    np.testing.assert_allclose(m.predict_ab(L), whole, atol=1e-4)
    assert whole.shape == (3, 2, 64, 64)
