"""Iizuka et al. 2016 fusion backend (+ Deep Koalarization variant): training, any resolution,
the global branch, resume, checkpoints, frozen pretrained SqueezeNet and the CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tomllib
import torch
from PIL import Image

import backends
from backends import color
from backends.errors import CheckpointError, WeightsUnavailable
from backends.fusion import FusionColorizer, FusionConfig
from experiments import colorize as colorize_cli
from experiments.config import load_config
from experiments.train import read_log, train
from tests.conftest import PROJECT, SHARED, synthetic_photo

#: A tiny fusion network for the tests: every layer of the paper, small widths, the global branch at
#: 64 x 64 instead of 224 (a multiple of 32), the two tiny_data classes; Adam at 3e-3 so that a few
#: dozen steps show learning (the shipped config: Adam 1e-3, paper: Adadelta).
TINY = {
    "widths": [8, 8, 16, 16],
    "fc": [32, 16, 16],
    "global_size": 64,
    "working_size": 64,
    "num_classes": 2,
    "class_names": ["meadow", "sunset"],
    "optimizer": "adam",
    "lr": 3e-3,
}
STEPS = 40
SQUEEZE = SHARED / "weights" / "squeezenet1_1_imagenet_notop.h5"
needs_squeezenet = pytest.mark.skipif(not SQUEEZE.is_file(), reason=f"genuine SqueezeNet 1.1 weights not found at {SQUEEZE}")


def col(rows: list[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) for r in rows])


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return color.lab_to_rgb_uint8(color.rgb_to_lab(rgb) * np.array([1, 0, 0]))


def mean_dL(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(color.rgb_to_lab(a)[..., 0] - color.rgb_to_lab(b)[..., 0]).mean())


def assert_keeps_lightness(out: np.ndarray, src: np.ndarray) -> None:
    """The output's L is the input's: out-of-gamut predictions lose chroma, not lightness
    (``color.map_into_gamut``), so the bound holds however saturated the tiny model's sky is."""
    dL = np.abs(color.rgb_to_lab(out)[..., 0] - color.rgb_to_lab(src)[..., 0])
    assert dL.mean() < 0.5, dL.mean()


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """One short training run on the tiny photos, shared by the tests below -> its run folder."""
    torch.set_num_threads(1)
    raw = {
        "method": "fusion",
        "data": {"train": str(tiny_data / "train"), "val": str(tiny_data / "val"), "crop": 32, "batch_size": 4, "workers": 0, "val_count": 4},
        "train": {"steps": STEPS, "log_every": 1, "checkpoint_every": STEPS, "seed": 0, "runs_dir": str(tmp_path_factory.mktemp("fusion_runs"))},
        "model": TINY,
    }
    return train(load_config(raw=raw), "cpu", progress=False)


