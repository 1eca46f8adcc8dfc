"""The colour module: Lab conversions against scikit-image, and Zhang et al.'s quantised ab space."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from backends import color
from backends.imageio import load_image
from tests.conftest import SHARED, synthetic_photo


@pytest.fixture(scope="module")
def rgb_cube() -> np.ndarray:
    """Every 8-bit sRGB colour on a step of 5 (plus 255), as a 1 x N x 3 uint8 image."""
    v = np.unique(np.r_[np.arange(0, 256, 5), 255]).astype(np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r.ravel(), g.ravel(), b.ravel()], -1)[None]


@pytest.fixture(scope="module")
def gamut() -> color.ABGamut:
    return color.load_gamut()


# --- Lab conversions ----------------------------------------------------------------------------


def test_rgb_to_lab_matches_skimage(rgb_cube):
    ours = color.rgb_to_lab(rgb_cube)
    ref = skcolor.rgb2lab(rgb_cube)
    assert ours.dtype == np.float32 and ours.shape == rgb_cube.shape
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    # white is L = 100, a = b = 0; black is L = 0
    np.testing.assert_allclose(color.rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0]], np.uint8)), [[100, 0, 0], [0, 0, 0]], atol=0.01)


def test_lab_to_rgb_matches_skimage_and_roundtrips(rgb_cube):
    lab = skcolor.rgb2lab(rgb_cube)
    back = color.lab_to_rgb(lab)
    np.testing.assert_allclose(back, skcolor.lab2rgb(lab), atol=1e-4)
    np.testing.assert_array_equal(color.lab_to_rgb_uint8(color.rgb_to_lab(rgb_cube)), rgb_cube)
    # out-of-gamut Lab is clipped into [0, 1] like scikit-image does
    wild = np.array([[[50.0, 120.0, -120.0], [90.0, -100.0, 100.0], [5.0, 0.0, 90.0]]])
    out = color.lab_to_rgb(wild)
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out, skcolor.lab2rgb(wild), atol=1e-4)


def test_torch_versions_match_numpy_batched(rgb_cube):
    rgb = rgb_cube[0, :4096].reshape(4, 32, 32, 3)
    t = torch.as_tensor(rgb.astype(np.float64) / 255.0).permute(0, 3, 1, 2)
    lab_t = color.rgb_to_lab_torch(t)
    assert lab_t.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(lab_t.permute(0, 2, 3, 1).numpy(), skcolor.rgb2lab(rgb), atol=1e-3)
    back = color.lab_to_rgb_torch(lab_t).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(back, rgb / 255.0, atol=1e-5)
    # float32 on the same layout agrees too (what the networks use)
    lab32 = color.rgb_to_lab_torch(t.float())
    np.testing.assert_allclose(lab32.numpy(), lab_t.numpy(), atol=2e-3)


def test_gray_to_lightness_matches_neutral_rgb():
    g = np.arange(256, dtype=np.uint8)
    np.testing.assert_allclose(color.gray_to_lightness(g), skcolor.rgb2lab(np.stack([g, g, g], -1)[None])[0, :, 0], atol=1e-3)


# --- the bin set ----------------------------------------------------------------------------------


def kept_cells(gamut) -> set[int]:
    return set(color.nearest_grid_index(gamut.bins).tolist())


def test_bin_set_is_recorded_and_consistent(gamut):
    assert 250 <= gamut.q <= 270, gamut.q  # cells 8-bit sRGB colours occupy on the grid of 10
    assert gamut.bins.shape == (gamut.q, 2) and gamut.prior.shape == (gamut.q,)
    assert abs(gamut.prior.sum() - 1) < 1e-9 and gamut.prior.min() >= 0
    # bins are grid centres, each once
    assert np.all(np.mod(gamut.bins, color.GRID) == 0)
    assert len(kept_cells(gamut)) == gamut.q
    # the strict test (centre inside sRGB for some L) is recorded and is a subset
    strict = color.strict_gamut_bins()
    assert gamut.strict_count == len(strict) < gamut.q
    assert set(color.nearest_grid_index(strict).tolist()) <= kept_cells(gamut)


def test_every_srgb_colour_falls_in_a_kept_bin(gamut, rgb_cube):
    rng = np.random.default_rng(0)
    random_rgb = rng.integers(0, 256, (1, 200_000, 3), dtype=np.uint8)
    kept = kept_cells(gamut)
    for img in (rgb_cube, random_rgb, synthetic_photo(rng, 64, 0), synthetic_photo(rng, 64, 1)):
        cells = set(np.unique(color.nearest_grid_index(color.rgb_to_lab(img)[..., 1:])).tolist())
        assert cells <= kept, f"ab cells outside the bin set: {sorted(cells - kept)}"


def test_training_photos_fall_in_kept_bins(gamut):
    root = SHARED / "data" / "train"
    if not root.is_dir():
        pytest.skip(f"{root} missing")
    files = sorted(root.rglob("*.jpg"))
    assert files
    kept = kept_cells(gamut)
    for p in files[:: max(1, len(files) // 60)]:
        lab = color.rgb_to_lab(load_image(p, mode="rgb"))
        cells = set(np.unique(color.nearest_grid_index(lab[..., 1:])).tolist())
        assert cells <= kept, f"{p}: ab cells outside the bin set: {sorted(cells - kept)}"
        # ...and no pixel is beyond the grid (where nearest_grid_index would clip)
        assert np.abs(lab[..., 1:]).max() < color.AB_RANGE + color.GRID / 2


# --- soft-encoding, annealed mean, rebalancing --------------------------------------------------


def test_soft_encode_rows_sum_to_one_with_k_nonzeros(gamut):
    bins = torch.as_tensor(gamut.bins)
    ab = (torch.rand(2, 2, 6, 7) * 160 - 80).float()
    ab[0, :, 0, 0] = bins[10]  # exactly on a bin centre
    z = color.soft_encode(ab, bins, k=5, sigma=5.0)
    assert z.shape == (2, gamut.q, 6, 7)
    np.testing.assert_allclose(z.sum(1).numpy(), 1.0, atol=1e-5)
    assert torch.all((z > 0).sum(1) == 5)
    assert z[0, :, 0, 0].argmax() == 10
    # the 5 non-zeros are the 5 nearest bins, weighted by a Gaussian of the distance
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    zf = z.permute(0, 2, 3, 1).reshape(-1, gamut.q)
    d2 = torch.cdist(flat, bins) ** 2
    near = d2.topk(5, largest=False).indices
    assert torch.equal(torch.sort(near, 1).values, torch.sort(zf.topk(5).indices, 1).values)
    w = torch.exp(-d2.gather(1, near) / 50.0)
    np.testing.assert_allclose(zf.gather(1, near).numpy(), (w / w.sum(1, keepdim=True)).numpy(), atol=1e-5)


def test_annealed_mean_interpolates_mean_and_mode(gamut):
    bins = torch.as_tensor(gamut.bins)
    torch.manual_seed(0)
    logits = torch.randn(3, gamut.q, 4, 5)
    top = torch.randint(0, gamut.q, (3, 1, 4, 5))
    logits.scatter_(1, top, logits.amax(1, keepdim=True) + 0.5)  # a clear mode (p1 / p2 > 1.6)
    probs = torch.softmax(logits, dim=1)
    mean = torch.einsum("nqhw,qc->nchw", probs, bins)
    np.testing.assert_allclose(color.annealed_mean(probs, bins, 1.0).numpy(), mean.numpy(), atol=1e-4)
    mode = bins[top[:, 0]].permute(0, 3, 1, 2)
    np.testing.assert_allclose(color.annealed_mean(probs, bins, 0.01).numpy(), mode.numpy(), atol=1e-3)
    # a bimodal distribution (blue vs yellow): the mean is near grey, T = 0.38 keeps colour
    p = torch.zeros(1, gamut.q, 1, 1)
    blue = int(torch.cdist(torch.tensor([[0.0, -50.0]]), bins).argmin())
    yellow = int(torch.cdist(torch.tensor([[0.0, 50.0]]), bins).argmin())
    p[0, blue], p[0, yellow] = 0.55, 0.45
    chroma = [float(color.annealed_mean(p, bins, t).norm()) for t in (1.0, 0.38, 0.05)]
    assert chroma[0] < 10 < chroma[1] < chroma[2]
    with pytest.raises(ValueError):
        color.annealed_mean(probs, bins, 0.0)
    # straight from the logits (what the classification backend decodes with): the same colours
    for t in (1.0, 0.38, 0.05):
        np.testing.assert_allclose(
            color.annealed_mean_logits(logits, bins, t).numpy(), color.annealed_mean(probs, bins, t).numpy(), atol=1e-3
        )


def test_rebalance_weights(gamut):
    w = color.rebalance_weights(gamut.bins, gamut.prior, lam=0.5, sigma=5.0)
    p = color.smooth_prior(gamut.bins, gamut.prior, 5.0)
    assert w.shape == (gamut.q,) and np.all(w > 0)
    assert abs(float((p * w).sum()) - 1.0) < 1e-5  # E_p~[w] = 1
    # rare colours are up-weighted, common ones down-weighted, monotonically in the smoothed prior
    assert w[p.argmin()] > 1.0 > w[p.argmax()]
    order = np.argsort(p)
    assert np.all(np.diff(w[order]) <= 1e-6)
    # lambda = 1 is uniform weights; the smoothing spreads mass to neighbours and keeps the sum
    np.testing.assert_allclose(color.rebalance_weights(gamut.bins, gamut.prior, lam=1.0), 1.0, rtol=1e-5)
    assert abs(p.sum() - 1) < 1e-9 and (p > 0).sum() >= (gamut.prior > 0).sum()
    # grey is by far the most common colour of photos
    assert np.abs(gamut.bins[gamut.prior.argmax()]).max() <= 10


def test_gamut_mapping_keeps_lightness_and_hue():
    """A vivid prediction outside sRGB loses chroma, not lightness: per-channel clipping would
    shift L by whole units; the mapped colour keeps L and hue and lies in the gamut."""
    rng = np.random.default_rng(0)
    lab = np.stack([rng.uniform(5, 95, 4000), rng.normal(0, 60, 4000), rng.normal(0, 60, 4000)], -1).astype(np.float32)
    mapped = color.map_into_gamut(lab)
    back = color.rgb_to_lab(color.lab_to_rgb(mapped))
    clipped = color.rgb_to_lab(color.lab_to_rgb(lab))
    assert np.abs(back[:, 0] - lab[:, 0]).mean() < 0.1
    assert np.abs(clipped[:, 0] - lab[:, 0]).mean() > 1.0  # what the mapping avoids
    moved = np.hypot(mapped[:, 1] - lab[:, 1], mapped[:, 2] - lab[:, 2]) > 1e-3
    assert moved.mean() > 0.3  # most of these random colours were out of gamut
    hue = np.arctan2(lab[moved, 2], lab[moved, 1])
    hue_mapped = np.arctan2(mapped[moved, 2], mapped[moved, 1])
    keep = np.hypot(*mapped[moved, 1:].T) > 1  # hue is defined only with some chroma
    assert np.abs(np.angle(np.exp(1j * (hue - hue_mapped))))[keep].max() < 1e-3
    assert (np.hypot(*mapped[:, 1:].T) <= np.hypot(*lab[:, 1:].T) + 1e-4).all()
    inside = color.rgb_to_lab(rng.integers(0, 256, (500, 3)).astype(np.uint8))
    np.testing.assert_allclose(color.map_into_gamut(inside), inside, atol=1e-4)  # in-gamut colours untouched


# --- the fast full-resolution path ----------------------------------------------------------------


def test_lightness_by_lookup_matches_rgb_to_lab_and_skimage(rgb_cube):
    """Colour (per-channel luminance tables) and grey (one 256-entry table) inputs, 2-D or RGB."""
    L = color.lightness(rgb_cube)
    assert L.dtype == np.float32 and L.shape == rgb_cube.shape[:2]
    np.testing.assert_allclose(L, color.rgb_to_lab(rgb_cube)[..., 0], atol=1e-3)
    np.testing.assert_allclose(L, skcolor.rgb2lab(rgb_cube)[..., 0], atol=1e-3)
    g = np.arange(256, dtype=np.uint8)[None].repeat(3, 0)
    grey_rgb = np.repeat(g[..., None], 3, -1)
    assert color.is_grey(grey_rgb) and not color.is_grey(rgb_cube)
    np.testing.assert_allclose(color.lightness(g), skcolor.rgb2lab(grey_rgb)[..., 0], atol=1e-3)
    np.testing.assert_array_equal(color.lightness(grey_rgb), color.lightness(g))
    with pytest.raises(ValueError, match="uint8"):
        color.lightness(g.astype(np.float32))


@pytest.mark.parametrize("opencv", [True, False])
def test_fast_lab_to_rgb_equals_the_float64_gamut_mapping(monkeypatch, opencv):
    """Float32, lookup-table gamma (or OpenCV's conversion, the bisection only at the gamut's
    edge), in strips: the same 8-bit sRGB as map_into_gamut + lab_to_rgb except where float
    rounding moves a colour across one of the bisection's 2^-8 chroma steps (stated tolerance: at
    most 1 pixel in 1,000 off by more than one level, mean error < 0.01)."""
    if not opencv:
        monkeypatch.setattr(color, "_cv2", lambda: None)
    rng = np.random.default_rng(1)
    n = 60_000
    lab = np.stack([rng.uniform(0, 100, n), rng.normal(0, 45, n), rng.normal(0, 45, n)], -1).astype(np.float32)
    lab[:20, 0] = [0, 100] * 10  # black and white stay unmapped, as in map_into_gamut
    ref = color.lab_to_rgb_uint8(color.map_into_gamut(lab)).astype(int)
    monkeypatch.setattr(color, "STRIP_PIXELS", 4096)  # many strips, a partial last one
    fast = color.lab_to_rgb_uint8_mapped(lab[:, 0], lab[:, 1], lab[:, 2]).astype(int)
    d = np.abs(fast - ref).max(-1)
    assert (d > 1).mean() < 1e-3 and d.mean() < 0.01
    # the mapping happened: many of these colours were out of gamut and kept their lightness
    back = color.rgb_to_lab(fast.astype(np.uint8))
    assert np.abs(back[20:, 0] - lab[20:, 0]).mean() < 0.3
    # colours inside sRGB come back exactly (the gamma table is exact to the 8-bit level)
    cube = rng.integers(0, 256, (1, 5000, 3)).astype(np.uint8)
    inside = color.rgb_to_lab(cube)
    np.testing.assert_array_equal(color.lab_to_rgb_uint8_mapped(*np.moveaxis(inside, -1, 0)), cube)


def test_grey_rendering_by_tables_is_bit_identical():
    """evaluate.gray_of's inputs must not change by one bit (per-photo results are cached): L by
    the sRGB table and the neutral grey level by 255 L thresholds equal the float64 path exactly
    (checked on every 8-bit colour once; here on 300,000 random ones and every grey)."""
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (300, 1000, 3)).astype(np.uint8)
    rgb[0, :256] = np.arange(256, dtype=np.uint8)[:, None]
    L_ref = color.rgb_to_lab(rgb)[..., 0]
    L = color.lightness_exact(rgb)
    np.testing.assert_array_equal(L, L_ref)
    lab = color.rgb_to_lab(rgb)
    lab[..., 1:] = 0
    ref = np.round(color.lab_to_rgb(lab).mean(-1) * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(color.neutral_levels(L), ref)
