"""Gatys et al. neural-style backend: L-BFGS lowers the loss, colour comes from the reference, the
automatic reference is never the target itself, the VGG19 weights resolver, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import backends
from backends import color
from backends.errors import BackendUnavailable, ReferenceRequired
from backends.neural_style import NeuralStyleColorizer
from experiments import colorize as colorize_cli
from tests.conftest import SHARED, synthetic_photo

VGG = SHARED / "weights" / "vgg19_normalised_to_relu3_1.pth"
SQUEEZE = SHARED / "weights" / "squeezenet1_1_imagenet_notop.h5"
DATA = SHARED / "data"
needs_vgg = pytest.mark.skipif(not VGG.is_file(), reason=f"genuine VGG19 weights (to relu3_1) not found at {VGG}")
#: Tiny working size and few iterations: each colorization is well under a second on one core.
FAST = {"iterations": 10, "working_size": 32, "progress_bar": False, "coarse_iterations": 0}  # one stage (coarse to fine: below)


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return color.lab_to_rgb_uint8(color.rgb_to_lab(rgb) * np.array([1, 0, 0]))


def mean_ab(rgb: np.ndarray) -> np.ndarray:
    return color.rgb_to_lab(rgb)[..., 1:].reshape(-1, 2).mean(0)


def small(rgb: np.ndarray, side: int = 96) -> np.ndarray:
    im = Image.fromarray(rgb)
    im.thumbnail((side, side))
    return np.asarray(im)


@pytest.fixture(scope="module")
def orange() -> np.ndarray:
    """A sunset photo: orange sky over brown ground (a > 0, b >> 0)."""
    return synthetic_photo(np.random.default_rng(2), 48, 1)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    if not VGG.is_file():
        pytest.skip(f"genuine VGG19 weights (to relu3_1) not found at {VGG}")
    return NeuralStyleColorizer(NeuralStyleColorizer.Config(**FAST, weights=str(VGG)), "cpu")


@pytest.fixture
def weights_env(monkeypatch, tmp_path):
    """An isolated weights resolver: no env vars, an empty hub cache, one empty weights folder."""
    for var in ("COLORIZE_VGG19", "COLORIZE_WEIGHTS_DIR", "COLORIZE_DOWNLOAD"):
        monkeypatch.delenv(var, raising=False)
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    folder = tmp_path / "weights_folder"
    hub.mkdir(parents=True)
    folder.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr("backends.weights.weights_dirs", lambda: [folder])
    return hub, folder


def fake_vgg(path: Path, fmt: str) -> Path:
    """A VGG19 state dict holding conv1_1 only (random), in torchvision or normalised layout."""
    g = torch.Generator().manual_seed(0)
    if fmt == "torchvision":
        sd = {"features.0.weight": torch.randn(64, 3, 3, 3, generator=g) * 0.1, "features.0.bias": torch.zeros(64)}
    else:
        sd = {"0.weight": torch.eye(3).view(3, 3, 1, 1) * 255, "0.bias": torch.zeros(3), "2.weight": torch.randn(64, 3, 3, 3, generator=g) * 0.01, "2.bias": torch.zeros(64)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path


# --- the optimisation ------------------------------------------------------------------------------


def test_lbfgs_lowers_the_loss_and_keeps_size_and_lightness(model, photo, orange):
    grey = grey_of(photo)  # 70 x 90, not square
    calls = []
    model.progress = lambda i, n: calls.append((i, n))  # what the dashboard's progress bar gets
    try:
        out = model.colorize(grey, reference=orange)
    finally:
        model.progress = None
    assert calls and calls[-1][0] == calls[-1][1] and [i for i, _ in calls] == sorted(i for i, _ in calls)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.abs(color.rgb_to_lab(out)[..., 0] - color.rgb_to_lab(grey)[..., 0]).mean() < 1.0
    losses = model.last_losses
    assert len(losses) >= 6 and set(losses[0]) == {"total", "style", "content"}
    total = np.array([d["total"] for d in losses])
    assert np.isfinite(total).all() and (np.diff(total) <= 0).all(), total  # no iteration makes it worse
    assert total[-1] < 0.5 * total[0], total
    assert losses[-1]["style"] < 0.5 * losses[0]["style"]
    assert model.last_reference["name"] == "given reference"


def test_colour_comes_from_the_reference(model, photo, orange):
    grey = grey_of(photo)
    blue = orange[..., ::-1].copy()  # the same sunset, blue instead of orange
    ab = {}
    for name, ref in (("orange", orange), ("blue", blue)):
        ab[name] = mean_ab(model.colorize(grey, reference=ref))
        # the output's mean colour moves from grey (0, 0) most of the way to the reference's
        target = mean_ab(ref)
        assert np.linalg.norm(ab[name] - target) < 0.5 * np.linalg.norm(target), (name, ab[name], target)
    assert ab["orange"][1] > 15 and ab["blue"][1] < -15, ab  # b: yellow-orange vs blue
    # the result depends on the reference, not only on the grey input
    assert not np.array_equal(model.colorize(grey, reference=orange), model.colorize(grey, reference=blue))


@needs_vgg
def test_a_non_square_photo_is_optimised_at_its_own_shape(photo, orange):
    """keep_aspect (the default): Gatys' optimisation runs on the photo at its own shape, longer side
    at the working size; off, on the photo squashed to the working square. Either way the output
    has the photo's size."""
    wide = grey_of(np.ascontiguousarray(np.concatenate([photo, photo[:, ::-1]], axis=1)))  # 70 x 180
    assert [(o.type, o.default) for o in backends.describe("neural_style").options if o.name == "keep_aspect"] == [("bool", True)]
    for keep, shape in ((True, (16, 32)), (False, (32, 32))):
        m = NeuralStyleColorizer(NeuralStyleColorizer.Config(**{**FAST, "iterations": 2}, weights=str(VGG), keep_aspect=keep), "cpu")
        seen, real = [], m.transfer
        m.transfer = lambda L, ref, real=real, seen=seen: (seen.append(L.shape), real(L, ref))[1]
        out = m.colorize(wide, reference=orange)
        assert out.shape == wide.shape and seen == [shape], (keep, seen)


