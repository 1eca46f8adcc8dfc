"""Input checks and reductions shared by the metric functions (piq / torchmetrics style).

Every metric takes batched torch tensors ``N x 3 x H x W`` (RGB, values in ``[0, data_range]``)
or, where it says so, Lab tensors in the same layout, and validates with ``ValueError`` (not
``assert``, which ``python -O`` strips).
"""

from __future__ import annotations

import math

import torch

REDUCTIONS = ("none", "mean", "sum")


def check_pair(x: torch.Tensor, y: torch.Tensor, data_range: float | None = None, min_size: int = 1, name: str = "") -> None:
    """Both tensors ``N x 3 x H x W`` of the same shape, finite, inside ``[0, data_range]``."""
    tag = f"{name}: " if name else ""
    for t, label in ((x, "x"), (y, "y")):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{tag}{label} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4 or t.shape[1] != 3:
            raise ValueError(f"{tag}{label} must be N x 3 x H x W, got shape {tuple(t.shape)}")
    if x.shape != y.shape:
        raise ValueError(f"{tag}x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{tag}empty batch")
    if min(x.shape[2], x.shape[3]) < min_size:
        raise ValueError(f"{tag}images must be at least {min_size} x {min_size} pixels, got {tuple(x.shape[2:])}")
    if data_range is not None:
        if data_range <= 0:
            raise ValueError(f"{tag}data_range must be > 0, got {data_range}")
        for t, label in ((x, "x"), (y, "y")) if y is not x else ((x, "x"),):
            lo, hi = (float(v) for v in torch.aminmax(t))  # one pass; NaN propagates, inf is an extreme
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"{tag}{label} holds NaN or infinite values")
            if lo < 0 or hi > data_range * (1 + 1e-6):
                raise ValueError(f"{tag}{label} values must lie in [0, {data_range}] (data_range), got [{lo:.4g}, {hi:.4g}]")


def check_single(x: torch.Tensor, data_range: float, name: str = "") -> None:
    check_pair(x, x, data_range, name=name)


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-image values ``N`` -> ``none`` (as is), ``mean`` or ``sum``."""
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def rgb_to_lab32(x: torch.Tensor, data_range: float) -> torch.Tensor:
    """RGB ``N x 3 x H x W`` in ``[0, data_range]`` -> float32 CIE Lab (D65), as the metrics use it."""
    from backends import color

    if x.dtype == torch.uint8 and data_range == 255:  # 8-bit photos: linearised by table
        return color.srgb8_to_lab_torch(x)
    return color.rgb_to_lab_torch(x.to(torch.float32) / data_range)


def lab_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The precision to compute in: float32 when every input is float32, else float64."""
    return torch.float32 if all(t.dtype == torch.float32 for t in tensors) else torch.float64
