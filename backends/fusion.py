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

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import color
from .base import TorchColorizer, aspect_kept_shape, check_linear_decay, linear_decay_lr
from .encoders import (
    CAFFE_MEAN_BGR,
    Fire,
    SqueezeNetEncoder,
    SqueezeNetFeatures,
    building_from_checkpoint,
    check_encoder,
    from_checkpoint_active,
)
from .registry import MethodInfo
from .weights import resolve

__all__ = ["CAFFE_MEAN_BGR", "Fire", "FusionColorizer", "FusionConfig", "FusionNet", "SqueezeNetFeatures"]

#: The 16 sorted folder names of ../shared/data/train (train.py passes integer labels only).
SHARED_CLASSES = [
    "buildings", "cassette_player", "chain_saw", "church", "english_springer", "forest",
    "french_horn", "garbage_truck", "gas_pump", "glacier", "golf_ball", "mountain",
    "parachute", "sea", "street", "tench",
]  # fmt: skip

@dataclass
class FusionConfig:
    #: Base widths; the paper's are 64, 128, 256, 512 (here / 4 for 2 CPU cores).
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    #: Global fully connected layers; the paper's are 1024, 512, 256 (here / 4).
    fc: list[int] = field(default_factory=lambda: [256, 128, 64])
    #: "learned" (Iizuka et al.) or "squeezenet" (Deep Koalarization with frozen SqueezeNet 1.1).
    global_branch: str = "learned"
    #: Low-level features: "scratch" (the paper's six convolutions, learned) or "squeezenet" (the
    #: genuine ImageNet SqueezeNet 1.1 up to fire5, at 1/8 like the paper's low-level output).
    encoder: str = "scratch"
    #: Fine-tune the pretrained encoder (default: frozen).
    encoder_trainable: bool = False
    #: Explicit SqueezeNet weights file (.h5 Keras or torchvision .pth); default: the resolver.
    squeezenet_weights: str = ""
    #: The SqueezeNet encoder sees L resized by this factor, its taps resampled back to the
    #: decoder's grid (1: as the decoder; :class:`backends.encoders.SqueezeNetEncoder`).
    encoder_scale: float = 1.0
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
    #: Linear learning-rate decay (pix2pix's policy, not the paper's): ``lr`` for ``decay_start``
    #: steps, then falling linearly to 0 over ``decay_steps`` more; 0 = off (constant).
    decay_start: int = 0
    decay_steps: int = 0


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


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
        self.pretrained_low = cfg.encoder == "squeezenet"
        if self.pretrained_low:
            # SqueezeNet's fire5 (256 channels at 1/8) in place of the six learned convolutions,
            # then one learned 3x3 convolution to the paper's low-level width
            self.encoder = SqueezeNetEncoder(cfg.encoder_trainable, cfg.squeezenet_weights, taps=3, scale=cfg.encoder_scale)
            self.low = conv_bn(SqueezeNetEncoder.CHANNELS[2], w3)
        else:
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
        if self.pretrained_low:
            self.encoder.train(mode)  # stays in inference mode unless fine-tuned
        return self

    def global_input(self, L):
        s = self.global_size
        if L.shape[-2:] == (s, s):
            return L
        return F.interpolate(L, size=(s, s), mode="bilinear", align_corners=False, antialias=True)

    def low_features(self, L):
        """The shared low-level features at 1/8 (H and W multiples of 8, or of 16 with SqueezeNet)."""
        if self.pretrained_low:
            return self.low(self.encoder(L)[2])
        return self.low(self._norm(L))

    def global_features(self, L_global, low_global=None):
        """(256-d fusion vector, the 512-d layer the classifier reads)."""
        if self.learned:
            g = self.global_conv(low_global if low_global is not None else self.low_features(L_global))
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
        low = self.low_features(L)
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
    #: 4 photos of 256 px a forward pass on the CPU: a 16-photo batch 470 -> 409 ms on 2 cores,
    #: 583 -> 442 ms on 1 (koalarization's 339 -> 328)
    cpu_slice_pixels: ClassVar[int | None] = 4 * 256 * 256

    def __init__(self, config: FusionConfig | None = None, device: str = "auto"):
        super().__init__(config, device)
        cfg = self.config
        check_encoder(cfg.encoder)
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
        if cfg.global_branch == "squeezenet" and not from_checkpoint_active():
            found = resolve("squeezenet", explicit=cfg.squeezenet_weights or None)
            net.squeezenet.load_pretrained(found.path)
            self.weights_source = f"{found.path} ({found.source})"
        elif net.pretrained_low and net.encoder.source:
            self.weights_source = net.encoder.source
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
        check_linear_decay(cfg.decay_start, cfg.decay_steps)
        self._finish_init()

    def lr_at(self, step: int) -> float:
        """Learning rate before the ``step``-th update (0-based): constant, or the linear decay."""
        c = self.config
        return linear_decay_lr(step, c.lr, c.decay_start, c.decay_steps)

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", **overrides):
        with building_from_checkpoint():  # the frozen embedding is in the checkpoint itself
            return super().from_checkpoint(path, device, **overrides)

    # -- resolution ---------------------------------------------------------------------------------
    def working_shape(self, h: int, w: int) -> tuple[int, int]:
        """Aspect ratio kept: the longer side becomes ``working_size``, both sides multiples of 8."""
        return aspect_kept_shape(h, w, self.working_size, 8)

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
        sizes = self.slice_sizes(xp.shape[0], *xp.shape[-2:])
        with self.autocast():
            y, logits = (torch.cat(t) for t in zip(*(net(a, b) for a, b in zip(xp.split(sizes), g.split(sizes)))))
        self.last_scene_probs = torch.softmax(logits.float(), 1).cpu().numpy()  # the joint classifier's, free
        y = y.float()[..., : (h + 1) // 2, : (w + 1) // 2]
        return ((y * 2 - 1) * color.AB_SCALE).cpu().numpy()

    def last_scene(self, top: int = 3) -> list[list[tuple[str, float]]] | None:
        """The scene classes of the images of the last ``predict_ab`` call (its joint classifier's
        output, the same as :meth:`predict_scene` gives, without another pass); None before any."""
        p = getattr(self, "last_scene_probs", None)
        return None if p is None else self._top_scenes(p, top)

    def _top_scenes(self, p: np.ndarray, top: int) -> list[list[tuple[str, float]]]:
        names = self.class_names or [str(i) for i in range(p.shape[1])]
        return [[(names[i], float(row[i])) for i in np.argsort(-row)[:top]] for row in p]

    @torch.no_grad()
    def predict_scene(self, L: np.ndarray, top: int = 3) -> list[list[tuple[str, float]]]:
        """Scene classes the global branch sees: for each image, ``top`` (name, probability)."""
        self.eval()
        x = self.to_tensor(np.asarray(L, dtype=np.float32))[:, None]
        bare = self._bare(self.nets["net"])
        _, h = bare.global_features(bare.global_input(x))
        return self._top_scenes(torch.softmax(bare.classifier(h).float(), 1).cpu().numpy(), top)

    # -- training ----------------------------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, float]:
        self.train()
        for g in self.optims["net"].param_groups:
            g["lr"] = self.lr_at(self.step)
        L = batch["L"].to(self.device, torch.float32)
        ab = batch["ab"].to(self.device, torch.float32)
        label = batch["label"].to(self.device).long().view(-1)
        L, _ = self._pad8(L)
        ab, _ = self._pad8(ab)
        target = (F.avg_pool2d(ab, 2) / color.AB_SCALE + 1) / 2  # the output is at H/2
        with self.train_autocast():
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


@dataclass
class KoalarizationConfig(FusionConfig):
    """Deep Koalarization's defaults: the learned encoder of the paper's low-level features, the
    frozen pretrained embedding as the global branch, Adam (the paper's optimiser)."""

    global_branch: str = "squeezenet"
    encoder: str = "scratch"
    optimizer: str = "adam"
    lr: float = 1e-3


class KoalarizationColorizer(FusionColorizer):
    """Deep Koalarization (Baldassarre, Gonzalez Morin & Rodes-Guirao 2017) as its own model: the
    fusion network whose global branch is a frozen ImageNet classifier embedding (SqueezeNet 1.1
    here, Inception-ResNet-v2 in the paper), fused into a learned encoder-decoder; MSE on ab."""

    name: ClassVar[str] = "koalarization"
    method_info: ClassVar = MethodInfo(
        "koalarization", "Deep Koalarization: a learned encoder-decoder fused with a frozen ImageNet embedding (SqueezeNet 1.1)",
        paper="Baldassarre, Gonzalez Morin & Rodes-Guirao, Deep Koalarization, arXiv 2017", url="https://arxiv.org/abs/1712.03400", framework="PyTorch",
    )  # fmt: skip
    Config: ClassVar[type] = KoalarizationConfig
