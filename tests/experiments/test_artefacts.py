"""Artefact measures of experiments.metrics.artefacts, each on hand-made images whose answer is
known: false hues on neutral or bright areas (magenta among them), the warm cast, the 2- and 4-pixel
checkerboard of transposed convolutions, and colour bleeding across luminance edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from backends import color
from experiments import metrics as M
from experiments.metrics import artefacts as A

SIZE = 64


def rgb_of(lab: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` Lab -> ``1 x 3 x H x W`` sRGB in [0, 1] (float64)."""
    return torch.from_numpy(color.lab_to_rgb(lab.astype(np.float64))).permute(2, 0, 1)[None].double()


def flat(L: float, a: float, b: float, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    return np.broadcast_to(np.array([L, a, b], np.float64), (h, w, 3)).copy()


NEUTRAL = (50, 0, 0)
GREEN = (50, -50, 40)  # chroma 64, hue 141
MAGENTA = (50, 60, -30)  # hue 333
BLUE = (50, 10, -60)  # hue 279: a strong false colour, but not magenta
ORANGE = (65, 20, 50)  # hue 68: warm
RED = (50, 60, 40)  # hue 34: not warm (red)
YELLOW = (90, -5, 70)  # hue 94: not warm (yellow)
BEIGE = (70, 3, 7)  # hue 67 but chroma 7.6: too weak to count


# --- false hues and magenta -------------------------------------------------------------------------


def test_false_hue_and_magenta_shares_count_strong_colours_the_neutral_truth_lacks():
    truth = flat(*NEUTRAL)
    truth[:, SIZE // 2 :] = GREEN  # right half: coloured, mid-grey - not eligible
    y = rgb_of(truth)
    assert float(M.false_hue_share(y, y)) == 0 and float(M.magenta_share(y, y)) == 0  # the truth itself

    out = truth.copy()
    out[: SIZE // 2, : SIZE // 2] = MAGENTA  # half of the neutral half turned magenta
    x = rgb_of(out)
    assert float(M.false_hue_share(x, y)) == pytest.approx(0.5)
    assert float(M.magenta_share(x, y)) == pytest.approx(0.5)

    out[: SIZE // 2, : SIZE // 2] = BLUE  # strong, false, but blue
    x = rgb_of(out)
    assert float(M.false_hue_share(x, y)) == pytest.approx(0.5)
    assert float(M.magenta_share(x, y)) == 0

    out = truth.copy()
    out[:, SIZE // 2 :] = MAGENTA  # the coloured (not neutral, not bright) half repainted: not counted
    out[:, : SIZE // 4] = (50, 6, -5)  # a faint tint of the neutral part (chroma 7.8): not strong
    assert float(M.false_hue_share(rgb_of(out), y)) == 0


def test_bright_coloured_truth_pixels_count_only_when_given_a_colour_they_lack():
    truth = flat(*YELLOW)  # L = 90: bright, strongly coloured
    y = rgb_of(truth)
    more_yellow = rgb_of(flat(90, -6, 82))  # stronger, same hue: the truth has that colour
    assert float(M.false_hue_share(more_yellow, y)) == 0
    magenta = flat(*YELLOW)
    magenta[:, : SIZE // 4] = (85, 30, -15)
    assert float(M.false_hue_share(rgb_of(magenta), y)) == pytest.approx(0.25)
    assert float(M.magenta_share(rgb_of(magenta), y)) == pytest.approx(0.25)


def test_grey_output_has_no_false_hue_and_no_eligible_pixels_is_nan():
    truth = flat(*NEUTRAL)
    truth[SIZE // 2 :] = GREEN
    grey = flat(50, 0, 0)
    assert float(M.false_hue_share(rgb_of(grey), rgb_of(truth))) == 0
    coloured = rgb_of(flat(*GREEN))  # no neutral or bright pixel at all: undefined
    assert math.isnan(float(M.false_hue_share(coloured, coloured)))


# --- warm cast ---------------------------------------------------------------------------------------


def test_warm_share_counts_orange_sepia_pixels_only():
    img = flat(*ORANGE)
    q = SIZE // 4
    img[:, q : 2 * q] = RED
    img[:, 2 * q : 3 * q] = YELLOW
    img[:, 3 * q :] = BEIGE
    x = rgb_of(img)
    assert float(M.warm_share(x)) == pytest.approx(0.25)
    all_orange = rgb_of(flat(*ORANGE))
    assert float(M.warm_share_difference(all_orange, x)) == pytest.approx(0.75)  # an orange cast
    assert float(M.warm_share_difference(x, x)) == 0
    assert float(M.warm_share_difference(rgb_of(flat(50, 0, 0)), x)) == pytest.approx(-0.25)  # grey: none of the truth's


def test_sepia_toned_photo_is_warm():
    ramp = np.linspace(20, 85, SIZE)[None, :].repeat(SIZE, 0)
    lab = np.stack([ramp, np.full_like(ramp, 8.0), np.full_like(ramp, 22.0)], -1)  # sepia: a 8, b 22 (hue 70)
    assert float(M.warm_share(rgb_of(lab))) > 0.9


# --- checkerboard ------------------------------------------------------------------------------------


def smooth_ab(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``n x 2 x size x size`` ab fields with a natural 1/f amplitude spectrum (std about 12)."""
    g = torch.Generator().manual_seed(seed)
    fy = torch.fft.fftfreq(size).view(size, 1)
    fx = torch.fft.fftfreq(size).view(1, size)
    amp = 1.0 / torch.hypot(fy, fx).clamp_min(1.0 / size)
    noise = torch.randn(n, 2, size, size, generator=g, dtype=torch.float64)
    field = torch.fft.ifft2(torch.fft.fft2(noise) * amp).real
    return 12 * field / field.std((2, 3), keepdim=True)


def lab_batch(ab: torch.Tensor, L: float = 60.0) -> torch.Tensor:
    """Lab ``N x 3 x H x W`` with constant L -> sRGB ``N x 3 x H x W`` in [0, 1]."""
    lab = torch.cat([torch.full_like(ab[:, :1], L), ab], 1)
    return color.lab_to_rgb_torch(lab)


def tile(period: int, size: int) -> torch.Tensor:
    """+-1 checkerboard of ``period`` pixels (2: alternating pixels; 4: 2 x 2 blocks)."""
    i = torch.arange(size)
    half = period // 2
    return (((i.view(-1, 1) // half) + (i.view(1, -1) // half)) % 2 * 2 - 1).double()


def test_a_natural_spectrum_scores_about_one_and_checkerboards_stand_out():
    ab = smooth_ab(8, SIZE)
    clean = lab_batch(ab)
    r2, r4 = M.checkerboard_ratio(clean, period=2), M.checkerboard_ratio(clean, period=4)
    assert 0.7 < float(r2.mean()) < 1.3 and 0.7 < float(r4.mean()) < 1.3, (r2, r4)
    for period in (2, 4):
        patterned = lab_batch(ab + 3.0 * tile(period, SIZE))  # a faint +-3 ab pattern
        p2, p4 = M.checkerboard_ratio(patterned, period=2), M.checkerboard_ratio(patterned, period=4)
        hit, other = (p2, p4) if period == 2 else (p4, p2)
        base_hit, base_other = (r2, r4) if period == 2 else (r4, r2)
        assert (hit > 5 * base_hit).all(), (period, hit, base_hit)
        np.testing.assert_allclose(other.numpy(), base_other.numpy(), rtol=0.1)  # the other period stays


def test_transposed_convolution_upsampling_shows_a_checkerboard_and_bilinear_does_not():
    low = smooth_ab(4, SIZE // 2, seed=1)
    deconv = torch.nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1, bias=False)
    with torch.no_grad():
        deconv.weight.fill_(1.0 / 2.25)  # uneven overlap (Odena et al. 2016): alternate pixels get 1 or 2 taps
        up_t = deconv(low.reshape(-1, 1, SIZE // 2, SIZE // 2).float()).double().reshape(4, 2, SIZE, SIZE)
    up_b = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
    r_t = M.checkerboard_ratio(lab_batch(up_t), period=2)
    r_b = M.checkerboard_ratio(lab_batch(up_b), period=2)
    assert (r_t > 2).all() and (r_t > 3 * r_b).all(), (r_t, r_b)


def test_checkerboard_is_nan_without_colour_or_below_32_pixels_and_checks_the_period():
    grey = lab_batch(torch.zeros(1, 2, SIZE, SIZE, dtype=torch.float64))
    assert math.isnan(float(M.checkerboard_ratio(grey)))
    assert math.isnan(float(M.checkerboard_ratio(lab_batch(smooth_ab(1, 24)))))
    with pytest.raises(ValueError, match="period"):
        M.checkerboard_ratio(grey, period=3)


# --- edge bleed ----------------------------------------------------------------------------------------


def two_regions(left=(40, 40, 30), right=(75, -30, -25)) -> np.ndarray:
    """A vertical edge: dark reddish left half, light teal right half."""
    lab = flat(*left)
    lab[:, SIZE // 2 :] = right
    return lab


def blur_ab(lab: np.ndarray, sigma: float) -> np.ndarray:
    """The same L, the ab planes Gaussian-blurred horizontally (colour smeared across the edge)."""
    r = int(3 * sigma)
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float64) ** 2) / (2 * sigma**2))
    ab = torch.from_numpy(lab[..., 1:]).permute(2, 0, 1).reshape(2, 1, SIZE, SIZE)
    ab = F.conv2d(F.pad(ab, (r, r, 0, 0), mode="replicate"), (k / k.sum()).view(1, 1, 1, -1))
    out = lab.copy()
    out[..., 1:] = ab.reshape(2, SIZE, SIZE).permute(1, 2, 0).numpy()
    return out


def test_edge_bleed_is_zero_for_crisp_colour_and_grows_as_colour_smears():
    truth = two_regions()
    y = rgb_of(truth)
    assert float(M.edge_bleed(y, y)) == pytest.approx(0, abs=1e-9)
    other_colours = rgb_of(two_regions(left=(40, -20, 35), right=(75, 25, -10)))  # wrong but crisp colours
    assert abs(float(M.edge_bleed(other_colours, y))) < 0.05
    bleed = [float(M.edge_bleed(rgb_of(blur_ab(truth, s)), y)) for s in (2.0, 4.0, 8.0)]
    assert bleed[0] > 0.15 and bleed[0] < bleed[1] < bleed[2] < 1, bleed


def test_edge_bleed_is_nan_without_a_colour_edge_or_without_output_colour():
    truth = two_regions()
    grey = truth.copy()
    grey[..., 1:] = 0
    assert math.isnan(float(M.edge_bleed(rgb_of(grey), rgb_of(truth))))  # nothing to bleed
    same_colour = two_regions(left=(40, 20, 20), right=(75, 20, 20))  # a luminance edge only
    assert math.isnan(float(M.edge_bleed(rgb_of(same_colour), rgb_of(same_colour))))
    no_l_edge = two_regions(left=(60, 40, 30), right=(60, -30, -25))  # a colour edge at constant L
    assert math.isnan(float(M.edge_bleed(rgb_of(no_l_edge), rgb_of(no_l_edge))))


# --- together, in the evaluation ----------------------------------------------------------------------


def test_pixel_metrics_report_every_artefact_as_the_single_functions_do():
    y = torch.cat([rgb_of(two_regions()), lab_batch(smooth_ab(1, SIZE))], 0)
    x = torch.cat([rgb_of(blur_ab(two_regions(), 3.0)), lab_batch(smooth_ab(1, SIZE) + 3.0 * tile(2, SIZE))], 0)
    cols = M.pixel_metrics(x * 255, y * 255, 255.0)
    assert set(A.ARTEFACT_COLUMNS) <= set(cols) and set(A.ARTEFACT_COLUMNS) <= set(M.PIXEL_COLUMNS)
    single = {
        "false_hue_share": M.false_hue_share(x, y),
        "magenta_share": M.magenta_share(x, y),
        "warm_share": M.warm_share(x),
        "warm_share_diff": M.warm_share_difference(x, y),
        "checkerboard_2px": M.checkerboard_ratio(x, period=2),
        "checkerboard_4px": M.checkerboard_ratio(x, period=4),
        "edge_bleed": M.edge_bleed(x, y),
    }
    for c, v in single.items():
        np.testing.assert_allclose(cols[c].numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=c)
        assert c in M.METRIC_INFO


@pytest.mark.parametrize(
    "fn", [M.false_hue_share, M.magenta_share, M.warm_share_difference, M.edge_bleed], ids=lambda f: f.__name__
)
def test_bad_input_raises_value_error(fn):
    y = rgb_of(two_regions())
    with pytest.raises(ValueError, match="same shape"):
        fn(y, y[:, :, :32])
    with pytest.raises(ValueError, match="must lie in"):
        fn(y * 2, y)
    with pytest.raises(ValueError, match="reduction"):
        fn(y, y, reduction="median")
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        M.warm_share(y[0])
