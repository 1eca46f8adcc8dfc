"""Zhang et al.'s published colorization networks, exactly as released (richzhang/colorization).

- ``zhang_eccv16`` - *Colorful Image Colorization* (ECCV 2016), the paper-size network trained on
  ImageNet: eight blocks at 64-128-256-512-512-512-512-256 channels (2, 2, 3, 3, 3, 3, 3, 3 convs;
  stride-2 convs down to 1/8, blocks 5-6 dilated by 2, a 4 x 4 stride-2 deconvolution back to 1/4),
  a 1 x 1 conv to 313 logits over their ab bins (``pts_in_hull``), and a fixed 1 x 1 conv that
  holds the bin centres divided by 110 (``model_out``), i.e. the softmax mean. Input L centred at
  50 and divided by 100; output ab times 110 (their ``base_color.py``). Decoding here is the
  paper's annealed mean (eq. 5) at ``temperature`` (0.38 in the paper); 1.0 gives exactly the
  released code's softmax mean.
- ``zhang_siggraph17`` - *Real-Time User-Guided Image Colorization with Learned Deep Priors*
  (SIGGRAPH 2017) in its automatic mode: no user points (ab hints and mask all zero); the U-Net
  regression head (tanh x 110) gives ab at the working size.

Weights come through the resolver (:mod:`backends.weights`): ``--checkpoint``/an explicit path,
``COLORIZE_ZHANG_ECCV16`` / ``COLORIZE_ZHANG_SIGGRAPH17``, the torch hub cache (where
``colorizers.eccv16(pretrained=True)`` puts them), the weights folder, or a hash-checked download
with ``COLORIZE_DOWNLOAD=1``. The files are plain state dicts, loaded with ``weights_only=True``;
their key names and shapes must match the released layout (``model1.0.weight`` ...), which
:func:`expected_shapes` lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from . import color
from .base import Colorizer, resolve_device
from .errors import CheckpointError, WeightsUnavailable
from .registry import MethodInfo, Option
from .weights import resolve

#: Zhang et al.'s 313 in-gamut ab bins (``resources/pts_in_hull.npy`` of richzhang/colorization):
#: centres on the grid of 10, row by row of a (a: first b, last b), in the file's order (a, then b
#: ascending). The released ECCV16 weights carry the same points (``model_out`` x 110); this table
#: checks them and documents the bin set.
PTS_IN_HULL_ROWS: dict[int, tuple[int, int]] = {
    -90: (50, 90), -80: (20, 90), -70: (0, 90), -60: (-20, 90), -50: (-30, 100), -40: (-40, 100),
    -30: (-50, 100), -20: (-50, 100), -10: (-60, 100), 0: (-70, 100), 10: (-80, 90), 20: (-80, 90),
    30: (-90, 90), 40: (-100, 90), 50: (-100, 80), 60: (-110, 80), 70: (-110, 80), 80: (-110, 70),
    90: (-110, 70), 100: (-90, 0),
}  # fmt: skip


def pts_in_hull() -> np.ndarray:
    """``313 x 2`` float32 ab bin centres, in the order of the network's 313 output channels."""
    pts = [(a, b) for a, (b0, b1) in PTS_IN_HULL_ROWS.items() for b in range(b0, b1 + 1, 10)]
    return np.asarray(pts, dtype=np.float32)


# --- the released layouts ----------------------------------------------------------------------------


def _block(nn, cin: int, cout: int, convs: int, last_stride: int = 1, dilation: int = 1, norm: bool = True, lead_relu: bool = False):
    """``[ReLU,] conv, ReLU, conv, ReLU, ..., [BatchNorm]`` with the released module indices."""
    layers = [nn.ReLU(True)] if lead_relu else []
    for i in range(convs):
        stride = last_stride if i == convs - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=True), nn.ReLU(True)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


