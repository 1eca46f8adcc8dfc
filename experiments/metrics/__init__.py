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
def pixel_metrics(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> dict[str, torch.Tensor]:
    """Every pixel metric of each image of ``x`` against ``y``: column -> ``N`` float64 values.

    Lab is computed once (float32, as :func:`ciede2000` and :func:`auc` do) and shared by CIEDE2000,
    both AuCs and the artefact measures; the values equal those of the single metric functions."""
    from ._common import check_pair, rgb_to_lab32
    from .artefacts import artefacts_from_lab
    from .auc import auc_from_cdf, rebalance_pixel_weights
    from .colorfulness import _colorfulness
    from .psnr import _psnr
    from .ssim import WINDOW, _ssim

    check_pair(x, y, data_range, min_size=WINDOW, name="pixel_metrics")  # once, not per metric
    lab_x, lab_y = rgb_to_lab32(x, data_range), rgb_to_lab32(y, data_range)
    m_x = _colorfulness(x, data_range)
    s = _ssim(x, y, data_range)
    if not torch.isfinite(s).all():
        raise ValueError("ssim: non-finite result")
    out = {
        "psnr": _psnr(x, y, data_range),
        "ssim": s,
        "ciede2000": delta_e_ciede2000(lab_x, lab_y).flatten(1).mean(1, dtype=torch.float64),
        "colorfulness": m_x,
        "colorfulness_diff": m_x - _colorfulness(y, data_range),
        "auc": auc_from_cdf(error_cdf(lab_x[:, 1:], lab_y[:, 1:])),
        "auc_rebal": auc_from_cdf(error_cdf(lab_x[:, 1:], lab_y[:, 1:], rebalance_pixel_weights(lab_y[:, 1:]))),
        **artefacts_from_lab(lab_x, lab_y),
    }
    return {k: v.double().cpu() for k, v in out.items()}
