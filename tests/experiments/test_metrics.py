"""Validation of experiments.metrics: against scikit-image where it has the metric, against hand
computations where it does not (colourfulness, AuC, bootstrap), and for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from backends import color
from experiments import metrics as M
from experiments.metrics.auc import MAX_THRESHOLD


def _pair(seed: int = 0, n: int = 2, size: int = 16, noise: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction x (truth + noise, clipped) and truth y, ``n x 3 x size x size`` in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(n, 3, size, size, generator=g, dtype=torch.float64)
    x = (y + noise * torch.randn(n, 3, size, size, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


# --- PSNR / SSIM / CIEDE2000 against scikit-image ------------------------------------------------


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_psnr_matches_scikit_image(data_range):
    x, y = _pair(0)
    x, y = x * data_range, y * data_range
    ours = M.psnr(x, y, data_range)
    ref = [peak_signal_noise_ratio(_hwc(y[i]), _hwc(x[i]), data_range=data_range) for i in range(len(x))]
    assert ours.shape == (2,)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10)
    assert float(M.psnr(x, y, data_range, reduction="mean")) == pytest.approx(np.mean(ref), rel=1e-10)


def test_psnr_of_identical_images_is_inf_and_drops_with_noise():
    _, y = _pair(1)
    assert torch.isinf(M.psnr(y, y)).all()
    less, _ = _pair(1, noise=0.05)
    more, _ = _pair(1, noise=0.3)
    assert (M.psnr(less, y) > M.psnr(more, y)).all()


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_ssim_matches_scikit_image_with_wang_settings(data_range):
    x, y = _pair(2)
    x, y = x * data_range, y * data_range
    ours = M.ssim(x, y, data_range)
    ref = [
        structural_similarity(
            _hwc(x[i]),
            _hwc(y[i]),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1,
            data_range=data_range,
        )
        for i in range(len(x))
    ]
    # float32 computation (float64 mean): atol 1e-6 (was 1e-9 in float64); observed errors ~3e-8
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-6)
    # ... and is not scikit-image's plain default (7 x 7 uniform window), a different number
    default = structural_similarity(_hwc(x[0]), _hwc(y[0]), channel_axis=-1, data_range=data_range)
    assert abs(float(ours[0]) - default) > 1e-3


def test_ssim_is_one_for_identical_images_and_lower_for_noisier():
    _, y = _pair(3)
    np.testing.assert_allclose(M.ssim(y, y).numpy(), 1.0, atol=1e-12)
    less, _ = _pair(3, noise=0.05)
    more, _ = _pair(3, noise=0.3)
    assert (M.ssim(less, y) > M.ssim(more, y)).all()


def test_ssim_in_float32_stays_close_on_flat_near_white_images():
    # the worst case for E[x^2] - E[x]^2 in float32: tiny variances under bright means
    g = torch.Generator().manual_seed(9)
    y = 250.0 + torch.randint(0, 5, (2, 3, 32, 32), generator=g).double()
    x = (y + torch.randint(-1, 2, (2, 3, 32, 32), generator=g).double()).clamp(0, 255)
    ours = M.ssim(x, y, 255.0)
    ref = [
        structural_similarity(
            _hwc(x[i]),
            _hwc(y[i]),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1,
            data_range=255.0,
        )
        for i in range(len(x))
    ]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-5)  # float32: observed ~4e-6


def _random_lab_pairs(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random Lab pairs plus the formula's edge cases: zero chroma, hue across 0/360 deg, opposite hues."""
    rng = np.random.default_rng(seed)
    lab1 = np.stack([rng.uniform(0, 100, n), rng.uniform(-110, 110, n), rng.uniform(-110, 110, n)], -1)
    lab2 = np.stack([rng.uniform(0, 100, n), rng.uniform(-110, 110, n), rng.uniform(-110, 110, n)], -1)
    lab1[:20, 1:] = 0  # achromatic first colour
    lab2[10:30, 1:] = 0  # achromatic second colour (10..19: both)
    lab1[30:50, 1], lab1[30:50, 2] = 40, rng.uniform(0.1, 5, 20)  # hue just above 0 deg ...
    lab2[30:50, 1], lab2[30:50, 2] = 40, -rng.uniform(0.1, 5, 20)  # ... against just below 360 deg
    lab2[50:70, 1:] = -lab1[50:70, 1:]  # opposite hues (|dh| = 180 deg)
    lab2[70:90] = lab1[70:90]  # identical
    return lab1, lab2


