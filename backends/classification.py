"""Zhang, Isola & Efros, *Colorful Image Colorization* (ECCV 2016): colour as classification.

The network sees L and predicts, at 1/4 resolution, a distribution over Q quantised ab bins
(grid of 10, the cells that colours can occupy: ``backends/assets/ab_gamut.npz``, Q = 261 on
the training photos, against Zhang's 313 on ImageNet). Training targets are soft-encoded (the
5 nearest bins, Gaussian sigma 5) and the multinomial cross-entropy is class-rebalanced with
weights from the training set's empirical prior (smoothed with sigma 5, mixed with uniform at
lambda 0.5; eq. 2-4). Inference decodes with the annealed mean at temperature T = 0.38
(eq. 5; T = 1 gives the mean, T -> 0 the mode), adjustable per call of ``backends.load``.

Architecture: Zhang's eight blocks, SHRUNK for 2 CPU cores. The paper's block widths are
64-128-256-512-512-512-512-256 with 2-3 convs each (about 30 GFLOPs at 224 x 224); here they are
``Config.widths`` (default 32-64-128-128 for blocks 1-4, blocks 5-7 at the width of block 4,
block 8 at the width of block 3) with ``Config.convs`` convs per block (default 2): 1.9 M
parameters, 6.6 GFLOPs (3.3 G multiply-adds) per 256 x 256 forward pass, about 0.08 s on 2 CPU
cores. The structure is the paper's: stride-2 convs down to 1/8, blocks 5-6
dilated by 2 at 1/8, block 7 plain, a 4 x 4 stride-2 deconvolution back to 1/4, a 1 x 1 conv to
Q logits; ReLU after every conv and BatchNorm closing each of blocks 1-7.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from . import color
from .base import PROJECT_ROOT, TorchColorizer, check_linear_decay, linear_decay_lr
from .encoders import check_encoder
from .registry import MethodInfo, Option, keep_aspect_option


@dataclass
class Config:
    """The ``[model]`` section of ``experiments/configs/classification.toml``."""

    #: Widths of blocks 1-4 (1, 1/2, 1/4, 1/8 resolution); blocks 5-7 use widths[3], block 8 widths[2].
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    #: 3 x 3 convs per block (the paper: 2 in blocks 1-2, 3 in blocks 3-8).
    convs: int = 2
    #: "scratch" (the paper's blocks 1-8, learned) or "squeezenet": genuine ImageNet SqueezeNet 1.1
    #: features (taps at 1/4, 1/8, 1/16) under a learned decoder back to the paper's 1/4 output, with
    #: a small learned L path at 1/4 for edges (see :func:`build_squeeze_network`).
    encoder: str = "scratch"
    #: Fine-tune the pretrained encoder (default: frozen).
    encoder_trainable: bool = False
    #: Explicit SqueezeNet weights file; empty: the weights resolver.
    squeezenet_weights: str = ""
    #: The SqueezeNet encoder sees L resized by this factor, its taps resampled back to the
    #: decoder's grid (1: as the decoder). Pooled fire9 features of grey val photos classify
    #: their labels (nearest class mean over 57 labels, 400 photos) at 0.605 when the photo is
    #: 160 px, 0.650 at 224 (ImageNet's scale), 0.532 at 320.
    encoder_scale: float = 1.0
    #: Working size: L is resized to this square (with ``keep_aspect``, its longer side to this)
    #: before the network (ab comes back at the photo's size). The paper's 256; the squeezenet runs
    #: use 160, the scale of their training photos (cached at 160 px on the short side), since a
    #: network meets objects at the size it learned them.
    working_size: int = 256
    #: Keep a non-square photo's shape, its longer side at ``working_size`` (not the paper's code,
    #: which squashes it to the working square; ``false``): :func:`backends.base.aspect_kept_shape`
    #: has why and what it measured.
    keep_aspect: bool = True
    #: Decoder widths at 1/16, 1/8 and 1/4 (squeezenet encoder only).
    decoder_widths: list[int] = field(default_factory=lambda: [192, 128, 64])
    #: ab bin set and prior, an ``.npz`` like ``experiments.prior`` writes (Q comes from it);
    #: empty: the shipped backends/assets/ab_gamut.npz. A checkpoint carries its own copy.
    gamut: str = ""
    #: Soft-encoding: k nearest bins, Gaussian of sigma (ab units).
    k: int = 5
    sigma: float = 5.0
    #: Class rebalancing: mix the smoothed prior with uniform at lambda; prior smoothing sigma.
    rebalance: bool = True
    lam: float = 0.5
    prior_sigma: float = 5.0
    #: Annealed-mean temperature (inference).
    temperature: float = 0.38
    #: Inference only, NOT in the paper (0 is the paper's decoding): divide this power of the
    #: class-rebalancing weights back out of the predicted distribution before the annealed mean
    #: (1: the distribution of the colours themselves). Rebalancing moves an uncertain pixel's
    #: probability from the common neutral bins to rare vivid ones - the measured cause of the warm
    #: cast and the false hues on neutral pixels. On 400 validation photos outside the tables' and
    #: the gate's samples (T = 0.38): 0 -> rebalanced AuC 0.829, M3 50.3, false hue 0.241, warm
    #: share 0.208 (truth 0.085); 0.25 -> 0.835, 41.1, 0.133, 0.145; 0.5 -> 0.835, 31.3, 0.059,
    #: 0.069; 0.75 -> 0.830, 22.4, 0.021, 0.023; 1 -> 0.824, 15.6, 0.008, 0.006. The default 0.5
    #: keeps half of the rebalancing's vividness and loses its cast.
    prior_correction: float = 0.5
    #: Adam (the paper: lr 3e-5, betas 0.9 / 0.99, weight decay 1e-3).
    lr: float = 3e-5
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 1e-3
    #: Step decay: the learning rate is multiplied by lr_gamma at each milestone step
    #: (the paper lowered it to 1e-5 and 3e-6 when the loss plateaued).
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 1 / 3
    #: Linear decay to 0 on top of the steps (pix2pix's policy, not the paper's): the stepped rate
    #: for ``decay_start`` steps, then scaled linearly down to 0 over ``decay_steps`` more; 0 = off.
    decay_start: int = 0
    decay_steps: int = 0

    def __post_init__(self):
        if len(self.widths) != 4 or min(self.widths) < 1:
            raise ValueError(f"widths must be 4 positive ints (blocks 1-4), got {self.widths}")
        check_encoder(self.encoder)
        if len(self.decoder_widths) != 3 or min(self.decoder_widths) < 1:
            raise ValueError(f"decoder_widths must be 3 positive ints (1/16, 1/8, 1/4), got {self.decoder_widths}")
        if self.convs < 1:
            raise ValueError(f"convs must be >= 1, got {self.convs}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.prior_correction <= 1.0:
            raise ValueError(f"prior_correction must be in [0, 1], got {self.prior_correction}")
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {self.lam}")
        check_linear_decay(self.decay_start, self.decay_steps)


def lr_at(step: int, base: float, milestones: list[int], gamma: float, decay_start: int = 0, decay_steps: int = 0) -> float:
    """Step-decayed learning rate at ``step`` (0-based count of steps already taken), scaled by the
    optional linear decay to 0 (:func:`backends.base.linear_decay_lr`; ``decay_steps`` 0: off)."""
    return linear_decay_lr(step, base * gamma ** sum(step >= m for m in milestones), decay_start, decay_steps)


def block(cin, cout, n, stride=1, dilation=1, norm=True):
    """Zhang's block: ``n`` 3x3 convs with ReLU (the last one strided), BatchNorm closing it."""
    from torch import nn

    layers = []
    for i in range(n):
        s = stride if i == n - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, s, padding=dilation, dilation=dilation), nn.ReLU(inplace=True)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


