"""Neural style transfer used for colour (Gatys, Ecker & Bethge, CVPR 2016), in PyTorch.

The grey input is the *content*, a colour photo is the *style*. An image initialised from the
grey content is optimised with L-BFGS so that its VGG19 features match the content's at one
layer (content loss) and its Gram matrices match the reference's at several layers (style
loss, which carries the reference's colour statistics). Only the result's ab is kept: the
shared flow re-joins it with the input's own full-resolution L, so the content's lightness is
exact. There is nothing to train.

Faithful to the paper: Gram matrices ``G = F F^T`` normalised as ``E_l = 1 / (4 N_l^2 M_l^2)
sum (G - A)^2``, equal layer weights ``w_l = 1 / |layers|``, style at relu1_1 ... relu5_1,
content at relu4_2, average pooling instead of max pooling (the paper's choice for better
gradient flow), L-BFGS on the pixels. Differences, for speed and robustness: the optimisation
starts from the content image, not white noise (it only needs to colour it); the content loss is
the *mean* (not the sum) of squared feature differences, so the content/style balance does not
depend on the working size; L-BFGS uses a strong-Wolfe line search and the loss is taken on the
image clipped to [0, 1] (the image that is shown), so every iteration lowers it - fixed-step
L-BFGS overshoots on this quartic loss starting from a grey image (the loss jumped 50 to 1000x in
its first steps, and could end above where it started). Coarse to fine by default: 20 iterations
at half the working size, whose colours start 8 at the full size (2.3x less CPU than 30 at full
size, no loss in AuC on validation photos; see docs/performance.md).

Weights (one resolver, :func:`backends.weights.resolve`, in order): the ``weights`` option, then
``$COLORIZE_VGG19``, then torchvision's ``vgg19-dcbb9e9d.pth`` in the torch hub cache, then the
normalised VGG19 of ``../shared/weights`` which stops at relu3_1. Two file formats are read:

* torchvision ``vgg19`` state dicts (``features.N.weight``): inputs normalised with the ImageNet
  mean/std; the full depth (style relu1_1 ... relu5_1, content relu4_2).
* the "normalised" VGG19 of Gatys / AdaIN (an ``nn.Sequential`` state dict, keys ``0``, ``2``,
  ``5`` ...; layer 0 maps RGB in [0, 1] to Caffe input). The shipped file holds conv1_1 ...
  conv3_1 only, so the backend uses the depth the file gives: style relu1_1, relu2_1, relu3_1
  and content at the deepest available layer, relu3_1 - and says so in :meth:`info`.

Reference photo: the one the caller gives, else one picked automatically from a gallery
(``backends/assets/neural_style_gallery.toml``: 3 colourful photos of each of the 57 labels of
``../shared/data/train`` and ``train_extra``, built by ``python -m experiments.gallery``) - never the
target's own colour photo: a gallery photo whose grey version is (near-)identical to the input's L
is skipped. Two rules (option ``reference_rule``; ``auto`` takes the first that can run):

* ``semantic``: the most similar *subject* - the cosine similarity, centred on the gallery's mean,
  of genuine ImageNet SqueezeNet 1.1 features (fire9, global-average-pooled, 512 values) of the
  grey input and of the *grey* versions of the gallery photos (so the match cannot use colour the
  input lacks). The gallery's features are precomputed in ``neural_style_gallery.npz`` (with the
  weights file they came from; photos or weights that do not match are computed on the fly).
* ``greyscale`` (the fallback without SqueezeNet weights): the cosine similarity of a descriptor of
  the grey image - L histogram plus VGG channel statistics at relu1_1 ... relu3_1 - which matches
  tone and texture, not subject. :meth:`info` and every picked reference say which rule chose it.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tomllib
from PIL import Image

from . import color
from .base import PROJECT_ROOT, Colorizer, config_from_dict, resize_plane, resolve_device
from .errors import BackendUnavailable, ImageError, ReferenceRequired, WeightsUnavailable
from .imageio import is_image_file, load_image
from .registry import MethodInfo, Option, keep_aspect_option
from .weights import resolve

GALLERY_FILE = "backends/assets/neural_style_gallery.toml"
#: Precomputed semantic features of the gallery photos (``python -m experiments.gallery``).
GALLERY_FEATURES = "backends/assets/neural_style_gallery.npz"
REFERENCE_RULES = ("auto", "semantic", "greyscale")
#: Side the grey images are squashed to for SqueezeNet (its ImageNet input size).
SEMANTIC_SIZE = 224
#: scikit-image's bundled colour photos: the gallery of last resort when ../shared is absent.
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")

# --- VGG19 -------------------------------------------------------------------------------------

#: VGG19's feature layers in order: conv name with (in, out) channels, or "pool".
VGG19_LAYOUT: tuple = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), "pool",
    ("conv2_1", 64, 128), ("conv2_2", 128, 128), "pool",
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256), "pool",
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512), "pool",
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512), ("conv5_4", 512, 512),
)  # fmt: skip
CONV_NAMES = [x[0] for x in VGG19_LAYOUT if x != "pool"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layout_keys(fmt: str) -> dict[str, str]:
    """conv name -> state-dict key prefix in the given file format."""
    keys, i = {}, 0
    if fmt == "torchvision":  # features: conv, relu (, pool)
        for item in VGG19_LAYOUT:
            if item == "pool":
                i += 1
            else:
                keys[item[0]] = f"features.{i}"
                i += 2
    else:  # AdaIN's nn.Sequential: 0 = 1x1 input conv, then pad, conv, relu (, pool)
        i = 1
        for item in VGG19_LAYOUT:
            if item == "pool":
                i += 1
            else:
                keys[item[0]] = str(i + 1)
                i += 3
    return keys


def _relu_to_conv(layer: str) -> str:
    if not layer.startswith("relu") or layer.replace("relu", "conv") not in CONV_NAMES:
        raise ValueError(f"unknown VGG19 layer {layer!r}; use relu1_1 ... relu5_4")
    return layer.replace("relu", "conv")


def _build_vgg(fmt: str, depth: int, pool: str):
    """The first ``depth`` convs of VGG19 as an ``nn.Module`` returning named relu outputs."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class VGGFeatures(nn.Module):
        """RGB in [0, 1] (``N x 3 x H x W``) -> ``{"reluX_Y": features}`` for the asked layers."""

        def __init__(self):
            super().__init__()
            self.fmt = fmt
            self.convs = nn.ModuleDict()
            for item in VGG19_LAYOUT:
                if item != "pool" and len(self.convs) < depth:
                    name, cin, cout = item
                    self.convs[name] = nn.Conv2d(cin, cout, 3, padding=0 if fmt == "normalised" else 1)
            if fmt == "normalised":
                self.pre = nn.Conv2d(3, 3, 1)
            else:
                self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
                self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

        def forward(self, x, layers):
            wanted = set(layers)
            out = {}
            x = self.pre(x) if self.fmt == "normalised" else (x - self.mean) / self.std
            for item in VGG19_LAYOUT:
                if not wanted - set(out):
                    break
                if item == "pool":
                    x = F.avg_pool2d(x, 2, ceil_mode=True) if pool == "avg" else F.max_pool2d(x, 2, ceil_mode=True)
                    continue
                name = item[0]
                if self.fmt == "normalised":  # AdaIN / Caffe-style reflection padding
                    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
                x = F.relu(self.convs[name](x))
                if name.replace("conv", "relu") in wanted:
                    out[name.replace("conv", "relu")] = x
            return out

    return VGGFeatures()


