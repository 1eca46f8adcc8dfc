"""Safe image loading: any file Pillow reads, normalised to uint8 grey (H x W) or RGB (H x W x 3).

Handles EXIF orientation, palette/alpha/CMYK/16-bit modes and refuses decompression bombs before
decoding. Every failure is an :class:`ImageError` naming the file and the reason.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageError

#: Default upper bound on width x height (about 8k x 5k); override with COLORIZE_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 40_000_000
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".tga"}

ImageFile.LOAD_TRUNCATED_IMAGES = False


def max_pixels() -> int:
    return int(os.environ.get("COLORIZE_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def load_image(source, name: str | None = None, limit: int | None = None, mode: str = "auto") -> np.ndarray:
    """Read an image from a path, bytes or a binary file object.

    ``mode``: ``"auto"`` keeps grey images grey (H x W) and gives RGB (H x W x 3) otherwise;
    ``"rgb"`` always gives RGB. ``name`` is what errors call the input (defaults to the path).
    """
    limit = max_pixels() if limit is None else limit
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or str(path)
        if not path.exists():
            raise ImageError(name, "file not found")
        if path.is_dir():
            raise ImageError(name, "is a folder, not an image")
        data = path.read_bytes()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or "upload"
    else:
        data = source.read()
        name = name or getattr(source, "name", "upload")
    if len(data) == 0:
        raise ImageError(name, "file is empty (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError(name, "not an image Pillow can read") from None
        except Image.DecompressionBombError:
            raise ImageError(name, f"image too large (more than {limit:,} pixels)") from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
            raise ImageError(name, f"cannot open image ({exc})") from None
        w, h = im.size
        if w * h > limit:
            raise ImageError(name, f"image too large: {w}x{h} = {w * h:,} pixels, limit {limit:,} (COLORIZE_MAX_PIXELS)")
        if w == 0 or h == 0:
            raise ImageError(name, "image has no pixels")
        try:
            im.load()
            im = ImageOps.exif_transpose(im)
        except Image.DecompressionBombError:
            raise ImageError(name, f"image too large (more than {limit:,} pixels)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            msg = str(exc)
            reason = "file is truncated or corrupt" if "truncat" in msg.lower() or "broken" in msg.lower() else f"cannot decode image ({msg})"
            raise ImageError(name, reason) from None
    return to_array(im, mode)


def to_array(im: Image.Image, mode: str = "auto") -> np.ndarray:
    """Pillow image of any mode -> uint8 grey or RGB array (alpha dropped, 16-bit scaled)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        if im.mode == "F" and a.max() <= 1.0:
            top = 1.0
        grey = np.clip(np.round(a / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, -1) if mode == "rgb" else grey
    if im.mode in ("1", "L", "LA") or (im.mode in ("P", "PA") and _palette_is_grey(im)):
        grey = np.asarray(im.convert("L"))
        return np.repeat(grey[..., None], 3, -1) if mode == "rgb" else grey
    if im.mode == "CMYK":
        im = im.convert("RGB")
    elif im.mode not in ("RGB",):
        im = im.convert("RGBA").convert("RGB") if "A" in im.mode or im.mode in ("P", "PA") else im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


def _palette_is_grey(im: Image.Image) -> bool:
    pal = im.getpalette() or []
    rgb = np.array(pal[: len(pal) // 3 * 3]).reshape(-1, 3)
    return bool(len(rgb)) and bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


def as_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an API input (grey H x W or RGB H x W x 3/4, uint8) and return uint8 RGB."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0:
            a = np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
        else:
            raise ImageError(name, f"expected a uint8 image, got dtype {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, -1)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, -1)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    elif not (a.ndim == 3 and a.shape[2] == 3):
        raise ImageError(name, f"expected a grey HxW or RGB HxWx3 image, got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(name, "image has no pixels")
    return np.ascontiguousarray(a)


def save_image(rgb: np.ndarray, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