def build_squeeze_network(cfg: Config, q: int):
    """The ``encoder = "squeezenet"`` variant: ``N x 1 x H x W`` L in [0, 100] -> ``N x Q x H/4 x W/4``.

    SqueezeNet 1.1 (genuine ImageNet weights, frozen unless ``encoder_trainable``) gives semantic
    features at 1/4 (fire3, 128 ch), 1/8 (fire5, 256) and 1/16 (fire9, 512); a decoder of Zhang's
    blocks (convs + ReLU, BatchNorm closing each; the 1/8 block dilated by 2 as the paper's
    blocks 5-6) climbs back to 1/4 by nearest upsampling, concatenating the taps (hypercolumns,
    as Larsson et al.), plus two learned stride-2 convs on L at 1/4 so edges come from the photo
    itself. Zhang's output is kept: Q logits at 1/4 by a 1x1 conv; bins, soft-encoding,
    rebalancing and the annealed mean are unchanged.
    """
    import torch
    from torch import nn

    from .encoders import SqueezeNetEncoder, Upsample, pad_to

    d16, d8, d4 = cfg.decoder_widths
    c16, c8, c4 = SqueezeNetEncoder.CHANNELS[3], SqueezeNetEncoder.CHANNELS[2], SqueezeNetEncoder.CHANNELS[1]

    class SqueezeColorizationNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = SqueezeNetEncoder(cfg.encoder_trainable, cfg.squeezenet_weights, scale=cfg.encoder_scale)
            self.local = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(inplace=True), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(inplace=True))
            self.b16 = block(c16, d16, 1)
            self.b8 = block(d16 + c8, d8, 2, dilation=2)
            self.b4 = block(d8 + c4 + 32, d4, 2)
            self.up = Upsample(scale_factor=2, mode="nearest")
            self.head = nn.Conv2d(d4, q, 1)

        def train(self, mode: bool = True):
            super().train(mode)
            self.encoder.train(mode)
            return self

        def forward(self, L):
            h, w = L.shape[-2:]
            L, _ = pad_to(L, 16)
            _, f4, f8, f16 = self.encoder(L)
            x = self.b16(f16)
            x = self.b8(torch.cat([self.up(x), f8], 1))
            local = self.local((L - color.L_CENTER) / color.L_SCALE)
            x = self.b4(torch.cat([self.up(x), f4, local], 1))
            return self.head(x)[..., : -(-h // 4), : -(-w // 4)]

    return SqueezeColorizationNet()


def build_network(cfg: Config, q: int):
    """Zhang's colorization network (shrunk): ``N x 1 x H x W`` normalised L -> ``N x Q x H/4 x W/4`` logits."""
    import torch
    from torch import nn

    if cfg.encoder == "squeezenet":
        return build_squeeze_network(cfg, q)

    c1, c2, c3, c4 = cfg.widths
    n = cfg.convs

    class ColorizationNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                block(1, c1, n, stride=2),  # -> 1/2
                block(c1, c2, n, stride=2),  # -> 1/4
                block(c2, c3, n, stride=2),  # -> 1/8
                block(c3, c4, n),
                block(c4, c4, n, dilation=2),
                block(c4, c4, n, dilation=2),
                block(c4, c4, n),
                nn.ConvTranspose2d(c4, c3, 4, stride=2, padding=1),  # -> 1/4
                nn.ReLU(inplace=True),
                block(c3, c3, n - 1, norm=False) if n > 1 else nn.Identity(),
            )
            self.head = nn.Conv2d(c3, q, 1)

        def forward(self, L):
            h, w = L.shape[-2:]
            ph, pw = -h % 8, -w % 8
            x = (L - color.L_CENTER) / color.L_SCALE
            if ph or pw:
                x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
            out = self.head(self.features(x))
            return out[..., : -(-h // 4), : -(-w // 4)]

    return ColorizationNet()


class ClassificationColorizer(TorchColorizer):
    """Zhang et al. 2016: per-pixel classification over quantised ab, annealed-mean decoding."""

    name: ClassVar[str] = "classification"
    method_info: ClassVar = MethodInfo(
        "classification", "Zhang, Isola & Efros 2016: ab as classes (in-gamut bins of 10), class rebalancing, annealed mean",
        paper="Zhang, Isola & Efros, Colorful Image Colorization, ECCV 2016", url="https://arxiv.org/abs/1603.08511", framework="PyTorch",
        options=(
            Option("temperature", "float", 0.38, 0.01, 1.0, 0.01, label="Classification temperature (annealed mean; 0.38 in the paper, lower = more vivid)"),
            Option("prior_correction", "float", 0.5, 0.0, 1.0, 0.05, label="Classification: rebalancing divided out at inference (0 = the paper; higher = less warm cast, duller)"),
            keep_aspect_option("Classification: keep the photo's shape (off = squashed to a square, as the paper's code)", "+0.005"),
        ),
    )
    Config: ClassVar[type] = Config

    def __init__(self, config: Config | None = None, device: str = "auto"):
        super().__init__(config, device)
        path = Path(self.config.gamut) if self.config.gamut else color.ASSET
        gamut = color.load_gamut(path if path.is_absolute() else PROJECT_ROOT / path)
        self._set_gamut(gamut.bins, gamut.prior)
        import torch

        # channels-last convolutions: 16 photos at 256 px in 0.65 s instead of 0.95 s on 2 CPU cores
        self.nets = {"net": build_network(self.config, len(self.bins)).to(memory_format=torch.channels_last)}
        self._make_optim()
        self._finish_init()

    # -- bins, prior and rebalancing weights -----------------------------------------------------
    def _set_gamut(self, bins: np.ndarray, prior: np.ndarray) -> None:
        import torch

        bins = np.asarray(bins, np.float32)
        prior = np.asarray(prior, np.float64)
        w = color.rebalance_weights(bins, prior, self.config.lam, self.config.prior_sigma)
        self.prior = prior
        self.bins = torch.as_tensor(bins, device=self.device)
        self.weights = torch.as_tensor(w, device=self.device)

    def _make_optim(self) -> None:
        import torch

        c = self.config
        params = [p for p in self.nets["net"].parameters() if p.requires_grad]
        self.optims = {"adam": torch.optim.Adam(params, lr=c.lr, betas=tuple(c.betas), weight_decay=c.weight_decay)}

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", **overrides):
        from .encoders import building_from_checkpoint

        # the checkpoint carries its own bins and prior (restored by load_extra_state), so it
        # never depends on the gamut file it was trained with; and its encoder weights
        overrides.setdefault("gamut", "")
        with building_from_checkpoint():
            return super().from_checkpoint(path, device, **overrides)

    @property
    def q(self) -> int:
        return int(self.bins.shape[0])

    def extra_state(self) -> dict:
        import torch

        return {
            "bins": self.bins.detach().cpu(),
            "prior": torch.as_tensor(self.prior),
            "weights": self.weights.detach().cpu(),
        }

    def load_extra_state(self, state: dict) -> None:
        """Restore the checkpoint's own bins and prior (a new Q rebuilds the 1 x 1 head)."""
        from torch import nn

        if "bins" not in state:
            raise KeyError("bins (the checkpoint carries no ab bin set)")
        bins = state["bins"].float().numpy()
        prior = state["prior"].double().numpy() if "prior" in state else np.full(len(bins), 1.0 / len(bins))
        q_old = self.q
        self._set_gamut(bins, prior)
        if self.q != q_old:
            net = self._bare(self.nets["net"])
            net.head = nn.Conv2d(net.head.in_channels, self.q, 1).to(self.device)
            self._make_optim()

    # -- training --------------------------------------------------------------------------------
    def logits(self, L):
        return self.nets["net"](L)

    def train_step(self, batch: dict) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        c = self.config
        for g in self.optims["adam"].param_groups:
            g["lr"] = lr_at(self.step, c.lr, c.lr_milestones, c.lr_gamma, c.decay_start, c.decay_steps)
        L = batch["L"].to(self.device, torch.float32)
        ab = batch["ab"].to(self.device, torch.float32)
        with self.train_autocast():
            logits = self.logits(L)
        # targets at the prediction's 1/4 resolution: area-averaged ab, soft-encoded (float32)
        ab_small = F.adaptive_avg_pool2d(ab, logits.shape[-2:])
        with torch.no_grad():
            z = color.soft_encode(ab_small, self.bins, c.k, c.sigma)
            v = self.weights[z.argmax(1)] if c.rebalance else torch.ones_like(z[:, 0])
        logp = F.log_softmax(logits.float(), dim=1)
        ce = -(z * logp).sum(1)  # N x h x w
        loss = (v * ce).mean()
        self.backward(loss, "adam")
        return {"loss": float(loss.detach()), "loss_cls": float(ce.detach().mean())}

    # -- inference -------------------------------------------------------------------------------
    def predict_probs(self, L: np.ndarray):
        """``N x H x W`` L -> ``N x Q x H/4 x W/4`` torch probabilities."""
        import torch

        self.eval()
        with torch.no_grad(), self.autocast():
            logits = self.logits(self.to_tensor(L)[:, None])
        return torch.softmax(logits.float(), dim=1)

    def predict_ab(self, L: np.ndarray, reference: np.ndarray | None = None, temperature: float | None = None) -> np.ndarray:
        """``N x H x W`` L in [0, 100] -> ``N x 2 x H/4 x W/4`` ab (annealed mean at ``temperature``)."""
        import torch

        T = self.config.temperature if temperature is None else temperature
        self.eval()
        with torch.no_grad():
            with self.autocast():
                logits = self.logits(self.to_tensor(L)[:, None])
            logits = logits.float()
            if self.config.prior_correction:  # q(z) / w(z)^c: the rebalancing taken back out
                logits = logits - self.config.prior_correction * torch.log(self.weights.float()).view(1, -1, 1, 1)
            ab = color.annealed_mean_logits(logits, self.bins, T)
        return ab.cpu().numpy().astype(np.float32)

    def info(self) -> dict:
        return {**super().info(), "Q": self.q, "temperature": self.config.temperature, "encoder": self.config.encoder}
