"""Colour artefacts a person sees in a colorization, as numbers (issue 10, item 5).

Every function takes batched RGB tensors ``N x 3 x H x W`` in ``[0, data_range]`` (prediction
``x``, ground truth ``y``) and returns one float64 value per image (``reduction="none"``) or their
mean / sum; bad input raises ``ValueError``. Colours are CIELAB (D65, as everywhere in the
project); chroma ``C = sqrt(a^2 + b^2)`` and hue angle ``h = atan2(b, a)`` in degrees, 0..360.
A value that cannot be defined for an image (no pixel qualifies, no colour at all) is NaN, which
the evaluation's summaries leave out and its tables show as "-".

=====================  =========================================================================
column                 definition
=====================  =========================================================================
false_hue_share        Of the truth's near-neutral (C < 10) or bright (L > 80) pixels, the share
                       the output gives a strong colour (C >= 20) that the truth lacks (ab
                       distance to the truth's colour >= 20). Truth: 0; grey: 0. Lower is better.
magenta_share          The part of ``false_hue_share`` whose output hue is magenta / purple / pink,
                       315 <= h < 360 (a > 0 and -a <= b < 0; sRGB magenta and purple lie at 328,
                       hot pink at 351, while pure blue is at 306 and red at 40). Lower is better.
warm_share             The output's share of warm orange / sepia / brown pixels: C >= 15 and
                       45 <= h < 90 (red-orange 46, brown 61, sepia 65-81, orange 73, skin 75;
                       red at 40 and gold / yellow at 91-103 are outside). The truth row is the
                       level to compare with.
warm_share_diff        warm_share(output) - warm_share(truth), per photo: > 0 an orange / sepia
                       cast, 0 the truth's amount. A difference rather than a ratio because many
                       photos have (almost) no warm pixels, where a ratio is undefined or huge and
                       its mean over photos meaningless; the ratio of the summary rows,
                       warm_share(method) / warm_share(truth), is the "x times the truth's" figure.
checkerboard_2px       The ab power spectrum's peak at period 2 px (the Nyquist lines and corner)
checkerboard_4px       and period 4 px (the frequencies 1/4 cycle/px; see :func:`checkerboard_ratio`)
                       relative to the neighbouring frequencies: about 1 for a clean photo,
                       well above 1 for the checkerboard of transposed convolutions (stride 2:
                       2 px; two of them: 4 px too). NaN for images without colour or under 32 px.
edge_bleed             How much more gradually the output's colour changes across the truth's
                       strong luminance edges (where the truth's colour also changes) than the
                       truth's does: 1 - S(output) / S(truth), with S the colour step over 4 px
                       across the edge divided by the step over 16 px (see :func:`edge_bleed`).
                       0: as crisp as the truth; towards 1: colour smeared across the edge;
                       < 0: colour changing more abruptly than the truth's - in practice colour
                       noise or blotches, which make the near step as large as the far one (so
                       best near 0, like colourfulness). NaN without qualifying edges or output
                       colour. It measures crispness over 4-16 px, not colour spilling into a
                       whole neighbouring region (that shows in the AuC and false-hue numbers).
=====================  =========================================================================

Hand-made images with known answers check each one in ``tests/experiments/test_artefacts.py``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch.nn import functional as F

from ._common import check_pair, check_reduction, check_single, reduce, rgb_to_lab32

#: Truth pixels where a false colour shows: near-neutral (chroma below this) ...
NEUTRAL_CHROMA = 10.0
#: ... or bright (L above this).
BRIGHT_L = 80.0
#: A "strong" colour: output chroma at least this, and at least this far (ab) from the truth's.
STRONG_CHROMA = 20.0
#: Magenta / purple / pink hue range, degrees (a > 0, -a <= b < 0).
MAGENTA_HUE = (315.0, 360.0)
#: Warm orange / sepia / brown: hue range in degrees and minimum chroma.
WARM_HUE = (45.0, 90.0)
WARM_CHROMA = 15.0
#: Checkerboard: peak area (Chebyshev radius in frequency bins) and the neighbours' ring (radii).
PEAK_RADIUS = 1
RING_RADII = (2, 4)
CHECKER_MIN_SIZE = 32
#: Below this ab standard deviation an image has no colour to show a pattern in.
MIN_AB_STD = 0.1
#: Edge bleed: strong luminance edge (|grad L| in L units per pixel, Sobel), truth colour contrast
#: across it (ab distance between the two sides, 8 px away), near and far sampling offsets (px).
EDGE_GRADIENT = 10.0
EDGE_COLOUR_STEP = 10.0
NEAR, FAR = 2.0, 8.0

ARTEFACT_COLUMNS = (
    "false_hue_share",
    "magenta_share",
    "warm_share",
    "warm_share_diff",
    "checkerboard_2px",
    "checkerboard_4px",
    "edge_bleed",
)
#: column -> (label for tables, direction: +1 higher is better, -1 lower, 0 neither / near the truth)
ARTEFACT_INFO: dict[str, tuple[str, int]] = {
    "false_hue_share": ("false hue (neutral/bright px)", -1),
    "magenta_share": ("magenta (neutral/bright px)", -1),
    "warm_share": ("warm share", 0),
    "warm_share_diff": ("warm - truth's", 0),
    "checkerboard_2px": ("checker 2 px", -1),
    "checkerboard_4px": ("checker 4 px", -1),
    "edge_bleed": ("edge bleed", 0),  # 0 is the truth's; < 0 (noisy colour) is no better than > 0
}


# --- per-pixel colour classes ----------------------------------------------------------------------


def _chroma_hue(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``N x 3 x H x W`` Lab -> chroma and hue angle in degrees [0, 360), each ``N x H x W``."""
    a, b = lab[:, 1].float(), lab[:, 2].float()
    return torch.hypot(a, b), torch.rad2deg(torch.atan2(b, a)) % 360.0