@pytest.fixture
def no_weights_anywhere(monkeypatch, tmp_path):
    """The weights resolver finds nothing: no env vars, an empty hub cache, no weights folders."""
    for var in ("COLORIZE_SQUEEZENET", "COLORIZE_VGG19", "COLORIZE_WEIGHTS_DIR", "COLORIZE_DOWNLOAD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr("backends.weights.weights_dirs", lambda: [tmp_path / "no_weights_here"])


# --- training ----------------------------------------------------------------------------------


def test_training_lowers_the_mse_and_logs_the_paper_loss(trained):
    rows = read_log(trained / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    for key in ("loss", "loss_mse", "loss_cls"):
        assert key in rows[0], f"log.csv lacks {key}"
        assert np.isfinite(col(rows, key)).all()
    mse = col(rows, "loss_mse")
    assert mse[-5:].mean() < 0.6 * mse[:5].mean(), (mse[:5], mse[-5:])
    # paper eq. 4: the total is the MSE plus alpha = 1/300 times the classification cross-entropy
    assert FusionConfig().alpha == pytest.approx(1 / 300)
    shipped = tomllib.loads((PROJECT / "experiments/configs/fusion.toml").read_text())["model"]
    assert shipped["alpha"] == pytest.approx(1 / 300) and shipped["global_size"] == 224
    assert np.allclose(col(rows, "loss"), mse + col(rows, "loss_cls") / 300, atol=5e-6)
    assert (col(rows, "loss_cls") > 0).all()  # the folder labels reach the classification head


def test_alpha_weights_the_classification_term():
    torch.manual_seed(0)
    batch = {"L": torch.rand(2, 1, 32, 32) * 100, "ab": torch.randn(2, 2, 32, 32) * 20, "label": torch.tensor([0, 1])}
    for alpha in (0.0, 0.5):
        m = FusionColorizer(FusionConfig(**{**TINY, "alpha": alpha}), "cpu")
        out = m.train_step(batch)
        assert out["loss"] == pytest.approx(out["loss_mse"] + alpha * out["loss_cls"], rel=1e-5)
    # photos without a label (-1) are left out of the classification term
    out = m.train_step({**batch, "label": torch.tensor([-1, -1])})
    assert out["loss_cls"] == 0.0 and out["loss"] == pytest.approx(out["loss_mse"])


def test_linear_decay_option_reaches_zero_and_a_step_at_zero_changes_nothing():
    """The optional linear decay (off by default): Adam takes it before each step, so a step at
    learning rate 0 leaves every trainable weight as it was."""
    assert FusionConfig().decay_steps == 0
    with pytest.raises(ValueError, match="decay"):
        FusionColorizer(FusionConfig(**TINY, decay_start=-1), "cpu")
    torch.manual_seed(0)
    batch = {"L": torch.rand(2, 1, 32, 32) * 100, "ab": torch.randn(2, 2, 32, 32) * 20, "label": torch.tensor([0, 1])}
    m = FusionColorizer(FusionConfig(**TINY, decay_start=3, decay_steps=4), "cpu")
    assert [m.lr_at(s) for s in (0, 2, 3, 6, 7, 9)] == pytest.approx([3e-3, 3e-3, 2.4e-3, 0.6e-3, 0.0, 0.0])
    m.step = 4
    m.train_step(batch)
    assert m.optims["net"].param_groups[0]["lr"] == pytest.approx(m.lr_at(4))
    m.step = 7
    before = [p.detach().clone() for p in m.nets["net"].parameters() if p.requires_grad]
    m.train_step(batch)
    after = [p for p in m.nets["net"].parameters() if p.requires_grad]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


# --- inference ---------------------------------------------------------------------------------


def test_colorize_keeps_size_and_lightness_at_any_resolution(trained, photo):
    torch.set_num_threads(1)
    model = backends.load("fusion", device="cpu", checkpoint=trained / "checkpoint.pt")
    assert isinstance(model, FusionColorizer) and model.info()["global_branch"] == "learned"
    grey = grey_of(photo)
    out = model.colorize(grey)  # 70 x 90, not square
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert_keeps_lightness(out, grey)
    assert color.chroma(color.rgb_to_lab(out)).mean() > 3.0  # it colours a grey photo
    rng = np.random.default_rng(5)
    for h, w in ((17, 23), (33, 47), (120, 40), (64, 64)):
        img = synthetic_photo(rng, max(h, w), 1)[:h, :w]
        res = model.colorize(img)
        assert res.shape == img.shape and mean_dL(res, img) < 1.0, (h, w)
    # the local path is fully convolutional: the working size keeps the aspect ratio (multiples of 8),
    # the prediction is at half of it, and sizes that are not multiples of 8 are padded, not refused
    for size in (40, 96):
        m = backends.load("fusion", device="cpu", checkpoint=trained / "checkpoint.pt", working_size=size)
        h, w = m.working_shape(70, 90)
        assert w == size and h % 8 == 0 and abs(h / w - 70 / 90) < 0.1
        assert m.predict_ab(np.full((1, h, w), 50.0, np.float32)).shape == (1, 2, h // 2, w // 2)
        assert m.colorize(photo).shape == photo.shape
    ab = model.predict_ab(color.rgb_to_lab(photo)[None, :45, :70, 0])
    assert ab.shape == (1, 2, 23, 35) and np.isfinite(ab).all()


def test_the_global_branch_changes_the_colours(trained, tiny_data):
    """Same local input, global 224-style copy of another photo: other colours (the fusion layer)."""
    model = FusionColorizer.from_checkpoint(trained / "checkpoint.pt", "cpu")
    net = model.nets["net"]
    meadow = np.asarray(Image.open(next((tiny_data / "val" / "meadow").glob("*.png"))).convert("RGB"))
    sunset = np.asarray(Image.open(next((tiny_data / "val" / "sunset").glob("*.png"))).convert("RGB"))
    L = torch.as_tensor(color.rgb_to_lab(meadow)[..., 0])[None, None].float()[..., :40, :40]
    L_other = torch.as_tensor(color.rgb_to_lab(sunset)[..., 0])[None, None].float()
    with torch.no_grad():
        own, _ = net(L, net.global_input(L))
        other, _ = net(L, net.global_input(L_other))
        again, _ = net(L, net.global_input(L))
    assert torch.equal(own, again)
    ab_diff = (own - other).abs().mean() * 2 * color.AB_SCALE  # in ab units
    assert ab_diff > 1.0, float(ab_diff)
    # the global branch also learned the scene class, named from the checkpoint's class names
    scenes = model.predict_scene(color.rgb_to_lab(sunset)[None, ..., 0], top=2)
    assert [n for n, _ in scenes[0]] == ["sunset", "meadow"], scenes
    assert sum(p for _, p in scenes[0]) == pytest.approx(1.0, abs=1e-5)


# --- resume and checkpoints ------------------------------------------------------------------------


def test_resumed_run_continues_its_loss_log(tiny_config):
    torch.set_num_threads(1)
    raw = tiny_config("fusion", steps=10, model=TINY, checkpoint_every=5)
    run = train(load_config(raw=raw), "cpu", progress=False)
    before = read_log(run / "log.csv")
    assert [int(r["step"]) for r in before] == list(range(1, 11))
    # a run killed after its last checkpoint logged a step the checkpoint does not have
    with (run / "log.csv").open("a") as f:
        f.write("11,0,9.9,44," + ",".join(["0.5"] * (len(before[0]) - 4)) + "\n")
    raw["train"]["steps"] = 16
    train(load_config(raw=raw), "cpu", progress=False)
    rows = read_log(run / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 17))
    assert rows[:10] == before and float(rows[10]["loss"]) != 0.5
    assert all(int(r["images_seen"]) == 4 * int(r["step"]) for r in rows)
    m = FusionColorizer(FusionConfig(**TINY), "cpu")
    m.load(run / "checkpoint.pt", training=True)
    assert m.step == 16 and all(int(s["step"]) == 16 for s in m.optims["net"].state.values())
    # the resumed run goes on from its trained state, not from a fresh model's loss
    mse = col(rows, "loss_mse")
    assert mse[10:13].mean() < mse[0]


def test_checkpoint_round_trip_and_named_checkpoint_errors(trained, photo, tmp_path):
    ckpt = trained / "checkpoint.pt"
    model = FusionColorizer.from_checkpoint(ckpt, "cpu")
    out = model.colorize(photo)
    copy = model.save(tmp_path / "copy.pt", {"note": "copy"}, training=False)
    again = FusionColorizer.from_checkpoint(copy, "cpu")
    assert np.array_equal(again.colorize(photo), out)
    assert again.class_names == ["meadow", "sunset"] and again.config.global_size == 64
    shipped = model.save(tmp_path / "fusion.pt", training=False, half=True)
    assert np.abs(backends.load("fusion", device="cpu", checkpoint=shipped).colorize(photo).astype(int) - out.astype(int)).mean() < 2.0
    # a BatchNorm variance beyond float16's range (65,504) stays float32 in the shipped file: cast, it
    # became inf and zeroed its channels (the shipped fusion model's first encoder layer, 7 channels)
    bn = next(m for m in model.nets["net"].modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var[:2] = 1.1e5
    out = model.colorize(photo)
    big = model.save(tmp_path / "fusion_big.pt", training=False, half=True)
    sd = torch.load(big, map_location="cpu", weights_only=True)["nets"]["net"]
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
    assert np.abs(backends.load("fusion", device="cpu", checkpoint=big).colorize(photo).astype(int) - out.astype(int)).mean() < 2.0

    data = ckpt.read_bytes()
    bad = {
        "truncated.pt": data[: len(data) // 2],
        "garbage.pt": b"\x00not a checkpoint" * 100,
        "empty.pt": b"",
    }
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=name):
            FusionColorizer.from_checkpoint(tmp_path / name, "cpu")
        with pytest.raises(CheckpointError, match=name):
            backends.load("fusion", device="cpu", checkpoint=tmp_path / name)
    with pytest.raises(CheckpointError, match="missing.pt.*not found"):
        backends.load("fusion", device="cpu", checkpoint=tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="checkpoint.pt"):  # a checkpoint of another shape
        FusionColorizer.from_checkpoint(ckpt, "cpu", widths=[8, 8, 16, 32])
    with pytest.raises(CheckpointError, match="checkpoint.pt.*'fusion'"):  # another method's checkpoint
        backends.load("classification", device="cpu", checkpoint=ckpt)


# --- Deep Koalarization: frozen genuine SqueezeNet 1.1 ------------------------------------------------


@needs_squeezenet
def test_koalarization_loads_genuine_squeezenet_and_keeps_it_frozen(monkeypatch, tmp_path):
    import h5py

    torch.set_num_threads(1)
    for var in ("COLORIZE_SQUEEZENET", "COLORIZE_WEIGHTS_DIR", "COLORIZE_DOWNLOAD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))  # so the resolver reaches ../shared/weights
    m = FusionColorizer(FusionConfig(**TINY, global_branch="squeezenet"), "cpu")
    assert m.info()["pretrained"] == f"{SQUEEZE} (weights folder)"
    sq = m.nets["net"].squeezenet
    with h5py.File(SQUEEZE, "r") as f:
        kernel = next(f["conv1"][k][()] for k in f["conv1"] if f["conv1"][k].ndim == 4)  # HWIO
    assert torch.equal(sq.features[0].weight, torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
    assert not any(p.requires_grad for p in sq.parameters())
    trainable = {id(p) for g in m.optims["net"].param_groups for p in g["params"]}
    assert not trainable & {id(p) for p in sq.parameters()}

    frozen = {k: v.clone() for k, v in sq.state_dict().items()}
    fc = m.nets["net"].global_fc2[0].weight.detach().clone()
    batch = {"L": torch.rand(2, 1, 32, 32) * 100, "ab": torch.randn(2, 2, 32, 32) * 20, "label": torch.tensor([0, 1])}
    for _ in range(2):
        out = m.train_step(batch)
    assert np.isfinite(list(out.values())).all()
    assert all(torch.equal(v, sq.state_dict()[k]) for k, v in frozen.items())  # SqueezeNet untouched
    assert not torch.equal(fc, m.nets["net"].global_fc2[0].weight)  # the fusion side learns


@needs_squeezenet
def test_koalarization_trains_and_its_checkpoint_needs_no_weights_file(tiny_config, tmp_path, no_weights_anywhere, photo):
    torch.set_num_threads(1)
    local = tmp_path / "squeezenet_copy.h5"  # given explicitly: the only SqueezeNet weights the resolver can find
    shutil.copy(SQUEEZE, local)
    model = {**TINY, "global_branch": "squeezenet", "squeezenet_weights": str(local)}
    run = train(load_config(raw=tiny_config("fusion", steps=25, model=model)), "cpu", progress=False)
    mse = col(read_log(run / "log.csv"), "loss_mse")
    assert mse[-5:].mean() < 0.7 * mse[:5].mean(), mse
    trained = FusionColorizer.from_checkpoint(run / "checkpoint.pt", "cpu")
    out = trained.colorize(photo)

    local.unlink()  # now no SqueezeNet weights exist at all
    with pytest.raises(WeightsUnavailable, match="squeezenet_copy.h5.*not found"):
        FusionColorizer(FusionConfig(**model), "cpu")
    with pytest.raises(WeightsUnavailable, match="COLORIZE_SQUEEZENET"):
        FusionColorizer(FusionConfig(**{**model, "squeezenet_weights": ""}), "cpu")
    rebuilt = backends.load("fusion", device="cpu", checkpoint=run / "checkpoint.pt")
    assert rebuilt.info()["global_branch"] == "squeezenet"
    assert np.array_equal(rebuilt.colorize(photo), out)
    assert torch.equal(rebuilt.nets["net"].squeezenet.features[0].weight, trained.nets["net"].squeezenet.features[0].weight)


def test_koalarization_names_missing_or_wrong_weights_files(tmp_path):
    with pytest.raises(WeightsUnavailable, match="nowhere.h5.*not found"):
        FusionColorizer(FusionConfig(**TINY, global_branch="squeezenet", squeezenet_weights=str(tmp_path / "nowhere.h5")), "cpu")
    fake = tmp_path / "notes.h5"
    fake.write_text("not weights\n")
    with pytest.raises(WeightsUnavailable, match="notes.h5"):
        FusionColorizer(FusionConfig(**TINY, global_branch="squeezenet", squeezenet_weights=str(fake)), "cpu")
    with pytest.raises(ValueError, match="global_branch"):
        FusionColorizer(FusionConfig(**TINY, global_branch="inception"), "cpu")


# --- command line --------------------------------------------------------------------------------------


def test_cli_colorizes_and_names_bad_inputs(trained, photo, tmp_path, capsys):
    torch.set_num_threads(1)
    ckpt = trained / "checkpoint.pt"
    src, dst = tmp_path / "photo.png", tmp_path / "out.png"
    Image.fromarray(photo).save(src)
    assert colorize_cli.main(["--method", "fusion", "--checkpoint", str(ckpt), "--input", str(src), "--output", str(dst), "--device", "cpu"]) == 0
    out = np.asarray(Image.open(dst))
    assert out.shape == photo.shape
    assert_keeps_lightness(out, photo)
    capsys.readouterr()

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    for bad in (empty, text):
        rc = colorize_cli.main(["--method", "fusion", "--checkpoint", str(ckpt), "--input", str(bad), "--output", str(tmp_path / "x.png"), "--device", "cpu"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc != 0, bad
        assert len(err) == 1 and err[0].startswith("error:") and bad.name in err[0], err
        assert not (tmp_path / "x.png").exists()
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(ckpt.read_bytes()[:1000])
    rc = colorize_cli.main(["--method", "fusion", "--checkpoint", str(corrupt), "--input", str(src), "--output", str(tmp_path / "y.png"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "corrupt.pt" in err[0], err


def test_cpu_inference_in_slices_gives_the_whole_batch_result(trained, monkeypatch):
    """On the CPU a batch runs a few photos per forward pass (faster: they stay in the cache); the
    colours and every photo's scene probabilities are those of one pass over the whole batch."""
    model = FusionColorizer.from_checkpoint(trained / "checkpoint.pt", "cpu")
    L = np.random.default_rng(3).uniform(0, 100, (5, 64, 64)).astype(np.float32)
    monkeypatch.setattr(FusionColorizer, "cpu_slice_pixels", None)
    whole, scenes = model.predict_ab(L), model.last_scene_probs
    monkeypatch.setattr(FusionColorizer, "cpu_slice_pixels", 2 * 64 * 64)
    assert model.slice_sizes(5, 64, 64) == [2, 2, 1]
    sliced = model.predict_ab(L)
    np.testing.assert_allclose(sliced, whole, atol=1e-4)
    assert model.last_scene_probs.shape == scenes.shape == (5, 2)
    np.testing.assert_allclose(model.last_scene_probs, scenes, atol=1e-6)
