"""pix2pix as a colorizer: Isola, Zhu, Zhou & Efros, *Image-to-Image Translation with Conditional
Adversarial Networks*, CVPR 2017.

* Generator: the paper's U-Net (4x4 convolutions with stride 2; LeakyReLU 0.2 / BatchNorm in the
  encoder, ReLU / BatchNorm / transposed convolutions in the decoder, skip connections between
  mirrored layers, no norm on the outermost and innermost encoder layers, tanh output, dropout 0.5
  in the first decoder blocks after the bottleneck as the only noise source).
  Input: L normalised as ``(L - L_CENTER) / L_SCALE`` (``N x 1 x H x W``); output: ``ab / AB_SCALE``
  in [-1, 1] (``N x 2 x H x W``), both from :mod:`backends.color`.
* Discriminator: the 70x70 PatchGAN (``n_layers_d = 3``: three 4x4 stride-2 convolutions, one 4x4
  stride-1, then a 4x4 stride-1 convolution to one logit per patch). It is conditional: it sees
  ``concat(L_norm, ab_norm)`` (3 channels), real ab or generated ab.
* Loss (paper eq. 4): ``G* = arg min_G max_D L_cGAN(G, D) + lambda L1(G)`` with ``lambda = 100``,
  the L1 taken on the normalised ab (the paper's images live in [-1, 1] too). ``gan_mode =
  "vanilla"`` is the paper's cross-entropy GAN loss (with the non-saturating ``log D(x, G(x))``
  generator objective); ``"lsgan"`` (least squares, the repository's CycleGAN default) is an option.
  The discriminator's objective is halved, as in the paper ("we divide the objective by 2 while
  optimizing D, which slows down the rate at which D learns relative to G").
* Optimiser: Adam, lr 2e-4, betas (0.5, 0.999), one D step then one G step per batch; weights
  initialised from N(0, 0.02) (BatchNorm scales from N(1, 0.02)), as in the paper's code.

Deviations, all for the 2 shared CPU cores and the working sizes of this project (say so in
``experiments/configs/gan.toml`` too):

* Narrower networks: ``ngf = ndf = 32`` instead of 64, and ``n_down = 6`` levels instead of the
  paper's 8 (``unet_256``): training crops are 64-128 px, and 8 levels would shrink them below
  1 x 1. The skip structure, the 4x4 kernels and the 70x70 PatchGAN receptive field are kept.
  A forward pass of the generator at 256 x 256 costs about 2.5 GFLOPs (see ``generator_flops``).
* Input sizes must be divisible by ``2 ** n_down`` (64 by default): ``train_step`` refuses other
  crops; ``predict_ab`` pads by reflection to the next multiple and crops back.
* Test time: the paper keeps dropout on (and BatchNorm on batch statistics) at test time. Here the
  default is ``test_dropout = false``: BatchNorm uses its running statistics and dropout is off,
  so colorizing the same photo twice gives the same result. ``test_dropout = true`` restores the
  paper's stochastic outputs. The paper's other half, BatchNorm on each photo's own statistics
  (batch size 1), was measured on the shipped model and not adopted: 0.789 rebalanced AuC on the
  ship gate's 200 validation photos against 0.829 with the running statistics.
* Options beyond the paper, all off by default: one-sided label smoothing (``real_label < 1``);
  ``mirror_average`` at inference (the photo and its mirror colorized, the two averaged: on the
  shipped model +0.0036 rebalanced AuC on the gate's 200 validation photos and +0.0028 on 400
  others, colourfulness 0.90 -> 0.85 of the truth's; the other methods gain 0.0004-0.0010 from the
  same averaging - the gan's blotches are what changes under mirroring). Not the default: the
  shipped gan stays pix2pix's single forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from . import color
from .base import TorchColorizer, linear_decay_lr
from .encoders import building_from_checkpoint, check_encoder
from .registry import MethodInfo, Option, keep_aspect_option

GAN_MODES = ("vanilla", "lsgan")


# --- networks -----------------------------------------------------------------------------------


def unet_channels(ngf: int, n_down: int, max_mult: int = 8) -> list[int]:
    """Encoder widths: ``ngf * min(2 ** i, max_mult)`` for level ``i`` (the paper's 64..512)."""
    return [ngf * min(2**i, max_mult) for i in range(n_down)]


class UNetGenerator(nn.Module):
    """pix2pix U-Net: ``N x 1 x H x W`` normalised L -> ``N x 2 x H x W`` ab / AB_SCALE (tanh).

    ``H`` and ``W`` must be divisible by ``2 ** n_down``. Encoder level ``i`` halves the size with a
    4x4 stride-2 convolution; decoder level ``i`` doubles it with a 4x4 stride-2 transposed
    convolution and sees the concatenation of the skip from encoder level ``i`` and the level below.
    """

    def __init__(self, ngf: int = 32, n_down: int = 6, max_mult: int = 8, dropout: float = 0.5, dropout_blocks: int = 3):
        super().__init__()
        ch = unet_channels(ngf, n_down, max_mult)
        self.n_down = n_down
        # encoder: down[0] = conv; down[i] = LReLU, conv, BN (no BN on the innermost, as in the paper)
        self.down = nn.ModuleList()
        for i in range(n_down):
            cin = 1 if i == 0 else ch[i - 1]
            bn = 0 < i < n_down - 1
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(cin, ch[i], 4, 2, 1, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm2d(ch[i]))
            self.down.append(nn.Sequential(*layers))
        # decoder, from the bottleneck up: up[j] undoes down[n_down - 1 - j]
        self.up = nn.ModuleList()
        for j in range(n_down):
            i = n_down - 1 - j
            cin = ch[i] if j == 0 else 2 * ch[i]
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(cin, 2, 4, 2, 1), nn.Tanh()))
                continue
            layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, ch[i - 1], 4, 2, 1, bias=False), nn.BatchNorm2d(ch[i - 1])]
            # the paper's only noise: dropout in the decoder blocks just above the bottleneck
            # (unet_256: the three 512-wide ones after the innermost)
            if dropout > 0 and 1 <= j <= dropout_blocks:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.up[0](skips[-1])
        for j in range(1, self.n_down):
            x = self.up[j](torch.cat([skips[self.n_down - 1 - j], x], 1))
        return x


