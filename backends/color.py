"""Every colour-space constant and conversion of the project lives here.

Conventions (the same for numpy and torch):

* sRGB is float in [0, 1] (or uint8 in [0, 255] for the numpy helpers that say so), D65 white.
* CIE L*a*b* uses the D65 2-degree white point, exactly as scikit-image's ``rgb2lab``:
  L in [0, 100], a and b roughly in [-110, 110].
* numpy arrays are channel-last (``H x W x 3``); torch tensors are channel-first and batched
  (``N x 3 x H x W``), so the torch versions run on the GPU unchanged.

The quantised ab space of Zhang, Isola & Efros (ECCV 2016) is here too: the in-gamut bins on a
grid of 10, soft-encoding of targets, the class-rebalancing weights and the annealed mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

# --- CIE L*a*b* (D65) -------------------------------------------------------------------------

#: Linear sRGB -> XYZ (same matrix as scikit-image).
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
#: D65, 2-degree observer.
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])

_EPS = 0.008856  # (6/29)^3
_KAPPA = 7.787  # (29/6)^2 / 3

#: Normalisation used by the networks: L -> (L - L_CENTER) / L_SCALE, ab -> ab / AB_SCALE.
L_CENTER = 50.0
L_SCALE = 100.0
AB_SCALE = 110.0


def _srgb_to_linear(c):
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


def _linear_to_srgb(c):
    c = np.clip(c, 0.0, None)
    return np.where(c > 0.0031308, 1.055 * c ** (1 / 2.4) - 0.055, 12.92 * c)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8 in [0, 255] or float in [0, 1], ``... x 3``) -> Lab float32 ``... x 3``."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1] != 3:
        raise ValueError(f"rgb_to_lab expects a last axis of 3 channels, got shape {rgb.shape}")
    x = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    xyz = _srgb_to_linear(x) @ XYZ_FROM_RGB.T / WHITE_D65
    f = np.where(xyz > _EPS, np.cbrt(xyz), _KAPPA * xyz + 16.0 / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1).astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Lab ``... x 3`` -> sRGB float32 in [0, 1], clipped into the gamut."""
    lab = np.asarray(lab, dtype=np.float64)
    if lab.shape[-1] != 3:
        raise ValueError(f"lab_to_rgb expects a last axis of 3 channels, got shape {lab.shape}")
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = np.maximum(fy - lab[..., 2] / 200.0, 0.0)
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f**3 > _EPS, f**3, (f - 16.0 / 116.0) / _KAPPA) * WHITE_D65
    rgb = _linear_to_srgb(xyz @ RGB_FROM_XYZ.T)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def _lab_to_linear(lab: np.ndarray) -> np.ndarray:
    """Lab -> linear RGB, unclipped (out-of-gamut colours fall outside [0, 1])."""
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    f3 = f * f * f
    xyz = np.where(f3 > _EPS, f3, (f - 16.0 / 116.0) / _KAPPA) * WHITE_D65
    return xyz @ RGB_FROM_XYZ.T


def map_into_gamut(lab: np.ndarray, iters: int = 8, tol: float = 1e-3) -> np.ndarray:
    """Bring out-of-gamut colours into sRGB by lowering their chroma, keeping L and hue.

    Clipping R, G and B one by one (what :func:`lab_to_rgb` does) changes a saturated colour's
    lightness - a predicted vivid sky would come out darker or lighter than the input. Here each
    out-of-gamut pixel's ab is scaled by the largest factor in [0, 1] (bisection, ``iters`` steps:
    within 2 ** -iters of the gamut boundary) whose colour lies in the gamut; ab = 0 always does.
    """
    lab = np.array(lab, dtype=np.float32)
    lin = _lab_to_linear(lab)
    out = ((lin < -tol) | (lin > 1 + tol)).any(-1) & (lab[..., 0] > 0) & (lab[..., 0] < 100)
    if not out.any():
        return lab
    sub = lab[out]
    lo, hi = np.zeros(len(sub), np.float32), np.ones(len(sub), np.float32)
    for _ in range(iters):
        mid = (lo + hi) / 2
        trial = np.concatenate([sub[:, :1], sub[:, 1:] * mid[:, None]], axis=1)
        t = _lab_to_linear(trial)
        ok = ((t >= -tol) & (t <= 1 + tol)).all(-1)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    sub[:, 1:] *= lo[:, None]
    lab[out] = sub
    return lab


