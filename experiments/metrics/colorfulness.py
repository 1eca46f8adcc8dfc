"""Colourfulness M3 of Hasler & Suesstrunk (2003), "Measuring colourfulness in natural images".

On RGB in 0..255: ``rg = R - G``, ``yb = (R + G) / 2 - B``,
``M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mu_rg^2 + mu_yb^2)`` with population standard deviations
over the pixels. Grey images score 0; the paper's scale calls about 33 "moderately" and 59
"quite" colourful.
"""

from __future__ import annotations

import torch

from ._common import check_pair, check_reduction, check_single, reduce


def colorfulness(x: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """M3 of each RGB image ``N x 3 x H x W`` (values in ``[0, data_range]``, rescaled to 0..255)."""
    check_reduction(reduction)
    check_single(x, data_range, name="colorfulness")
    return reduce(_colorfulness(x, data_range), reduction)


def _colorfulness(x: torch.Tensor, data_range: float) -> torch.Tensor:
    """:func:`colorfulness` of checked input, per image."""
    r, g, b = (x.double() * (255.0 / data_range)).flatten(2).unbind(1)
    rg = r - g
    yb = 0.5 * (r + g) - b
    sd = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mu = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return sd + 0.3 * mu


def colorfulness_difference(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """``M3(x) - M3(y)``: negative when the colorization is duller than the ground truth ``y``."""
    check_reduction(reduction)
    check_pair(x, y, data_range, name="colorfulness_difference")  # a colorization keeps the truth's shape
    return reduce(colorfulness(x, data_range) - colorfulness(y, data_range), reduction)
