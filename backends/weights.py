"""One resolver for every pretrained file the project can use (VGG19, SqueezeNet, LPIPS, FID...).

Order, for each weight name: an explicit path, its environment variable, the torch hub cache
(where torchvision/LPIPS put their downloads on connected machines), a weights folder
(``COLORIZE_WEIGHTS_DIR``, else ``../shared/weights`` beside the project), and last a download
into the torch hub cache - only when ``COLORIZE_DOWNLOAD=1`` (machines here are offline). A
download is checked against the SHA-256 prefix its publisher put in the file name (torch hub's
convention, e.g. ``vgg19-dcbb9e9d.pth``); a mismatch is deleted and reported.
When nothing is found, :class:`WeightsUnavailable` says what was tried and how to fix it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import WeightsUnavailable

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WeightSpec:
    name: str
    env: str
    #: File names looked for in the torch hub cache (``$TORCH_HOME/hub/checkpoints``).
    hub_files: tuple[str, ...] = ()
    #: File names looked for in the weights folder (``COLORIZE_WEIGHTS_DIR`` / ``../shared/weights``).
    folder_files: tuple[str, ...] = ()
    url: str | None = None
    what: str = ""
    #: Leading hex digits of the file's SHA-256 (checked on download); "" = from the file name.
    sha256: str = ""

    @property
    def hash_prefix(self) -> str | None:
        if self.sha256:
            return self.sha256
        m = HASH_IN_NAME.search(self.hub_files[0]) if self.hub_files else None
        return m.group(1) if m else None


#: torch hub's convention: ``name-<first hex digits of the SHA-256>.pth``.
HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")


SPECS: dict[str, WeightSpec] = {
    "vgg19": WeightSpec(
        "vgg19",
        "COLORIZE_VGG19",
        hub_files=("vgg19-dcbb9e9d.pth",),
        folder_files=("vgg19_normalised_to_relu3_1.pth",),
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        what="ImageNet VGG19 (torchvision IMAGENET1K_V1, or the normalised VGG19 of Gatys/AdaIN)",
    ),
    "squeezenet": WeightSpec(
        "squeezenet",
        "COLORIZE_SQUEEZENET",
        hub_files=("squeezenet1_1-b8a52dc0.pth",),
        folder_files=("squeezenet1_1_imagenet_notop.h5",),
        url="https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
        what="ImageNet SqueezeNet 1.1 features",
    ),
    "alexnet": WeightSpec(
        "alexnet",
        "COLORIZE_ALEXNET",
        hub_files=("alexnet-owt-7be5be79.pth",),
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        what="ImageNet AlexNet (LPIPS backbone)",
    ),
    "lpips_alex": WeightSpec(
        "lpips_alex",
        "COLORIZE_LPIPS",
        hub_files=("lpips_alex_v0.1.pth", "alex.pth"),
        folder_files=("lpips_alex_v0.1.pth", "alex.pth"),
        url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
        what="LPIPS v0.1 linear layers for AlexNet",
    ),
    "inception_fid": WeightSpec(
        "inception_fid",
        "COLORIZE_FID_INCEPTION",
        hub_files=("pt_inception-2015-12-05-6726825d.pth",),
        folder_files=("pt_inception-2015-12-05-6726825d.pth",),
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        what="FID Inception-v3 (pytorch-fid)",
    ),
    "resnet50": WeightSpec(
        "resnet50",
        "COLORIZE_RESNET50",
        hub_files=("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"),
        url="https://download.pytorch.org/models/resnet50-0676ba61.pth",
        what="ImageNet ResNet-50 (classification accuracy of colorized photos)",
    ),
    # Zhang et al.'s released colorization networks (richzhang/colorization, colorizers/*.py)
    "zhang_eccv16": WeightSpec(
        "zhang_eccv16",
        "COLORIZE_ZHANG_ECCV16",
        hub_files=("colorization_release_v2-9b330a0b.pth",),
        folder_files=("colorization_release_v2-9b330a0b.pth",),
        url="https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth",
        what="Zhang et al.'s released ECCV16 colorization network (colorization_release_v2, 129 MB)",
    ),
    "zhang_siggraph17": WeightSpec(
        "zhang_siggraph17",
        "COLORIZE_ZHANG_SIGGRAPH17",
        hub_files=("siggraph17-df00044c.pth",),
        folder_files=("siggraph17-df00044c.pth",),
        url="https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth",
        what="Zhang et al.'s released SIGGRAPH17 colorization network (siggraph17, 137 MB)",
    ),
}


@dataclass(frozen=True)
class Resolved:
    name: str
    path: Path
    source: str  # "explicit", "env", "hub cache", "weights folder", "download"


@dataclass
class _Trail:
    tried: list[str] = field(default_factory=list)


def hub_dir() -> Path:
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        return Path(torch_home) / "hub" / "checkpoints"
    xdg = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    return Path(xdg) / "torch" / "hub" / "checkpoints"


def weights_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("COLORIZE_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["COLORIZE_WEIGHTS_DIR"]))
    dirs.append(PROJECT_ROOT.parent / "shared" / "weights")
    return dirs


def resolve(name: str, explicit: str | os.PathLike | None = None, download: bool | None = None) -> Resolved:
    """Find weights ``name``; raise :class:`WeightsUnavailable` with the fix when none exist."""
    if name not in SPECS:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(SPECS)}")
    spec = SPECS[name]
    trail = _Trail()
    if explicit:
        p = Path(explicit).expanduser()
        if p.is_file():
            return Resolved(name, p, "explicit")
        raise WeightsUnavailable(f"{p}: {spec.what} weights file not found (given explicitly)")
    env = os.environ.get(spec.env)
    if env:
        p = Path(env).expanduser()
        if p.is_file():
            return Resolved(name, p, "env")
        trail.tried.append(f"${spec.env}={p} (missing)")
    for f in spec.hub_files:
        p = hub_dir() / f
        if p.is_file():
            return Resolved(name, p, "hub cache")
        trail.tried.append(str(p))
    for d in weights_dirs():
        for f in spec.folder_files:
            p = d / f
            if p.is_file():
                return Resolved(name, p, "weights folder")
            trail.tried.append(str(p))
    if download is None:
        download = os.environ.get("COLORIZE_DOWNLOAD") == "1"
    if download and spec.url:
        try:
            dst = hub_dir() / (spec.hub_files[0] if spec.hub_files else Path(spec.url).name)
            fetch(spec.url, dst, spec.hash_prefix)
            return Resolved(name, dst, "download")
        except Exception as exc:  # noqa: BLE001 - offline machines, a changed file
            trail.tried.append(f"download {spec.url} failed ({type(exc).__name__}: {str(exc)[:160]})")
    raise WeightsUnavailable(
        f"{spec.what} not found (tried {'; '.join(trail.tried) or 'nothing'}). "
        f"Fix: set {spec.env}=/path/to/file, put it in the torch hub cache ({hub_dir()}), "
        f"or on a connected machine set COLORIZE_DOWNLOAD=1 to fetch it once."
    )


def fetch(url: str, dst: Path, hash_prefix: str | None) -> Path:
    """Download ``url`` to ``dst`` (via a temporary file); with ``hash_prefix``, the SHA-256 of the
    download must start with it, else nothing is kept and ``RuntimeError`` says so."""
    import torch

    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(dst), hash_prefix=hash_prefix, progress=False)
    return dst


def sha256_of(path: str | os.PathLike) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def available(name: str) -> tuple[bool, str]:
    try:
        r = resolve(name)
        return True, f"{r.path} ({r.source})"
    except WeightsUnavailable as exc:
        return False, str(exc)