class SqueezeUNetGenerator(nn.Module):
    """The ``encoder = "squeezenet"`` generator: a U-Net whose encoder is the genuine ImageNet
    SqueezeNet 1.1 (frozen unless ``trainable``; taps at 1/2, 1/4, 1/8, 1/16) beside a small learned
    L path at full and half resolution for edges, and whose decoder doubles the size by
    nearest-neighbour upsampling + 3x3 convolution (resize-convolution, Odena et al. 2016) instead
    of transposed convolutions, which leave the checkerboard of their uneven overlap. Decoder
    blocks: ReLU, conv, BatchNorm (the paper's order), dropout 0.5 in the first ``dropout_blocks``
    above the bottleneck (the paper's noise), skip concatenation as in the U-Net, tanh output.

    Input: normalised L ``(L - L_CENTER) / L_SCALE`` (``N x 1 x H x W``, H and W multiples of 16);
    output ``ab / AB_SCALE`` (``N x 2 x H x W``).
    """

    def __init__(self, ngf: int = 16, dropout: float = 0.5, dropout_blocks: int = 2, trainable: bool = False, weights: str | None = None,
                 upsample: str = "nearest", encoder_scale: float = 1.0):  # fmt: skip
        super().__init__()
        from .encoders import SqueezeNetEncoder, Upsample

        self.encoder = SqueezeNetEncoder(trainable, weights, scale=encoder_scale)
        c2, c4, c8, c16 = SqueezeNetEncoder.CHANNELS
        self.local1 = nn.Sequential(nn.Conv2d(1, ngf // 2, 3, 1, 1), nn.LeakyReLU(0.2, True))  # full resolution
        self.local2 = nn.Sequential(nn.Conv2d(ngf // 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.LeakyReLU(0.2, True))
        widths = [8 * ngf, 6 * ngf, 4 * ngf, 2 * ngf, ngf]  # out widths at 1/16, 1/8, 1/4, 1/2, 1
        ins = [c16, widths[0] + c8, widths[1] + c4, widths[2] + c2 + ngf, widths[3] + ngf // 2]
        self.blocks = nn.ModuleList()
        for j, (cin, cout) in enumerate(zip(ins, widths)):
            layers: list[nn.Module] = [nn.ReLU(True), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)]
            if dropout > 0 and j < dropout_blocks:
                layers.append(nn.Dropout(dropout))
            self.blocks.append(nn.Sequential(*layers))
        self.out = nn.Sequential(nn.ReLU(True), nn.Conv2d(ngf, 2, 3, 1, 1), nn.Tanh())
        # nearest copies each pixel 2x2, which leaves power at the 2-px period in the output's ab
        # spectrum (measured: checker 2 px 3.0 against the truth's 1.16); bilinear does not
        self.up = Upsample(scale_factor=2, mode=upsample, **({} if upsample == "nearest" else {"align_corners": False}))

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L = x * color.L_SCALE + color.L_CENTER
        f2, f4, f8, f16 = self.encoder(L)
        l1 = self.local1(x)
        l2 = self.local2(l1)
        y = self.blocks[0](f16)
        y = self.blocks[1](torch.cat([self.up(y), f8], 1))
        y = self.blocks[2](torch.cat([self.up(y), f4], 1))
        y = self.blocks[3](torch.cat([self.up(y), f2, l2], 1))
        y = self.blocks[4](torch.cat([self.up(y), l1], 1))
        return self.out(y)


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``N x 3 x H x W`` (L_norm, ab_norm) -> ``N x 1 x h x w`` logits, one per patch.

    ``n_layers = 3`` gives the paper's 70x70 receptive field (see :func:`receptive_field`).
    """

    def __init__(self, ndf: int = 32, n_layers: int = 3, in_ch: int = 3, max_mult: int = 8):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = ndf
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            c_out = ndf * min(2**n, max_mult)
            layers += [nn.Conv2d(c, c_out, 4, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(net: nn.Module) -> int:
    """Receptive field (pixels, one side) of one output unit of a plain chain of convolutions."""
    rf = 1
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    for m in reversed(convs):
        rf = (rf - 1) * m.stride[0] + m.kernel_size[0]
    return rf


def init_weights(net: nn.Module, gain: float = 0.02) -> None:
    """The pix2pix code's 'normal' init: conv weights N(0, gain), BatchNorm scale N(1, gain)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def generator_flops(net: UNetGenerator, size: int = 256) -> float:
    """Multiply-adds x 2 of one forward pass at ``size x size`` (convolutions only)."""
    flops = 0.0
    hooks = []

    def hook(m, inp, out):
        nonlocal flops
        k = m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, nn.ConvTranspose2d):  # every input pixel scatters a k x k x c_out patch
            flops += 2.0 * inp[0].numel() / inp[0].shape[0] * k * m.out_channels
        else:
            flops += 2.0 * out.numel() / out.shape[0] * k * m.in_channels

    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            hooks.append(m.register_forward_hook(hook))
    was_training = net.training
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 1, size, size, device=next(net.parameters()).device))
    net.train(was_training)
    for h in hooks:
        h.remove()
    return flops


# --- the method -------------------------------------------------------------------------------------


class GANColorizer(TorchColorizer):
    """pix2pix colorizer: U-Net generator L -> ab, conditional 70x70 PatchGAN, cGAN + 100 L1."""

    name: ClassVar[str] = "gan"
    method_info: ClassVar = MethodInfo(
        "gan", "pix2pix (Isola et al. 2017): U-Net generator with a 70x70 PatchGAN",
        paper="Isola, Zhu, Zhou & Efros, Image-to-Image Translation with Conditional Adversarial Networks, CVPR 2017",
        url="https://arxiv.org/abs/1611.07004", framework="PyTorch",
        options=(
            Option("mirror_average", "bool", False, label="gan: average with the mirrored photo's colours (not in the paper; calms blotches)",
                   help="Colorizes the photo and its left-right mirror and averages the two; 2x the time. On the shipped "
                        "model: rebalanced AuC +0.0036 (gate, 200 validation photos), +0.0028 (400 others), colourfulness 0.90 -> 0.85 of the truth's."),  # fmt: skip
            keep_aspect_option("gan: keep the photo's shape (off = squashed to a square, as the paper's code)", "+0.002"),
        ),
    )
    #: the U-Net's skips at 4 photos of 256 px a pass stay in the cache: a 16-photo batch on 2 cores
    #: 366 -> 276 ms (1 at a time: 509, its fixed costs dominate)
    cpu_slice_pixels: ClassVar[int | None] = 4 * 256 * 256

    @dataclass
    class Config:
        #: Generator width of the first level (paper 64; 32 here for 2 CPU cores).
        ngf: int = 32
        #: U-Net depth: number of stride-2 levels (paper 8 at 256 px; 6 here). Crops must be divisible by 2 ** n_down.
        n_down: int = 6
        #: Discriminator width (paper 64; 32 here, matched to the generator).
        ndf: int = 32
        #: PatchGAN stride-2 layers; 3 -> the paper's 70x70 receptive field.
        n_layers_d: int = 3
        #: Widths stop growing at this multiple of ngf / ndf (paper 8: 64 -> 512).
        max_mult: int = 8
        #: Dropout in the decoder blocks above the bottleneck (the paper's noise z).
        dropout: float = 0.5
        dropout_blocks: int = 3
        #: "scratch" (the paper's U-Net, learned) or "squeezenet" (:class:`SqueezeUNetGenerator`:
        #: genuine ImageNet SqueezeNet 1.1 encoder, resize-convolution decoder; n_down is then 4).
        encoder: str = "scratch"
        #: Fine-tune the pretrained encoder (default: frozen).
        encoder_trainable: bool = False
        #: Decoder width at full resolution with the squeezenet encoder (x2, x4, x6, x8 further down).
        ngf_decoder: int = 16
        #: Upsampling of the resize-convolution decoder (squeezenet encoder): "nearest" or "bilinear".
        upsample: str = "nearest"
        #: Working size (divisible by 2 ** n_down; with ``keep_aspect`` the longer side, the other
        #: padded by reflection): the paper's 256; the squeezenet run uses
        #: 160, the scale of its training photos (cached at 160 px on the short side).
        working_size: int = 256
        #: Keep a non-square photo's shape, its longer side at ``working_size`` (not the paper's code,
        #: which squashes it to the working square; ``false``): :func:`backends.base.aspect_kept_shape`
        #: has why and what it measured.
        keep_aspect: bool = True
        #: Explicit SqueezeNet weights file; empty: the weights resolver.
        squeezenet_weights: str = ""
        #: The SqueezeNet encoder sees L resized by this factor, its taps resampled back to the
        #: decoder's grid (1: as the decoder; :class:`backends.encoders.SqueezeNetEncoder`).
        encoder_scale: float = 1.0
        #: Keep dropout on when colorizing (the paper does; default off, for deterministic output).
        test_dropout: bool = False
        #: Colorize the photo and its left-right mirror and average the two ab predictions (not in
        #: the paper; off by default). The gan's blotches change under mirroring, so they average out.
        mirror_average: bool = False
        #: Weight of the L1 term (paper 100).
        lambda_l1: float = 100.0
        #: "vanilla" (paper: cross-entropy) or "lsgan" (least squares).
        gan_mode: str = "vanilla"
        #: Target for real pairs in D's loss; < 1 is one-sided label smoothing (off by default).
        real_label: float = 1.0
        lr: float = 2e-4
        #: pix2pix's "linear" policy: lr constant for ``decay_start`` steps, then falling linearly
        #: to 0 over ``decay_steps`` more (the paper: 100 epochs constant + 100 decaying); 0 = off.
        decay_start: int = 0
        decay_steps: int = 0
        beta1: float = 0.5
        beta2: float = 0.999
        init_gain: float = 0.02

    def __init__(self, config: GANColorizer.Config | None = None, device: str = "auto"):
        super().__init__(config, device)
        c = self.config
        if c.gan_mode not in GAN_MODES:
            raise ValueError(f"gan_mode must be one of {', '.join(GAN_MODES)}, got {c.gan_mode!r}")
        check_encoder(c.encoder)
        if c.encoder == "squeezenet":
            c.n_down = 4  # the encoder's deepest tap is at 1/16: inputs are padded to multiples of 16
        if not 1 <= c.n_down <= 8:
            raise ValueError(f"n_down must be in 1..8, got {c.n_down}")
        if c.n_layers_d < 1:
            raise ValueError(f"n_layers_d must be >= 1, got {c.n_layers_d}")
        if self.working_size % 2**c.n_down:
            raise ValueError(f"working size {self.working_size} is not divisible by 2 ** n_down = {2**c.n_down}")
        if c.encoder == "squeezenet":
            if c.upsample not in ("nearest", "bilinear"):
                raise ValueError(f"upsample must be 'nearest' or 'bilinear', got {c.upsample!r}")
            G = SqueezeUNetGenerator(c.ngf_decoder, c.dropout, c.dropout_blocks, c.encoder_trainable, c.squeezenet_weights, c.upsample,
                                      c.encoder_scale)
            init_weights(G.blocks, c.init_gain)
            init_weights(G.out, c.init_gain)
            init_weights(G.local1, c.init_gain)
            init_weights(G.local2, c.init_gain)
        else:
            G = UNetGenerator(c.ngf, c.n_down, c.max_mult, c.dropout, c.dropout_blocks)
            init_weights(G, c.init_gain)
        D = PatchDiscriminator(c.ndf, c.n_layers_d, in_ch=3, max_mult=c.max_mult)
        init_weights(D, c.init_gain)
        self.nets = {"G": G, "D": D}
        betas = (c.beta1, c.beta2)
        self.optims = {
            "G": torch.optim.Adam([p for p in G.parameters() if p.requires_grad], lr=c.lr, betas=betas),
            "D": torch.optim.Adam(D.parameters(), lr=c.lr, betas=betas),
        }
        self._finish_init()

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", **overrides):
        with building_from_checkpoint():  # a pretrained encoder's weights are in the checkpoint
            return super().from_checkpoint(path, device, **overrides)

    # -- losses ------------------------------------------------------------------------------------
    def gan_loss(self, logits: torch.Tensor, real: bool, target_real: float = 1.0) -> torch.Tensor:
        """Loss of D's patch logits against "real" (``target_real``) or "fake" (0)."""
        target = torch.full_like(logits, target_real if real else 0.0)
        if self.config.gan_mode == "lsgan":
            return nn.functional.mse_loss(logits.float(), target.float())
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), target.float())

    def _check_size(self, h: int, w: int) -> None:
        m = 2**self.config.n_down
        if h % m or w % m:
            raise ValueError(
                f"gan: crop {h}x{w} is not divisible by 2 ** n_down = {m}; use data.crop divisible by {m} or a smaller model.n_down"
            )

    def lr_at(self, step: int) -> float:
        """Learning rate before the ``step``-th update (0-based), pix2pix's linear decay policy."""
        c = self.config
        return linear_decay_lr(step, c.lr, c.decay_start, c.decay_steps)

    def train_step(self, batch: dict) -> dict[str, float]:
        c = self.config
        G, D = self.nets["G"], self.nets["D"]
        for opt in self.optims.values():
            for g in opt.param_groups:
                g["lr"] = self.lr_at(self.step)
        L = batch["L"].to(self.device, torch.float32)
        ab = batch["ab"].to(self.device, torch.float32)
        self._check_size(*L.shape[-2:])
        L_n = (L - color.L_CENTER) / color.L_SCALE
        ab_n = ab / color.AB_SCALE
        real_pair = torch.cat([L_n, ab_n], 1)

        with self.train_autocast():
            fake_ab = G(L_n)
        fake_pair = torch.cat([L_n, fake_ab.float()], 1)

        # D step: real pairs vs generated pairs (G's output detached), objective halved as in the paper
        with self.train_autocast():
            d_real = D(real_pair)
            d_fake = D(fake_pair.detach())
            loss_d = 0.5 * (self.gan_loss(d_real, True, c.real_label) + self.gan_loss(d_fake, False))
        self.backward(loss_d, "D")

        # G step: fool the updated D (non-saturating: target "real") + lambda * L1 to the true ab.
        # D's weights are frozen here so its gradients are not computed; under DDP (where every
        # parameter must get a gradient each backward) they are computed and then discarded.
        freeze = not hasattr(D, "module")
        if freeze:
            D.requires_grad_(False)
        with self.train_autocast():
            d_fake_g = D(fake_pair)
            loss_g = self.gan_loss(d_fake_g, True)
            loss_l1 = c.lambda_l1 * (fake_ab.float() - ab_n).abs().mean()
            loss = loss_g + loss_l1
        self.backward(loss, "G")
        if freeze:
            D.requires_grad_(True)

        def prob(x):
            x = x.detach().float()
            return torch.sigmoid(x).mean().item() if c.gan_mode == "vanilla" else x.mean().item()

        return {
            "loss": loss.item(),
            "loss_g": loss_g.item(),
            "loss_l1": loss_l1.item(),
            "loss_d": loss_d.item(),
            "d_real": prob(d_real),
            "d_fake": prob(d_fake),
        }

    # -- inference -----------------------------------------------------------------------------------
    def predict_ab(self, L: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """``N x H x W`` L in [0, 100] -> ``N x 2 x H x W`` ab (Lab units).

        Any size works: it is padded by reflection to a multiple of ``2 ** n_down`` and cropped back.
        With ``mirror_average``, the mean of the photo's ab and its mirror's, mirrored back.
        """
        ab = self._predict_ab(L)
        if self.config.mirror_average:
            ab = (ab + self._predict_ab(np.ascontiguousarray(np.asarray(L)[..., ::-1]))[..., ::-1]) / 2
        return ab

    @torch.no_grad()
    def _predict_ab(self, L: np.ndarray) -> np.ndarray:
        G = self.nets["G"]
        was_training = G.training
        if was_training:  # a walk over every submodule: only when not in eval mode already
            G.eval()
        dropouts = [m for m in G.modules() if isinstance(m, nn.Dropout)] if self.config.test_dropout else []
        for m in dropouts:
            m.train()
        try:
            x = (self.to_tensor(np.asarray(L, np.float32))[:, None] - color.L_CENTER) / color.L_SCALE
            h, w = x.shape[-2:]
            m = 2**self.config.n_down
            ph, pw = -h % m, -w % m
            if ph or pw:
                mode = "reflect" if ph < h and pw < w else "replicate"
                x = nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
            with self.autocast():
                ab = torch.cat([G(part) for part in x.split(self.slice_sizes(*x.shape[:1], *x.shape[-2:]))])
            ab = ab[..., :h, :w].float() * color.AB_SCALE
        finally:
            if was_training:
                G.train(True)
            else:
                for m in dropouts:
                    m.eval()
        return ab.cpu().numpy()
