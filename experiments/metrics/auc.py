"""Zhang, Isola & Efros (ECCV 2016, sec. 3.1): area under the cumulative ab-error curve.

For each pixel, the L2 distance between predicted and true (a, b); the curve is the fraction of
pixels whose error is at most ``t`` for ``t = 0, 1, ..., 150``; AuC is the trapezoidal area under
it divided by 150, so a perfect prediction scores 1 and an error above 150 everywhere 0. A
constant error of ``d`` (integer, 0 < d <= 150) scores ``(150 - d + 0.5) / 150``.

Class-rebalanced AuC (Zhang et al.'s "AuC rebal"): pixels weighted by the inverse of the prior
probability of their TRUE colour class - the plain inverse ``1 / p(q)`` of the training prior of
``backends.color.load_gamut()`` (Q = 261 bins on a grid of 10), not the smoothed and mixed
training weights of eq. 4. Bins the training photos never hit (prior 0) get the weight of the
rarest observed bin, so no pixel gets an infinite weight.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from backends import color

from ._common import check_pair, check_reduction, lab_dtype, reduce, rgb_to_lab32

MAX_THRESHOLD = 150


def _check_ab(ab_pred: torch.Tensor, ab_true: torch.Tensor) -> None:
    if ab_pred.shape != ab_true.shape or ab_pred.dim() != 4 or ab_pred.shape[1] != 2:
        raise ValueError(
            f"auc: expected two ab tensors N x 2 x H x W of one shape, got {tuple(ab_pred.shape)} and {tuple(ab_true.shape)}"
        )
    if not (torch.isfinite(ab_pred).all() and torch.isfinite(ab_true).all()):
        raise ValueError("auc: ab holds NaN or infinite values")


def error_cdf(
    ab_pred: torch.Tensor, ab_true: torch.Tensor, weights: torch.Tensor | None = None, max_threshold: int = MAX_THRESHOLD
) -> torch.Tensor:
    """``N x (max_threshold + 1)``: weighted fraction of pixels with ab error <= t, t = 0..max."""
    _check_ab(ab_pred, ab_true)
    dtype = lab_dtype(ab_pred, ab_true)  # float32 ab stays float32; the histogram is float64
    d = ab_pred.to(dtype) - ab_true.to(dtype)
    err = torch.hypot(d[:, 0], d[:, 1]).flatten(1)  # N x P (vector_norm over dim 1 is ~50x slower on CPU)
    n, bins = err.shape[0], max_threshold + 2
    # Bucket each error at its first threshold >= err (errors above max fall off the end).
    idx = torch.ceil(err).clamp(max=max_threshold + 1).long()
    idx += torch.arange(n, device=err.device).view(n, 1) * bins  # one histogram per image
    if weights is None:
        hist = torch.bincount(idx.flatten(), minlength=n * bins).view(n, bins).double()
        total = torch.full((n, 1), float(err.shape[1]), dtype=torch.float64, device=err.device)
    else:
        w = weights.double().flatten(1)
        hist = torch.bincount(idx.flatten(), w.flatten(), minlength=n * bins).view(n, bins)
        total = w.sum(1, keepdim=True)
    cdf = hist[:, : max_threshold + 1].cumsum(1) / total
    return cdf


def auc_from_cdf(cdf: torch.Tensor) -> torch.Tensor:
    """Trapezoidal area under ``N x (T + 1)`` curves over thresholds 0..T, divided by T."""
    steps = cdf.shape[1] - 1
    return (cdf[:, 1:] + cdf[:, :-1]).sum(1) / (2.0 * steps)


def ab_auc(ab_pred: torch.Tensor, ab_true: torch.Tensor, rebalanced: bool = False, reduction: str = "none") -> torch.Tensor:
    """AuC of each image from Lab ab tensors ``N x 2 x H x W``."""
    check_reduction(reduction)
    weights = rebalance_pixel_weights(ab_true) if rebalanced else None
    return reduce(auc_from_cdf(error_cdf(ab_pred, ab_true, weights)), reduction)


def auc(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, rebalanced: bool = False, reduction: str = "none"
) -> torch.Tensor:
    """AuC of each RGB image of ``x`` (prediction) against ``y`` (ground truth)."""
    check_reduction(reduction)
    check_pair(x, y, data_range, name="auc")
    ab_x = rgb_to_lab32(x, data_range)[:, 1:]
    ab_y = rgb_to_lab32(y, data_range)[:, 1:]
    return ab_auc(ab_x, ab_y, rebalanced, reduction)


@lru_cache(maxsize=1)
def _grid_weights() -> np.ndarray:
    """Weight of every cell of the ab grid: ``1 / p`` of its nearest kept bin (see module doc)."""
    gamut = color.load_gamut()
    prior = gamut.prior.astype(np.float64)
    floor = prior[prior > 0].min()
    w_bins = 1.0 / np.maximum(prior, floor)
    centres = color.grid_centres()
    nearest = ((centres[:, None, :] - gamut.bins[None, :, :].astype(np.float64)) ** 2).sum(-1).argmin(1)
    return w_bins[nearest]


def rebalance_pixel_weights(ab_true: torch.Tensor) -> torch.Tensor:
    """``N x 2 x H x W`` true ab -> ``N x H x W`` weights ``1 / p(q)`` of each pixel's colour bin."""
    ab = ab_true.detach().permute(0, 2, 3, 1).cpu().numpy()
    cell = color.nearest_grid_index(ab)
    return torch.as_tensor(_grid_weights()[cell], device=ab_true.device)