def inspect_vgg19(path: str | Path) -> tuple[str, int]:
    """(format, number of conv layers) of a VGG19 weights file, reading only its keys."""
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - old (non-zip) files cannot be memory-mapped
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise WeightsUnavailable(f"{path}: not a readable VGG19 weights file ({type(exc).__name__}); fix: point it at torchvision's vgg19-dcbb9e9d.pth") from None
    if not isinstance(sd, dict):
        raise WeightsUnavailable(f"{path}: not a VGG19 state dict")
    fmt = "torchvision" if "features.0.weight" in sd else "normalised" if "2.weight" in sd and "0.weight" in sd else None
    if fmt is None:
        raise WeightsUnavailable(f"{path}: neither a torchvision vgg19 nor a normalised (AdaIN-layout) VGG19 state dict")
    keys = _layout_keys(fmt)
    depth = 0
    for name in CONV_NAMES:
        if f"{keys[name]}.weight" not in sd:
            break
        depth += 1
    if depth == 0:
        raise WeightsUnavailable(f"{path}: holds no VGG19 conv1_1 weights")
    return fmt, depth


def load_vgg19(path: str | Path, pool: str = "avg"):
    """(module, format, depth) with frozen weights from a torchvision or normalised VGG19 file."""
    import torch

    fmt, depth = inspect_vgg19(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001
        sd = torch.load(path, map_location="cpu", weights_only=True)
    net = _build_vgg(fmt, depth, pool)
    keys = _layout_keys(fmt)
    own = {}
    for name in net.convs:
        own[f"convs.{name}.weight"] = sd[f"{keys[name]}.weight"]
        own[f"convs.{name}.bias"] = sd[f"{keys[name]}.bias"]
    if fmt == "normalised":
        own["pre.weight"], own["pre.bias"] = sd["0.weight"], sd["0.bias"]
    else:
        own["mean"], own["std"] = net.mean, net.std
    net.load_state_dict({k: v.float().clone() for k, v in own.items()})
    net.eval().requires_grad_(False)
    return net, fmt, depth


_INSPECT_CACHE: dict[tuple[str, float], tuple[str, int]] = {}


def _inspect_cached(path: Path) -> tuple[str, int]:
    key = (str(path), path.stat().st_mtime)
    if key not in _INSPECT_CACHE:
        _INSPECT_CACHE[key] = inspect_vgg19(path)
    return _INSPECT_CACHE[key]


def effective_layers(style_layers, content_layer: str, depth: int) -> tuple[list[str], str]:
    """The configured layers the weights reach; content falls back to the deepest available relu."""
    have = set(CONV_NAMES[:depth])
    style = [s for s in style_layers if _relu_to_conv(s) in have]
    if not style:
        raise BackendUnavailable(f"neural_style: the VGG19 weights stop at {CONV_NAMES[depth - 1]}, before every style layer {list(style_layers)}")
    content = content_layer if _relu_to_conv(content_layer) in have else CONV_NAMES[depth - 1].replace("conv", "relu")
    return style, content


# --- losses (Gatys et al. 2016) ----------------------------------------------------------------


def gram(f):
    """``N x C x H x W`` features -> ``N x C x C`` Gram matrices divided by ``C * H * W``
    (so ``1/(4 N^2 M^2) sum (G - A)^2 == sum (gram - gram_ref)^2 / 4``)."""
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def style_loss(feats: dict, targets: dict, layers) -> Any:
    """Gatys' style loss, equal weights ``1/|layers|``."""
    return sum(0.25 * ((gram(feats[k]) - targets[k]) ** 2).sum() for k in layers) / len(layers)


# --- gallery -----------------------------------------------------------------------------------


@dataclass
class GalleryPhoto:
    name: str
    path: str | None
    rgb: np.ndarray  # uint8, longest side <= the working size
    thumb: np.ndarray  # 64 x 64 L via the working size (see _self_thumb), for the "is this the target itself" test
    descriptor: np.ndarray  # unit vector of the active reference rule (semantic or greyscale)


def gallery_paths(entries, limit: int = 200) -> list[Path]:
    """Photos named by ``entries``: list files (``.toml``), folders (recursively) or images.

    Relative paths are relative to the project root. A folder with more than ``limit`` images
    contributes ``limit`` of them, evenly spaced in name order (so every class subfolder shows).
    """
    out: list[Path] = []
    for entry in entries:
        p = Path(entry).expanduser()
        p = p if p.is_absolute() else (PROJECT_ROOT / p).resolve()
        if p.suffix == ".toml" and p.is_file():
            spec = tomllib.loads(p.read_text()).get("gallery", {})
            root = Path(spec.get("root", "."))
            root = root if root.is_absolute() else (PROJECT_ROOT / root).resolve()
            out += [root / f for f in spec.get("photos", []) if (root / f).is_file()]
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if is_image_file(f))
            if len(files) > limit:
                files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
            out += files
        elif is_image_file(p):
            out.append(p)
    return list(dict.fromkeys(out))


