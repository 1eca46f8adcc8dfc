"""Encode-once PNG cache and per-image metrics at the evaluation's size (Compare's click)."""

from __future__ import annotations

import io

import numpy as np
import pytest
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


def test_several_methods_against_one_truth_equal_one_at_a_time():
    """Compare's batch (one truth, the truth's Lab and weights computed once) gives each method the
    numbers it gets alone; a bad output in the batch is still refused."""
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 256, (80, 96, 3)).astype(np.uint8)
    preds = [np.clip(truth.astype(int) + rng.integers(-s, s + 1, truth.shape), 0, 255).astype(np.uint8) for s in (5, 40, 90)]
    many = encoded.image_metrics_many(preds, truth)
    for p, got in zip(preds, many):
        alone = encoded.image_metrics(p, truth)
        assert got.keys() == alone.keys()
        for k in got:
            assert got[k] == pytest.approx(alone[k], rel=1e-9, abs=1e-12, nan_ok=True), k
    assert many[0]["psnr"] > many[1]["psnr"] > many[2]["psnr"]
    x = torch.as_tensor(np.stack(preds), dtype=torch.float64).permute(0, 3, 1, 2)
    y = torch.as_tensor(truth, dtype=torch.float64).permute(2, 0, 1)[None]
    with pytest.raises(ValueError, match="same shape"):
        M.pixel_metrics(x, y[..., :-1], 255.0, shared_truth=True)
    with pytest.raises(ValueError, match="same shape"):  # never broadcast unasked
        M.pixel_metrics(x, y, 255.0)
    x[1, 0, 0, 0] = 300.0
    with pytest.raises(ValueError, match="data_range"):
        M.pixel_metrics(x, y, 255.0, shared_truth=True)


@pytest.mark.parametrize("path", ["isal", "opencv"])
def test_png_round_trips_grey_and_rgb_exactly(path, monkeypatch):
    """Both fast encoders (ISA-L with the Up filter; OpenCV, RGB given as RGB) decode - in Pillow and
    in OpenCV's libpng - to the very pixels, in the right channel order, whatever the shape."""
    import cv2

    if path == "isal":
        pytest.importorskip("isal")
    else:
        monkeypatch.setattr(encoded, "encode_png_isal", lambda a, level=1: None)
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (37, 53, 3)).astype(np.uint8)
    rgb[0, 0] = (255, 0, 0)  # pure red stays red (no BGR swap)
    rgb[5] = rgb[4]  # a row equal to the one above (the Up filter's zeros) and one below it wrapping past 255
    rgb[6] = 255 - rgb[5]
    grey = rng.integers(0, 256, (20, 30)).astype(np.uint8)
    shapes = (rgb, grey, np.ascontiguousarray(rgb[::2, ::3]), rgb[::2, ::3], rgb[:1, :1], grey[:, :1], rgb[..., :1])
    for a in shapes:
        data = encoded.encode_png(a)
        want = a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a
        back = np.asarray(Image.open(io.BytesIO(data)))
        assert back.shape == want.shape and (back == want).all()
        back_cv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        back_cv = back_cv[..., ::-1] if back_cv.ndim == 3 else back_cv
        assert (back_cv == want).all()
    assert tuple(np.asarray(Image.open(io.BytesIO(encoded.encode_png(rgb))))[0, 0]) == (255, 0, 0)
    photo = np.asarray(Image.fromarray(rgb).resize((512, 512), Image.BICUBIC))
    assert len(encoded.encode_png(photo)) < photo.size  # compressed, not stored


def test_digests_of_frozen_arrays_are_remembered_others_recomputed():
    """A read-only array (and only one nobody can change through a writeable base) is hashed once
    for its lifetime; a writeable one every time, so a changed image never reuses a stale key."""
    import gc

    from experiments import encoded

    calls = []

    def digest(a):
        calls.append(1)
        return encoded._content_key(a)

    a = np.arange(48, dtype=np.uint8).reshape(4, 4, 3).copy()  # owns its data
    assert not encoded.frozen(np.arange(3)[:2]) and not encoded.frozen(a)
    encoded.remembered(a, "t", digest), encoded.remembered(a, "t", digest)
    assert len(calls) == 2  # writeable: hashed each time
    a[0, 0, 0] = 99
    view = a[:2]
    view.flags.writeable = False
    assert not encoded.frozen(view)  # its base can still change
    a.flags.writeable = False
    first = encoded.remembered(a, "t", digest)
    assert encoded.remembered(a, "t", digest) == first == encoded._content_key(a) and len(calls) == 3
    assert encoded.content_key(a) == first and encoded.frozen(a[1:])
    key = (id(a), "t")
    del a, view
    gc.collect()
    assert key not in encoded._DIGESTS  # forgotten with the array