def lab_to_rgb_uint8(lab: np.ndarray) -> np.ndarray:
    return np.round(lab_to_rgb(lab) * 255.0).astype(np.uint8)


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """A grey image (uint8 or float in [0, 1]) read as neutral sRGB -> L in [0, 100]."""
    g = np.asarray(gray)
    g = g.astype(np.float64) / 255.0 if g.dtype == np.uint8 else g.astype(np.float64)
    y = _srgb_to_linear(g)
    f = np.where(y > _EPS, np.cbrt(y), _KAPPA * y + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


# --- the fast full-resolution path (float32, lookup tables, strips) -----------------------------
#
# What the shared flow does at the input's full size: lightness of the input, then, after the
# method's ab is upsampled, Lab -> sRGB with the chroma-reduction gamut mapping above. The
# float64 functions above are the reference; these give the same results in float32 with lookup
# tables, in strips of ``STRIP_PIXELS`` so the temporaries stay small (a 40-MP photo never has a
# full-size float64 array): L within 1e-3, sRGB within one 8-bit level (tests/backends/test_color.py).

#: Pixels per strip of the full-resolution path (temporaries: a few float32 arrays of this size).
STRIP_PIXELS = 1 << 16
#: 8-bit sRGB code -> linear RGB (float64).
SRGB_TO_LINEAR_LUT = _srgb_to_linear(np.arange(256) / 255.0)
#: Entries of the linear -> 8-bit sRGB table (error at most 0.05 of a level near black).
_GAMMA_LUT_SIZE = 1 << 16
_GAMMA_LUT = np.round(
    np.clip(_linear_to_srgb(np.arange(_GAMMA_LUT_SIZE) / (_GAMMA_LUT_SIZE - 1)), 0.0, 1.0) * 255.0
).astype(np.uint8)
#: Luminance Y of each channel's code (the middle row of XYZ_FROM_RGB; the white's Y is 1).
_Y_LUTS = [(XYZ_FROM_RGB[1, c] * SRGB_TO_LINEAR_LUT).astype(np.float32) for c in range(3)]
_F_EDGE = 6.0 / 29.0  # f above which the inverse of Lab's f is its cube
#: Lab -> linear RGB with the white point folded in (float32).
_LIN_FROM_XYZN = (RGB_FROM_XYZ * WHITE_D65[None, :]).astype(np.float32)


def _strips(n: int, width: int) -> range:
    return range(0, n, max(1, STRIP_PIXELS // max(width, 1)))


def _f_of_y(y: np.ndarray) -> np.ndarray:
    """Lab's f of Y (float32, in place where possible) -> L = 116 f - 16."""
    f = np.cbrt(y)
    small = y <= _EPS
    if small.any():
        f[small] = _KAPPA * y[small] + np.float32(16.0 / 116.0)
    f *= np.float32(116.0)
    f -= np.float32(16.0)
    return f


#: 8-bit grey level (R = G = B) -> L in [0, 100].
LIGHTNESS_LUT = gray_to_lightness(np.arange(256, dtype=np.uint8))


def lightness_exact(rgb: np.ndarray) -> np.ndarray:
    """``rgb_to_lab(rgb)[..., 0]`` bit for bit (float64 arithmetic, then float32), with the sRGB
    decoding by table and without the a and b: what reference computations that must not change
    by a single bit (the evaluation's grey input, cached per photo) use."""
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.shape[-1:] != (3,):
        raise ValueError(f"lightness_exact expects uint8 ... x 3 sRGB, got {a.dtype} {a.shape}")
    y = SRGB_TO_LINEAR_LUT[a] @ XYZ_FROM_RGB.T / WHITE_D65  # the same product as rgb_to_lab's
    y = y[..., 1]
    f = np.where(y > _EPS, np.cbrt(y), _KAPPA * y + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


@lru_cache(maxsize=1)
def _neutral_thresholds() -> np.ndarray:
    """For each 8-bit grey level k in 1..255, the smallest float32 L whose neutral colour (a = b
    = 0) :func:`neutral_levels` renders as k or more - found by bisection on the float32 values
    between 0 and 100, so the lookup equals the float64 rendering exactly."""

    def level(L32: np.ndarray) -> np.ndarray:
        z = np.zeros_like(L32)
        return np.round(lab_to_rgb(np.stack([L32, z, z], axis=-1)).mean(-1) * 255.0)

    lo = np.zeros(255, np.int64)  # the bit pattern of 0.0
    hi = np.full(255, np.float32(100.5).view(np.int32), np.int64)
    k = np.arange(1, 256)
    while (hi - lo > 1).any():
        mid = (lo + hi) // 2
        ok = level(mid.astype(np.int32).view(np.float32)) >= k
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    return hi.astype(np.int32).view(np.float32)


def neutral_levels(L: np.ndarray) -> np.ndarray:
    """8-bit grey level of the neutral colour (L, 0, 0) for float32 L: exactly
    ``round(mean(lab_to_rgb((L, 0, 0))) * 255)`` (the mean of R, G and B, which float error can
    round apart), by a search in 255 precomputed L thresholds."""
    return np.searchsorted(_neutral_thresholds(), np.asarray(L, dtype=np.float32), side="right").astype(np.uint8)


def is_grey(rgb: np.ndarray) -> bool:
    """True when every pixel of an ``H x W x 3`` array has R = G = B (checked strip by strip)."""
    h, w = rgb.shape[:2]
    cv2 = _cv2() if rgb.dtype == np.uint8 else None
    for r0 in _strips(h, w):
        s = rgb[r0 : r0 + max(1, STRIP_PIXELS // max(w, 1))]
        if cv2 is not None:  # SIMD: 1.6 against 2.9 ms for a 1024 px photo
            r, g, b = cv2.split(np.ascontiguousarray(s))
            if cv2.countNonZero(cv2.bitwise_xor(r, g).reshape(-1)) or cv2.countNonZero(cv2.bitwise_xor(g, b).reshape(-1)):
                return False
        elif not (np.array_equal(s[..., 0], s[..., 1]) and np.array_equal(s[..., 1], s[..., 2])):
            return False
    return True


def lightness(image: np.ndarray) -> np.ndarray:
    """CIE L (float32, ``H x W``, in [0, 100]) of an 8-bit sRGB image, ``H x W`` grey or
    ``H x W x 3``: what ``rgb_to_lab(image)[..., 0]`` gives (within 1e-3), without the a and b.

    A grey image (R = G = B) takes one 256-entry lookup per pixel; a colour one three lookups
    (linear luminance per channel) and a cube root, strip by strip."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"lightness expects uint8 sRGB, got {a.dtype}")
    if a.ndim == 2:
        return LIGHTNESS_LUT[a]
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"lightness expects H x W or H x W x 3, got shape {a.shape}")
    if is_grey(a):
        cv2 = _cv2()
        if cv2 is not None and a.shape[1] <= 32767:  # OpenCV's table lookup: 1.6 against 4.5 ms at 1024 px
            return cv2.LUT(cv2.extractChannel(np.ascontiguousarray(a), 0), LIGHTNESS_LUT)
        return LIGHTNESS_LUT[a[..., 0]]
    h, w = a.shape[:2]
    out = np.empty((h, w), np.float32)
    step = max(1, STRIP_PIXELS // max(w, 1))
    for r0 in range(0, h, step):
        s = a[r0 : r0 + step]
        y = _Y_LUTS[0][s[..., 0]]
        y += _Y_LUTS[1][s[..., 1]]
        y += _Y_LUTS[2][s[..., 2]]
        out[r0 : r0 + step] = _f_of_y(y)
    return out


def _finv(f: np.ndarray) -> np.ndarray:
    """Inverse of Lab's f (float32): f^3 above 6/29, linear below."""
    out = f * f
    out *= f
    low = f <= _F_EDGE
    if low.any():
        out[low] = (f[low] - np.float32(16.0 / 116.0)) * np.float32(1.0 / _KAPPA)
    return out


def _lab_planes_to_linear(L: np.ndarray, a: np.ndarray, b: np.ndarray, fy=None, y_terms=None) -> np.ndarray:
    """Flat float32 L, a, b -> ``3 x n`` linear RGB, unclipped (float32 :func:`_lab_to_linear`).
    ``fy`` and ``y_terms`` (the part that depends on L only) can be passed in when L repeats."""
    if fy is None:
        fy = (L + np.float32(16.0)) * np.float32(1.0 / 116.0)
    if y_terms is None:
        y_terms = _lightness_terms(fy)
    x = _finv(fy + a * np.float32(1.0 / 500.0))
    z = _finv(fy - b * np.float32(1.0 / 200.0))
    m = _LIN_FROM_XYZN
    lin = np.empty((3, fy.size), np.float32)
    for c in range(3):
        row = lin[c]
        np.multiply(x, m[c, 0], out=row)
        row += y_terms[c]
        row += m[c, 2] * z
    return lin


def _lightness_terms(fy: np.ndarray) -> list[np.ndarray]:
    y = _finv(fy)
    return [_LIN_FROM_XYZN[c, 1] * y for c in range(3)]


def lab_to_rgb_uint8_mapped(L: np.ndarray, a: np.ndarray, b: np.ndarray, iters: int = 8, tol: float = 1e-3) -> np.ndarray:
    """Float32 L, a, b planes (same shape, any size) -> 8-bit sRGB ``shape x 3``, colours outside
    sRGB brought in by :func:`map_into_gamut`'s rule (chroma lowered by bisection, L and hue kept).

    Equals ``lab_to_rgb_uint8(map_into_gamut(lab))`` within one 8-bit level. Works in strips, so a
    large image never needs full-size temporaries. With OpenCV, each strip goes through its SIMD
    Lab -> sRGB conversion (which clips to sRGB) and only the pixels it clipped or that touch the
    gamut's edge take the exact float32 path (:func:`_lab_to_rgb_uint8_mapped_np`, the bisection),
    all of them in one pass at the end (:class:`GamutEdges`): 44 -> 34 ms for a 1024 px photo's
    colours (7% out of gamut), and closer to the float64 reference (0.56% of pixels one level off
    against 0.81%)."""
    if _cv2() is None:
        return _lab_to_rgb_uint8_mapped_np(L, a, b, iters, tol)
    shape = np.shape(L)
    Lf = np.ascontiguousarray(L, dtype=np.float32).reshape(-1)
    af = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
    bf = np.ascontiguousarray(b, dtype=np.float32).reshape(-1)
    n = Lf.size
    out = np.empty((n, 3), np.uint8)
    edges = GamutEdges(out, iters, tol)
    for s0 in range(0, n, STRIP_PIXELS):
        s1 = min(n, s0 + STRIP_PIXELS)
        edges.convert(s0, Lf[s0:s1], af[s0:s1], bf[s0:s1])
    edges.finish()
    return out.reshape(*shape, 3)


class GamutEdges:
    """OpenCV's Lab -> sRGB strip by strip into ``out`` (``n x 3`` uint8), the pixels it clipped
    or left on the gamut's edge collected and mapped exactly in one pass by :meth:`finish` - a few
    large numpy calls rather than a few per strip (the exact pass over a 1024 px photo's edge
    pixels: 34 -> 14 ms). Needs OpenCV (:func:`_cv2`)."""

    def __init__(self, out: np.ndarray, iters: int = 8, tol: float = 1e-3):
        self.out, self.iters, self.tol = out, iters, tol
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def convert(self, start: int, L: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        """Pixels ``start ..`` of ``out`` from flat float32 planes (a strip of a few 10^5 pixels)."""
        cv2 = _cv2()
        n = L.size
        row = (1, n)
        srgb = cv2.cvtColor(cv2.merge([L.reshape(row), a.reshape(row), b.reshape(row)]), cv2.COLOR_Lab2RGB)
        self.out[start : start + n] = cv2.convertScaleAbs(srgb, alpha=255.0).reshape(-1, 3)  # rounded, saturated
        # pixels not strictly inside (0, 1) on every channel: out of gamut (clipped), or on its edge
        edge = np.flatnonzero(cv2.inRange(srgb, _STRICT_LO, _STRICT_HI).reshape(-1) == 0)
        if edge.size:
            self.parts.append((edge + start, L[edge], a[edge], b[edge]))

    def finish(self) -> None:
        if not self.parts:
            return
        k, L, a, b = (np.concatenate(p) for p in zip(*self.parts)) if len(self.parts) > 1 else self.parts[0]
        self.parts = []
        self.out[k] = _lab_to_rgb_uint8_mapped_np(L, a, b, self.iters, self.tol)


_STRICT_LO = (float(np.nextafter(np.float32(0), np.float32(1))),) * 3
_STRICT_HI = (float(np.nextafter(np.float32(1), np.float32(0))),) * 3


@lru_cache(maxsize=1)
def _cv2():
    try:
        import cv2
    except ImportError:  # the exact numpy path alone
        return None
    return cv2


def _lab_to_rgb_uint8_mapped_np(L: np.ndarray, a: np.ndarray, b: np.ndarray, iters: int = 8, tol: float = 1e-3) -> np.ndarray:
    """:func:`lab_to_rgb_uint8_mapped` in numpy alone (float32 arithmetic and a 65,536-entry gamma
    table instead of float64 and a power)."""
    shape = np.shape(L)
    Lf = np.ascontiguousarray(L, dtype=np.float32).reshape(-1)
    af = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
    bf = np.ascontiguousarray(b, dtype=np.float32).reshape(-1)
    n = Lf.size
    out = np.empty((n, 3), np.uint8)
    lo_t, hi_t = np.float32(-tol), np.float32(1.0 + tol)
    scale_lut = np.float32(_GAMMA_LUT_SIZE - 1)
    for s0 in range(0, n, STRIP_PIXELS):
        sl = slice(s0, min(n, s0 + STRIP_PIXELS))
        Ls, as_, bs = Lf[sl], af[sl], bf[sl]
        lin = _lab_planes_to_linear(Ls, as_, bs)
        bad = ((lin < lo_t) | (lin > hi_t)).any(0)
        bad &= (Ls > 0) & (Ls < 100)
        idx = np.flatnonzero(bad)
        if idx.size:
            Lo, ao, bo = Ls[idx], as_[idx], bs[idx]
            fy = (Lo + np.float32(16.0)) * np.float32(1.0 / 116.0)
            yt = _lightness_terms(fy)
            lo = np.zeros(idx.size, np.float32)
            hi = np.ones(idx.size, np.float32)
            for _ in range(iters):
                mid = (lo + hi) * np.float32(0.5)
                t = _lab_planes_to_linear(Lo, ao * mid, bo * mid, fy, yt)
                ok = ((t >= lo_t) & (t <= hi_t)).all(0)
                lo = np.where(ok, mid, lo)
                hi = np.where(ok, hi, mid)
            lin[:, idx] = _lab_planes_to_linear(Lo, ao * lo, bo * lo, fy, yt)
        np.clip(lin, 0.0, 1.0, out=lin)
        lin *= scale_lut
        lin += np.float32(0.5)
        codes = lin.astype(np.int32)
        for c in range(3):
            out[sl, c] = _GAMMA_LUT[codes[c]]
    return out.reshape(*shape, 3)


def chroma(lab: np.ndarray) -> np.ndarray:
    return np.hypot(lab[..., 1], lab[..., 2])


# --- torch versions (batched, channel-first) --------------------------------------------------


def _torch():
    import torch

    return torch


_V8 = np.arange(256) / 255.0
_LINEAR_OF_8BIT = np.where(_V8 > 0.04045, ((_V8 + 0.055) / 1.055) ** 2.4, _V8 / 12.92).astype(np.float32)


def rgb_to_lab_torch(rgb):
    """``N x 3 x H x W`` sRGB in [0, 1] -> Lab, same layout, same device."""
    torch = _torch()
    return linear_to_lab_torch(torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92))


def srgb8_to_lab_torch(rgb8):
    """``N x 3 x H x W`` uint8 sRGB -> float32 Lab: the same as :func:`rgb_to_lab_torch` of
    ``rgb8 / 255``, the linearisation by a 256-entry table (computed in float64, so exact to
    float32 rounding; a lookup instead of a power over every pixel)."""
    torch = _torch()
    if rgb8.dtype != torch.uint8:
        raise ValueError(f"srgb8_to_lab_torch expects uint8, got {rgb8.dtype}")
    table = torch.as_tensor(_LINEAR_OF_8BIT, device=rgb8.device)
    return linear_to_lab_torch(table[rgb8.long()])


def linear_to_lab_torch(lin):
    """``N x 3 x H x W`` linear RGB -> Lab, same layout, device and dtype."""
    torch = _torch()
    m = torch.as_tensor(XYZ_FROM_RGB / WHITE_D65[:, None], dtype=lin.dtype, device=lin.device)
    xyz = torch.einsum("ij,njhw->nihw", m, lin)
    f = torch.where(xyz > _EPS, xyz.clamp_min(_EPS) ** (1.0 / 3.0), _KAPPA * xyz + 16.0 / 116.0)
    L = 116.0 * f[:, 1] - 16.0
    a = 500.0 * (f[:, 0] - f[:, 1])
    b = 200.0 * (f[:, 1] - f[:, 2])
    return torch.stack([L, a, b], dim=1)


def lab_to_rgb_torch(lab):
    """``N x 3 x H x W`` Lab -> sRGB in [0, 1] (clipped), same layout, same device."""
    torch = _torch()
    fy = (lab[:, 0] + 16.0) / 116.0
    fx = fy + lab[:, 1] / 500.0
    fz = (fy - lab[:, 2] / 200.0).clamp_min(0.0)
    f = torch.stack([fx, fy, fz], dim=1)
    xyz = torch.where(f**3 > _EPS, f**3, (f - 16.0 / 116.0) / _KAPPA)
    m = torch.as_tensor(RGB_FROM_XYZ * WHITE_D65[None, :], dtype=lab.dtype, device=lab.device)
    lin = torch.einsum("ij,njhw->nihw", m, xyz).clamp_min(0.0)
    rgb = torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(1e-12) ** (1 / 2.4) - 0.055, 12.92 * lin)
    return rgb.clamp(0.0, 1.0)


# --- Zhang et al.: quantised ab space ---------------------------------------------------------

GRID = 10.0
AB_RANGE = 110.0
ASSET = Path(__file__).parent / "assets" / "ab_gamut.npz"


def grid_centres(grid: float = GRID, ab_range: float = AB_RANGE) -> np.ndarray:
    """All ab bin centres on the grid, ``K x 2`` (a, b)."""
    axis = np.arange(-ab_range, ab_range + 1e-6, grid)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def strict_gamut_bins(grid: float = GRID, l_step: float = 0.5) -> np.ndarray:
    """Bin centres whose (L, a, b) is inside sRGB, without clipping, for at least one L."""
    centres = grid_centres(grid)
    L = np.arange(0.0, 100.0 + 1e-6, l_step)
    lab = np.concatenate(
        [np.repeat(L[:, None, None], len(centres), 1), np.broadcast_to(centres, (len(L), *centres.shape))],
        axis=2,
    )
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f**3 > _EPS, f**3, (f - 16.0 / 116.0) / _KAPPA) * WHITE_D65
    lin = xyz @ RGB_FROM_XYZ.T
    ok = np.all((lin >= 0.0) & (lin <= 1.0), axis=-1) & (fz >= 0)
    return centres[ok.any(axis=0)]


def srgb_occupied_cells(grid: float = GRID) -> np.ndarray:
    """Boolean mask over ``grid_centres()``: cells that some 8-bit sRGB colour falls into.

    Every photo's ab values lie in these cells, so they are the bins "colours can occupy"
    (261 on the grid of 10; Zhang et al. kept 313 on ImageNet with a looser test).
    """
    hit = np.zeros(len(grid_centres(grid)), bool)
    v = np.arange(256, dtype=np.uint8)
    g, b = np.meshgrid(v, v, indexing="ij")
    for r in range(0, 256):
        lab = rgb_to_lab(np.stack([np.full_like(g, r), g, b], -1))
        hit[np.unique(nearest_grid_index(lab[..., 1:], grid))] = True
    return hit


def nearest_grid_index(ab: np.ndarray, grid: float = GRID, ab_range: float = AB_RANGE) -> np.ndarray:
    """Index into ``grid_centres()`` of the grid cell each ab value falls in."""
    n = int(round(2 * ab_range / grid)) + 1
    idx = np.clip(np.round((ab + ab_range) / grid).astype(np.int64), 0, n - 1)
    return idx[..., 0] * n + idx[..., 1]


@dataclass(frozen=True)
class ABGamut:
    """The kept ab bins (``Q x 2``) and the empirical prior of the training photos over them."""

    bins: np.ndarray
    prior: np.ndarray
    strict_count: int
    source: str

    @property
    def q(self) -> int:
        return len(self.bins)

    def save(self, path: Path = ASSET) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, bins=self.bins, prior=self.prior, strict_count=self.strict_count, source=self.source)


@lru_cache(maxsize=4)
def load_gamut(path: str | Path = ASSET) -> ABGamut:
    """The shipped bin set and prior (``python -m experiments.prior`` recomputes them)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: ab bin set missing; run `python -m experiments.prior` to compute it")
    z = np.load(path, allow_pickle=False)
    return ABGamut(z["bins"].astype(np.float32), z["prior"].astype(np.float64), int(z["strict_count"]), str(z["source"]))


def gamut_from_counts(grid_counts: np.ndarray, source: str, grid: float = GRID) -> ABGamut:
    """Q = cells occupied by 8-bit sRGB colours, plus any cell the photos hit; prior over them.

    ``strict_count`` records the stricter test (bin centre inside sRGB for some L) for reference.
    """
    centres = grid_centres(grid)
    strict = strict_gamut_bins(grid)
    keep = srgb_occupied_cells(grid)
    keep[nearest_grid_index(strict, grid)] = True
    keep |= grid_counts > 0
    counts = grid_counts[keep].astype(np.float64)
    prior = counts / counts.sum() if counts.sum() > 0 else np.full(keep.sum(), 1.0 / keep.sum())
    return ABGamut(centres[keep].astype(np.float32), prior, len(strict), source)


def smooth_prior(bins: np.ndarray, prior: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """The prior smoothed with a Gaussian of ``sigma`` in ab units (over the kept bins)."""
    d2 = ((bins[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * sigma**2))
    p = k @ prior
    return p / p.sum()


def rebalance_weights(bins: np.ndarray, prior: np.ndarray, lam: float = 0.5, sigma: float = 5.0) -> np.ndarray:
    """Zhang et al. eq. 4: w ~ ((1 - lam) p~ + lam / Q)^-1, normalised so that E_p~[w] = 1."""
    p = smooth_prior(bins, prior, sigma)
    w = 1.0 / ((1.0 - lam) * p + lam / len(p))
    return (w / (p * w).sum()).astype(np.float32)


def soft_encode(ab, bins, k: int = 5, sigma: float = 5.0):
    """Torch: ``N x 2 x H x W`` ab -> ``N x Q x H x W`` soft targets (k nearest bins, Gaussian)."""
    torch = _torch()
    n, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, bins) ** 2
    dk, ik = d2.topk(k, dim=1, largest=False)
    wk = torch.exp(-dk / (2 * sigma**2))
    wk = wk / wk.sum(1, keepdim=True)
    out = torch.zeros(flat.shape[0], bins.shape[0], device=ab.device, dtype=ab.dtype)
    out.scatter_(1, ik, wk.to(ab.dtype))
    return out.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def annealed_mean(probs, bins, temperature: float = 0.38):
    """Torch: ``N x Q x H x W`` probabilities -> ``N x 2 x H x W`` ab (Zhang et al. eq. 5).

    T = 1 gives the mean of the distribution; T -> 0 its mode.
    """
    torch = _torch()
    return annealed_mean_logits(torch.log(probs.clamp_min(1e-12)), bins, temperature)


def annealed_mean_logits(logits, bins, temperature: float = 0.38):
    """The annealed mean straight from the network's ``N x Q x H x W`` logits: ``softmax(z / T)``
    is ``p ** (1 / T)`` renormalised (eq. 5), without computing ``p`` first."""
    torch = _torch()
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    q = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", q, bins.to(q.dtype))
