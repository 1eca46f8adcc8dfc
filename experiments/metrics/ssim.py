"""Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004), the paper's parameters:
an 11 x 11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, population (co)variances, the mean
SSIM map over the valid region, averaged over R, G and B.

Equal to scikit-image's ``structural_similarity(x, y, channel_axis=-1, data_range=R,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` - the settings its docs give to
match Wang et al.; its plain default (a 7 x 7 uniform window, sample covariance) is a different
number.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._common import check_pair, check_reduction, reduce

SIGMA = 1.5
TRUNCATE = 3.5  # scipy/scikit-image: radius = int(truncate * sigma + 0.5) = 5 -> 11 taps
K1, K2 = 0.01, 0.03


def gaussian_taps(sigma: float = SIGMA, truncate: float = TRUNCATE, dtype=torch.float64) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """Mean SSIM of each RGB image of ``x`` against ``y`` (``N x 3 x H x W``, at least 11 x 11)."""
    check_reduction(reduction)
    g = gaussian_taps()
    win = len(g)
    check_pair(x, y, data_range, min_size=win, name="ssim")
    n, c, h, w = x.shape
    x = x.double().reshape(n * c, 1, h, w)
    y = y.double().reshape(n * c, 1, h, w)
    gh = g.to(x.device).view(1, 1, 1, win)
    gv = g.to(x.device).view(1, 1, win, 1)

    def blur(t):  # separable Gaussian, valid region only (= scikit-image's crop of the border)
        return F.conv2d(F.conv2d(t, gh), gv)

    stack = blur(torch.cat([x, y, x * x, y * y, x * y], 1).reshape(-1, 1, h, w)).reshape(n * c, 5, h - win + 1, w - win + 1)
    ux, uy, uxx, uyy, uxy = stack.unbind(1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    per_image = s.reshape(n, c, -1).mean(dim=(1, 2))
    if not math.isfinite(float(per_image.sum())):
        raise ValueError("ssim: non-finite result")
    return reduce(per_image, reduction)
