"""Each image of a comparison encoded once, and per-image metrics at the evaluation's size.

A Compare click used to PNG-encode the same images three times - for the History folder, the zip
and the before/after slider (1.13 + 1.29 + 0.32 CPU-s for four methods on one photo) - and to
compute the metrics at the photo's full resolution (1.33 CPU-s), together more than the four
colorizations themselves (1.09 CPU-s). Here:

* :func:`png_bytes` encodes an image once (deflate level 1 through ISA-L: five times faster than
  OpenCV's libpng at the same size, see :func:`encode_png`) and keeps the bytes, keyed by the image's content, in a
  cache bounded by bytes (``COLORIZE_PNG_CACHE_MB``, default 128), so the history, the zip and the
  slider share one encoding per image.
* :func:`image_metrics` computes ``experiments.metrics.pixel_metrics`` at the evaluation's size (a
  photo larger than ``METRICS_SIZE`` x ``METRICS_SIZE`` is squashed to it, bicubic, as
  ``experiments.evaluate`` does), so Compare's numbers are on the Metrics page's scale and cost the
  same whatever the photo's size.

The benchmark (``python -m experiments.benchmark``) times a warm Compare click against the four
methods' own colorize time.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import threading
import weakref
import zlib
from collections import OrderedDict

import numpy as np

#: zlib level of the PNGs (1: fastest; 9: smallest).
PNG_LEVEL = 1
#: Side of the square the per-image metrics are computed at (experiments.evaluate's default size).
METRICS_SIZE = 256


def _budget() -> int:
    try:
        mb = float(os.environ.get("COLORIZE_PNG_CACHE_MB", "128"))
    except ValueError:
        mb = 128.0
    return max(0, int(mb * 2**20))


class _PngCache:
    """Content key -> PNG bytes, least recently used first out, at most ``budget`` bytes."""

    def __init__(self):
        self.items: OrderedDict[str, bytes] = OrderedDict()
        self.size = 0
        self.hits = self.misses = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self.lock:
            data = self.items.get(key)
            if data is not None:
                self.items.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return data

    def put(self, key: str, data: bytes, budget: int) -> None:
        with self.lock:
            if key in self.items or len(data) > budget:
                return
            self.items[key] = data
            self.size += len(data)
            while self.size > budget:
                _, old = self.items.popitem(last=False)
                self.size -= len(old)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.size = self.hits = self.misses = 0


CACHE = _PngCache()


def content_key(rgb: np.ndarray) -> str:
    return remembered(rgb, "png", _content_key)


def _content_key(rgb: np.ndarray) -> str:
    a = np.ascontiguousarray(rgb)
    h = hashlib.sha256(a.view(np.uint8).reshape(-1))  # SHA-NI: ~3x faster than blake2b here
    h.update(str((a.shape, a.dtype.str)).encode())
    return h.hexdigest()


_DIGESTS: dict[tuple[int, str], tuple[weakref.ref, str]] = {}


def frozen(a) -> bool:
    """Whether ``a`` is a numpy array nobody can change: read-only, and so is every array it views."""
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        a = a.base
    return a is None or isinstance(a, bytes)


def remembered(a, kind: str, compute) -> str:
    """``compute(a)`` (a digest of the array's content), remembered for the array's lifetime when
    it is :func:`frozen` - a Compare click hashed the same photo and results about 40 times (1 ms a
    megabyte each: the encode cache, result keys); other arrays are hashed every time."""
    if not frozen(a):
        return compute(a)
    key = (id(a), kind)
    hit = _DIGESTS.get(key)
    if hit is not None and hit[0]() is a:
        return hit[1]
    digest = compute(a)
    _DIGESTS[key] = (weakref.ref(a, lambda _ref, key=key: _DIGESTS.pop(key, None)), digest)
    return digest


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png_isal(a: np.ndarray, level: int = PNG_LEVEL) -> bytes | None:
    """PNG bytes of an 8-bit grey (H, W) or RGB (H, W, 3) array through Intel's ISA-L deflate
    (the ``isal`` package), or None without it.

    Every row gets PNG's "Up" filter (the difference to the row above; one numpy subtraction for
    the whole image), and ISA-L compresses the filtered rows as one zlib stream: 3.6 ms for a
    512 x 512 colorized photo at 396 KB, against OpenCV's libpng (Paeth filter, zlib's run-length
    strategy, level 1) at 19 ms and 398 KB, and Pillow's 24 ms - the same pixels back (tested).
    ISA-L's levels are 0-3 (``level`` is clipped to them)."""
    try:
        from isal import isal_zlib
    except ImportError:
        return None
    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    channels = 1 if a.ndim == 2 else a.shape[2]
    rows = a.reshape(h, w * channels)
    filtered = np.empty((h, w * channels + 1), np.uint8)
    filtered[:, 0] = 2  # filter type "Up" on every row (the first row's "above" is zeros: itself)
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 arithmetic wraps modulo 256, as PNG's does
    colour_type = {1: 0, 3: 2}[channels]
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)),
        _png_chunk(b"IDAT", isal_zlib.compress(filtered, min(max(int(level), 0), 3))),
        _png_chunk(b"IEND", b""),
    ))  # fmt: skip