def load_semantic_encoder(device: str = "cpu", weights: str | None = None):
    """(genuine ImageNet SqueezeNet 1.1 ``features`` fed grey L, the resolver's result) for the
    semantic reference rule; raises :class:`WeightsUnavailable` (with the fix) without weights."""
    from .encoders import SqueezeNetFeatures

    found = resolve("squeezenet", explicit=weights or None)
    net = SqueezeNetFeatures()  # the original network (valid conv1, ceil-mode pools), as ImageNet-trained
    net.load_pretrained(found.path)
    return net.eval().requires_grad_(False).to(device), found


def weights_identity(path: str | Path) -> str:
    """What stored gallery features depend on: the SqueezeNet weights file's name and size."""
    p = Path(path)
    return f"{p.name}|{p.stat().st_size}"


def semantic_features(net, planes: list[np.ndarray], batch: int = 32) -> np.ndarray:
    """Grey L planes (``H x W`` in [0, 100], any size) -> ``N x 512`` float32: SqueezeNet 1.1's
    fire9 output, global-average-pooled, of each plane squashed to 224 x 224 (bilinear)."""
    import torch

    device = next(net.parameters()).device
    out = []
    for i in range(0, len(planes), batch):
        L = np.stack([resize_plane(np.asarray(p, np.float32), (SEMANTIC_SIZE, SEMANTIC_SIZE)) for p in planes[i : i + batch]])
        with torch.no_grad():
            out.append(net(torch.as_tensor(L, device=device)[:, None]).mean((2, 3)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 512), np.float32)


def gallery_feature_key(path: str | Path) -> str:
    """A gallery photo's key in the features file: its path relative to the project root and its size."""
    p = Path(path).resolve()
    return f"{Path(os.path.relpath(p, PROJECT_ROOT)).as_posix()}|{p.stat().st_size}"


def save_gallery_features(file: str | Path, paths: list[Path], features: np.ndarray, weights_path: str | Path) -> Path:
    """Write the gallery's semantic features (``python -m experiments.gallery`` does)."""
    file = Path(file) if Path(file).is_absolute() else PROJECT_ROOT / file
    file.parent.mkdir(parents=True, exist_ok=True)
    with open(file, "wb") as fh:  # np.savez would append .npz to a name without it
        np.savez_compressed(fh, keys=np.array([gallery_feature_key(p) for p in paths]), features=features.astype(np.float32),
                            weights=np.array(weights_identity(weights_path)), size=np.array(SEMANTIC_SIZE))  # fmt: skip
    return file


