"""The shared flow and the registry, with a tiny stand-in method."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import backends
from backends import color
from backends.base import Colorizer, TorchColorizer
from backends.errors import BackendUnavailable, CheckpointError


class ConstantAB(Colorizer):
    """Predicts a fixed warm ab at a quarter of the working size (to exercise upsampling)."""

    name = "constant"
    working_size = 64

    def predict_ab(self, L, reference=None):
        n, h, w = L.shape
        ab = np.zeros((n, 2, h // 4, w // 4), np.float32)
        ab[:, 0], ab[:, 1] = 20.0, 30.0
        return ab


def test_colorize_keeps_size_and_lightness(photo):
    out = ConstantAB().colorize(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    dL = np.abs(color.rgb_to_lab(out)[..., 0] - color.rgb_to_lab(photo)[..., 0])
    assert dL.mean() < 1.0
    lab = color.rgb_to_lab(out)
    mid = lab[10:-10, 10:-10]
    # the colour actually changed to the predicted ab where it fits the gamut
    assert np.median(mid[..., 1]) > 10 and np.median(mid[..., 2]) > 15


def test_grey_input_gives_rgb_of_same_size(photo):
    grey = color.lab_to_rgb_uint8(color.rgb_to_lab(photo) * np.array([1, 0, 0]))[..., 0]
    out = ConstantAB().colorize(grey)
    assert out.shape == grey.shape + (3,)
    assert np.abs(color.rgb_to_lab(out)[..., 0] - color.gray_to_lightness(grey)).mean() < 1.0


def test_batch_of_different_sizes(photo):
    outs = ConstantAB().colorize_batch([photo, photo[:33, :51]])
    assert [o.shape for o in outs] == [photo.shape, (33, 51, 3)]


class Tiny(TorchColorizer):
    name = "tiny"

    @dataclass
    class Config:
        width: int = 4

    def __init__(self, config=None, device="auto"):
        import torch

        super().__init__(config, device)
        self.nets = {"net": torch.nn.Conv2d(1, self.config.width, 3)}
        self.optims = {"adam": torch.optim.Adam(self.nets["net"].parameters())}
        self._finish_init()


def test_checkpoint_roundtrip_and_errors(tmp_path):
    import torch

    m = Tiny()
    p = m.save(tmp_path / "t.pt", {"step": 3})
    m2 = Tiny.from_checkpoint(p, "cpu")
    assert torch.equal(m2.nets["net"].weight, m.nets["net"].weight)
    # half precision for shipping loads back as float32
    half = m.save(tmp_path / "h.pt", training=False, half=True)
    assert Tiny.from_checkpoint(half, "cpu").nets["net"].weight.dtype == torch.float32

    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt.pt"):
        Tiny.from_checkpoint(bad, "cpu")
    with pytest.raises(CheckpointError, match="not found"):
        Tiny.from_checkpoint(tmp_path / "missing.pt", "cpu")

    class Other(Tiny):
        name = "other"

    with pytest.raises(CheckpointError, match="for method 'tiny'"):
        Other.from_checkpoint(p, "cpu")
    wide = Tiny(Tiny.Config(width=8))
    wp = wide.save(tmp_path / "wide.pt")
    m3 = Tiny()
    with pytest.raises(CheckpointError, match="wide.pt: checkpoint does not match"):
        m3.load(wp)


def test_checkpoint_with_code_is_refused(tmp_path):
    """weights_only loading: a pickle that would run code is rejected as unreadable."""
    import torch

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "evil.pt"
    torch.save({"nets": {}, "method": "tiny", "x": Evil()}, p)
    with pytest.raises(CheckpointError, match="evil.pt: not a readable checkpoint"):
        Tiny.from_checkpoint(p, "cpu")


def test_registry_unknown_name_lists_known():
    with pytest.raises(ValueError) as e:
        backends.load("nope")
    for name in backends.names():
        assert name in str(e.value)


def test_missing_checkpoint_is_unavailable_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(backends.base, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(Tiny, "default_checkpoint", classmethod(lambda cls: tmp_path / "tiny.pt"))
    ok, reason, ckpt = Tiny.availability()
    assert not ok and "experiments.train" in reason and ckpt is None
    with pytest.raises(BackendUnavailable, match="no trained checkpoint"):
        Tiny.open(device="cpu")


def test_device_resolution():
    assert backends.resolve_device("cpu") == "cpu"
    assert backends.resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="unknown device"):
        backends.resolve_device("tpu")


def _reference_join(L_full, ab):
    """The float64, whole-image join the strips replace (Pillow resize, map_into_gamut, sRGB)."""
    from backends.base import resize_plane

    h, w = L_full.shape
    lab = np.stack([L_full, resize_plane(ab[0], (h, w)), resize_plane(ab[1], (h, w))], axis=-1)
    return color.lab_to_rgb_uint8(color.map_into_gamut(lab))


def test_join_in_strips_equals_the_whole_image_join(monkeypatch):
    """Strips of a few rows tile Pillow's full-size bilinear upsampling (source boxes), so the
    result matches the whole-image float64 join within the fast path's stated tolerance."""
    from backends.base import join_lab

    rng = np.random.default_rng(0)
    L = rng.uniform(0, 100, (203, 157)).astype(np.float32)
    ab = rng.normal(0, 35, (2, 50, 40)).astype(np.float32)
    ref = _reference_join(L, ab).astype(int)
    monkeypatch.setattr(color, "STRIP_PIXELS", 157 * 7)  # 7-row strips, 29 of them
    d = np.abs(join_lab(L, ab).astype(int) - ref).max(-1)
    assert (d > 1).mean() < 1e-3 and d.mean() < 0.02


