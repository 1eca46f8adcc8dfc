"""Percentile bootstrap confidence interval of a mean over images (Efron & Tibshirani 1993)."""

from __future__ import annotations

import numpy as np

N_RESAMPLES = 1000
CONFIDENCE = 0.95
SEED = 0


def bootstrap_ci(
    values, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, seed: int = SEED
) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)`` of the finite ``values``: images resampled with replacement
    ``n_resamples`` times (fixed seed, so reruns give the same interval); NaNs are left out."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan"), 0
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_resamples, len(v)))].mean(1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(v.mean()), float(lo), float(hi), len(v)