def load_gallery_features(file: str | Path, weights_path: str | Path) -> dict[str, np.ndarray]:
    """key -> stored feature vector; empty when the file is missing, unreadable, or made with
    other weights or another input size (then every photo is computed afresh)."""
    if not file:
        return {}
    file = Path(file) if Path(file).is_absolute() else PROJECT_ROOT / file
    try:
        with np.load(file, allow_pickle=False) as z:
            if str(z["weights"]) != weights_identity(weights_path) or int(z["size"]) != SEMANTIC_SIZE:
                return {}
            return dict(zip((str(k) for k in z["keys"]), z["features"].astype(np.float32), strict=True))
    except (OSError, KeyError, ValueError):
        return {}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-12)


def _resize_rgb(rgb: np.ndarray, longest: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = longest / max(h, w)
    if abs(s - 1) < 1e-6:
        return rgb
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC if s > 1 else Image.LANCZOS))


_GALLERY_CACHE: dict[tuple, list[GalleryPhoto]] = {}


def _self_thumb(L: np.ndarray, working_size: int) -> np.ndarray:
    """64 x 64 thumbnail of L taken through the working square, as the input's L is (the shared
    flow resizes it to the working size first - its own shape with ``keep_aspect``, whose thumbnail
    is squashed here like the gallery photo's): a gallery photo and the grey input made from it then
    give the same thumbnail even when the working size is below 64 px."""
    return resize_plane(resize_plane(L, (working_size, working_size)), (64, 64))


# --- the backend -------------------------------------------------------------------------------