def test_separable_upsampling_matches_pillows_strips(monkeypatch):
    """The fast path (OpenCV widens ab's rows once, each strip blends two rows) gives Pillow's
    bilinear upsampling - the result equals the Pillow-strip path's within one 8-bit level at
    float rounding boundaries, for square, wide and tall photos and any strip height."""
    from backends import base

    rng = np.random.default_rng(4)
    monkeypatch.setattr(color, "STRIP_PIXELS", 4096)
    for (sh, sw), (h, w) in (((40, 40), (257, 256)), ((30, 50), (97, 400)), ((50, 20), (500, 61))):
        ab = rng.normal(0, 30, (2, sh, sw)).astype(np.float32)
        L = rng.uniform(0, 100, (h, w)).astype(np.float32)
        fast = base.join_lab(L, ab).astype(int)
        with monkeypatch.context() as m:
            m.setattr(base, "_widen_rows", lambda ab, w: None)  # as without OpenCV: Pillow's source boxes
            slow = base.join_lab(L, ab).astype(int)
        d = np.abs(fast - slow)
        assert d.max() <= 1 and (d > 0).mean() < 1e-3, (sh, sw, h, w, d.max(), (d > 0).mean())


def test_full_resolution_memory_is_bounded_by_strips():
    """Beyond the input's L (float32) and the uint8 output, the join allocates a few strips,
    not full-size float64 planes (the old join peaked at ~10 full-size copies)."""
    import tracemalloc

    from backends.base import join_lab

    h, w = 1500, 1200
    L = np.full((h, w), 60.0, np.float32)
    ab = np.full((2, 64, 64), 30.0, np.float32)
    tracemalloc.start()
    out = join_lab(L, ab)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.shape == (h, w, 3)
    extra = peak - out.nbytes
    assert extra < 40 * 2**20, f"join allocated {extra / 2**20:.0f} MB beyond its output"
    gray = np.full((h, w, 3), 128, np.uint8)
    tracemalloc.start()
    L2 = color.lightness(gray)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < L2.nbytes + 8 * 2**20


@pytest.mark.parametrize("method", ["classification", "gan", "regression"])
def test_a_non_square_photo_meets_the_network_undistorted_and_a_square_one_as_before(method, photo):
    """keep_aspect (the default of the three square-working-size methods): a 3:2 photo is resized
    with its longer side at the working size, not squashed to the square; ``keep_aspect = false``
    is the papers' squash; a square photo gets the very same colours either way."""
    from backends.classification import ClassificationColorizer
    from backends.classification import Config as ClsConfig
    from backends.gan import GANColorizer
    from backends.regression import Config as RegConfig
    from backends.regression import RegressionColorizer

    make = {
        "classification": lambda **kw: ClassificationColorizer(ClsConfig(widths=[8, 16, 16, 16], **kw), "cpu"),
        "gan": lambda **kw: GANColorizer(GANColorizer.Config(ngf=8, ndf=8, n_down=5, **kw), "cpu"),
        "regression": lambda **kw: RegressionColorizer(RegConfig(filters=8, depth=3, **kw), "cpu"),
    }[method]
    assert [(o.type, o.default) for o in backends.describe(method).options if o.name == "keep_aspect"] == [("bool", True)]  # a box on Compare
    kept, squashed = make(working_size=160), make(working_size=160, keep_aspect=False)
    assert kept.config.keep_aspect and kept.working_shape(321, 481) == (112, 160) and kept.working_shape(481, 321) == (160, 112)
    assert squashed.working_shape(321, 481) == (160, 160)
    squashed.set_weight_arrays(kept.weight_arrays())
    seen = []
    real = kept.predict_ab
    kept.predict_ab = lambda L, reference=None: (seen.append(L.shape[1:]), real(L))[1]
    wide = np.ascontiguousarray(np.concatenate([photo, photo[:, ::-1]], axis=1))  # h x 2w
    assert kept.colorize(wide).shape == wide.shape and seen == [kept.working_shape(*wide.shape[:2])]
    assert seen[0][1] == 160 and seen[0][0] < 160
    square = photo[: min(photo.shape[:2]), : min(photo.shape[:2])]
    np.testing.assert_array_equal(kept.colorize(square), squashed.colorize(square))