def _share(mask: torch.Tensor, of: torch.Tensor | None = None) -> torch.Tensor:
    """Per image: ``mask`` pixels / ``of`` pixels (all pixels when None); NaN when ``of`` is empty."""
    num = mask.flatten(1).sum(1, dtype=torch.float64)
    den = torch.full_like(num, float(mask[0].numel())) if of is None else of.flatten(1).sum(1, dtype=torch.float64)
    return torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, math.nan))


def _false_hue(lab_x: torch.Tensor, lab_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(eligible truth pixels, false-hue pixels, magenta false-hue pixels), boolean ``N x H x W``."""
    c_x, h_x = _chroma_hue(lab_x)
    c_y, _ = _chroma_hue(lab_y)
    eligible = (c_y < NEUTRAL_CHROMA) | (lab_y[:, 0] > BRIGHT_L)
    d = (lab_x[:, 1:] - lab_y[:, 1:]).float()
    false = eligible & (c_x >= STRONG_CHROMA) & (torch.hypot(d[:, 0], d[:, 1]) >= STRONG_CHROMA)
    magenta = false & (h_x >= MAGENTA_HUE[0]) & (h_x < MAGENTA_HUE[1])
    return eligible, false, magenta


def _warm(lab: torch.Tensor) -> torch.Tensor:
    c, h = _chroma_hue(lab)
    return (c >= WARM_CHROMA) & (h >= WARM_HUE[0]) & (h < WARM_HUE[1])


# --- checkerboard: periodicity of the ab spectrum ----------------------------------------------------


@lru_cache(maxsize=16)
def _checker_masks(h: int, w: int, period: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean ``H x W`` masks of the peak areas and of their neighbour rings, for one period.

    Period 2: the frequencies (1/2, 0), (0, 1/2), (1/2, 1/2) (cycles per pixel, vertical and
    horizontal). Period 4: every (fy, fx) with fy, fx in {0, +-1/4, 1/2} and at least one of them
    +-1/4 (a 4-px tile's harmonics that a 2-px tile does not have). A peak area is the bins within
    Chebyshev distance ``PEAK_RADIUS`` of such a frequency (with the periodic Hann window, all of
    a pure periodic pattern's power); its ring the bins at distance ``RING_RADII`` (inclusive),
    minus any peak area and the zero-frequency area.
    """
    if period == 2:
        fy, fx = (0.0, 0.5), (0.0, 0.5)
        keep = lambda u, v: (u, v) != (0, 0)  # noqa: E731
    elif period == 4:
        fy = fx = (0.0, 0.25, -0.25, 0.5)
        keep = lambda u, v: abs(u) == 0.25 or abs(v) == 0.25  # noqa: E731
    else:
        raise ValueError(f"checkerboard_ratio: period must be 2 or 4, got {period}")
    points = {(round(u * h) % h, round(v * w) % w) for u in fy for v in fx if keep(u, v)}
    iy = torch.arange(h).view(h, 1)
    ix = torch.arange(w).view(1, w)

    def cheb(ky: int, kx: int) -> torch.Tensor:
        dy = torch.minimum((iy - ky) % h, (ky - iy) % h)
        dx = torch.minimum((ix - kx) % w, (kx - ix) % w)
        return torch.maximum(dy, dx)

    peak = torch.zeros(h, w, dtype=torch.bool)
    ring = torch.zeros_like(peak)
    for ky, kx in points:
        d = cheb(ky, kx)
        peak |= d <= PEAK_RADIUS
        ring |= (d >= RING_RADII[0]) & (d <= RING_RADII[1])
    blocked = cheb(0, 0) <= RING_RADII[0] - 1  # the mean and the lowest frequencies
    for u in (0.0, 0.25, -0.25, 0.5):  # the other period's peaks are not "neighbouring frequencies" either
        for v in (0.0, 0.25, -0.25, 0.5):
            if (u, v) != (0.0, 0.0):
                blocked |= cheb(round(u * h) % h, round(v * w) % w) <= PEAK_RADIUS
    return peak, ring & ~blocked & ~peak


def _checkerboard(lab: torch.Tensor, periods: tuple[int, ...] = (2, 4)) -> list[torch.Tensor]:
    """Per image and period: peak power / neighbouring power of the ab spectrum (one FFT)."""
    n, _, h, w = lab.shape
    if min(h, w) < CHECKER_MIN_SIZE:
        return [torch.full((n,), math.nan, dtype=torch.float64) for _ in periods]
    ab = lab[:, 1:].float()
    ab = ab - ab.mean((2, 3), keepdim=True)
    colourless = ab.flatten(1).std(1) < MIN_AB_STD
    out = [torch.full((n,), math.nan, dtype=torch.float64) for _ in periods]
    coloured = torch.nonzero(~colourless).flatten().cpu()
    if len(coloured) == 0:  # e.g. the grey row: NaN, no spectrum needed
        return out
    if len(coloured) < n:
        ab = ab[coloured.to(ab.device)]
    hann = lambda k: torch.hann_window(k, periodic=True, device=ab.device)  # noqa: E731
    power = torch.fft.fft2(ab * (hann(h).view(h, 1) * hann(w).view(1, w))).abs().square().sum(1)  # a and b together
    for k, period in enumerate(periods):
        peak, ring = (m.to(ab.device) for m in _checker_masks(h, w, period))
        ratio = power[:, peak].double().mean(1) / power[:, ring].double().mean(1).clamp_min(1e-300)
        out[k][coloured] = ratio.cpu()
    return out


# --- edge bleed ----------------------------------------------------------------------------------------


def _step(ab: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """ab distance between the samples at offsets ``i`` and ``j`` of ``2 x offsets x K`` samples."""
    d = ab[:, i] - ab[:, j]
    return torch.hypot(d[0], d[1]).double()


def _edge_bleed(lab_x: torch.Tensor, lab_y: torch.Tensor) -> torch.Tensor:
    n, _, h, w = lab_y.shape
    out = torch.full((n,), math.nan, dtype=torch.float64)
    margin = int(math.ceil(FAR)) + 1
    if min(h, w) <= 2 * margin:
        return out
    L = F.pad(lab_y[:, :1].float(), (1, 1, 1, 1), mode="replicate")
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=L.device) / 8
    g = F.conv2d(L, torch.stack([sobel, sobel.t()]).unsqueeze(1))  # N x 2 x H x W: d/dx, d/dy
    mag = torch.hypot(g[:, 0], g[:, 1])
    edge = mag >= EDGE_GRADIENT
    edge[:, :margin] = edge[:, -margin:] = False
    edge[:, :, :margin] = edge[:, :, -margin:] = False
    both = torch.cat([lab_y[:, 1:], lab_x[:, 1:]], 1).float()  # truth ab, output ab
    offsets = torch.tensor([FAR, NEAR, -NEAR, -FAR], device=L.device).view(4, 1)
    # an output whose a and b each vary less than this cannot change colour by MIN_AB_STD anywhere
    # (bilinear samples stay within each channel's range): NaN without sampling (e.g. the grey row)
    lo, hi = torch.aminmax(lab_x[:, 1:].flatten(2).float(), dim=2)
    flat = (torch.hypot(*(hi - lo).unbind(1)) < MIN_AB_STD).tolist()
    for i in range(n):
        if flat[i]:
            continue
        ys, xs = torch.nonzero(edge[i], as_tuple=True)
        if len(ys) == 0:
            continue
        m = mag[i, ys, xs]
        py = ys.float() + offsets * (g[i, 1, ys, xs] / m)  # 4 x K: points along the gradient
        px = xs.float() + offsets * (g[i, 0, ys, xs] / m)
        grid = torch.stack([px / (w - 1) * 2 - 1, py / (h - 1) * 2 - 1], -1).unsqueeze(0)  # 1 x 4 x K x 2
        v = F.grid_sample(both[i : i + 1], grid, mode="bilinear", align_corners=True)[0]  # 4 channels x 4 offsets x K

        truth, output = v[:2], v[2:]
        far_y = _step(truth, 0, 3)
        keep = far_y >= EDGE_COLOUR_STEP  # the truth's colour changes across this edge
        if not keep.any():
            continue
        near_y, near_x, far_x = (t[keep] for t in (_step(truth, 1, 2), _step(output, 1, 2), _step(output, 0, 3)))
        if float(far_x.mean()) < MIN_AB_STD:  # no colour change in the output: nothing to bleed
            continue
        out[i] = 1.0 - float((near_x.sum() / far_x.sum()) / (near_y.sum() / far_y[keep].sum()))
    return out


# --- public functions --------------------------------------------------------------------------------


def artefacts_from_lab(lab_x: torch.Tensor, lab_y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every artefact column from Lab tensors ``N x 3 x H x W`` (output, truth): column -> ``N``
    float64 values on the CPU (what :func:`experiments.metrics.pixel_metrics` adds)."""
    eligible, false, magenta = _false_hue(lab_x, lab_y)
    warm_x, warm_y = _share(_warm(lab_x)), _share(_warm(lab_y))
    checker = _checkerboard(lab_x)
    out = {
        "false_hue_share": _share(false, eligible),
        "magenta_share": _share(magenta, eligible),
        "warm_share": warm_x,
        "warm_share_diff": warm_x - warm_y,
        "checkerboard_2px": checker[0],
        "checkerboard_4px": checker[1],
        "edge_bleed": _edge_bleed(lab_x, lab_y),
    }
    return {k: v.double().cpu() for k, v in out.items()}


def false_hue_share(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """Share of the truth's near-neutral or bright pixels given a strong colour the truth lacks."""
    check_reduction(reduction)
    check_pair(x, y, data_range, name="false_hue_share")
    eligible, false, _ = _false_hue(rgb_to_lab32(x, data_range), rgb_to_lab32(y, data_range))
    return reduce(_share(false, eligible).cpu(), reduction)


def magenta_share(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """Share of the truth's near-neutral or bright pixels given a false magenta / purple / pink."""
    check_reduction(reduction)
    check_pair(x, y, data_range, name="magenta_share")
    eligible, _, magenta = _false_hue(rgb_to_lab32(x, data_range), rgb_to_lab32(y, data_range))
    return reduce(_share(magenta, eligible).cpu(), reduction)


def warm_share(x: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """Share of warm orange / sepia / brown pixels (C >= 15, 45 <= h < 90 degrees)."""
    check_reduction(reduction)
    check_single(x, data_range, name="warm_share")
    return reduce(_share(_warm(rgb_to_lab32(x, data_range))).cpu(), reduction)


def warm_share_difference(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """``warm_share(x) - warm_share(y)``: > 0 when the output is warmer (more orange) than the truth."""
    check_reduction(reduction)
    check_pair(x, y, data_range, name="warm_share_difference")
    return reduce(warm_share(x, data_range) - warm_share(y, data_range), reduction)


def checkerboard_ratio(x: torch.Tensor, data_range: float = 1.0, period: int = 2, reduction: str = "none") -> torch.Tensor:
    """Periodicity of the output's colour at ``period`` (2 or 4) pixels.

    The a and b planes (mean removed, periodic 2-D Hann window) are Fourier transformed and their
    power summed; the result is the mean power in the peak areas of that period (see
    :func:`_checker_masks`) divided by the mean power of the bins around them. A natural photo's
    spectrum falls smoothly, so about 1 (bins are exponentially distributed, so single photos
    scatter by some 10-20%); a periodic pattern adds power to the peaks only. NaN when the image has
    no colour (ab standard deviation < 0.1) or a side under 32 px.
    """
    check_reduction(reduction)
    check_single(x, data_range, name="checkerboard_ratio")
    if period not in (2, 4):
        raise ValueError(f"checkerboard_ratio: period must be 2 or 4, got {period}")
    return reduce(_checkerboard(rgb_to_lab32(x, data_range), (period,))[0], reduction)


def edge_bleed(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "none") -> torch.Tensor:
    """Colour smeared across luminance edges, relative to the truth.

    Edge pixels: the truth's Sobel ``|grad L| >= 10`` L units per pixel, at least 9 px from the
    border, whose truth colours 8 px to either side (along the gradient) differ by ``>= 10`` in ab
    - object boundaries that change colour. At each, ``near`` is the ab distance between the
    points 2 px to either side and ``far`` between those 8 px to either side; ``S = sum(near) /
    sum(far)`` is 1 for a crisp colour edge and about 4 / 16 for a colour ramp 16 px wide. The value
    is ``1 - S(output) / S(truth)``: it does not depend on how saturated or how right the colours
    are, only on how abruptly they change where the luminance does. NaN when the truth has no such
    edge or the output's colour does not change across them (a grey output).
    """
    check_reduction(reduction)
    check_pair(x, y, data_range, name="edge_bleed")
    return reduce(_edge_bleed(rgb_to_lab32(x, data_range), rgb_to_lab32(y, data_range)), reduction)