# --- automatic reference -----------------------------------------------------------------------------


@needs_vgg
@pytest.mark.parametrize("rule", ["semantic", "greyscale"])
def test_automatic_reference_is_similar_but_never_the_target_itself(tmp_path, orange, rule):
    if rule == "semantic" and not SQUEEZE.is_file():
        pytest.skip(f"genuine SqueezeNet 1.1 weights not found at {SQUEEZE}")
    from skimage import data

    photos = {n: small(getattr(data, n)()) for n in ("chelsea", "coffee", "astronaut")}
    photos["sunset"] = orange
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for name, rgb in photos.items():
        Image.fromarray(rgb).save(gallery / f"{name}.png")
    Image.fromarray(photos["chelsea"][:, ::-1].copy()).save(gallery / "chelsea_mirrored.png")
    # the photos' own 96 px as the working size: SqueezeNet does not recognise a 32-px cat
    cfg = NeuralStyleColorizer.Config(**{**FAST, "iterations": 2, "working_size": 96}, weights=str(VGG), gallery=[str(gallery)], gallery_fallback=False, reference_rule=rule)
    m = NeuralStyleColorizer(cfg, "cpu")
    assert len(m.gallery()) == 5 and m.reference_rule == rule
    for name in ("chelsea", "coffee", "astronaut"):
        out = m.colorize(grey_of(photos[name]))  # no reference given: one is picked from the gallery
        ref = m.last_reference
        assert out.shape == photos[name].shape
        assert Path(ref["path"]).name != f"{name}.png", f"{name} was coloured from its own colour photo"
        assert [Path(p).name for p in ref["skipped_as_self"]] == [f"{name}.png"]
        assert ref["path"] is not None and Path(ref["path"]).parent == gallery and ref["rule"] == rule
    # by either rule: the mirrored copy of the cat is nearest to the grey cat
    m.colorize(grey_of(photos["chelsea"]))
    assert Path(m.last_reference["path"]).name == "chelsea_mirrored.png"
    assert m.last_reference["score"] > (0.9 if rule == "greyscale" else 0.7)  # semantic: cosine centred on 5 photos' mean


@needs_vgg
def test_a_gallery_holding_only_the_target_asks_for_a_reference(tmp_path, photo):
    gallery = tmp_path / "only_me"
    gallery.mkdir()
    Image.fromarray(photo).save(gallery / "me.png")
    m = NeuralStyleColorizer(NeuralStyleColorizer.Config(**FAST, weights=str(VGG), gallery=[str(gallery)], gallery_fallback=False), "cpu")
    with pytest.raises(ReferenceRequired, match="me.png.*--reference"):
        m.colorize(grey_of(photo))
    empty = tmp_path / "empty_gallery"
    empty.mkdir()
    m = NeuralStyleColorizer(NeuralStyleColorizer.Config(**FAST, weights=str(VGG), gallery=[str(empty)], gallery_fallback=False), "cpu")
    with pytest.raises(ReferenceRequired, match="--reference"):
        m.colorize(grey_of(photo))


