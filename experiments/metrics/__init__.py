"""Colorization metrics: pure, batched, validated functions (one per file, piq-style).

Pixel metrics take RGB tensors ``N x 3 x H x W`` in ``[0, data_range]`` (prediction ``x``, ground
truth ``y``) and return one value per image (``reduction="none"``) or their mean / sum; bad input
raises ``ValueError``. Model-based metrics (LPIPS, FID, classification) load their pretrained
weights through ``backends.weights`` and report themselves unavailable, with the fix, otherwise.

=====================  =========================================================  ========
column                 metric                                                     better
=====================  =========================================================  ========
psnr                   PSNR on RGB, dB                                             higher
ssim                   SSIM (Wang et al. 2004: Gaussian 11x11, sigma 1.5)          higher
ciede2000              mean CIEDE2000 colour difference                            lower
colorfulness           Hasler & Suesstrunk M3                                      (truth)
colorfulness_diff      M3(colorized) - M3(truth); < 0 means duller than truth      (0)
auc                    Zhang et al. AuC of the cumulative ab-error curve, 0..150   higher
auc_rebal              same, pixels weighted by 1 / prior of their true colour     higher
lpips_* / featdist_*   perceptual distance (see perceptual.py)                     lower
fid                    Frechet Inception Distance (set metric)                     lower
top1_resnet50          ImageNet ResNet-50 top-1 accuracy                           higher
ncm_squeeze            nearest-class-mean accuracy on SqueezeNet features          higher
false_hue_share ...    colour artefacts: false hues, warm cast, checkerboard,     (see
edge_bleed             colour bleeding across edges (see artefacts.py)            there)
=====================  =========================================================  ========
"""

from __future__ import annotations

import math

import torch

from .artefacts import (
    ARTEFACT_COLUMNS,
    ARTEFACT_INFO,
    checkerboard_ratio,
    edge_bleed,
    false_hue_share,
    magenta_share,
    warm_share,
    warm_share_difference,
)
from .auc import ab_auc, auc, error_cdf
from .bootstrap import bootstrap_ci
from .ciede2000 import ciede2000, delta_e_ciede2000
from .colorfulness import colorfulness, colorfulness_difference
from .fid import frechet_distance
from .psnr import psnr
from .ssim import ssim

__all__ = [
    "METRIC_INFO",
    "ab_auc",
    "auc",
    "bootstrap_ci",
    "checkerboard_ratio",
    "ciede2000",
    "colorfulness",
    "colorfulness_difference",
    "delta_e_ciede2000",
    "edge_bleed",
    "error_cdf",
    "false_hue_share",
    "frechet_distance",
    "magenta_share",
    "pixel_metrics",
    "psnr",
    "truth_metrics",
    "ssim",
    "warm_share",
    "warm_share_difference",
]

#: column -> (label for tables, direction: +1 higher is better, -1 lower, 0 neither)
METRIC_INFO: dict[str, tuple[str, int]] = {
    "psnr": ("PSNR (dB)", +1),
    "ssim": ("SSIM", +1),
    "ciede2000": ("CIEDE2000", -1),
    "colorfulness": ("colourfulness M3", 0),
    "colorfulness_diff": ("M3 - M3(truth)", 0),
    "auc": ("AuC", +1),
    "auc_rebal": ("AuC rebal.", +1),
    "lpips_alex": ("LPIPS (AlexNet, v0.1)", -1),
    "lpips_squeeze": ("LPIPS (SqueezeNet, v0.1)", -1),
    "featdist_squeeze": ("feature distance (SqueezeNet-Caffe, unweighted; not LPIPS)", -1),
    "fid": ("FID (Inception-v3)", -1),
    "top1_resnet50": ("top-1 acc. (ImageNet ResNet-50)", +1),
    "ncm_squeeze": ("NCM acc. (SqueezeNet features; substitute, not ImageNet top-1)", +1),
    **ARTEFACT_INFO,
}

PIXEL_COLUMNS = ("psnr", "ssim", "ciede2000", "colorfulness", "colorfulness_diff", "auc", "auc_rebal", *ARTEFACT_COLUMNS)


@torch.no_grad()
def pixel_metrics(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, shared_truth: bool = False) -> dict[str, torch.Tensor]:
    """Every pixel metric of each image of ``x`` against ``y``: column -> ``N`` float64 values.

    Lab is computed once (float32, as :func:`ciede2000` and :func:`auc` do) and shared by CIEDE2000,
    both AuCs and the artefact measures; the values equal those of the single metric functions.
    With ``shared_truth``, ``y`` holds one image for all of ``x`` (several methods against one truth,
    as on the dashboard's Compare page): its Lab, colourfulness and rebalancing weights are computed
    once. Without it a batch-size mismatch is an error, never a silent broadcast."""
    from ._common import check_pair
    from .ssim import WINDOW

    if shared_truth:  # each checked once: the truth, the outputs, then their shapes
        check_pair(y, y, data_range, min_size=WINDOW, name="pixel_metrics")
        if y.shape[0] != 1:
            raise ValueError(f"pixel_metrics: shared_truth needs one truth image, got {y.shape[0]}")
        check_pair(x, x, data_range, min_size=WINDOW, name="pixel_metrics")
        n = x.shape[0]
        check_pair(x, y.expand(n, -1, -1, -1), None, name="pixel_metrics")
    else:  # once, not per metric
        check_pair(x, y, data_range, min_size=WINDOW, name="pixel_metrics")
        return _in_slices(lambda a, b: _pixel_metrics(a, b, data_range, False), x, y)
    return _pixel_metrics(x, y, data_range, shared_truth)


