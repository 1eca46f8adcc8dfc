"""Temporal consistency of a colorized clip: the flow-warping error of Lai et al. (ECCV 2018).

For each pair of consecutive frames ``t - 1, t``:

1. optical flow between the GREY INPUT frames (what every method saw, so the measure does not
   depend on the method): OpenCV's DIS (default, ``preset MEDIUM``) or Farneback, backward
   (``t -> t - 1``) and forward (``t - 1 -> t``);
2. the previous OUTPUT frame warped to frame ``t`` along the backward flow (bilinear);
3. occluded pixels masked by the forward-backward consistency check of Sundaram et al. (ECCV 2010,
   the check Lai et al. use): a pixel is visible when ``|b + f(x + b)|^2 < 0.01 (|b|^2 +
   |f(x + b)|^2) + 0.5`` and its match lies inside the frame;
4. the error of the pair: the mean Euclidean distance in CIELAB ab between the output frame and
   the warped previous output over the visible pixels (colour only: the lightness is the input's).

``warp_error`` is the mean over the pairs. Pairs across a scene cut (see :func:`frame_pair`) are
left out (NaN): no flow relates two shots. A grey output (ab = 0) scores 0 by construction; the
colour original's score is the natural floor of a real clip (flow errors, real colour changes).

Frames are numpy arrays: outputs ``H x W x 3`` RGB uint8, grey inputs ``H x W`` uint8 (an RGB
frame is converted to grey). Bad input raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FLOW_METHODS = ("dis", "farneback")
#: Scene-cut thresholds: visible fraction below, grey error of the warped previous frame above
#: (0..255 levels, over visible pixels), or histogram distance (half L1 of 32-bin histograms) above.
CUT_MIN_VISIBLE = 0.4
CUT_MAX_GREY_ERROR = 24.0
CUT_MAX_HIST_DISTANCE = 0.5


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - opencv-python-headless is in requirements.txt
        raise ImportError("warp_error needs OpenCV; fix: pip install opencv-python-headless") from exc
    return cv2


def to_grey(frame: np.ndarray, name: str = "frame") -> np.ndarray:
    """``H x W`` uint8 grey (an RGB frame through OpenCV's luma weights)."""
    a = np.asarray(frame)
    if a.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 3:
        return _cv2().cvtColor(np.ascontiguousarray(a), _cv2().COLOR_RGB2GRAY)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected H x W grey or H x W x 3 RGB, got shape {a.shape}")
    return np.ascontiguousarray(a)


_DIS: dict[int, object] = {}


def optical_flow(src: np.ndarray, dst: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow ``H x W x 2`` (x, y) from grey ``src`` to ``dst``: ``src(p) ~ dst(p + flow(p))``."""
    cv2 = _cv2()
    a, b = to_grey(src, "src"), to_grey(dst, "dst")
    if a.shape != b.shape:
        raise ValueError(f"optical_flow: frames differ in size: {a.shape} and {b.shape}")
    if method == "dis":
        import threading

        key = threading.get_ident()  # a DIS object is not safe to share between threads
        if key not in _DIS:
            _DIS[key] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return _DIS[key].calc(a, b, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise ValueError(f"flow method must be one of {', '.join(FLOW_METHODS)}, got {method!r}")


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``p + flow(p)`` (bilinear, border replicated): the frame the flow
    points into, brought onto the flow's own frame. ``image`` is ``H x W`` or ``H x W x C``."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    if image.shape[:2] != (h, w):
        raise ValueError(f"warp: image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    xs, ys = _grid(h, w)
    img = np.ascontiguousarray(image)
    single = img.ndim == 3 and img.shape[2] > 4
    if single:  # OpenCV remaps at most 4 channels at once
        return np.stack([warp(img[..., c], flow) for c in range(img.shape[2])], axis=-1)
    return cv2.remap(img, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistency_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Visible pixels of the current frame: forward-backward consistent (Sundaram et al.) and
    matched inside the previous frame. ``backward``: current -> previous, ``forward``: previous -> current."""
    h, w = backward.shape[:2]
    xs, ys = _grid(h, w)
    fx, fy = xs + backward[..., 0], ys + backward[..., 1]
    inside = (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)
    f_w = warp(forward, backward)
    s = backward + f_w
    lhs = (s**2).sum(-1)
    rhs = 0.01 * ((backward**2).sum(-1) + (f_w**2).sum(-1)) + 0.5
    return inside & (lhs < rhs)


@dataclass(frozen=True)
class FramePair:
    """What relates frame ``t`` to ``t - 1``: the backward flow, the visible pixels, a scene cut."""

    backward: np.ndarray  # H x W x 2, current -> previous
    visible: np.ndarray  # H x W bool
    cut: bool
    grey_error: float  # mean |warped previous grey - current grey| over visible pixels (0..255)


def frame_pair(prev_grey: np.ndarray, cur_grey: np.ndarray, method: str = "dis") -> FramePair:
    """Flow, occlusion mask and scene-cut decision of two consecutive grey input frames.

    A cut: fewer than ``CUT_MIN_VISIBLE`` of the pixels visible, or the warped previous frame still
    ``CUT_MAX_GREY_ERROR`` grey levels off on average, or the grey histograms far apart."""
    a, b = to_grey(prev_grey, "previous frame"), to_grey(cur_grey, "current frame")
    backward = optical_flow(b, a, method)
    forward = optical_flow(a, b, method)
    visible = consistency_mask(backward, forward)
    frac = float(visible.mean())
    diff = np.abs(warp(a, backward).astype(np.float32) - b.astype(np.float32))
    grey_error = float(diff[visible].mean()) if visible.any() else float("inf")
    ha = np.bincount(a.ravel() >> 3, minlength=32) / a.size
    hb = np.bincount(b.ravel() >> 3, minlength=32) / b.size
    hist = 0.5 * float(np.abs(ha - hb).sum())
    cut = frac < CUT_MIN_VISIBLE or grey_error > CUT_MAX_GREY_ERROR or hist > CUT_MAX_HIST_DISTANCE
    return FramePair(backward, visible, cut, grey_error)


def ab_of(rgb: np.ndarray) -> np.ndarray:
    """CIELAB ab (``H x W x 2`` float32) of an RGB uint8 frame."""
    from backends import color

    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 RGB frame, got {a.shape} {a.dtype}")
    return color.rgb_to_lab(a)[..., 1:].astype(np.float32)


def pair_warp_error(prev_ab: np.ndarray, cur_ab: np.ndarray, pair: FramePair) -> float:
    """Mean ab distance between the current output and the previous output warped onto it, over
    the visible pixels; NaN across a scene cut or with no visible pixel. ab as from :func:`ab_of`."""
    if prev_ab.shape != cur_ab.shape or prev_ab.shape[:2] != pair.visible.shape:
        raise ValueError(f"pair_warp_error: shapes differ: {prev_ab.shape}, {cur_ab.shape}, flow {pair.visible.shape}")
    if pair.cut or not pair.visible.any():
        return float("nan")
    d = cur_ab - warp(prev_ab, pair.backward)
    return float(np.sqrt((d.astype(np.float64) ** 2).sum(-1))[pair.visible].mean())


def warp_errors(outputs: Sequence[np.ndarray], greys: Sequence[np.ndarray], method: str = "dis") -> np.ndarray:
    """Per-pair warp errors (``len(outputs) - 1`` values; NaN across scene cuts) of colorized
    ``outputs`` whose grey inputs are ``greys`` (the flow comes from the inputs)."""
    if len(outputs) != len(greys):
        raise ValueError(f"warp_errors: {len(outputs)} output frames but {len(greys)} input frames")
    if method not in FLOW_METHODS:
        raise ValueError(f"flow method must be one of {', '.join(FLOW_METHODS)}, got {method!r}")
    out = np.full(max(len(outputs) - 1, 0), np.nan)
    prev_ab = None
    for t, (o, g) in enumerate(zip(outputs, greys)):
        if np.asarray(o).shape[:2] != np.asarray(g).shape[:2]:
            raise ValueError(
                f"warp_errors: frame {t}: output {np.asarray(o).shape[:2]} and input {np.asarray(g).shape[:2]} differ"
            )
        ab = ab_of(o)
        if t:
            out[t - 1] = pair_warp_error(prev_ab, ab, frame_pair(greys[t - 1], g, method))
        prev_ab = ab
    return out


def warp_error(outputs: Sequence[np.ndarray], greys: Sequence[np.ndarray], method: str = "dis") -> float:
    """Mean flow-warping error (ab units) of a clip; NaN with fewer than two comparable frames."""
    e = warp_errors(outputs, greys, method)
    e = e[np.isfinite(e)]
    return float(e.mean()) if len(e) else float("nan")
