"""Genuine ImageNet SqueezeNet 1.1 features for RGB photos, from whichever weights the resolver finds.

Reuses the loader of ``backends.fusion.SqueezeNetFeatures`` (Keras HDF5 of the original Caffe
model, or torchvision's ``.pth``) and feeds it RGB correctly: for the Caffe weights, BGR x 255
minus the ImageNet mean (103.939, 116.779, 123.68); for torchvision's, ``(rgb - mean) / std``.
The module's ``features`` keeps torchvision's indices, so LPIPS's layer slices apply unchanged.

The two weight files are DIFFERENT networks: torchvision's SqueezeNet 1.1 was trained from scratch
in PyTorch (pytorch/vision PR #49), the Keras file is DeepScale's Caffe model. Channel ``k`` of
one is unrelated to channel ``k`` of the other, which is why LPIPS's learned per-channel weights
(calibrated on torchvision's features) are only applied to torchvision's weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from backends.weights import resolve


@dataclass
class SqueezeFeatures:
    net: torch.nn.Module  # backends.fusion.SqueezeNetFeatures
    caffe: bool  # True: DeepScale Caffe weights (Keras h5); False: torchvision weights
    source: str  # path (resolver source)

    def preprocess(self, rgb01: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1], ``N x 3 x H x W`` -> the weights' input convention."""
        x = rgb01.flip(1) if self.caffe else rgb01
        return x * self.net.in_scale.view(1, 3, 1, 1) + self.net.in_bias.view(1, 3, 1, 1)

    def layers(self, rgb01: torch.Tensor, cuts: tuple[int, ...]) -> list[torch.Tensor]:
        """Activations after ``features[:cut]`` for each cut (increasing)."""
        h = self.preprocess(rgb01)
        out, start = [], 0
        for cut in cuts:
            for m in self.net.features[start:cut]:
                h = m(h)
            out.append(h)
            start = cut
        return out

    def pooled(self, rgb01: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled fire9 output, ``N x 512``."""
        return self.layers(rgb01, (len(self.net.features),))[0].mean((2, 3))


def load_squeezenet(device: str = "cpu") -> SqueezeFeatures:
    """Raises ``WeightsUnavailable`` (with the fix) when no SqueezeNet 1.1 weights are found,
    ``ImportError`` when the fusion backend module is missing."""
    from backends.fusion import SqueezeNetFeatures

    found = resolve("squeezenet")
    net = SqueezeNetFeatures()
    net.load_pretrained(found.path)
    net.eval().to(device)
    return SqueezeFeatures(net, found.path.suffix.lower() in (".h5", ".hdf5"), f"{found.path} ({found.source})")
