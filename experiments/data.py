"""Image-folder dataset: ``root/<label>/*.jpg`` (labels optional), yielding Lab tensors.

Training: the shorter side is resized to a random size in [crop, crop * max_scale], then a random
``crop x crop`` window and a random horizontal flip. Evaluation: a deterministic resize (squash)
to ``crop x crop``. Near-grey photos (mean CIELAB chroma under ``min_chroma``) are skipped, since
they teach a colorizer nothing. Works on ``../shared/data`` and on any downloaded folder
(Places365, ImageNet, COCO: nested folders are searched).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from backends import color
from backends.errors import ImageError
from backends.imageio import is_image_file, load_image


@dataclass
class Sample:
    path: Path
    label: int


def scan_folder(root: str | Path, limit_per_class: int | None = None) -> tuple[list[Sample], list[str]]:
    """Files under ``root``; the first folder level names the class (files in root: label -1)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: data folder not found")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    samples: list[Sample] = [Sample(p, -1) for p in sorted(root.iterdir()) if is_image_file(p)]
    for i, c in enumerate(classes):
        files = sorted(p for p in (root / c).rglob("*") if is_image_file(p))
        if limit_per_class:
            files = files[:limit_per_class]
        samples += [Sample(p, i) for p in files]
    if not samples:
        raise FileNotFoundError(f"{root}: no images found")
    return samples, classes


class ImageFolderLab:
    """A torch-style dataset (``len`` / ``getitem``) of ``{"L", "ab", "label", "index"}``.

    ``L``: ``1 x crop x crop`` float32 in [0, 100]; ``ab``: ``2 x crop x crop`` float32.
    """

    def __init__(
        self,
        root: str | Path,
        crop: int = 64,
        train: bool = True,
        max_scale: float = 1.25,
        min_chroma: float = 4.0,
        limit: int | None = None,
        limit_per_class: int | None = None,
        seed: int = 0,
    ):
        self.root = Path(root)
        self.samples, self.classes = scan_folder(self.root, limit_per_class)
        if limit:
            rng = random.Random(seed)
            self.samples = sorted(rng.sample(self.samples, min(limit, len(self.samples))), key=lambda s: str(s.path))
        self.crop, self.train, self.max_scale, self.min_chroma = crop, train, max_scale, min_chroma
        self.skipped: set[int] = set()

    def __len__(self) -> int:
        return len(self.samples)

    def _prepare(self, rgb: np.ndarray) -> np.ndarray:
        c = self.crop
        im = Image.fromarray(rgb)
        if not self.train:
            return np.asarray(im.resize((c, c), Image.BICUBIC))
        w, h = im.size
        short = random.randint(c, max(c, int(c * self.max_scale)))
        scale = short / min(w, h)
        nw, nh = max(c, round(w * scale)), max(c, round(h * scale))
        im = im.resize((nw, nh), Image.BICUBIC)
        x, y = random.randint(0, nw - c), random.randint(0, nh - c)
        im = im.crop((x, y, x + c, y + c))
        if random.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        return np.asarray(im)

    def load_lab(self, index: int) -> np.ndarray | None:
        s = self.samples[index]
        try:
            rgb = load_image(s.path, mode="rgb")
        except ImageError:
            return None
        lab = color.rgb_to_lab(self._prepare(rgb))
        if color.chroma(lab).mean() < self.min_chroma:
            return None
        return lab

    def __getitem__(self, index: int) -> dict:
        import torch

        n = len(self.samples)
        for k in range(n):
            i = (index + k) % n
            if i in self.skipped:
                continue
            lab = self.load_lab(i)
            if lab is not None:
                break
            self.skipped.add(i)
        else:
            raise RuntimeError(f"{self.root}: every photo is near-grey or unreadable")
        t = torch.from_numpy(np.ascontiguousarray(lab.transpose(2, 0, 1)))
        return {"L": t[:1], "ab": t[1:], "label": torch.tensor(self.samples[i].label), "index": torch.tensor(i)}


def fixed_batch(dataset: ImageFolderLab, n: int, seed: int = 0) -> dict:
    """A deterministic batch (for sample grids and validation losses)."""
    import torch

    rng = random.Random(seed)
    idx = sorted(rng.sample(range(len(dataset)), min(n, len(dataset))))
    items = [dataset[i] for i in idx]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


# --- label names for people ---------------------------------------------------------------------

#: ``train_extra`` folders are ``<source>_<label>``: what each source's photos show (../shared/data/README.md).
_SOURCES = {"camvid": "street scene", "coco": "everyday scene", "oxfordpets": "pet", "stanfordcars": "car",
            "flowers17": "flower", "food101": "food", "facemask": "face", "weather": "weather",
            "clothing": "clothing", "kangaroo": "kangaroo", "raccoon": "raccoon", "catsdogsfiltered": "", "dogscats": ""}  # fmt: skip
_WORDS = {"cats": "cat", "dogs": "dog", "with_mask": "with a mask", "without_mask": "without a mask", "english_springer": "English springer"}


def display_label(name: str) -> str:
    """A training label as a person reads it (the dashboard's scene names): ``dogscats_cats`` ->
    ``cat``, ``food101_apple_pie`` -> ``food: apple pie``, ``oxfordpets_oxfordpets`` -> ``pet``,
    ``flowers17_3`` -> ``flower (class 3)``, ``chain_saw`` -> ``chain saw``; unknown names with
    their underscores as spaces."""
    source, _, rest = name.partition("_")
    if rest and source in _SOURCES:
        what = _SOURCES[source]
        if rest == source:
            return what or source
        rest = _WORDS.get(rest, rest.replace("_", " "))
        if rest.isdigit():
            return f"{what} (class {rest})"
        if what == "face":
            return f"face {rest}"  # with / without a mask
        return f"{what}: {rest}" if what else rest
    return _WORDS.get(name, name.replace("_", " "))
