"""LPIPS (Zhang, Isola, Efros, Shechtman & Wang, CVPR 2018) with the ``lpips`` package's v0.1
linear layers, and an honestly named substitute when only the Caffe SqueezeNet is at hand.

Which variant runs depends on the backbone weights the resolver finds (``backends.weights``):

* ``lpips_alex`` - torchvision AlexNet (resolver ``alexnet``) + LPIPS v0.1 ``alex`` linear layers:
  the LPIPS of the paper's default.
* ``lpips_squeeze`` - torchvision SqueezeNet 1.1 ``.pth`` (resolver ``squeezenet``, torch hub cache)
  + LPIPS v0.1 ``squeeze`` linear layers.
* ``featdist_squeeze`` - only the Caffe SqueezeNet 1.1 (Keras HDF5 in ../shared/weights) is found.
  LPIPS's linear layers weight torchvision's channels, which are not the Caffe model's channels, so
  applying them would not be LPIPS. What is computed instead is the LPIPS paper's *baseline* form
  (``lpips=False``: unit-normalised features, squared differences summed over channels, averaged
  over space, summed over the 7 layers) on the Caffe features. It is a genuine deep-feature
  distance, but NOT LPIPS; tables name it "feature distance (SqueezeNet-Caffe, unweighted)".

All take RGB in [0, data_range] and return one distance per image (lower = more similar).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from backends.errors import WeightsUnavailable
from backends.weights import resolve

from ._common import check_pair, check_reduction, reduce


@dataclass
class PerceptualMetric:
    column: str
    label: str
    source: str
    model: torch.nn.Module  # lpips.LPIPS (its backbone filled with the resolved weights)
    weighted: bool
    preprocess: object  # rgb01 -> backbone input
    device: str

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
        check_reduction(reduction)
        check_pair(x, y, data_range, min_size=32, name=self.column)
        fx = self.features(x.float().to(self.device) / data_range)
        fy = self.features(y.float().to(self.device) / data_range)
        return reduce(self.distance(fx, fy).double().cpu(), reduction)

    def features(self, rgb01: torch.Tensor) -> list[torch.Tensor]:
        import lpips

        out = self.model.net(self.preprocess(rgb01))
        return [lpips.normalize_tensor(t) for t in out]

    def distance(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        total = 0
        for k, (a, b) in enumerate(zip(fx, fy)):
            d = (a - b) ** 2
            d = self.model.lins[k](d) if self.weighted else d.sum(1, keepdim=True)
            total = total + d.mean((2, 3), keepdim=True)
        return total.flatten()


def fill_backbone(lp, state: dict) -> None:
    """Copy torchvision ``features.<i>.*`` weights into an ``lpips.LPIPS`` backbone's slices."""
    loaded = 0
    for i in range(1, lp.net.N_slices + 1):
        for name, child in getattr(lp.net, f"slice{i}").named_children():
            sub = {k[len(f"features.{name}.") :]: v for k, v in state.items() if k.startswith(f"features.{name}.")}
            if sub:
                child.load_state_dict(sub)
                loaded += 1
    if loaded == 0:
        raise WeightsUnavailable("backbone state dict holds no torchvision 'features.*' weights")


def _scaling(lp):
    return lambda rgb01: lp.scaling_layer(2 * rgb01 - 1)


def load_perceptual(device: str = "cpu") -> PerceptualMetric:
    """The best available variant (see module doc); raises ``WeightsUnavailable`` / ``ImportError``."""
    import lpips

    tried = []
    for net, resolver in (("alex", "alexnet"), ("squeeze", "squeezenet")):
        try:
            found = resolve(resolver)
        except WeightsUnavailable as exc:
            tried.append(str(exc))
            continue
        if found.path.suffix.lower() in (".h5", ".hdf5"):
            continue  # Caffe weights: handled below
        lp = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
        fill_backbone(lp, torch.load(found.path, map_location="cpu", weights_only=True))
        lp.eval().to(device)
        return PerceptualMetric(f"lpips_{net}", f"LPIPS ({'AlexNet' if net == 'alex' else 'SqueezeNet'}, v0.1)",
                                f"{found.path} ({found.source})", lp, True, _scaling(lp), device)  # fmt: skip
    try:
        from .squeezenet import load_squeezenet

        sq = load_squeezenet("cpu")
    except (WeightsUnavailable, ImportError) as exc:
        raise WeightsUnavailable(f"LPIPS unavailable: {' | '.join(tried + [str(exc)])}") from None
    lp = lpips.LPIPS(net="squeeze", lpips=False, pnet_rand=True, verbose=False)
    fill_backbone(lp, {f"features.{k}": v for k, v in sq.net.features.state_dict().items()})
    lp.eval().to(device)
    sq.net.to(device)
    return PerceptualMetric("featdist_squeeze", "feature distance (SqueezeNet-Caffe, unweighted; not LPIPS)",
                            sq.source, lp, False, sq.preprocess, device)  # fmt: skip