def eccv16_network():
    """The ECCV16 generator with the released module names (``model1`` ... ``model8``, ``model_out``)."""
    import torch
    from torch import nn

    class ECCV16(nn.Module):
        def __init__(self):
            super().__init__()
            self.model1 = _block(nn, 1, 64, 2, last_stride=2)
            self.model2 = _block(nn, 64, 128, 2, last_stride=2)
            self.model3 = _block(nn, 128, 256, 3, last_stride=2)
            self.model4 = _block(nn, 256, 512, 3)
            self.model5 = _block(nn, 512, 512, 3, dilation=2)
            self.model6 = _block(nn, 512, 512, 3, dilation=2)
            self.model7 = _block(nn, 512, 512, 3)
            self.model8 = nn.Sequential(
                nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=True), nn.ReLU(True),
                nn.Conv2d(256, 256, 3, padding=1, bias=True), nn.ReLU(True),
                nn.Conv2d(256, 256, 3, padding=1, bias=True), nn.ReLU(True),
                nn.Conv2d(256, 313, 1, bias=True),
            )  # fmt: skip
            self.model_out = nn.Conv2d(313, 2, 1, bias=False)  # bin centres / 110 (fixed)

        def logits(self, L: torch.Tensor) -> torch.Tensor:
            """``N x 1 x H x W`` L in [0, 100] -> ``N x 313 x H/4 x W/4`` logits."""
            x = (L - color.L_CENTER) / color.L_SCALE
            for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7, self.model8):
                x = block(x)
            return x

    return ECCV16()


def siggraph17_network():
    """The SIGGRAPH17 generator with the released module names (automatic mode used here)."""
    import torch
    from torch import nn

    class SIGGRAPH17(nn.Module):
        def __init__(self, classes: int = 529):
            super().__init__()
            self.model1 = _block(nn, 4, 64, 2)
            self.model2 = _block(nn, 64, 128, 2)
            self.model3 = _block(nn, 128, 256, 3)
            self.model4 = _block(nn, 256, 512, 3)
            self.model5 = _block(nn, 512, 512, 3, dilation=2)
            self.model6 = _block(nn, 512, 512, 3, dilation=2)
            self.model7 = _block(nn, 512, 512, 3)
            self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=True))
            self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1, bias=True))
            self.model8 = _block(nn, 256, 256, 2, lead_relu=True)
            self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1, bias=True))
            self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1, bias=True))
            self.model9 = _block(nn, 128, 128, 1, lead_relu=True)
            self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1, bias=True))
            self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1, bias=True))
            self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1, bias=True), nn.LeakyReLU(0.2))
            self.model_class = nn.Sequential(nn.Conv2d(256, classes, 1, bias=True))  # unused in automatic mode
            self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1, bias=True), nn.Tanh())

        def forward(self, L: torch.Tensor) -> torch.Tensor:
            """``N x 1 x H x W`` L in [0, 100] (H, W multiples of 8) -> ``N x 2 x H x W`` ab; no hints."""
            zeros = torch.zeros_like(L)
            x = torch.cat([(L - color.L_CENTER) / color.L_SCALE, zeros, zeros, zeros], dim=1)
            c1 = self.model1(x)
            c2 = self.model2(c1[:, :, ::2, ::2])
            c3 = self.model3(c2[:, :, ::2, ::2])
            c7 = self.model7(self.model6(self.model5(self.model4(c3[:, :, ::2, ::2]))))
            c8 = self.model8(self.model8up(c7) + self.model3short8(c3))
            c9 = self.model9(self.model9up(c8) + self.model2short9(c2))
            c10 = self.model10(self.model10up(c9) + self.model1short10(c1))
            return self.model_out(c10) * color.AB_SCALE

    return SIGGRAPH17()


