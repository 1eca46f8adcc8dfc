"""Peak signal-to-noise ratio on RGB: ``10 log10(data_range^2 / MSE)``, MSE over all pixels and
the three channels of each image (scikit-image's ``peak_signal_noise_ratio`` on one RGB image)."""

from __future__ import annotations

import torch

from ._common import check_pair, check_reduction, reduce


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """PSNR in dB of each image of ``x`` against ``y`` (``N x 3 x H x W``); identical images give +inf."""
    check_reduction(reduction)
    check_pair(x, y, data_range, name="psnr")
    return reduce(_psnr(x, y, data_range), reduction)


def _psnr(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """:func:`psnr` of checked input, per image."""
    mse = ((x.double() - y.double()) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse)