#: Pixels of the images :func:`pixel_metrics` scores together on the CPU (two 256 x 256 photos).
#: Every metric is per image, so the values do not depend on it; the time does: the two dozen
#: intermediate planes of a 16-photo batch (12 MB each in float32) stream through main memory,
#: those of two photos stay in a core's cache - 16 photos at 256 px: 846 -> 616 ms at 1 thread,
#: 485 -> 411 ms at 2 (PSNR to the artefact measures, same values).
CHUNK_PIXELS = 2 * 256 * 256


def _in_slices(fn, *ts: torch.Tensor) -> dict[str, torch.Tensor]:
    """``fn(*ts)`` (column -> per-image values), on the CPU over :data:`CHUNK_PIXELS`-sized slices
    of the images, the columns joined."""
    n, step = ts[0].shape[0], max(1, CHUNK_PIXELS // (ts[0].shape[2] * ts[0].shape[3]))
    if ts[0].device.type != "cpu" or n <= step:
        return fn(*ts)
    parts = [fn(*(t[i : i + step] for t in ts)) for i in range(0, n, step)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _pixel_metrics(x: torch.Tensor, y: torch.Tensor, data_range: float, shared_truth: bool) -> dict[str, torch.Tensor]:
    """:func:`pixel_metrics` of checked input."""
    from ._common import rgb_to_lab32
    from .artefacts import artefacts_from_lab
    from .auc import auc_from_cdf, rebalance_pixel_weights
    from .colorfulness import _colorfulness
    from .psnr import _psnr
    from .ssim import _ssim

    n = x.shape[0]

    def per_x(t: torch.Tensor) -> torch.Tensor:  # a truth-side value for every image of x
        return t.expand(n, *t.shape[1:]) if shared_truth else t

    lab_x, lab_y1 = rgb_to_lab32(x, data_range), rgb_to_lab32(y, data_range)
    lab_y = per_x(lab_y1)
    y_all = per_x(y)
    m_x = _colorfulness(x, data_range)
    s = _ssim(x, y_all, data_range)
    if not torch.isfinite(s).all():
        raise ValueError("ssim: non-finite result")
    out = {
        "psnr": _psnr(x, y_all, data_range),
        "ssim": s,
        "ciede2000": delta_e_ciede2000(lab_x, lab_y).flatten(1).mean(1, dtype=torch.float64),
        "colorfulness": m_x,
        "colorfulness_diff": m_x - per_x(_colorfulness(y, data_range)),
        "auc": auc_from_cdf(error_cdf(lab_x[:, 1:], lab_y[:, 1:])),
        "auc_rebal": auc_from_cdf(error_cdf(lab_x[:, 1:], lab_y[:, 1:], per_x(rebalance_pixel_weights(lab_y1[:, 1:])))),
        **artefacts_from_lab(lab_x, lab_y),
    }
    return {k: v.double().cpu() for k, v in out.items()}


@torch.no_grad()
def truth_metrics(y: torch.Tensor, data_range: float = 1.0) -> dict[str, torch.Tensor]:
    """:func:`pixel_metrics` of the ground truth against itself (the evaluation's ``truth`` row),
    without the comparisons whose values are identities: PSNR inf, SSIM 1, CIEDE2000 0, AuC 1,
    differences to the truth 0, false hues 0 of the eligible pixels (NaN when none is, as there).
    What describes the photo itself (colourfulness, warm share, checkerboard, edge bleed's NaN
    cases) is computed as :func:`pixel_metrics` computes it."""
    from ._common import check_single
    from .ssim import WINDOW

    check_single(y, data_range, name="truth_metrics")
    if min(y.shape[2], y.shape[3]) < WINDOW:
        raise ValueError(f"truth_metrics: images must be at least {WINDOW} x {WINDOW} pixels, got {tuple(y.shape[2:])}")
    return _in_slices(lambda t: _truth_metrics(t, data_range), y)  # as pixel_metrics: in the cache


def _truth_metrics(y: torch.Tensor, data_range: float) -> dict[str, torch.Tensor]:
    """:func:`truth_metrics` of checked input."""
    from ._common import rgb_to_lab32
    from .artefacts import _checkerboard, _edge_bleed, _false_hue, _share, _warm
    from .colorfulness import _colorfulness

    n = y.shape[0]
    lab = rgb_to_lab32(y, data_range)
    eligible, _, _ = _false_hue(lab, lab)
    none = torch.zeros_like(eligible)
    warm = _share(_warm(lab))
    checker = _checkerboard(lab)
    one, zero = torch.ones(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    out = {
        "psnr": torch.full((n,), math.inf, dtype=torch.float64),
        "ssim": one,
        "ciede2000": zero,
        "colorfulness": _colorfulness(y, data_range),
        "colorfulness_diff": zero,
        "auc": one,
        "auc_rebal": one,
        "false_hue_share": _share(none, eligible),
        "magenta_share": _share(none, eligible),
        "warm_share": warm,
        "warm_share_diff": zero,
        "checkerboard_2px": checker[0],
        "checkerboard_4px": checker[1],
        "edge_bleed": _edge_bleed(lab, lab),
    }
    return {k: v.double().cpu() for k, v in out.items()}
