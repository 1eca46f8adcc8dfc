"""The pretrained SqueezeNet encoder option of the learned methods (genuine ImageNet weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backends.encoders import SqueezeNetEncoder, SqueezeNetFeatures, Upsample, grey_srgb
from backends.weights import resolve
from tests.conftest import SHARED

WEIGHTS = SHARED / "weights" / "squeezenet1_1_imagenet_notop.h5"
pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason="needs ../shared/weights (genuine SqueezeNet 1.1)")


def _batch(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"L": torch.rand(n, 1, size, size, generator=g) * 100, "ab": torch.randn(n, 2, size, size, generator=g) * 20,
            "label": torch.zeros(n, dtype=torch.long)}  # fmt: skip


def test_taps_sit_at_exact_fractions_and_features_are_the_genuine_ones():
    enc = SqueezeNetEncoder()
    taps = enc(torch.rand(2, 1, 64, 96) * 100)
    assert [tuple(t.shape[1:]) for t in taps] == [(64, 32, 48), (128, 16, 24), (256, 8, 12), (512, 4, 6)]
    # the weights are the released ones: the aligned network's conv1 equals the original's
    ref = SqueezeNetFeatures()
    ref.load_pretrained(resolve("squeezenet").path)
    assert torch.equal(enc.net.features[0].weight, ref.features[0].weight)
    assert not any(p.requires_grad for p in enc.parameters())


def test_encoder_scale_feeds_the_network_a_resized_photo_and_keeps_the_decoder_grid():
    enc = SqueezeNetEncoder()
    big = SqueezeNetEncoder(scale=1.5)
    L = torch.rand(1, 1, 64, 96) * 100
    plain, scaled = enc(L), big(L)
    assert [t.shape for t in scaled] == [t.shape for t in plain]  # the grid the decoder expects
    # what the taps hold: the network's features of the 1.5x photo (96 x 144), area-resampled
    L_big = torch.nn.functional.interpolate(L, size=(96, 144), mode="bilinear", align_corners=False)
    f16 = enc(L_big)[3]
    assert torch.allclose(scaled[3], torch.nn.functional.interpolate(f16, size=(4, 6), mode="area"), atol=1e-5)
    assert not torch.allclose(scaled[3], plain[3], atol=1e-2)
    with pytest.raises(ValueError, match="encoder_scale"):
        SqueezeNetEncoder(scale=8)


def test_grey_srgb_inverts_lightness():
    from backends import color

    g = np.linspace(0, 1, 11, dtype=np.float32)
    rgb = np.stack([g, g, g], -1)[None]
    L = color.rgb_to_lab((rgb * 255).round().astype(np.uint8))[..., 0]
    np.testing.assert_allclose(grey_srgb(L)[0], (rgb[0, :, 0] * 255).round() / 255, atol=2e-3)


@pytest.mark.parametrize("method", ["classification", "gan", "fusion"])
def test_torch_methods_train_a_frozen_encoder_and_reload_without_the_weights_file(method, tmp_path, monkeypatch):
    import backends

    cls = backends.method_class(method)
    extra = {"optimizer": "adam", "lr": 1e-3, "encoder_scale": 1.25} if method == "fusion" else {"encoder_scale": 1.25}
    m = cls(cls.Config(encoder="squeezenet", **extra), "cpu")
    net = next(iter(m.nets.values()))
    enc = net.encoder
    before = [p.detach().clone() for p in enc.parameters()]
    losses = m.train_step(_batch())
    assert np.isfinite(losses["loss"])
    assert all(torch.equal(a, b) for a, b in zip(before, enc.parameters()))  # frozen
    path = m.save(tmp_path / f"{method}.pt", {"images_seen": 4}, half=True)
    L = np.random.default_rng(0).random((1, 48, 64), dtype=np.float32) * 100
    want = m.predict_ab(L)
    # a shipped checkpoint carries the encoder: it loads with no weights file anywhere
    monkeypatch.setenv("COLORIZE_WEIGHTS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("COLORIZE_SQUEEZENET", str(tmp_path / "none.h5"))
    again = cls.from_checkpoint(path, device="cpu")
    assert again.config.encoder == "squeezenet" and again.config.encoder_scale == 1.25 and net.encoder.scale == 1.25
    np.testing.assert_allclose(again.predict_ab(L), want, atol=1.0)  # float16 weights


def test_keras_regression_encoder_folds_the_caffe_input_exactly():
    import keras

    from backends.regression import Config, RegressionColorizer

    m = RegressionColorizer(Config(encoder="squeezenet"), "cpu")
    L = (np.random.default_rng(1).random((1, 32, 32), dtype=np.float32) * 60 + 20)
    sub = keras.Model(m.model.inputs, m.model.get_layer("conv1").output)
    got = sub([((L - 50) / 100)[..., None], grey_srgb(L)[..., None]]).numpy()
    ref = SqueezeNetFeatures()
    ref.load_pretrained(resolve("squeezenet").path)
    with torch.no_grad():
        want = ref.features[1](ref.features[0](ref.prepare(torch.from_numpy(L)[:, None]))).numpy().transpose(0, 2, 3, 1)
    n = want.shape[1]  # 'valid' original vs 'same' here: the same windows away from the far border
    np.testing.assert_allclose(got[:, :n, :n], want, atol=0.05, rtol=1e-4)
    trained = [getattr(w, "path", w.name) for w in m.model.trainable_weights]
    assert not any("fire" in n or "conv1" in n for n in trained) and any("dec16" in n for n in trained)
    out = m.train_step(_batch(2, 32))
    assert np.isfinite(out["loss"])
    assert m.predict_ab(np.full((1, 40, 56), 50, np.float32)).shape == (1, 2, 40, 56)


def test_keras_regression_encoder_scale_feeds_the_resized_photo_and_reloads_in_safe_mode(tmp_path):
    import keras
    import tensorflow as tf

    from backends.regression import Config, RegressionColorizer

    m = RegressionColorizer(Config(encoder="squeezenet", encoder_scale=1.5), "cpu")
    L = np.random.default_rng(2).random((1, 64, 96), dtype=np.float32) * 80 + 10
    inputs = [((L - 50) / 100)[..., None], grey_srgb(L)[..., None]]
    # the ImageNet network sees the grey photo at 1.5x (96 x 144): its fire9 is 1/16 of that ...
    grey_in = keras.Model(m.model.inputs, m.model.get_layer("encoder_resize").output)(inputs).numpy()
    np.testing.assert_allclose(grey_in, tf.image.resize(inputs[1], (96, 144)).numpy(), atol=1e-6)
    fire9 = keras.Model(m.model.inputs, m.model.get_layer("fire9_concat").output)(inputs).numpy()
    assert fire9.shape[1:3] == (6, 9)
    # ... and reaches the decoder resampled to 1/16 of 64 x 96
    tap = keras.Model(m.model.inputs, m.model.get_layer("tap16_resize").output)(inputs).numpy()
    np.testing.assert_allclose(tap, tf.image.resize(fire9, (4, 6), antialias=True).numpy(), atol=1e-5)
    assert np.isfinite(m.train_step(_batch(2, 64))["loss"])
    ab = m.predict_ab(L)
    again = RegressionColorizer.from_checkpoint(m.save(tmp_path / "r.keras", {"images_seen": 2}), "cpu")  # safe mode
    assert again.config.encoder_scale == 1.5
    np.testing.assert_allclose(again.predict_ab(L), ab, atol=1e-4)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_the_decoders_upsample_trains_exactly_as_nn_upsample(mode):
    """The decoders' Upsample only hands its backward a channels-last gradient (a speed-up): a
    decoder step - upsample, concatenate with a tap, convolve - gives the same output and the same
    gradients as with nn.Upsample, and its state dict is as empty, so checkpoints load as before."""
    torch.manual_seed(0)
    x0 = torch.randn(3, 8, 10, 12).to(memory_format=torch.channels_last)
    tap = torch.randn(3, 4, 20, 24).to(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(12, 5, 3, padding=1).to(memory_format=torch.channels_last)
    results = []
    for up in (torch.nn.Upsample(scale_factor=2, mode=mode), Upsample(scale_factor=2, mode=mode)):
        conv.zero_grad()
        x = x0.clone().requires_grad_(True)
        y = conv(torch.cat([up(x), tap], 1))
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        results.append((y.detach(), x.grad, conv.weight.grad.clone()))
        assert up.state_dict() == {}
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