def expected_shapes(which: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the released state dict (``"eccv16"`` or ``"siggraph17"``)."""
    net = eccv16_network() if which == "eccv16" else siggraph17_network()
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def read_state_dict(path: str | Path, which: str) -> dict:
    """The released file as a state dict (``weights_only``), checked key by key against the layout."""
    import torch

    path = Path(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path}: not a readable weights file ({type(exc).__name__}: {str(exc)[:120]})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: not a state dict")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    want = expected_shapes(which)
    missing = [k for k in want if k not in sd]
    wrong = [f"{k} {tuple(sd[k].shape)} (expected {want[k]})" for k in want if k in sd and tuple(sd[k].shape) != want[k]]
    if missing or wrong:
        detail = f"missing {', '.join(missing[:3])}" if missing else f"wrong shape {'; '.join(wrong[:2])}"
        raise CheckpointError(f"{path}: not Zhang et al.'s released {which} weights ({detail})")
    return {k: sd[k] for k in want}


class _Published(Colorizer):
    """Shared loading: the weights resolver, the released layout, eval mode on the device."""

    layout: ClassVar[str]  # "eccv16" | "siggraph17"; the weights resolver's entry is the method's name
    working_size = 256

    def __init__(self, net, device: str, source: str):
        import torch

        self.device = device
        self.net = net.to(device).eval()
        self.source = source
        self.use_amp = device.startswith("cuda")
        self._torch = torch

    @classmethod
    def open(cls, checkpoint: str | Path | None = None, device: str = "auto", **options):
        found = resolve(cls.name, explicit=checkpoint)
        net = eccv16_network() if cls.layout == "eccv16" else siggraph17_network()
        net.load_state_dict(read_state_dict(found.path, cls.layout))
        obj = cls(net, resolve_device(device), f"{found.path} ({found.source})", **options)
        obj.checkpoint = found.path
        return obj

    @classmethod
    def availability(cls) -> tuple[bool, str, str | None]:
        try:
            found = resolve(cls.name, download=False)
        except WeightsUnavailable as exc:
            return False, f"{cls.name}: {exc}", None
        return True, f"released weights {found.path.name} ({found.source})", str(found.path)

    def _L(self, L: np.ndarray):
        return self._torch.as_tensor(L, dtype=self._torch.float32, device=self.device)[:, None]

    def info(self) -> dict:
        return {**super().info(), "weights": self.source, "layout": self.layout}


class ZhangECCV16(_Published):
    name: ClassVar[str] = "zhang_eccv16"
    layout = "eccv16"
    method_info: ClassVar = MethodInfo(
        "zhang_eccv16", "Zhang et al.'s released ECCV16 network (ImageNet-trained, full size, 313 bins)",
        paper="Zhang, Isola & Efros, Colorful Image Colorization, ECCV 2016", url="https://github.com/richzhang/colorization",
        framework="PyTorch (released weights)",
        options=(Option("temperature", "float", 0.38, 0.01, 1.0, 0.01, label="ECCV16 temperature (annealed mean; 0.38 in the paper, 1 = the release's mean)"),),
    )  # fmt: skip

    def __init__(self, net, device: str, source: str, temperature: float = 0.38):
        super().__init__(net, device, source)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        # the bins the file itself carries (model_out holds centre / 110), in channel order
        self.bins = net.model_out.weight.detach()[:, :, 0, 0].t().float().to(device) * color.AB_SCALE

    def predict_ab(self, L: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.use_amp):
            logits = self.net.logits(self._L(L)).float()
            ab = color.annealed_mean_logits(logits, self.bins, self.temperature)
            ab = torch.nn.functional.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)
        return ab.cpu().numpy()

    def info(self) -> dict:
        return {**super().info(), "temperature": self.temperature, "Q": int(self.bins.shape[0])}


class ZhangSIGGRAPH17(_Published):
    name: ClassVar[str] = "zhang_siggraph17"
    layout = "siggraph17"
    method_info: ClassVar = MethodInfo(
        "zhang_siggraph17", "Zhang et al.'s released SIGGRAPH17 network, automatic mode (no user hints)",
        paper="Zhang, Zhu, Isola, Geng, Lin, Yu & Efros, Real-Time User-Guided Image Colorization with Learned Deep Priors, SIGGRAPH 2017",
        url="https://github.com/richzhang/colorization", framework="PyTorch (released weights)",
    )  # fmt: skip

    def predict_ab(self, L: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.use_amp):
            ab = self.net(self._L(L)).float()
        return ab.cpu().numpy()

