"""Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004), the paper's parameters:
an 11 x 11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, population (co)variances, the mean
SSIM map over the valid region, averaged over R, G and B.

Equal to scikit-image's ``structural_similarity(x, y, channel_axis=-1, data_range=R,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` - the settings its docs give to
match Wang et al.; its plain default (a 7 x 7 uniform window, sample covariance) is a different
number.

Computed in float32 (float64 convolutions are several times slower on CPU) with float64
accumulation of the mean: the images are scaled to [0, 1] and shifted by -0.5 before the five
Gaussian blurs (x, y, x^2, y^2, xy - one grouped separable convolution per direction), which
leaves every (co)variance unchanged and keeps the cancellation in ``E[x^2] - E[x]^2`` small. The
result differs from the float64 computation by about 1e-7 on typical photos and by at most a few
1e-6 on photos with large flat, saturated regions (the worst case: tiny variances under bright
means).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._common import check_pair, check_reduction, reduce

SIGMA = 1.5
TRUNCATE = 3.5  # scipy/scikit-image: radius = int(truncate * sigma + 0.5) = 5 -> 11 taps
WINDOW = 2 * int(TRUNCATE * SIGMA + 0.5) + 1  # 11
K1, K2 = 0.01, 0.03
SHIFT = 0.5  # subtracted from the [0, 1] images before blurring (means add it back)


def gaussian_taps(sigma: float = SIGMA, truncate: float = TRUNCATE, dtype=torch.float64) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """Mean SSIM of each RGB image of ``x`` against ``y`` (``N x 3 x H x W``, at least 11 x 11)."""
    check_reduction(reduction)
    check_pair(x, y, data_range, min_size=WINDOW, name="ssim")
    per_image = _ssim(x, y, data_range)
    if not math.isfinite(float(per_image.sum())):
        raise ValueError("ssim: non-finite result")
    return reduce(per_image, reduction)


def _ssim(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """:func:`ssim` of checked input (at least ``WINDOW`` pixels a side), per image, float64."""
    g = gaussian_taps().to(torch.float32)  # taps normalised in float64, then rounded
    win = len(g)
    n, c = x.shape[:2]
    # SSIM is unchanged by scaling both images and (K1 R)^2, (K2 R)^2 by 1 / R: work on [0, 1] - SHIFT.
    xs = (x.to(torch.float32) / data_range - SHIFT).permute(0, 2, 3, 1)  # N x H x W x C views
    ys = (y.to(torch.float32) / data_range - SHIFT).permute(0, 2, 3, 1)
    # The five planes of every channel side by side, channels-last (N x 5C x H x W with the
    # channels innermost), the layout in which a depthwise convolution is fastest on CPU.
    stack = torch.cat([xs, ys, xs * xs, ys * ys, xs * ys], dim=3).permute(0, 3, 1, 2)
    k = 5 * c
    gh = g.to(x.device).view(1, 1, 1, win).expand(k, 1, 1, win)
    gv = g.to(x.device).view(1, 1, win, 1).expand(k, 1, win, 1)
    # separable Gaussian, valid region only (= scikit-image's crop of the border)
    blurred = F.conv2d(F.conv2d(stack, gh, groups=k), gv, groups=k)
    ux, uy, uxx, uyy, uxy = blurred.unflatten(1, (5, c)).unbind(1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy  # shift-invariant
    ux, uy = ux + SHIFT, uy + SHIFT
    c1, c2 = K1**2, K2**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3), dtype=torch.float64)