def test_delta_e_ciede2000_matches_scikit_image_on_random_lab():
    lab1, lab2 = _random_lab_pairs()
    ref = deltaE_ciede2000(lab1, lab2)
    t1 = torch.from_numpy(lab1.T.reshape(1, 3, 20, 20).copy())
    t2 = torch.from_numpy(lab2.T.reshape(1, 3, 20, 20).copy())
    ours = M.delta_e_ciede2000(t1, t2).reshape(-1).numpy()
    edge = np.zeros(len(ours), bool)
    edge[50:70] = True  # opposite hues: see below
    np.testing.assert_allclose(ours[~edge], ref[~edge], rtol=1e-9, atol=1e-9)
    assert np.all(ours[70:90] == 0)
    # At |dh| = 180 deg exactly the formula is discontinuous (Sharma et al. 2005): the mean hue jumps by
    # 180 deg, and the last bit of atan2 on a given CPU picks the side (one of these pairs gives 77.3
    # on an AMD EPYC, 87.1 in scikit-image on a Xeon). Either side's limit is right; nothing in between is.
    sides = [deltaE_ciede2000(lab1, _rotate_ab(lab2, d))[edge] for d in (1e-7, -1e-7)]
    assert np.all(np.minimum(abs(ours[edge] - sides[0]), abs(ours[edge] - sides[1])) < 1e-5)


def _rotate_ab(lab: np.ndarray, angle: float) -> np.ndarray:
    out = lab.copy()
    c, s = np.cos(angle), np.sin(angle)
    out[:, 1], out[:, 2] = lab[:, 1] * c - lab[:, 2] * s, lab[:, 1] * s + lab[:, 2] * c
    return out


def test_delta_e_ciede2000_keeps_the_precision_of_its_input():
    lab1, lab2 = _random_lab_pairs()
    t1 = torch.from_numpy(lab1.T.reshape(1, 3, 20, 20).copy())
    t2 = torch.from_numpy(lab2.T.reshape(1, 3, 20, 20).copy())
    assert M.delta_e_ciede2000(t1, t2).dtype == torch.float64
    ours32 = M.delta_e_ciede2000(t1.float(), t2.float())
    assert ours32.dtype == torch.float32
    ref = deltaE_ciede2000(lab1, lab2)
    # CIEDE2000 jumps where the hue difference is exactly 180 deg (which way the mean hue turns
    # is a rounding matter there), so the opposite-hue pairs 50..69 are left out of the float32
    # comparison; elsewhere float32 gives rtol 1e-5 (observed 2e-6), and exactly 0 for equal colours.
    keep = np.r_[0:50, 70 : len(ref)]
    np.testing.assert_allclose(ours32.reshape(-1).numpy()[keep], ref[keep], rtol=1e-5, atol=1e-6)
    assert np.all(ours32.reshape(-1).numpy()[70:90] == 0)


def test_ciede2000_on_rgb_matches_scikit_image_rgb2lab_and_delta_e():
    x, y = _pair(4)
    ours = M.ciede2000(x, y)
    assert ours.dtype == torch.float64
    ref = [deltaE_ciede2000(rgb2lab(_hwc(x[i])), rgb2lab(_hwc(y[i]))).mean() for i in range(len(x))]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-6)  # float32 Lab and CIEDE2000, float64 mean
    assert (ours > 0).all()
    np.testing.assert_allclose(M.ciede2000(y, y).numpy(), 0.0, atol=1e-12)


# --- colourfulness (Hasler & Suesstrunk M3), by hand -----------------------------------------------


def test_colorfulness_hand_computed_two_pixel_image():
    # pure red and pure blue on 0..255: rg = (255, 0), yb = (127.5, -255)
    img = torch.tensor([[255.0, 0.0], [0.0, 0.0], [0.0, 255.0]], dtype=torch.float64).view(1, 3, 1, 2)
    sd_rg, sd_yb = 127.5, 191.25  # population standard deviations
    mu_rg, mu_yb = 127.5, -63.75
    expected = math.sqrt(sd_rg**2 + sd_yb**2) + 0.3 * math.sqrt(mu_rg**2 + mu_yb**2)
    assert float(M.colorfulness(img, 255.0)) == pytest.approx(expected, rel=1e-12)
    # the same image on a 0..1 scale is rescaled to 0..255 first
    assert float(M.colorfulness(img / 255.0, 1.0)) == pytest.approx(expected, rel=1e-12)


