"""Pretrained semantic encoders any learned method can put under its own decoder and loss.

Two CPU cores cannot learn ImageNet semantics from scratch; the genuine ImageNet SqueezeNet 1.1
features (``../shared/weights``, found by :mod:`backends.weights`) can supply them - the Deep
Koalarization idea (Baldassarre et al. 2017) and Larsson et al.'s hypercolumns (ECCV 2016),
generalised: each method keeps its defining part (Zhang's bins and rebalancing, Iizuka's fusion
layer, pix2pix's PatchGAN and L1, the Keras regression head) and only its encoder changes.

* :class:`SqueezeNetFeatures` - SqueezeNet 1.1 ``features`` (conv1 ... fire9) in torchvision's
  layout, fed the grey image (L -> neutral sRGB, replicated to three channels). ``aligned=False``
  is the original network (valid conv1, ceil-mode pools: 224 -> 111 -> 55 -> 27 -> 13);
  ``aligned=True`` pads conv1 and the pools by one so the taps sit at exactly 1/2, 1/4, 1/8 and
  1/16 of a side divisible by 16 (a decoder can then upsample by 2 and concatenate). The weights
  are the genuine ones either way; only the border handling differs.
* :class:`SqueezeNetEncoder` - the aligned network returning the four taps (64, 128, 256, 512
  channels), frozen by default (``trainable=True`` fine-tunes it).
* :class:`Upsample` - ``nn.Upsample`` for the decoders that concatenate its output with the taps.

A checkpoint carries the encoder's weights, so a shipped model rebuilds without the weights file:
while :func:`building_from_checkpoint` is active, encoders are created without reading it.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import color
from .errors import WeightsUnavailable

#: Caffe input convention of the Keras SqueezeNet (BGR x 255 minus the ImageNet mean).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
#: torchvision input convention (RGB in [0, 1], normalised).
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)

ENCODERS = ("scratch", "squeezenet")

_FROM_CHECKPOINT: contextvars.ContextVar[bool] = contextvars.ContextVar("encoder_from_checkpoint", default=False)


@contextmanager
def building_from_checkpoint():
    """While active, pretrained encoders are built empty: the checkpoint supplies their weights."""
    token = _FROM_CHECKPOINT.set(True)
    try:
        yield
    finally:
        _FROM_CHECKPOINT.reset(token)


def from_checkpoint_active() -> bool:
    return _FROM_CHECKPOINT.get()


def check_encoder(name: str) -> str:
    if name not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {name!r}")
    return name


class Fire(nn.Module):
    """torchvision's Fire module (same attribute names, so its state dicts load unchanged)."""

    def __init__(self, cin: int, squeeze: int, e1: int, e3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNetFeatures(nn.Module):
    """SqueezeNet 1.1 ``features`` (conv1 ... fire9, 512 channels at stride 16) for grey input.

    Input: L in [0, 100], ``N x 1 x H x W``. The grey sRGB value of L (neutral colour) is replicated
    to three channels and mapped to the weights' input convention by the per-channel affine
    ``in_scale``, ``in_bias`` (buffers, so a checkpoint rebuilds it without the weights file).
    """

    FIRES = [(64, 16, 64, 64), (128, 16, 64, 64), "M", (128, 32, 128, 128), (256, 32, 128, 128), "M",
             (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), (512, 64, 256, 256)]  # fmt: skip
    KERAS_NAMES = ["fire2", "fire3", None, "fire4", "fire5", None, "fire6", "fire7", "fire8", "fire9"]
    #: indices of ``features`` whose outputs are the taps at 1/2, 1/4, 1/8, 1/16 (relu1, fire3, fire5, fire9)
    TAPS = (1, 4, 7, 12)
    CHANNELS = (64, 128, 256, 512)

    def __init__(self, aligned: bool = False):
        super().__init__()
        pad = 1 if aligned else 0

        def pool():
            return nn.MaxPool2d(3, 2, padding=pad, ceil_mode=not aligned)

        layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, stride=2, padding=pad), nn.ReLU(inplace=True), pool()]
        for spec in self.FIRES:
            layers.append(pool() if spec == "M" else Fire(*spec))
        self.features = nn.Sequential(*layers)
        self.register_buffer("in_scale", torch.full((3,), 255.0))
        self.register_buffer("in_bias", -torch.tensor(CAFFE_MEAN_BGR))

    def prepare(self, L):
        zeros = torch.zeros_like(L)
        grey = color.lab_to_rgb_torch(torch.cat([L, zeros, zeros], 1))  # neutral: R = G = B
        return grey * self.in_scale.view(1, 3, 1, 1) + self.in_bias.view(1, 3, 1, 1)

    def forward(self, L):
        return self.features(self.prepare(L))

    def pyramid(self, L, taps: int = 4) -> list[torch.Tensor]:
        """The first ``taps`` of the four taps (1/2, 1/4, 1/8, 1/16 of the input side with
        ``aligned=True``); layers past the last one asked for are not run."""
        x = self.prepare(L)
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.TAPS:
                out.append(x)
                if len(out) == taps:
                    break
        return out

    # -- loading genuine weights -----------------------------------------------------------------
    def load_pretrained(self, path: Path) -> None:
        path = Path(path)
        if path.suffix in (".h5", ".hdf5"):
            self._load_keras_h5(path)
            self.in_scale.fill_(255.0)
            self.in_bias.copy_(-torch.tensor(CAFFE_MEAN_BGR))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
            sd = {k: v for k, v in sd.items() if k.startswith("features.")}
            self.load_state_dict(sd, strict=False)
            missing = [k for k in self.state_dict() if k.startswith("features.") and k not in sd]
            if missing:
                raise WeightsUnavailable(f"{path}: not SqueezeNet 1.1 weights (missing {missing[0]}...)")
            self.in_scale.copy_(1.0 / torch.tensor(TORCHVISION_STD))
            self.in_bias.copy_(-torch.tensor(TORCHVISION_MEAN) / torch.tensor(TORCHVISION_STD))
        for p in self.parameters():
            p.requires_grad_(False)

    def _load_keras_h5(self, path: Path) -> None:
        arrays = read_squeezenet_h5(path)
        convs = {"conv1": self.features[0]}
        fires = [m for m in self.features if isinstance(m, Fire)]
        for fire, name in zip(fires, [n for n in self.KERAS_NAMES if n], strict=True):
            convs.update({f"{name}/squeeze1x1": fire.squeeze, f"{name}/expand1x1": fire.expand1x1, f"{name}/expand3x3": fire.expand3x3})
        for name, conv in convs.items():
            k, b = arrays[name]
            w = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())  # HWIO -> OIHW
            if w.shape != conv.weight.shape or b.shape != tuple(conv.bias.shape):
                raise WeightsUnavailable(f"{path}: {name} has shape {tuple(w.shape)}, expected {tuple(conv.weight.shape)}")
            with torch.no_grad():
                conv.weight.copy_(w)
                conv.bias.copy_(torch.from_numpy(b.copy()))