needs_semantic = pytest.mark.skipif(
    not (VGG.is_file() and SQUEEZE.is_file() and (DATA / "val").is_dir()), reason="genuine VGG19 / SqueezeNet weights or ../shared/data not found"
)


def _val_and_train(labels: tuple[str, ...], per_label: int) -> tuple[list[tuple[str, Path]], list[Path]]:
    """The first val photo of each label, and the first ``per_label`` train photos of each."""
    val = [(lab, sorted((DATA / "val" / lab).glob("*.jpg"))[0]) for lab in labels]
    train = [f for lab in labels for f in sorted((DATA / "train" / lab).glob("*.jpg"))[:per_label]]
    return val, train


@needs_semantic
def test_semantic_rule_picks_a_reference_of_the_same_subject(tmp_path):
    """Grey val photos of 4 subjects against a gallery of 2 train photos of each: the semantic rule
    (SqueezeNet features of the grey images) picks a photo of the input's own subject."""
    torch.set_num_threads(1)
    labels = ("english_springer", "french_horn", "garbage_truck", "forest")
    val, train = _val_and_train(labels, 2)
    listing = tmp_path / "gallery.toml"
    listing.write_text(f'[gallery]\nroot = "{DATA}"\nphotos = [{", ".join(repr(f.relative_to(DATA).as_posix()) for f in train)}]\n'.replace("'", '"'))
    m = NeuralStyleColorizer(NeuralStyleColorizer.Config(**FAST, weights=str(VGG), gallery=[str(listing)], gallery_features="", reference_rule="auto"), "cpu")
    assert m.reference_rule == "semantic" and "SqueezeNet" in m.info()["reference_rule_note"]
    assert len(m.gallery()) == 8
    for label, path in val:
        L = color.rgb_to_lab(np.asarray(Image.open(path).convert("RGB")))[..., 0]  # at its own size: SqueezeNet needs ~100+ px
        ref = m.pick_reference(L)
        assert ref["name"].split("/")[0] == label and ref["rule"] == "semantic", (label, ref["name"])


@needs_semantic
def test_stored_gallery_features_are_used_when_they_match_and_recomputed_when_not(tmp_path):
    from backends import neural_style as ns

    torch.set_num_threads(1)
    _, train = _val_and_train(("church", "parachute", "golf_ball"), 1)
    gallery = [str(f) for f in train]
    cfg = {**FAST, "weights": str(VGG), "gallery": gallery}
    fresh = NeuralStyleColorizer(NeuralStyleColorizer.Config(**cfg, gallery_features=""), "cpu").gallery()
    net, found = ns.load_semantic_encoder("cpu")
    store = tmp_path / "features.npz"
    planes = [color.rgb_to_lab(np.asarray(Image.open(f).convert("RGB")))[..., 0] for f in train]
    ns.save_gallery_features(store, train, ns.semantic_features(net, planes), found.path)
    stored = NeuralStyleColorizer(NeuralStyleColorizer.Config(**cfg, gallery_features=str(store)), "cpu").gallery()
    np.testing.assert_allclose([p.descriptor for p in stored], [p.descriptor for p in fresh], atol=1e-5)
    # the file really is read: other numbers under the same keys change the descriptors ...
    ns.save_gallery_features(store, train, np.random.default_rng(0).random((3, 512), np.float32), found.path)
    ns._GALLERY_CACHE.clear()
    read = NeuralStyleColorizer(NeuralStyleColorizer.Config(**cfg, gallery_features=str(store)), "cpu").gallery()
    assert np.abs(np.array([p.descriptor for p in read]) - [p.descriptor for p in fresh]).max() > 0.1
    # ... but features made with other weights are not used: the photos are computed afresh
    with np.load(store) as z:
        data = dict(z)
    data["weights"] = np.array("other_weights.pth|123")
    np.savez(store, **data)
    ns._GALLERY_CACHE.clear()
    recomputed = NeuralStyleColorizer(NeuralStyleColorizer.Config(**cfg, gallery_features=str(store)), "cpu").gallery()
    np.testing.assert_allclose([p.descriptor for p in recomputed], [p.descriptor for p in fresh], atol=1e-5)


