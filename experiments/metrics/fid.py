"""Frechet Inception Distance (Heusel et al. 2017) with pytorch-fid's Inception-v3 (the TF-FID port).

A set metric: the 2048-d pool features of the colorized photos against those of the ground truth,
``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))`` (pytorch-fid's ``calculate_frechet_distance``).
Needs the FID Inception weights (resolver ``inception_fid``); offline machines report it as
unavailable with the fix. With fewer photos than 2048 the estimate is biased upwards; compare
methods only on the same photo set (the table shows n).
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from backends.weights import resolve

from ._common import check_single


def frechet_distance(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """FID between two feature sets ``N x D`` (N >= 2 each)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    feats1, feats2 = np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)
    if feats1.ndim != 2 or feats2.ndim != 2 or feats1.shape[1] != feats2.shape[1]:
        raise ValueError(f"fid: expected two N x D feature arrays, got {feats1.shape} and {feats2.shape}")
    if len(feats1) < 2 or len(feats2) < 2:
        raise ValueError("fid: needs at least 2 images per set")
    mu1, mu2 = feats1.mean(0), feats2.mean(0)
    s1, s2 = np.atleast_2d(np.cov(feats1, rowvar=False)), np.atleast_2d(np.cov(feats2, rowvar=False))
    return float(calculate_frechet_distance(mu1, s1, mu2, s2))


@contextmanager
def _hub_dir_with(path: Path, filename: str):
    """Point torch.hub at a temporary folder holding ``filename`` -> ``path`` (pytorch-fid loads by URL)."""
    old = torch.hub.get_dir()
    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp) / "checkpoints"
        ck.mkdir()
        (ck / filename).symlink_to(Path(path).resolve())
        torch.hub.set_dir(tmp)
        try:
            yield
        finally:
            torch.hub.set_dir(old)


class FIDFeatures:
    """pytorch-fid's InceptionV3 (2048-d pool3), weights from the resolver."""

    column = "fid"
    label = "FID (Inception-v3, pytorch-fid)"

    def __init__(self, device: str = "cpu"):
        from pytorch_fid.inception import FID_WEIGHTS_URL, InceptionV3

        found = resolve("inception_fid")  # WeightsUnavailable with the fix
        with _hub_dir_with(found.path, FID_WEIGHTS_URL.rsplit("/", 1)[-1]):
            self.model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=True)
        self.model.eval().to(device)
        self.device = device
        self.source = f"{found.path} ({found.source})"

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, data_range: float = 1.0) -> np.ndarray:
        """RGB ``N x 3 x H x W`` in [0, data_range] -> ``N x 2048`` features."""
        check_single(x, data_range, name="fid")
        out = self.model(x.float().to(self.device) / data_range)[0]
        return out.flatten(1).double().cpu().numpy()