def read_squeezenet_h5(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"conv1": (kernel HWIO, bias), "fire2/squeeze1x1": ..., ...}`` from the Keras HDF5 file."""
    import h5py

    path = Path(path)
    names = ["conv1"] + [f"{f}/{c}" for f in SqueezeNetFeatures.KERAS_NAMES if f for c in ("squeeze1x1", "expand1x1", "expand3x3")]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as f:
            for name in names:
                arrays: list[np.ndarray] = []

                def grab(_, obj, into=arrays):
                    if isinstance(obj, h5py.Dataset):
                        into.append(obj[()])

                f[name].visititems(grab)
                k = [a for a in arrays if a.ndim == 4]
                b = [a for a in arrays if a.ndim == 1]
                if len(k) != 1 or len(b) != 1:
                    raise WeightsUnavailable(f"{path}: layer {name} is not one conv kernel and bias")
                out[name] = (np.asarray(k[0], np.float32), np.asarray(b[0], np.float32))
    except (OSError, KeyError) as exc:
        raise WeightsUnavailable(f"{path}: not readable as SqueezeNet 1.1 Keras weights ({type(exc).__name__}: {exc})") from None
    return out


class SqueezeNetEncoder(nn.Module):
    """Aligned SqueezeNet 1.1 taps for a decoder: ``N x 1 x H x W`` L (H, W multiples of 16) ->
    ``[N x 64 x H/2 x W/2, N x 128 x H/4, N x 256 x H/8, N x 512 x H/16]`` (the first ``taps``;
    multiples of 8 suffice for three).

    Frozen (``trainable=False``): no gradients, always in inference mode. ``source`` says where
    the weights came from (``None`` when they are to come from a checkpoint).
    """

    CHANNELS = SqueezeNetFeatures.CHANNELS

    def __init__(self, trainable: bool = False, weights: str | None = None, taps: int = 4, scale: float = 1.0):
        super().__init__()
        if not 0.5 <= scale <= 4.0:
            raise ValueError(f"encoder_scale must be in [0.5, 4], got {scale}")
        self.trainable, self.taps, self.scale = trainable, taps, float(scale)
        self.net = SqueezeNetFeatures(aligned=True)
        self.source: str | None = None
        if not from_checkpoint_active():
            from .weights import resolve

            found = resolve("squeezenet", explicit=weights or None)
            self.net.load_pretrained(found.path)
            self.source = f"{found.path} ({found.source})"
        for p in self.net.parameters():
            p.requires_grad_(trainable)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.trainable:
            self.net.eval()
        return self

    def forward(self, L):
        if self.trainable:
            return self._taps(L)
        with torch.no_grad():
            return [t.detach() for t in self._taps(L)]

    def _taps(self, L):
        """With ``scale != 1`` the network sees L resized by ``scale`` (to multiples of 16) and each
        tap is area-resampled back to the grid the decoder expects (1/2 ... 1/16 of L's side): the
        ImageNet features at the scale they were trained at, the decoder at its own."""
        if self.scale == 1.0:
            return self.net.pyramid(L, self.taps)
        h, w = L.shape[-2:]
        size = (max(16, round(h * self.scale / 16) * 16), max(16, round(w * self.scale / 16) * 16))
        big = nn.functional.interpolate(L, size=size, mode="bilinear", align_corners=False)
        out = []
        for k, t in enumerate(self.net.pyramid(big, self.taps)):
            grid = (-(-h // 2 ** (k + 1)), -(-w // 2 ** (k + 1)))
            mode = "area" if t.shape[-2] >= grid[0] and t.shape[-1] >= grid[1] else "bilinear"
            out.append(nn.functional.interpolate(t, size=grid, mode=mode, **({} if mode == "area" else {"align_corners": False})))
        return out


def _channels_last(grad: torch.Tensor) -> torch.Tensor:
    return grad.contiguous(memory_format=torch.channels_last)


class Upsample(nn.Upsample):
    """``nn.Upsample`` (same output, same - empty - state dict) whose gradient reaches its backward
    kernel in channels-last layout. A decoder that concatenates the upsampled map with an encoder
    tap hands it back a channel slice of the concatenation's gradient, which is strided in neither
    layout, and the CPU kernels of upsampling's backward then take their slow generic path:
    measured on the gan's training step (batch 12, 160-px crops, bfloat16) the four bilinear
    backwards took 215 ms of a 920-ms step, 24 ms with this - 1.3x the images per second."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if y.requires_grad and y.is_contiguous(memory_format=torch.channels_last):
            y.register_hook(_channels_last)
        return y


def grey_srgb(L: np.ndarray) -> np.ndarray:
    """Neutral sRGB value in [0, 1] of CIELAB lightness ``L`` (any shape, numpy float32): the grey
    photo a pretrained RGB network sees."""
    L = np.asarray(L, np.float32)
    fy = (L + 16.0) / 116.0
    y = np.where(fy > 6.0 / 29.0, fy**3, (L / 903.3)).astype(np.float32)
    c = np.where(y <= 0.0031308, 12.92 * y, 1.055 * np.power(np.maximum(y, 0.0031308), 1 / 2.4) - 0.055)
    return np.clip(c, 0.0, 1.0).astype(np.float32)


def pad_to(x, multiple: int):
    """Pad ``N x C x H x W`` at the bottom/right to multiples of ``multiple`` (replicate)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)