class NeuralStyleColorizer(Colorizer):
    """Colour from a reference photo by Gatys style transfer; no training, no checkpoint."""

    name: ClassVar[str] = "neural_style"
    method_info: ClassVar = MethodInfo(
        "neural_style", "Gatys et al. style transfer: colour from a reference photo (optimisation)",
        paper="Gatys, Ecker & Bethge, Image Style Transfer Using Convolutional Neural Networks, CVPR 2016", framework="PyTorch",
        reference="optional", speed="slow",
        options=(Option("iterations", "int", 8, 0, 300, 1, label="neural_style L-BFGS iterations at the full working size, after 20 at half size (more: closer to the reference's colours, slower)"),
                 keep_aspect_option("neural_style: keep the photo's shape (off = squashed to the working square)",
                                    measured="Gatys et al. optimise at the image's own shape. On 100 hold-out validation photos cut to 3:2 / 4:3 "
                                             "shapes, rebalanced AuC -0.0007 [-0.0038, +0.0024] for keeping it: no measurable difference; "
                                             "a 3:2 photo is optimised on 2/3 of the pixels.")),
    )
    uses_reference: ClassVar[bool] = True

    @dataclass
    class Config:
        #: L-BFGS iterations at the working size, each a strong-Wolfe line search of one or more VGG
        #: forward + backward passes; a stage also ends once about 1.25 x its iterations passes are
        #: spent (the time budget).
        iterations: int = 8
        #: Coarse to fine: L-BFGS iterations at ``coarse_scale`` of the working size first (0: none);
        #: their colours start the full-size run. 20 at half size + 8 at full size cost 9 CPU-s
        #: (1 thread, 256 px) against 21 for 30 at full size, with the same or better AuC on
        #: validation photos (docs/performance.md, "neural_style's schedule").
        coarse_iterations: int = 20
        coarse_scale: float = 0.5
        #: Early stop: a stage ends once an iteration lowers the loss by less than this fraction of
        #: it (0: run every iteration).
        tolerance: float = 0.0
        #: beta: weight of the style (Gram) loss.
        style_weight: float = 1e5
        #: alpha: weight of the content loss (mean squared feature difference).
        content_weight: float = 1.0
        #: Gatys' style layers; those past the weights' depth are dropped (and reported).
        style_layers: list[str] = field(default_factory=lambda: ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])
        #: Gatys' content layer; the deepest available layer when the weights stop earlier.
        content_layer: str = "relu4_2"
        #: "avg" (Gatys' choice) or "max" pooling.
        pool: str = "avg"
        #: L-BFGS step size.
        lr: float = 1.0
        #: Working size of the optimised image: its longer side with ``keep_aspect``, else the
        #: square it is squashed to; the reference is resized to the same longer side.
        working_size: int = 256
        #: Optimise a non-square photo at its own shape (longer side ``working_size``, both sides
        #: multiples of 16), as Gatys et al. do - the optimisation runs at any shape; off: squashed
        #: to the working square first (the flow before 2026-12-05). Square photos are unaffected.
        #: No measurable difference in rebalanced AuC (the option's help; docs/training.md,
        #: "neural_style's reference gallery"), on fewer pixels.
        keep_aspect: bool = True
        #: VGG19 weights file; empty: the resolver's order (env, hub cache, ../shared/weights).
        weights: str = ""
        #: Reference gallery: list files (.toml), folders or images, relative to the project root.
        gallery: list[str] = field(default_factory=lambda: [GALLERY_FILE])
        #: Most photos taken from one gallery folder (evenly spaced in name order).
        gallery_limit: int = 200
        #: Use scikit-image's bundled colour photos when the gallery holds none.
        gallery_fallback: bool = True
        #: How the automatic reference is picked: "semantic" (SqueezeNet 1.1 features of the grey
        #: images), "greyscale" (L histogram + VGG statistics) or "auto" (semantic when the
        #: SqueezeNet weights are found, else greyscale).
        reference_rule: str = "auto"
        #: Precomputed gallery features for the semantic rule ("" : compute them all on first use).
        gallery_features: str = GALLERY_FEATURES
        #: A gallery photo whose 64-px grey version differs from the input's L by less than this
        #: mean |dL| is the target itself and is never picked.
        self_match_threshold: float = 1.5
        #: Seed of the (tiny) noise added to the initial image so chroma gradients break symmetry.
        seed: int = 0
        init_noise: float = 0.01
        #: tqdm progress bar on stderr when it is a terminal and no progress callback is set.
        progress_bar: bool = True

    def __init__(self, config: Config | None = None, device: str = "auto"):
        self.config = config if config is not None else self.Config()
        cfg = self.config
        if cfg.pool not in ("avg", "max"):
            raise ValueError(f"neural_style: pool must be 'avg' or 'max', not {cfg.pool!r}")
        if cfg.iterations < 0:
            raise ValueError("neural_style: iterations must be >= 0")
        self.device = resolve_device(device)
        self.working_size = int(cfg.working_size)
        try:
            self.weights = resolve("vgg19", explicit=cfg.weights or None)
            self.vgg, self.weights_format, self.depth = load_vgg19(self.weights.path, cfg.pool)
        except WeightsUnavailable as exc:
            raise BackendUnavailable(f"neural_style: {exc}") from None
        self.vgg = self.vgg.to(self.device)
        self.style_layers, self.content_layer = effective_layers(cfg.style_layers, cfg.content_layer, self.depth)
        #: The automatic reference's rule ("semantic" or "greyscale") and a sentence saying why.
        self.reference_rule, self.reference_rule_note = reference_rule(cfg.reference_rule)
        self._semantic = None  # (SqueezeNet, resolver result), loaded on the first automatic pick
        self._gallery_centre: np.ndarray | None = None
        #: ``callable(i, n)`` called after each L-BFGS iteration (the dashboard's progress bar).
        self.progress: Callable[[int, int], None] | None = None
        #: The reference used by the last :meth:`predict_ab` (name, path, score, rgb).
        self.last_reference: dict | None = None
        self.last_references: list[dict] = []
        #: Loss of the last image at the full working size (the last stage), at the start and
        #: after each L-BFGS iteration: dicts with total, style, content (non-increasing: the line
        #: search accepts only lower losses); ``last_stage_losses``: one such list per stage.
        self.last_losses: list[dict[str, float]] = []
        self.last_stage_losses: list[list[dict[str, float]]] = []

    # -- loading ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, checkpoint: str | Path | None = None, device: str = "auto", **options) -> NeuralStyleColorizer:
        """Ready to run: nothing to load but VGG19. ``checkpoint``, when given, is taken as the
        VGG19 weights file (the ``weights`` option)."""
        if checkpoint:
            options.setdefault("weights", str(checkpoint))
        return cls(config_from_dict(cls.Config, options), device)

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", **overrides):
        return cls.open(path, device, **overrides)

    @classmethod
    def availability(cls) -> tuple[bool, str, str | None]:
        cfg = cls.Config()
        try:
            r = resolve("vgg19", explicit=cfg.weights or None)
            fmt, depth = _inspect_cached(r.path)
            style, content = effective_layers(cfg.style_layers, cfg.content_layer, depth)
        except (WeightsUnavailable, BackendUnavailable) as exc:
            return False, f"neural_style: no usable VGG19 weights: {exc}", None
        note = reference_rule(cfg.reference_rule)[1]
        return True, f"{describe_weights(r.path, r.source, fmt, depth, style, content)}; no training needed; automatic reference by {note}", None

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "checkpoint": None,
            "weights": str(self.weights.path),
            "weights_source": self.weights.source,
            "weights_format": self.weights_format,
            "depth": CONV_NAMES[self.depth - 1].replace("conv", "relu"),
            "style_layers": self.style_layers,
            "content_layer": self.content_layer,
            "summary": describe_weights(self.weights.path, self.weights.source, self.weights_format, self.depth, self.style_layers, self.content_layer),
            "reference_rule": self.reference_rule,
            "reference_rule_note": self.reference_rule_note,
            "config": asdict(self.config),
        }

    # -- the method ---------------------------------------------------------------------------------
    def predict_ab(self, L: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        L = np.asarray(L, dtype=np.float32)
        if L.ndim == 2:
            L = L[None]
        self.last_references = []
        out = []
        for i in range(L.shape[0]):
            if reference is not None:
                ref = {"name": "given reference", "path": None, "score": None, "rgb": np.asarray(reference)}
            else:
                ref = self.pick_reference(L[i])
            self.last_references.append(ref)
            self.last_reference = ref
            out.append(self.transfer(L[i], ref["rgb"]))
        return np.stack(out).astype(np.float32)

    def stages(self, h: int, w: int) -> list[tuple[int, int, int]]:
        """The optimisation schedule for an ``h x w`` working image: ``(height, width, iterations)``
        per stage - first ``coarse_iterations`` at ``coarse_scale`` of the size (when set), then
        ``iterations`` at the full working size."""
        cfg = self.config
        out = []
        if cfg.coarse_iterations > 0 and 0 < cfg.coarse_scale < 1:
            hc, wc = max(16, round(h * cfg.coarse_scale)), max(16, round(w * cfg.coarse_scale))
            if (hc, wc) < (h, w):
                out.append((hc, wc, int(cfg.coarse_iterations)))
        out.append((h, w, int(cfg.iterations)))
        return out

    def transfer(self, L: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
        """One ``H x W`` L plane + a colour reference -> ``2 x H x W`` ab (the optimised image's).

        Coarse to fine when ``coarse_iterations`` > 0: the colours found at the coarse size start
        the full-size run (joined with the full-size L); each stage ends early once an L-BFGS
        iteration lowers the loss by less than ``tolerance`` of it."""
        h, w = L.shape
        stages = self.stages(h, w)
        budget = [it * 5 // 4 for _, _, it in stages]
        self.last_losses, self.last_stage_losses = [], []
        self._evals, self._eval_total = 0, sum(budget)
        bar = self._bar(self._eval_total)
        ab = None
        try:
            for (hs, ws, iters), max_eval in zip(stages, budget):
                Ls = resize_plane(L, (hs, ws))
                start = None if ab is None else np.stack([resize_plane(ab[c], (hs, ws)) for c in (0, 1)])
                ab = self._optimise(Ls, reference_rgb, iters, max_eval, start, bar)
                self.last_stage_losses.append(self.last_losses)
        finally:
            if bar is not None:
                bar.close()
        if self.progress is not None and self._evals < self._eval_total:
            self.progress(self._eval_total, self._eval_total)  # stopped early (flat loss or evaluations spent)
        return ab

    def _optimise(self, L: np.ndarray, reference_rgb: np.ndarray, iterations: int, max_eval: int, start_ab, bar) -> np.ndarray:
        """One L-BFGS run at L's size, from the grey content (plus a little noise) or, when
        ``start_ab`` is given, from that colouring of it."""
        import torch

        cfg = self.config
        h, w = L.shape
        zeros = np.zeros_like(L)
        grey = color.lab_to_rgb(np.stack([L, zeros, zeros], axis=-1))
        ref = _resize_rgb(np.asarray(reference_rgb, dtype=np.uint8), max(h, w))
        content = torch.as_tensor(grey, device=self.device).permute(2, 0, 1)[None].contiguous()
        style = torch.as_tensor(ref.astype(np.float32) / 255.0, device=self.device).permute(2, 0, 1)[None].contiguous()
        with torch.no_grad():
            p = self.vgg(content, [self.content_layer])[self.content_layer]
            a = {k: gram(v) for k, v in self.vgg(style, self.style_layers).items()}
        layers = list(dict.fromkeys(self.style_layers + [self.content_layer]))
        if start_ab is None:
            gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
            noise = torch.randn(content.shape, generator=gen).to(self.device) * cfg.init_noise
            x0 = (content + noise).clamp(0, 1)
        else:
            coloured = color.lab_to_rgb(np.stack([L, start_ab[0], start_ab[1]], axis=-1))
            x0 = torch.as_tensor(coloured, device=self.device).permute(2, 0, 1)[None].contiguous()
        # One L-BFGS run with a strong-Wolfe line search on u, the image being x0 + scale * u
        # clipped to [0, 1] - the image whose ab is returned. The scale only sets L-BFGS's first
        # step (|step|_1 = lr in u) to a mean pixel change of ~0.01 at any working size.
        scale = 0.01 * x0.numel()
        u = torch.zeros_like(x0, requires_grad=True)

        def image():
            return (x0 + scale * u).clamp(0, 1)

        opt = torch.optim.LBFGS([u], lr=cfg.lr, max_iter=iterations, max_eval=max_eval, history_size=50, line_search_fn="strong_wolfe")
        best: dict[int, dict[str, float]] = {}  # iteration -> lowest loss evaluated in it
        lowest = {"total": math.inf, "u": None}
        evals = 0

        class Flat(Exception):
            """The last iteration lowered the loss by less than ``tolerance`` of it."""

        def closure():
            nonlocal evals
            k = int(opt.state[u].get("n_iter", 0))  # 0: the start; k: a trial point of iteration k
            if cfg.tolerance > 0 and k >= 2 and k not in best and k - 2 in best and k - 1 in best:
                before, after = best[k - 2]["total"], best[k - 1]["total"]
                if before - after < cfg.tolerance * abs(before):
                    raise Flat
            if evals >= max_eval:  # the line search may ask for one more than the budget
                raise Flat
            opt.zero_grad(set_to_none=True)
            f = self.vgg(image(), layers)
            ls = style_loss(f, a, self.style_layers)
            lc = ((f[self.content_layer] - p) ** 2).mean() * 0.5
            loss = cfg.style_weight * ls + cfg.content_weight * lc
            loss.backward()
            now = {"total": float(loss.detach()), "style": float(ls.detach()), "content": float(lc.detach())}
            if k not in best or now["total"] < best[k]["total"]:
                best[k] = now
            if now["total"] < lowest["total"]:
                lowest.update(total=now["total"], u=u.detach().clone())
            evals += 1
            self._evals += 1
            if self.progress is not None:
                self.progress(min(self._evals, self._eval_total), self._eval_total)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(style=f"{now['style']:.3g}", content=f"{now['content']:.3g}")
            return loss

        self.last_losses = []  # this stage's (the last stage's: the full working size)
        if iterations > 0:
            with torch.enable_grad():
                try:
                    opt.step(closure)
                except Flat:
                    pass
            with torch.no_grad():
                if lowest["u"] is not None:  # the accepted point: the lowest loss evaluated
                    u.copy_(lowest["u"])
            for k in sorted(best):  # the accepted point of an iteration is its lowest trial, or where it was
                prev = self.last_losses[-1] if self.last_losses else None
                self.last_losses.append(prev if prev is not None and prev["total"] <= best[k]["total"] else best[k])
        with torch.no_grad():
            ab = color.rgb_to_lab_torch(image())[0, 1:]
        return ab.cpu().numpy()

    def _bar(self, n: int):
        if self.progress is not None or not self.config.progress_bar or not sys.stderr.isatty() or n == 0:
            return None
        from tqdm import tqdm

        return tqdm(total=n, desc="neural_style L-BFGS", unit="it", file=sys.stderr, leave=False)

    # -- automatic reference ------------------------------------------------------------------------
    def _descriptor(self, L: np.ndarray) -> np.ndarray:
        """Greyscale descriptor: L histogram + VGG channel means/stds (relu1_1..relu3_1) of the
        grey image at 128 px, each part unit-normalised."""
        import torch

        L128 = resize_plane(L, (128, 128))
        hist = np.histogram(L128, bins=16, range=(0, 100))[0].astype(np.float64)
        parts = [hist / (np.linalg.norm(hist) + 1e-8)]
        grey = color.lab_to_rgb(np.stack([L128, np.zeros_like(L128), np.zeros_like(L128)], axis=-1))
        layers = [s for s in ("relu1_1", "relu2_1", "relu3_1") if _relu_to_conv(s) in CONV_NAMES[: self.depth]]
        with torch.no_grad():
            f = self.vgg(torch.as_tensor(grey, device=self.device).permute(2, 0, 1)[None].contiguous(), layers)
        for k in layers:
            v = torch.cat([f[k].mean((2, 3)), f[k].std((2, 3))], 1)[0].double().cpu().numpy()
            parts.append(v / (np.linalg.norm(v) + 1e-8))
        d = np.concatenate(parts)
        return d / (np.linalg.norm(d) + 1e-12)

    def _semantic_encoder(self):
        if self._semantic is None:
            try:
                self._semantic = load_semantic_encoder(self.device)
            except WeightsUnavailable as exc:  # the weights went away since __init__
                raise BackendUnavailable(f"neural_style: the semantic reference rule needs SqueezeNet 1.1 weights: {exc}") from None
        return self._semantic

    def gallery(self) -> list[GalleryPhoto]:
        """The reference gallery with its descriptors (of :attr:`reference_rule`), computed once per process."""
        cfg = self.config
        if self.reference_rule == "semantic":
            net, found = self._semantic_encoder()
            rule_key: tuple = ("semantic", weights_identity(found.path), cfg.gallery_features)
        else:
            rule_key = ("greyscale", str(self.weights.path), self.weights_format, self.depth, cfg.pool)
        key = (*rule_key, tuple(cfg.gallery), cfg.gallery_limit, cfg.gallery_fallback, cfg.working_size)
        if key in _GALLERY_CACHE:
            photos, self._gallery_centre = _GALLERY_CACHE[key]
            return photos
        items: list[tuple[str, str | None, np.ndarray]] = []
        for p in gallery_paths(cfg.gallery, cfg.gallery_limit):
            try:
                items.append((p.parent.name + "/" + p.name, str(p), load_image(p, mode="rgb")))
            except ImageError:
                continue
        if not items and cfg.gallery_fallback:
            from skimage import data

            items = [(f"skimage.data.{n}", None, getattr(data, n)()) for n in SKIMAGE_PHOTOS]
        planes = [color.rgb_to_lab(rgb)[..., 0] for _, _, rgb in items]
        centre = None
        if self.reference_rule == "semantic":
            # stored features where they match the photo and the weights, the rest computed now
            stored = load_gallery_features(cfg.gallery_features, found.path)
            keys = [gallery_feature_key(path) if path else None for _, path, _ in items]
            todo = [i for i, k in enumerate(keys) if k not in stored]
            fresh = dict(zip(todo, semantic_features(net, [planes[i] for i in todo]), strict=True))
            feats = np.stack([fresh[i] if i in fresh else stored[k] for i, k in enumerate(keys)]) if items else np.zeros((0, 512))
            centre = feats.mean(0) if len(feats) > 1 else np.zeros(feats.shape[1:], np.float32)
            descriptors = list(_unit(feats - centre).astype(np.float64))
        else:
            descriptors = [self._descriptor(Lp) for Lp in planes]
        photos = [
            GalleryPhoto(name, path, _resize_rgb(rgb, min(cfg.working_size, max(rgb.shape[:2]))), _self_thumb(Lp, cfg.working_size), d)
            for (name, path, rgb), Lp, d in zip(items, planes, descriptors, strict=True)
        ]
        _GALLERY_CACHE[key] = (photos, centre)
        self._gallery_centre = centre
        return photos

    def describe(self, L: np.ndarray) -> np.ndarray:
        """The unit descriptor of a grey input ``L`` under :attr:`reference_rule` (after :meth:`gallery`)."""
        if self.reference_rule == "semantic":
            net, _ = self._semantic_encoder()
            return _unit(semantic_features(net, [L])[0] - self._gallery_centre).astype(np.float64)
        return self._descriptor(L)

    def pick_reference(self, L: np.ndarray) -> dict:
        """The gallery photo most similar to ``L`` by :attr:`reference_rule` (its subject, or its
        tones and textures without SqueezeNet weights), never ``L``'s own colour photo."""
        photos = self.gallery()
        if not photos:
            raise ReferenceRequired(
                f"neural_style needs a colour reference photo and its gallery ({', '.join(self.config.gallery)}) holds none; "
                "fix: pass --reference photo.jpg, or set the gallery option to a folder of colour photos"
            )
        d = self.describe(L)
        thumb = _self_thumb(L, self.config.working_size)
        best, best_score, skipped = None, -math.inf, []
        for ph in photos:
            if float(np.abs(ph.thumb - thumb).mean()) < self.config.self_match_threshold:
                skipped.append(ph.name)
                continue
            score = float(ph.descriptor @ d)
            if score > best_score:
                best, best_score = ph, score
        if best is None:
            raise ReferenceRequired(
                f"neural_style: the only gallery photo(s) ({', '.join(skipped)}) are the input itself; "
                "fix: pass --reference photo.jpg or add other colour photos to the gallery"
            )
        return {"name": best.name, "path": best.path, "score": best_score, "rgb": best.rgb, "skipped_as_self": skipped,
                "rule": self.reference_rule}  # fmt: skip


def reference_rule(configured: str) -> tuple[str, str]:
    """("semantic" | "greyscale", a sentence for the UI) for the ``reference_rule`` option."""
    if configured not in REFERENCE_RULES:
        raise ValueError(f"neural_style: reference_rule must be one of {', '.join(REFERENCE_RULES)}, not {configured!r}")
    greyscale = "greyscale similarity (L histogram + VGG statistics: tones and textures, not subject)"
    if configured == "greyscale":
        return "greyscale", greyscale
    try:
        found = resolve("squeezenet")
    except WeightsUnavailable as exc:
        if configured == "semantic":
            raise BackendUnavailable(f"neural_style: reference_rule=semantic needs SqueezeNet 1.1 weights: {exc}") from None
        return "greyscale", f"{greyscale}; the semantic rule needs SqueezeNet 1.1 weights, not found: {exc}"
    return "semantic", f"semantic similarity of the grey images (ImageNet SqueezeNet 1.1 features, {found.path.name})"


def describe_weights(path, source: str, fmt: str, depth: int, style, content) -> str:
    kind = "torchvision VGG19 (ImageNet mean/std input)" if fmt == "torchvision" else "normalised VGG19 (Gatys/AdaIN, Caffe input)"
    deepest = CONV_NAMES[depth - 1].replace("conv", "relu")
    full = "full depth" if depth == len(CONV_NAMES) else f"only up to {deepest}"
    return f"{kind} from {Path(path).name} ({source}), {full}: style {', '.join(style)}, content {content}"


if __name__ == "__main__":
    print("the reference gallery is built by: python -m experiments.gallery --help", file=sys.stderr)
    sys.exit(2)
