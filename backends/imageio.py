"""Safe image loading: any file Pillow reads, normalised to uint8 grey (H x W) or RGB (H x W x 3).

Handles EXIF orientation, palette/alpha/CMYK/16-bit modes and refuses decompression bombs before
decoding. Every failure is an :class:`ImageError` naming the file and the reason.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ColorizationError, ImageError

#: Default upper bound on width x height (about 8k x 5k); override with COLORIZE_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 40_000_000
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".tga"}

ImageFile.LOAD_TRUNCATED_IMAGES = False


def max_pixels() -> int:
    """The pixel limit: ``COLORIZE_MAX_PIXELS`` (a positive whole number, ``_`` and ``4e7`` allowed)."""
    raw = os.environ.get("COLORIZE_MAX_PIXELS", "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = float(raw.replace("_", ""))
    except ValueError:
        value = float("nan")
    if not (1 <= value < 2**53 and value == int(value)):  # NaN and infinity fail the range test
        raise ColorizationError(
            f"COLORIZE_MAX_PIXELS={raw!r}: not a positive whole number of pixels "
            f"(e.g. {DEFAULT_MAX_PIXELS}, the default); fix or unset it"
        )
    return int(value)


def max_file_bytes(limit: int) -> int:
    """Largest file worth reading for ``limit`` pixels: 16-bit RGBA uncompressed, plus headroom."""
    return limit * 8 + 64 * 2**20


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def load_image(source, name: str | None = None, limit: int | None = None, mode: str = "auto") -> np.ndarray:
    """Read an image from a path, bytes or a binary file object.

    ``mode``: ``"auto"`` keeps grey images grey (H x W) and gives RGB (H x W x 3) otherwise;
    ``"rgb"`` always gives RGB. ``name`` is what errors call the input (defaults to the path).
    """
    limit = max_pixels() if limit is None else limit
    if source is None:
        raise ImageError(name or "image", "no image given (None): pass a path, bytes or a binary file object")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or str(path)
        data = _read_regular_file(path, name, limit)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or "upload"
    elif callable(getattr(source, "read", None)):
        name = name or getattr(source, "name", "upload")
        data = source.read(max_file_bytes(limit) + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise ImageError(name, f"file object gave {type(data).__name__}, not bytes: open it in binary mode ('rb')")
        if len(data) > max_file_bytes(limit):
            raise ImageError(name, f"file too large (more than {max_file_bytes(limit) / 2**20:,.0f} MB for a {limit:,}-pixel limit)")
    else:
        raise ImageError(name or "image", f"cannot read an image from a {type(source).__name__}: pass a path, bytes or a binary file object")
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


def _read_regular_file(path: Path, name: str, limit: int) -> bytes:
    """The bytes of a regular file; devices, FIFOs and sockets are refused without being opened
    (reading /dev/zero never ends, opening a FIFO blocks until a writer appears)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageError(name, "file not found") from None
    except OSError as exc:
        raise ImageError(name, f"cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(name, "is a folder, not an image")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file"
        raise ImageError(name, f"is {kind}, not an image file")
    if st.st_size > max_file_bytes(limit):
        raise ImageError(name, f"file too large ({st.st_size / 2**20:,.0f} MB; at most {max_file_bytes(limit) / 2**20:,.0f} MB for a {limit:,}-pixel limit)")
    try:
        with path.open("rb") as f:
            return f.read(max_file_bytes(limit) + 1)
    except OSError as exc:
        raise ImageError(name, f"cannot read ({exc.strerror or exc})") from None


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


def writable_format(path: Path) -> str:
    """The Pillow format an output path's extension names, checked by writing a 1x1 RGB image;
    :class:`ColorizationError` naming the file and the extensions that work otherwise."""
    path = Path(path)
    ext = path.suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is not None and fmt in Image.SAVE:
        try:
            Image.new("RGB", (1, 1)).save(io.BytesIO(), fmt)
            return fmt
        except Exception:  # noqa: BLE001 - any failure means this format cannot hold an RGB photo
            pass
    raise ColorizationError(
        f"{path}: cannot write {ext or 'a file without an extension'!r} images; use one of "
        ".png, .jpg, .tif, .webp, .bmp"
    )


def save_image(rgb: np.ndarray, path: Path, overwrite: bool = True) -> None:
    """Write ``rgb`` to ``path`` atomically: a temporary file in the same folder, then a rename, so
    an interrupted write never leaves a half file. ``overwrite=False`` refuses an existing file."""
    path = Path(path)
    fmt = writable_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        Image.fromarray(rgb).save(tmp, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails with FileExistsError instead of replacing
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                if path.exists():
                    raise FileExistsError(17, "File exists", str(path)) from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
