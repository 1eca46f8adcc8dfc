"""Encode-once PNG cache and per-image metrics at the evaluation's size (Compare's click)."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from experiments import encoded
from experiments import metrics as M


def test_png_is_lossless_encoded_once_and_bounded(monkeypatch):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    encoded.CACHE.clear()
    first = encoded.png_bytes(img)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(first))), img)
    calls = []
    monkeypatch.setattr(encoded, "encode_png", lambda a, level=1: calls.append(1) or b"x")
    assert encoded.png_bytes(img.copy()) is first and not calls  # same content: no second encoding
    assert encoded.CACHE.hits == 1
    other = img.copy()
    other[0, 0, 0] ^= 1
    assert encoded.png_bytes(other) == b"x" and calls  # one changed pixel is another image
    # the cache never holds more than its byte budget
    monkeypatch.setenv("COLORIZE_PNG_CACHE_MB", str(3 / 2**20))
    encoded.CACHE.clear()
    monkeypatch.setattr(encoded, "encode_png", lambda a, level=1: b"12")
    for k in range(5):
        encoded.png_bytes(np.full((2, 2), k, np.uint8))
    assert encoded.CACHE.size <= 3 and len(encoded.CACHE.items) == 1
    encoded.CACHE.clear()


def test_metrics_at_the_evaluation_size():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 256, (300, 420, 3)).astype(np.uint8)
    pred = np.clip(truth.astype(int) + rng.integers(-20, 21, truth.shape), 0, 255).astype(np.uint8)
    got = encoded.image_metrics(pred, truth)

    def t(a):
        return torch.as_tensor(np.array(a), dtype=torch.float64).permute(2, 0, 1)[None]

    small = [np.asarray(Image.fromarray(a).resize((256, 256), Image.BICUBIC)) for a in (pred, truth)]
    want = {k: float(v[0]) for k, v in M.pixel_metrics(t(small[0]), t(small[1]), 255.0).items()}
    assert got == want
    # a photo already at or below the size is measured as it is
    tiny = truth[:64, :64]
    assert encoded.metrics_view(tiny) is tiny
    assert set(encoded.image_metrics(pred, None)) == {"colorfulness"}