def test_colorfulness_hand_computed_constant_colour():
    # one flat colour has no spread: M3 = 0.3 * |(rg, yb)| of that colour
    r, g, b = 200.0, 100.0, 50.0
    img = torch.tensor([r, g, b], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    rg, yb = r - g, 0.5 * (r + g) - b
    assert float(M.colorfulness(img, 255.0)) == pytest.approx(0.3 * math.hypot(rg, yb), rel=1e-12)


def test_colorfulness_of_grey_is_zero_and_difference_has_the_documented_sign():
    g = torch.Generator().manual_seed(5)
    grey = torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64).expand(2, 3, 16, 16)
    assert M.colorfulness(grey).abs().max() == 0
    colour, _ = _pair(5)
    diff = M.colorfulness_difference(grey, colour)
    np.testing.assert_allclose(diff.numpy(), -M.colorfulness(colour).numpy())
    assert (diff < 0).all()  # grey is duller than the truth


# --- AuC, by hand ----------------------------------------------------------------------------------


def _ab(n=2, h=4, w=4, seed=0) -> torch.Tensor:
    """Integer-valued ab, so that adding an integer offset gives an exact error."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-60, 61, (n, 2, h, w), generator=g).double()


def test_auc_thresholds_are_0_to_150():
    assert MAX_THRESHOLD == 150
    cdf = M.error_cdf(_ab(), _ab())
    assert cdf.shape == (2, 151)


def test_auc_of_identical_ab_is_one():
    ab = _ab()
    np.testing.assert_allclose(M.ab_auc(ab, ab).numpy(), 1.0)
    np.testing.assert_allclose(M.ab_auc(ab, ab, rebalanced=True).numpy(), 1.0)


@pytest.mark.parametrize("offset", [(1, 0), (0, -10), (3, 4), (-45, 60), (90, 120)], ids=["1", "10", "5", "75", "150"])
def test_auc_of_a_constant_integer_error(offset):
    # curve: 0 for t < d, 1 for t >= d; trapezoids over t = 0..150: (150 - d) whole steps + a half step
    d = math.hypot(*offset)
    ab = _ab()
    pred = ab + torch.tensor(offset, dtype=torch.float64).view(1, 2, 1, 1)
    expected = (150 - d + 0.5) / 150
    np.testing.assert_allclose(M.ab_auc(pred, ab).numpy(), expected, rtol=1e-12)


def test_auc_of_a_fractional_error_counts_from_the_next_threshold():
    # error 10.5 is within t = 11 but not t = 10, so the curve is the one of an error of 11
    ab = _ab()
    pred = ab + torch.tensor([10.5, 0.0], dtype=torch.float64).view(1, 2, 1, 1)
    np.testing.assert_allclose(M.ab_auc(pred, ab).numpy(), (150 - 11 + 0.5) / 150, rtol=1e-12)


def test_auc_half_perfect_half_hopeless_is_one_half():
    ab = _ab(n=1, h=2, w=2)
    pred = ab.clone()
    pred[0, 0, 0, :] += 200.0  # two of four pixels off by 200 > 150
    assert float(M.ab_auc(pred, ab)) == pytest.approx(0.5, rel=1e-12)
    assert float(M.ab_auc(ab + 151.0, ab)) == 0.0  # error sqrt(2) * 151 everywhere


def _common_and_rare_colour() -> tuple[np.ndarray, float, np.ndarray, float]:
    gamut = color.load_gamut()
    pos = np.flatnonzero(gamut.prior > 0)
    common = pos[gamut.prior[pos].argmax()]
    rare = pos[gamut.prior[pos].argmin()]
    return gamut.bins[common], gamut.prior[common], gamut.bins[rare], gamut.prior[rare]


def test_rebalanced_auc_weights_pixels_by_inverse_prior_of_their_true_colour():
    ab_common, p_common, ab_rare, p_rare = _common_and_rare_colour()
    assert p_common > 100 * p_rare
    truth = torch.tensor(np.stack([ab_common, ab_rare], 1), dtype=torch.float64).view(1, 2, 1, 2)
    wrong_on = {}
    for i, name in enumerate(("common", "rare")):
        pred = truth.clone()
        pred[0, 0, 0, i] += 200.0  # only this pixel is wrong (error above 150)
        wrong_on[name] = pred
        assert float(M.ab_auc(pred, truth)) == pytest.approx(0.5)  # unweighted: one of two pixels right
    # weighted: the right pixel's share of 1/p; e.g. wrong on the rare one -> (1/p_c) / (1/p_c + 1/p_r)
    rebal_rare = float(M.ab_auc(wrong_on["rare"], truth, rebalanced=True))
    rebal_common = float(M.ab_auc(wrong_on["common"], truth, rebalanced=True))
    assert rebal_rare == pytest.approx(p_rare / (p_rare + p_common), rel=1e-9)
    assert rebal_common == pytest.approx(p_common / (p_rare + p_common), rel=1e-9)
    assert rebal_rare < 0.01 and rebal_common > 0.99


def test_auc_on_rgb_and_pixel_metrics_agree_with_the_single_metrics():
    x, y = _pair(6)
    cols = M.pixel_metrics(x, y)
    assert set(cols) == set(M.PIXEL_COLUMNS)
    np.testing.assert_allclose(cols["psnr"].numpy(), M.psnr(x, y).numpy())
    np.testing.assert_allclose(cols["ssim"].numpy(), M.ssim(x, y).numpy())
    np.testing.assert_allclose(cols["ciede2000"].numpy(), M.ciede2000(x, y).numpy())
    np.testing.assert_allclose(cols["colorfulness"].numpy(), M.colorfulness(x).numpy())
    np.testing.assert_allclose(cols["colorfulness_diff"].numpy(), M.colorfulness_difference(x, y).numpy())
    np.testing.assert_allclose(cols["auc"].numpy(), M.auc(x, y).numpy())
    np.testing.assert_allclose(cols["auc_rebal"].numpy(), M.auc(x, y, rebalanced=True).numpy())
    # AuC on RGB is the AuC of scikit-image's Lab ab
    ab = [torch.from_numpy(rgb2lab(_hwc(t[i]))[..., 1:]).permute(2, 0, 1) for t in (x, y) for i in range(2)]
    ref = M.ab_auc(torch.stack(ab[:2]), torch.stack(ab[2:]))
    np.testing.assert_allclose(cols["auc"].numpy(), ref.numpy(), atol=1e-6)
    assert ((cols["auc"] > 0) & (cols["auc"] < 1)).all()
    assert all(v.dtype == torch.float64 and v.shape == (2,) for v in cols.values())


def test_pixel_metrics_score_a_batch_a_few_photos_at_a_time_with_the_same_values(monkeypatch):
    """On the CPU a batch is scored in slices that fit a core's cache (faster); every value is
    the one the whole batch at once gives (the truth row's too), and a mismatched pair is still
    refused as a whole."""
    x, y = _pair(6)
    x, y = torch.cat([x] * 3), torch.cat([y.flip(0)] * 3)  # 6 images, each pair different
    monkeypatch.setattr(M, "CHUNK_PIXELS", 10**9)
    whole = M.pixel_metrics(x, y)
    for pixels in (1, 2 * x.shape[2] * x.shape[3], 4 * x.shape[2] * x.shape[3]):  # 1, 2, 4 images a slice
        monkeypatch.setattr(M, "CHUNK_PIXELS", pixels)
        sliced = M.pixel_metrics(x, y)
        assert list(sliced) == list(whole)
        for k in whole:
            np.testing.assert_allclose(sliced[k].numpy(), whole[k].numpy(), rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=k)
    with pytest.raises(ValueError):
        M.pixel_metrics(x, y[:5])
    monkeypatch.setattr(M, "CHUNK_PIXELS", 10**9)
    truth_whole = M.truth_metrics(y)
    monkeypatch.setattr(M, "CHUNK_PIXELS", 2 * x.shape[2] * x.shape[3])
    truth_sliced = M.truth_metrics(y)
    for k in truth_whole:
        np.testing.assert_allclose(truth_sliced[k].numpy(), truth_whole[k].numpy(), rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=k)


def test_pixel_metrics_on_photo_sized_input_stay_close_to_float64():
    # smooth 64 x 64 "photos" in 0..255 and a colour-shifted, noisy prediction of them
    g = torch.Generator().manual_seed(10)
    base = torch.nn.functional.interpolate(
        torch.rand(4, 3, 8, 8, generator=g, dtype=torch.float64), size=(64, 64), mode="bilinear"
    )
    y = ((base + 0.05 * torch.randn(4, 3, 64, 64, generator=g, dtype=torch.float64)).clamp(0, 1) * 255).round()
    x = ((y / 255 + 0.1 * torch.randn(4, 3, 1, 1, generator=g, dtype=torch.float64)).clamp(0, 1) * 255).round()
    cols = M.pixel_metrics(x, y, 255.0)
    lab_x, lab_y = color.rgb_to_lab_torch(x / 255), color.rgb_to_lab_torch(y / 255)  # float64 throughout
    ref_de = M.delta_e_ciede2000(lab_x, lab_y).flatten(1).mean(1)
    ref_auc = M.ab_auc(lab_x[:, 1:], lab_y[:, 1:])
    ref_rebal = M.ab_auc(lab_x[:, 1:], lab_y[:, 1:], rebalanced=True)
    ref_ssim = [
        structural_similarity(
            _hwc(x[i]),
            _hwc(y[i]),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1,
            data_range=255.0,
        )
        for i in range(len(x))
    ]
    ref_psnr = [peak_signal_noise_ratio(_hwc(y[i]), _hwc(x[i]), data_range=255.0) for i in range(len(x))]
    # float32 Lab / CIEDE2000 / SSIM: CIEDE2000 mean atol 1e-4, AuC atol 1e-5, SSIM atol 1e-6; PSNR stays float64
    np.testing.assert_allclose(cols["ciede2000"].numpy(), ref_de.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(cols["auc"].numpy(), ref_auc.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(cols["auc_rebal"].numpy(), ref_rebal.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(cols["ssim"].numpy(), ref_ssim, rtol=0, atol=1e-6)
    np.testing.assert_allclose(cols["psnr"].numpy(), ref_psnr, rtol=1e-10)


# --- bootstrap ------------------------------------------------------------------------------------


def test_bootstrap_ci_contains_the_mean_narrows_with_n_and_is_reproducible():
    rng = np.random.default_rng(0)
    widths = []
    for n in (10, 100, 1000):
        v = rng.normal(5.0, 2.0, n)
        mean, lo, hi, count = M.bootstrap_ci(v)
        assert count == n
        assert mean == pytest.approx(v.mean())
        assert lo < mean < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # ~ 2 * 1.96 * sigma / sqrt(n) for n = 1000
    assert widths[2] == pytest.approx(2 * 1.96 * 2.0 / math.sqrt(1000), rel=0.2)
    v = rng.normal(size=50)
    assert M.bootstrap_ci(v) == M.bootstrap_ci(v)


def test_bootstrap_ci_edge_cases():
    assert M.bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0, 3.0, 3)
    mean, lo, hi, n = M.bootstrap_ci([1.0, np.nan, 3.0, np.inf])  # non-finite values are left out
    assert (mean, n) == (2.0, 2) and 1.0 <= lo <= hi <= 3.0
    mean, lo, hi, n = M.bootstrap_ci([])
    assert n == 0 and math.isnan(mean)
    with pytest.raises(ValueError):
        M.bootstrap_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError):
        M.bootstrap_ci([1.0, 2.0], n_resamples=0)


# --- bad input ------------------------------------------------------------------------------------

RGB_METRICS = [M.psnr, M.ssim, M.ciede2000, M.auc, M.colorfulness_difference, M.pixel_metrics]


@pytest.mark.parametrize("fn", RGB_METRICS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda x, y: (x, y[:, :, :12]), "same shape"),
        (lambda x, y: (x, y[:1]), "same shape"),  # no silent broadcasting of one truth over a batch
        (lambda x, y: (x[0], y[0]), "N x 3 x H x W"),
        (lambda x, y: (x[:, :1], y[:, :1]), "N x 3 x H x W"),
        (lambda x, y: (x * 2, y), "must lie in"),
        (lambda x, y: (x.masked_fill(x > 0.5, float("nan")), y), "NaN"),
        (lambda x, y: (x.numpy(), y), "torch.Tensor"),
        (lambda x, y: (x[:0], y[:0]), "empty"),
    ],
    ids=["shape-mismatch", "batch-mismatch", "3-dims", "1-channel", "out-of-range", "nan", "numpy", "empty-batch"],
)
def test_bad_rgb_input_raises_value_error(fn, make, match):
    x, y = make(*_pair(7))
    with pytest.raises(ValueError, match=match):
        fn(x, y)


def test_other_bad_input_raises_value_error():
    x, y = _pair(8)
    with pytest.raises(ValueError, match="at least 11 x 11"):
        M.ssim(x[:, :, :8, :8], y[:, :, :8, :8])
    with pytest.raises(ValueError, match="at least 11 x 11"):
        M.pixel_metrics(x[:, :, :8, :8], y[:, :, :8, :8])
    with pytest.raises(ValueError, match="NaN"):
        M.colorfulness(x.masked_fill(x > 0.5, float("inf")))
    with pytest.raises(ValueError, match="reduction"):
        M.psnr(x, y, reduction="median")
    with pytest.raises(ValueError, match="data_range"):
        M.psnr(x, y, data_range=0)
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        M.colorfulness(x[0])
    with pytest.raises(ValueError, match="N x 2 x H x W"):
        M.ab_auc(_ab(), _ab()[:, :, :2])
    with pytest.raises(ValueError, match="N x 2 x H x W"):
        M.ab_auc(_ab()[0], _ab()[0])
    with pytest.raises(ValueError, match="NaN"):
        M.ab_auc(_ab() * float("nan"), _ab())
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        M.delta_e_ciede2000(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


def test_truth_row_shortcut_equals_the_truth_scored_against_itself():
    """The evaluation's truth row skips comparisons whose values are identities; every column
    (NaN cases included) is what pixel_metrics(y, y) gives."""
    rng = np.random.default_rng(5)
    photos = [
        rng.integers(0, 256, (48, 64, 3)),  # noise: no neutral pixels to speak of
        np.full((48, 64, 3), 128) + np.array([0, 0, 0]),  # flat grey: colourless, no edges
        np.concatenate([np.full((48, 32, 3), (200, 40, 40)), np.full((48, 32, 3), (30, 60, 220))], 1),  # one colour edge
    ]
    y = torch.as_tensor(np.stack(photos), dtype=torch.float64).permute(0, 3, 1, 2)
    want, got = M.pixel_metrics(y, y, 255.0), M.truth_metrics(y, 255.0)
    assert want.keys() == got.keys()
    for k in want:
        assert torch.allclose(got[k], want[k], atol=1e-6, equal_nan=True), (k, got[k], want[k])
    with pytest.raises(ValueError, match="must lie in"):
        M.truth_metrics(y * 2, 255.0)


def test_uint8_photos_score_as_their_float_values_grey_and_colour_mixed():
    """evaluate passes photos as uint8 tensors (Lab by an exact linearisation table); every column
    equals the float64 input's within float32 rounding - in a batch where grey outputs (whose
    checkerboard and edge bleed are NaN, now found without a spectrum or sampling) sit beside
    coloured ones, so the per-image shortcuts cannot shift values between images."""
    g = torch.Generator().manual_seed(3)
    base = torch.nn.functional.interpolate(torch.rand(4, 3, 6, 6, generator=g), size=(48, 64), mode="bilinear")
    y = (base * 255).round().to(torch.uint8)
    x = y.clone()
    x[1] = x[1].float().mean(0, keepdim=True).round().to(torch.uint8)  # a grey output
    x[3] = (x[3].float() * torch.tensor([0.8, 1.0, 1.2]).view(3, 1, 1)).clamp(0, 255).round().to(torch.uint8)
    got, want = M.pixel_metrics(x, y, 255.0), M.pixel_metrics(x.double(), y.double(), 255.0)
    for k in want:
        assert torch.allclose(got[k], want[k], rtol=1e-4, atol=1e-4, equal_nan=True), (k, got[k], want[k])
    assert torch.isnan(got["checkerboard_2px"][1]) and torch.isnan(got["edge_bleed"][1])
    assert torch.isfinite(got["checkerboard_2px"][[0, 2, 3]]).all()
    lab8 = color.srgb8_to_lab_torch(y)
    np.testing.assert_allclose(lab8.numpy(), color.rgb_to_lab_torch(y.double() / 255).numpy(), atol=2e-4)