@needs_vgg
def test_without_squeezenet_weights_the_greyscale_rule_is_used_and_said(weights_env, monkeypatch, photo, orange, tmp_path):
    monkeypatch.delenv("COLORIZE_SQUEEZENET", raising=False)
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    Image.fromarray(orange).save(gallery / "sunset.png")
    m = NeuralStyleColorizer(NeuralStyleColorizer.Config(**FAST, weights=str(VGG), gallery=[str(gallery)]), "cpu")
    info = m.info()
    assert m.reference_rule == info["reference_rule"] == "greyscale"
    assert "greyscale similarity" in info["reference_rule_note"] and "SqueezeNet" in info["reference_rule_note"]
    assert m.pick_reference(color.rgb_to_lab(grey_of(photo))[..., 0])["rule"] == "greyscale"
    monkeypatch.setattr("backends.weights.weights_dirs", lambda: [VGG.parent])  # VGG19 found, the rule says which it uses
    status = backends.status("neural_style")
    assert "automatic reference by" in status.reason
    monkeypatch.setattr("backends.weights.weights_dirs", lambda: [tmp_path / "weights_folder"])
    with pytest.raises(BackendUnavailable, match="reference_rule=semantic needs SqueezeNet"):
        NeuralStyleColorizer(NeuralStyleColorizer.Config(**FAST, weights=str(VGG), reference_rule="semantic"), "cpu")
    with pytest.raises(ValueError, match="reference_rule must be one of"):
        NeuralStyleColorizer(NeuralStyleColorizer.Config(**FAST, weights=str(VGG), reference_rule="colourful"), "cpu")


@needs_semantic
def test_the_shipped_gallery_covers_every_training_label_and_its_features_are_current():
    from experiments import gallery as build

    listing = build.PROJECT_ROOT / "backends" / "assets" / "neural_style_gallery.toml"
    import tomllib

    photos = tomllib.loads(listing.read_text())["gallery"]["photos"]
    labels = {p.rsplit("/", 1)[0] for p in photos}
    want = {f"{split}/{d.name}" for split in ("train", "train_extra") for d in (DATA / split).iterdir() if d.is_dir()}
    assert labels == want and len(photos) == 3 * len(want), sorted(want - labels)
    assert build.stale(listing, build.PROJECT_ROOT / "backends" / "assets" / "neural_style_gallery.npz") == []


# --- weights -------------------------------------------------------------------------------------------


def test_weights_resolver_order_and_reported_depth(weights_env, tmp_path, monkeypatch):
    hub, folder = weights_env
    explicit = fake_vgg(tmp_path / "mine" / "vgg_explicit.pth", "normalised")
    env = fake_vgg(tmp_path / "env" / "vgg_env.pth", "torchvision")
    fake_vgg(hub / "vgg19-dcbb9e9d.pth", "torchvision")
    fake_vgg(folder / "vgg19_normalised_to_relu3_1.pth", "normalised")
    monkeypatch.setenv("COLORIZE_VGG19", str(env))

    def used(**cfg) -> dict:
        return NeuralStyleColorizer(NeuralStyleColorizer.Config(**FAST, **cfg), "cpu").info()

    info = used(weights=str(explicit))
    assert (info["weights"], info["weights_source"], info["weights_format"]) == (str(explicit), "explicit", "normalised")
    # a file with conv1_1 only: the backend uses the depth the file gives and says so
    assert info["depth"] == "relu1_1" and info["style_layers"] == ["relu1_1"] and info["content_layer"] == "relu1_1"
    assert "only up to relu1_1" in info["summary"]
    info = used()
    assert (info["weights"], info["weights_source"], info["weights_format"]) == (str(env), "env", "torchvision")
    monkeypatch.setenv("COLORIZE_VGG19", str(tmp_path / "gone.pth"))  # a stale env var is passed over
    assert used()["weights_source"] == "hub cache"
    (hub / "vgg19-dcbb9e9d.pth").unlink()
    info = used()
    assert info["weights_source"] == "weights folder" and info["weights"] == str(folder / "vgg19_normalised_to_relu3_1.pth")
    status = backends.status("neural_style")
    assert status.available and "weights folder" in status.reason and "relu1_1" in status.reason


@needs_vgg
def test_genuine_weights_reach_relu3_1_and_the_backend_says_so(weights_env, monkeypatch):
    monkeypatch.setattr("backends.weights.weights_dirs", lambda: [VGG.parent])
    status = backends.status("neural_style")
    assert status.available and "only up to relu3_1" in status.reason, status
    info = backends.load("neural_style", device="cpu", **FAST).info()
    assert info["weights"] == str(VGG) and info["weights_source"] == "weights folder"
    assert info["depth"] == "relu3_1" and info["weights_format"] == "normalised"
    # Gatys' layers past relu3_1 are dropped; the content layer falls back to the deepest one
    assert info["style_layers"] == ["relu1_1", "relu2_1", "relu3_1"] and info["content_layer"] == "relu3_1"