def encode_png(rgb: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """PNG bytes of an 8-bit grey or RGB image, without the cache.

    ISA-L's deflate when the ``isal`` package is there (:func:`encode_png_isal`: 3.6 ms for a
    512 x 512 photo); else OpenCV's libpng with one filter for every row (Paeth) and zlib's
    run-length strategy (13-19 ms, against Pillow's 24 ms, which tries every filter on every row);
    Pillow when OpenCV is missing too. All at about the same size (396-414 KB for that photo)."""
    a = np.asarray(rgb)
    if a.dtype == np.uint8 and (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3))):
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        data = encode_png_isal(a, level)
        if data is not None:
            return data
        try:
            import cv2
        except ImportError:
            cv2 = None
        if cv2 is not None:
            ok, buf = cv2.imencode(".png", a[..., ::-1] if a.ndim == 3 and a.shape[2] == 3 else a,
                                   [cv2.IMWRITE_PNG_COMPRESSION, level, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
                                    cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH])  # fmt: skip
            if ok:
                return buf.tobytes()
    from PIL import Image

    out = io.BytesIO()
    # zlib's run-length strategy (Z_RLE = 3): about 15% faster than the default and 10% smaller on photos
    Image.fromarray(a).save(out, format="PNG", compress_level=level, compress_type=3)
    return out.getvalue()


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG bytes of an image, encoded once per content and reused (see the module's docstring)."""
    key = content_key(rgb)
    data = CACHE.get(key)
    if data is None:
        data = encode_png(rgb)
        CACHE.put(key, data, _budget())
    return data


def metrics_view(rgb: np.ndarray, size: int = METRICS_SIZE) -> np.ndarray:
    """The image the metrics see: squashed to ``size`` x ``size`` (bicubic) when it has more
    pixels than that, else unchanged."""
    from PIL import Image

    a = np.asarray(rgb)
    if a.shape[0] * a.shape[1] <= size * size:
        return a
    return np.asarray(Image.fromarray(a).resize((size, size), Image.BICUBIC))


def image_metrics(pred: np.ndarray, truth: np.ndarray | None, size: int = METRICS_SIZE) -> dict[str, float]:
    """``experiments.metrics.pixel_metrics`` of one prediction against its truth at the
    evaluation's size (only colourfulness when there is no truth)."""
    return image_metrics_many([pred], truth, size)[0]


def image_metrics_many(preds: list[np.ndarray], truth: np.ndarray | None, size: int = METRICS_SIZE) -> list[dict[str, float]]:
    """:func:`image_metrics` of several predictions of one photo (the methods of a Compare click)
    in one batch: the truth's Lab, colourfulness and rebalancing weights are computed once."""
    import torch

    from experiments import metrics as M

    if not preds:
        return []

    def tensor(images):
        return torch.as_tensor(np.stack([metrics_view(a, size) for a in images]), dtype=torch.float64).permute(0, 3, 1, 2)

    x = tensor(preds)
    if truth is None:
        return [{"colorfulness": float(v)} for v in M.colorfulness(x, data_range=255.0)]
    cols = M.pixel_metrics(x, tensor([truth]), data_range=255.0, shared_truth=True)
    return [{k: float(v[i]) for k, v in cols.items()} for i in range(len(preds))]
