"""Iizuka, Simo-Serra & Ishikawa, *Let there be Color!* (SIGGRAPH 2016), and the Deep Koalarization variant.

One network, four parts (paper, Table 1 / Fig. 2; every convolution 3x3 with batch normalisation
and ReLU, except the 1x1 fusion and the sigmoid output; fully connected layers with ReLU):

* low-level features, shared by both paths: 6 convolutions, stride 2 at the 1st, 3rd and 5th
  (so H/8 x W/8);
* mid-level features: 2 convolutions at H/8;
* global features: the low-level features of a fixed 224 x 224 copy of the image, 4 convolutions
  (stride 2 at the 1st and 3rd: 7 x 7), fully connected 1024 -> 512 -> 256; the classification
  network branches from the 512-d layer (FC 256 -> number of classes);
* fusion: the 256-d global vector is tiled over every mid-level location, concatenated, and a 1x1
  convolution joins them; then the colorization network: conv, nearest x2, conv, conv, nearest x2,
  conv, conv to 2 channels with a sigmoid -> ab at H/2, upsampled by the shared flow.

The network is fully convolutional on the local path, so it works at any resolution
(:meth:`FusionColorizer.working_shape` keeps the aspect ratio) while the global path always sees a
224 x 224 resize, so global context ("indoors", "sea") biases the colours everywhere.

Output and target: ``y = (ab / AB_SCALE + 1) / 2`` in [0, 1]. Loss (paper eq. 4):
``MSE(y_hat, y) + alpha * CE(class logits, label)`` with ``alpha = 1/300``; photos without a label
(``-1``) are left out of the classification term. The MSE is taken at the output resolution (H/2)
against the area-downsampled target.

Shrunk for 2 CPU cores: widths are the paper's divided by 4 (64/128/256/512 -> 16/32/64/128) and
the fully connected layers 1024/512/256 -> 256/128/64, which keeps every layer and stride of the
paper; a 256 x 256 forward pass is about 1 GMAC. Optimiser: Adadelta as in the paper
(``optimizer = "adadelta"``, lr 1.0); ``"adam"`` is available for short runs.

Deep Koalarization (Baldassarre, Gonzalez Morin & Rodes-Guirao 2017), ``global_branch =
"squeezenet"``: the learned global path is replaced by a frozen ImageNet classifier embedding. The
paper used Inception-ResNet-v2; offline we have genuine ImageNet SqueezeNet 1.1 features (Keras
HDF5 in ``../shared/weights``, or torchvision's ``.pth`` in the hub cache), fed the grey image
replicated to three channels, global-average-pooled (512-d), FC to 256 and fused as above. The
classification head then reads the frozen 512-d embedding, so the class loss cannot move colours
(it only trains a scene-class probe the app can show). The frozen weights stay in the checkpoint,
so a checkpoint rebuilds the model without the weights file.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import color
from .base import TorchColorizer
from .registry import MethodInfo
from .errors import WeightsUnavailable
from .weights import resolve

#: The 16 sorted folder names of ../shared/data/train (train.py passes integer labels only).
SHARED_CLASSES = [
    "buildings", "cassette_player", "chain_saw", "church", "english_springer", "forest",
    "french_horn", "garbage_truck", "gas_pump", "glacier", "golf_ball", "mountain",
    "parachute", "sea", "street", "tench",
]  # fmt: skip

#: Caffe input convention of the Keras SqueezeNet (BGR x 255 minus the ImageNet mean).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
#: torchvision input convention (RGB in [0, 1], normalised).
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)

# Set while a checkpoint rebuilds the model: the frozen SqueezeNet comes from its state dict then.
_FROM_CHECKPOINT: contextvars.ContextVar[bool] = contextvars.ContextVar("fusion_from_checkpoint", default=False)


@dataclass
class FusionConfig:
    #: Base widths; the paper's are 64, 128, 256, 512 (here / 4 for 2 CPU cores).
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    #: Global fully connected layers; the paper's are 1024, 512, 256 (here / 4).
    fc: list[int] = field(default_factory=lambda: [256, 128, 64])
    #: "learned" (Iizuka et al.) or "squeezenet" (Deep Koalarization with frozen SqueezeNet 1.1).
    global_branch: str = "learned"
    #: Explicit SqueezeNet weights file (.h5 Keras or torchvision .pth); default: the resolver.
    squeezenet_weights: str = ""
    #: Side of the fixed square copy the global branch sees (paper: 224; a multiple of 32).
    global_size: int = 224
    #: Longer side of the working (local) resolution; sides are rounded to multiples of 8.
    working_size: int = 256
    num_classes: int = 16
    #: Names of the label indices (saved in checkpoints so the app can name the scene class).
    class_names: list[str] = field(default_factory=lambda: list(SHARED_CLASSES))
    #: Weight of the classification loss (paper: 1/300).
    alpha: float = 1.0 / 300.0
    #: "adadelta" (paper) or "adam".
    optimizer: str = "adadelta"
    #: Learning rate (Adadelta's default 1.0; use ~1e-3 with Adam).
    lr: float = 1.0
    weight_decay: float = 0.0


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


# --- SqueezeNet 1.1 features in torchvision's layout --------------------------------------------


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

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True)]
        for spec in self.FIRES:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True) if spec == "M" else Fire(*spec))
        self.features = nn.Sequential(*layers)
        self.register_buffer("in_scale", torch.full((3,), 255.0))
        self.register_buffer("in_bias", -torch.tensor(CAFFE_MEAN_BGR))

    def forward(self, L):
        zeros = torch.zeros_like(L)
        grey = color.lab_to_rgb_torch(torch.cat([L, zeros, zeros], 1))  # neutral: R = G = B
        x = grey * self.in_scale.view(1, 3, 1, 1) + self.in_bias.view(1, 3, 1, 1)
        return self.features(x)

    # -- loading genuine weights -----------------------------------------------------------------
    def load_pretrained(self, path: Path) -> None:
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
        import h5py

        def kernel_and_bias(group) -> tuple[torch.Tensor, torch.Tensor]:
            arrays: dict[str, np.ndarray] = {}
            group.visititems(lambda n, o: arrays.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
            k = [a for a in arrays.values() if a.ndim == 4]
            b = [a for a in arrays.values() if a.ndim == 1]
            if len(k) != 1 or len(b) != 1:
                raise WeightsUnavailable(f"{path}: layer {group.name} is not one conv kernel and bias")
            return torch.from_numpy(k[0].transpose(3, 2, 0, 1).copy()), torch.from_numpy(b[0].copy())  # HWIO -> OIHW

        def put(conv: nn.Conv2d, group) -> None:
            w, b = kernel_and_bias(group)
            if w.shape != conv.weight.shape or b.shape != conv.bias.shape:
                raise WeightsUnavailable(f"{path}: {group.name} has shape {tuple(w.shape)}, expected {tuple(conv.weight.shape)}")
            with torch.no_grad():
                conv.weight.copy_(w)
                conv.bias.copy_(b)

        try:
            with h5py.File(path, "r") as f:
                put(self.features[0], f["conv1"])
                fires = [m for m in self.features if isinstance(m, Fire)]
                names = [n for n in self.KERAS_NAMES if n]
                for fire, name in zip(fires, names, strict=True):
                    put(fire.squeeze, f[name]["squeeze1x1"])
                    put(fire.expand1x1, f[name]["expand1x1"])
                    put(fire.expand3x3, f[name]["expand3x3"])
        except (OSError, KeyError) as exc:
            raise WeightsUnavailable(f"{path}: not readable as SqueezeNet 1.1 Keras weights ({type(exc).__name__}: {exc})") from None


# --- the colorization network ---------------------------------------------------------------------


class FusionNet(nn.Module):
    """Input: L in [0, 100] (``N x 1 x H x W``, H and W multiples of 8) and optionally the global
    copy (``N x 1 x S x S``; default: L resized to ``global_size``). Output: ``(y, logits)`` with
    ``y = (ab / AB_SCALE + 1) / 2`` at ``H/2 x W/2`` and class logits ``N x num_classes``."""

    def __init__(self, cfg: FusionConfig):
        super().__init__()
        w0, w1, w2, w3 = cfg.widths
        f1, f2, f3 = cfg.fc
        self.global_size = cfg.global_size
        self.learned = cfg.global_branch == "learned"
        self.low = nn.Sequential(
            conv_bn(1, w0, 2), conv_bn(w0, w1), conv_bn(w1, w1, 2), conv_bn(w1, w2), conv_bn(w2, w2, 2), conv_bn(w2, w3)
        )
        self.mid = nn.Sequential(conv_bn(w3, w3), conv_bn(w3, w2))
        if self.learned:
            side = cfg.global_size // 32
            self.global_conv = nn.Sequential(conv_bn(w3, w3, 2), conv_bn(w3, w3), conv_bn(w3, w3, 2), conv_bn(w3, w3))
            self.global_fc1 = nn.Sequential(nn.Linear(w3 * side * side, f1), nn.ReLU(inplace=True), nn.Linear(f1, f2), nn.ReLU(inplace=True))
            self.global_fc2 = nn.Sequential(nn.Linear(f2, f3), nn.ReLU(inplace=True))
            gdim, cdim = f3, f2
        else:
            self.squeezenet = SqueezeNetFeatures()
            self.global_fc2 = nn.Sequential(nn.Linear(512, 256), nn.ReLU(inplace=True))
            gdim, cdim = 256, 512
        self.classifier = nn.Sequential(nn.Linear(cdim, f3), nn.ReLU(inplace=True), nn.Linear(f3, cfg.num_classes))
        self.fusion = nn.Sequential(nn.Conv2d(w2 + gdim, w2, 1), nn.ReLU(inplace=True))
        up = nn.Upsample(scale_factor=2, mode="nearest")
        self.colorization = nn.Sequential(
            conv_bn(w2, w1), up, conv_bn(w1, w0), conv_bn(w0, w0), up, conv_bn(w0, w0 // 2), nn.Conv2d(w0 // 2, 2, 3, 1, 1), nn.Sigmoid()
        )

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.learned:
            self.squeezenet.eval()  # frozen: always inference behaviour
        return self

    def global_input(self, L):
        s = self.global_size
        if L.shape[-2:] == (s, s):
            return L
        return F.interpolate(L, size=(s, s), mode="bilinear", align_corners=False, antialias=True)

    def global_features(self, L_global, low_global=None):
        """(256-d fusion vector, the 512-d layer the classifier reads)."""
        if self.learned:
            g = self.global_conv(low_global if low_global is not None else self.low(self._norm(L_global)))
            h = self.global_fc1(g.flatten(1))
            return self.global_fc2(h), h
        with torch.no_grad():
            h = self.squeezenet(L_global).mean((2, 3))
        return self.global_fc2(h), h

    @staticmethod
    def _norm(L):
        return (L - color.L_CENTER) / color.L_SCALE

    def forward(self, L, L_global=None):
        L_global = self.global_input(L) if L_global is None else L_global
        low = self.low(self._norm(L))
        shared = self.learned and L_global is L  # training at 224 x 224: both paths share one pass
        vec, h = self.global_features(L_global, low if shared else None)
        mid = self.mid(low)
        tiled = vec[:, :, None, None].expand(-1, -1, *mid.shape[-2:])
        y = self.colorization(self.fusion(torch.cat([mid, tiled], 1)))
        return y, self.classifier(h)


# --- the backend ------------------------------------------------------------------------------------


class FusionColorizer(TorchColorizer):
    """Global and local image priors fused (Iizuka et al. 2016); ``global_branch="squeezenet"`` is
    the Deep Koalarization variant with a frozen pretrained embedding."""

    name: ClassVar[str] = "fusion"
    method_info: ClassVar = MethodInfo(
        "fusion", "Iizuka et al. 2016: local + global features fused, with a scene-classification head",
        paper="Iizuka, Simo-Serra & Ishikawa, Let there be Color!, SIGGRAPH 2016", url="https://doi.org/10.1145/2897824.2925974", framework="PyTorch",
    )
    Config: ClassVar[type] = FusionConfig

    def __init__(self, config: FusionConfig | None = None, device: str = "auto"):
        super().__init__(config, device)
        cfg = self.config
        if cfg.global_branch not in ("learned", "squeezenet"):
            raise ValueError(f"global_branch must be 'learned' or 'squeezenet', got {cfg.global_branch!r}")
        if len(cfg.widths) != 4 or len(cfg.fc) != 3:
            raise ValueError(f"widths needs 4 numbers and fc 3, got {cfg.widths} and {cfg.fc}")
        if cfg.global_size % 32:
            raise ValueError(f"global_size must be a multiple of 32, got {cfg.global_size}")
        if len(cfg.class_names) not in (0, cfg.num_classes):
            raise ValueError(f"class_names has {len(cfg.class_names)} names for num_classes = {cfg.num_classes}")
        self.working_size = cfg.working_size
        self.class_names = list(cfg.class_names)
        net = FusionNet(cfg)
        self.weights_source: str | None = None
        if cfg.global_branch == "squeezenet" and not _FROM_CHECKPOINT.get():
            found = resolve("squeezenet", explicit=cfg.squeezenet_weights or None)
            net.squeezenet.load_pretrained(found.path)
            self.weights_source = f"{found.path} ({found.source})"
        elif cfg.global_branch == "squeezenet":
            for p in net.squeezenet.parameters():
                p.requires_grad_(False)
        self.nets["net"] = net
        params = [p for p in net.parameters() if p.requires_grad]
        if cfg.optimizer == "adadelta":
            self.optims["net"] = torch.optim.Adadelta(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adam":
            self.optims["net"] = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            raise ValueError(f"optimizer must be 'adadelta' or 'adam', got {cfg.optimizer!r}")
        self._finish_init()

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", **overrides):
        token = _FROM_CHECKPOINT.set(True)  # the frozen embedding is in the checkpoint itself
        try:
            return super().from_checkpoint(path, device, **overrides)
        finally:
            _FROM_CHECKPOINT.reset(token)

    # -- resolution ---------------------------------------------------------------------------------
    def working_shape(self, h: int, w: int) -> tuple[int, int]:
        """Aspect ratio kept: the longer side becomes ``working_size``, both sides multiples of 8."""
        s = self.working_size / max(h, w)
        return max(8, int(round(h * s / 8)) * 8), max(8, int(round(w * s / 8)) * 8)

    # -- checkpoint extras ---------------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"class_names": list(self.class_names)}

    def load_extra_state(self, state: dict) -> None:
        if state.get("class_names"):
            self.class_names = list(state["class_names"])

    # -- inference ------------------------------------------------------------------------------------
    @staticmethod
    def _pad8(L):
        h, w = L.shape[-2:]
        ph, pw = -h % 8, -w % 8
        return (F.pad(L, (0, pw, 0, ph), mode="replicate") if ph or pw else L), (h, w)

    @torch.no_grad()
    def predict_ab(self, L: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        self.eval()
        x = self.to_tensor(np.asarray(L, dtype=np.float32))[:, None]
        net = self.nets["net"]
        g = self._bare(net).global_input(x)  # the 224 x 224 copy of the whole (unpadded) image
        xp, (h, w) = self._pad8(x)
        with self.autocast():
            y, _ = net(xp, g)
        y = y.float()[..., : (h + 1) // 2, : (w + 1) // 2]
        return ((y * 2 - 1) * color.AB_SCALE).cpu().numpy()

    @torch.no_grad()
    def predict_scene(self, L: np.ndarray, top: int = 3) -> list[list[tuple[str, float]]]:
        """Scene classes the global branch sees: for each image, ``top`` (name, probability)."""
        self.eval()
        x = self.to_tensor(np.asarray(L, dtype=np.float32))[:, None]
        bare = self._bare(self.nets["net"])
        _, h = bare.global_features(bare.global_input(x))
        p = torch.softmax(bare.classifier(h).float(), 1).cpu().numpy()
        names = self.class_names or [str(i) for i in range(p.shape[1])]
        return [[(names[i], float(row[i])) for i in np.argsort(-row)[:top]] for row in p]

    # -- training ----------------------------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, float]:
        self.train()
        L = batch["L"].to(self.device, torch.float32)
        ab = batch["ab"].to(self.device, torch.float32)
        label = batch["label"].to(self.device).long().view(-1)
        L, _ = self._pad8(L)
        ab, _ = self._pad8(ab)
        target = (F.avg_pool2d(ab, 2) / color.AB_SCALE + 1) / 2  # the output is at H/2
        with self.autocast():
            y, logits = self.nets["net"](L)
            loss_mse = F.mse_loss(y.float(), target)
            known = label >= 0
            if known.any():
                loss_cls = F.cross_entropy(logits.float()[known], label[known])
            else:
                loss_cls = torch.zeros((), device=self.device)
            loss = loss_mse + self.config.alpha * loss_cls
        self.backward(loss, "net")
        return {"loss": float(loss.detach()), "loss_mse": float(loss_mse.detach()), "loss_cls": float(loss_cls.detach())}

    def info(self) -> dict:
        d = super().info()
        d.update(global_branch=self.config.global_branch, classes=len(self.class_names), pretrained=self.weights_source)
        return d
