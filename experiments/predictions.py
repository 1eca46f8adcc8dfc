"""Colorizations made elsewhere (DDColor, DeOldify, a model run on a cluster...), scored and
studied beside the built-in methods.

A predictions folder holds one image per photo, matched by file name without its extension: the
photo's path relative to the data folder first (``cats/001.jpg`` <- ``cats/001.png``), else its
bare stem (``001``) when that is unique in the folder. Any size is accepted: a prediction is
re-aligned (bicubic) to the size the photo is evaluated or shown at. Photos without a prediction
are named, never silently dropped.

    python -m experiments.evaluate --data ../shared/data/test --predictions ddcolor=~/ddcolor_out --out results/metrics/test_dd.csv
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from backends import color
from backends.imageio import is_image_file, load_image

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")


class PredictionFolder:
    """A folder of colorizations of one outside method, indexed by file name."""

    def __init__(self, name: str, folder: str | Path):
        if not NAME_RE.match(name):
            raise ValueError(f"--predictions {name}: the name must be 1-40 letters, digits, '_', '-' or '.', starting with a letter")
        self.name = name
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise ValueError(f"--predictions {name}={self.folder}: not a folder")
        self.by_path: dict[str, Path] = {}
        by_stem: dict[str, list[Path]] = {}
        for p in sorted(self.folder.rglob("*")):
            if p.is_file() and is_image_file(p):
                rel = p.relative_to(self.folder).with_suffix("").as_posix()
                self.by_path.setdefault(rel, p)
                by_stem.setdefault(p.stem, []).append(p)
        if not self.by_path:
            raise ValueError(f"--predictions {name}={self.folder}: no images in it")
        self.by_stem = {s: ps[0] for s, ps in by_stem.items() if len(ps) == 1}
        self.checkpoint = None  # what the evaluation cache keys on: nothing, so predictions are always re-read

    def file_for(self, image: str) -> Path | None:
        """The prediction of the photo named ``image`` (relative path in the data folder), if any."""
        rel = Path(image).with_suffix("").as_posix()
        return self.by_path.get(rel) or self.by_stem.get(Path(image).stem)

    def missing(self, images: list[str]) -> list[str]:
        return [i for i in images if self.file_for(i) is None]

    def read(self, image: str, shape: tuple[int, int]) -> np.ndarray:
        """The prediction of ``image`` as RGB uint8, re-aligned (bicubic) to ``shape`` = (h, w)."""
        path = self.file_for(image)
        if path is None:
            raise FileNotFoundError(f"{self.folder}: no prediction for {image}")
        rgb = load_image(path, mode="rgb")
        h, w = shape
        if rgb.shape[:2] != (h, w):
            rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BICUBIC))
        return rgb

    # what experiments.evaluate calls for an outside method (instead of colorize_batch)
    def predict_photos(self, photos, truths: list[np.ndarray]) -> list[np.ndarray]:
        return [self.read(p.name, t.shape[:2]) for p, t in zip(photos, truths)]

    def info(self) -> dict:
        return {"name": self.name, "predictions": str(self.folder), "files": len(self.by_path)}


def parse_predictions(items: list[str]) -> dict[str, PredictionFolder]:
    """``["NAME=DIR", ...]`` -> name -> folder; ``ValueError`` with a one-line reason."""
    import backends

    out: dict[str, PredictionFolder] = {}
    for item in items:
        name, eq, folder = item.partition("=")
        name = name.strip()
        if not eq or not folder.strip():
            raise ValueError(f"--predictions {item!r}: expected NAME=DIR")
        if name in backends.METHODS or name in ("gray", "truth") or name in out:
            raise ValueError(f"--predictions {item!r}: the name {name!r} is taken; choose another")
        out[name] = PredictionFolder(name, folder.strip())
    return out


def study_colorizer(folder: str | Path, photos: list[str], size: int, name: str = "predictions"):
    """A colorizer for ``experiments.study.prepare`` (``colorizers={name: ...}``) that shows a
    predictions folder's images in a study: for each design photo (a path), its prediction is
    re-aligned to the photo, centre-cropped and resized exactly as the real photo is, and joined
    with the real photo's lightness - so real and fake differ only in colour, as with built-in
    methods. Raises ``ValueError`` naming the photos that have no prediction."""
    from experiments.study.prepare import square

    pf = PredictionFolder(name, folder)
    missing = [p for p in photos if pf.file_for(Path(p).name) is None]
    if missing:
        raise ValueError(f"{pf.folder}: no prediction for {len(missing)} study photo(s): {', '.join(Path(m).name for m in missing[:5])}")
    by_real: dict[bytes, np.ndarray] = {}
    for p in photos:
        photo = load_image(p, mode="rgb")
        real = square(photo, size)
        fake = square(pf.read(Path(p).name, photo.shape[:2]), size)
        lab = color.rgb_to_lab(fake)
        lab[..., 0] = color.rgb_to_lab(real)[..., 0]
        by_real[real.tobytes()] = color.lab_to_rgb_uint8(color.map_into_gamut(lab))

    def colorize(real: np.ndarray) -> np.ndarray:
        try:
            return by_real[np.ascontiguousarray(real, np.uint8).tobytes()]
        except KeyError:
            raise ValueError(f"{pf.folder}: this photo is not one of the study photos given to study_colorizer") from None

    return colorize