def test_no_weights_anywhere_is_reported_not_a_crash(weights_env, photo, tmp_path, capsys):
    status = backends.status("neural_style")
    assert not status.available
    assert "VGG19" in status.reason and "Fix" in status.reason and "COLORIZE_VGG19" in status.reason
    with pytest.raises(BackendUnavailable, match="COLORIZE_VGG19"):
        backends.load("neural_style", device="cpu")
    missing = tmp_path / "my_vgg.pth"
    with pytest.raises(BackendUnavailable, match="my_vgg.pth.*not found"):
        backends.load("neural_style", device="cpu", weights=str(missing))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")
    with pytest.raises(BackendUnavailable, match="junk.pth"):
        backends.load("neural_style", device="cpu", weights=str(junk))
    src = tmp_path / "photo.png"
    Image.fromarray(photo).save(src)
    rc = colorize_cli.main(["--method", "neural_style", "--input", str(src), "--output", str(tmp_path / "out.png"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: neural_style") and "COLORIZE_VGG19" in err[0], err
    assert not (tmp_path / "out.png").exists()


# --- command line ----------------------------------------------------------------------------------


@needs_vgg
def test_cli_with_reference_and_bad_references(photo, orange, tmp_path, capsys):
    torch.set_num_threads(1)
    src, ref, dst = tmp_path / "grey.png", tmp_path / "sunset.png", tmp_path / "out.png"
    Image.fromarray(grey_of(photo)).save(src)
    Image.fromarray(orange).save(ref)
    common = ["--method", "neural_style", "--device", "cpu", "--checkpoint", str(VGG), "--set", "iterations=6", "--set", "working_size=32"]
    assert colorize_cli.main([*common, "--input", str(src), "--output", str(dst), "--reference", str(ref)]) == 0
    out = np.asarray(Image.open(dst).convert("RGB"))
    assert out.shape == photo.shape
    assert np.abs(color.rgb_to_lab(out)[..., 0] - color.rgb_to_lab(grey_of(photo))[..., 0]).mean() < 1.0
    assert mean_ab(out)[1] > 10  # coloured like the sunset reference
    capsys.readouterr()

    empty = tmp_path / "empty_ref.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "ref_notes.png"
    text.write_text("not an image\n")
    for bad in (empty, text, tmp_path / "no_such_ref.png"):
        rc = colorize_cli.main([*common, "--input", str(src), "--output", str(tmp_path / "x.png"), "--reference", str(bad)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc != 0, bad
        assert len(err) == 1 and err[0].startswith("error:") and bad.name in err[0], err
        assert not (tmp_path / "x.png").exists()


@needs_vgg
def test_coarse_to_fine_starts_the_full_size_from_the_coarse_colours(photo, orange):
    """The default schedule: iterations at half the working size first; their colours start the
    full-size run, which then begins below where a run from grey begins and still only goes down."""
    import torch

    torch.set_num_threads(1)
    cfg = {**FAST, "iterations": 4, "working_size": 48}
    one = NeuralStyleColorizer(NeuralStyleColorizer.Config(**cfg, weights=str(VGG)), "cpu")
    two = NeuralStyleColorizer(NeuralStyleColorizer.Config(**{**cfg, "coarse_iterations": 6}, weights=str(VGG)), "cpu")
    assert one.stages(48, 48) == [(48, 48, 4)] and two.stages(48, 48) == [(24, 24, 6), (48, 48, 4)]
    grey = grey_of(photo)
    out = two.colorize(grey, reference=orange)
    assert out.shape == photo.shape and len(two.last_stage_losses) == 2 and two.last_losses is two.last_stage_losses[-1]
    one.colorize(grey, reference=orange)
    start_fine, start_grey = two.last_losses[0]["total"], one.last_losses[0]["total"]
    assert start_fine < start_grey, (start_fine, start_grey)
    total = np.array([d["total"] for d in two.last_losses])
    assert (np.diff(total) <= 0).all() and total[-1] < total[0]
    # early stop: a huge tolerance ends each stage after its first iteration
    stop = NeuralStyleColorizer(NeuralStyleColorizer.Config(**{**cfg, "iterations": 10, "tolerance": 0.99}, weights=str(VGG)), "cpu")
    stop.colorize(grey, reference=orange)
    assert len(stop.last_losses) <= 3
