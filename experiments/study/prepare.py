"""Pre-generate every image a study shows, so trials load instantly.

For each photo of the design: the real photo (centre crop, resized to ``size`` x ``size``), each
method's colorization of its lightness (``backends.load(name).colorize`` - the shared flow keeps
the real photo's L, so real and fake differ only in colour), and for Turing studies the
vigilance image: the same photo with its colours turned obviously wrong (hues rotated by 180
degrees, chroma boosted, a magenta cast added so that even near-grey photos look wrong).

Images are stored as PNG bytes (no metadata) in the study database under random ids, so the
participant pages never handle a file name, and every app instance sharing the database serves
the same pictures. Preparing again fills only what is missing (resumable after an interruption);
once participants have joined, the images are frozen.

What reaches the browser is :func:`wire_png`: the pixels re-encoded as an uncompressed RGB PNG
with no ancillary chunks, so every image of a study has the same dimensions and exactly the same
byte length - a colorization, which compresses better than a real photo, can no longer be
spotted by its size.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from backends import color
from backends.errors import ImageError
from backends.imageio import is_image_file, load_image

from .protocol import REAL, VIGILANCE, roles_needed
from .storage import StudyStore

Colorize = Callable[[np.ndarray], np.ndarray]


def square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Centre crop to a square, then resize to ``size`` x ``size`` (Lanczos)."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(np.ascontiguousarray(rgb[top : top + s, left : left + s]))
    return np.asarray(im.resize((size, size), Image.LANCZOS) if s != size else im)


def png_bytes(rgb: np.ndarray) -> bytes:
    """Compressed PNG for storage (never sent to participants as is; see :func:`wire_png`)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, np.uint8)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def wire_png(png: bytes) -> bytes:
    """The bytes a participant receives: RGB, zlib level 0 (stored blocks, so the length
    depends on the dimensions only), no filters chosen by content, no metadata chunks."""
    with Image.open(io.BytesIO(png)) as im:
        rgb = im.convert("RGB")
    buf = io.BytesIO()
    rgb.save(buf, format="PNG", compress_level=0, optimize=False)
    return buf.getvalue()


#: Seconds per photo when no benchmark of this machine is at hand (2-core CPU figures).
FALLBACK_SECONDS = {"neural_style": 10.0}
FALLBACK_FEEDFORWARD = 0.1


def seconds_per_photo(method: str, size: int = 256) -> float:
    """Time to colorize one photo of ``size`` px with ``method``: the slowest benchmark row of
    ``results/benchmarks/*.csv`` at the nearest size, else a rough CPU figure."""
    import csv

    from .storage import PROJECT_ROOT

    best: tuple[int, float] | None = None
    for f in sorted((PROJECT_ROOT / "results" / "benchmarks").glob("*.csv")):
        try:
            with open(f, newline="") as fh:
                for row in csv.DictReader(fh):
                    if row.get("kind") != "latency" or row.get("method") != method or not row.get("median_s"):
                        continue
                    gap, sec = abs(int(float(row["size"])) - size), float(row["median_s"])
                    if best is None or gap < best[0] or (gap == best[0] and sec > best[1]):
                        best = (gap, sec)
        except (OSError, ValueError, KeyError):
            continue
    if best is not None:
        return best[1]
    return FALLBACK_SECONDS.get(method, FALLBACK_FEEDFORWARD)


def estimate_seconds(methods: list[str], n_photos: int, size: int = 256) -> float:
    """Rough preparation time of a study: every photo through every method (plus ~5 % for
    reading photos and the real / vigilance images)."""
    return 1.05 * n_photos * sum(seconds_per_photo(m, size) for m in methods) + 2.0 * len(methods)


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def vigilance_image(rgb: np.ndarray) -> np.ndarray:
    """An obviously wrong recolouring with the photo's own lightness."""
    lab = color.rgb_to_lab(rgb)
    ab = -1.8 * lab[..., 1:] + np.array([35.0, -30.0])
    return color.lab_to_rgb_uint8(np.concatenate([lab[..., :1], ab], axis=-1))


def hue_rotation_colorizer(degrees: float = 40.0, gain: float = 0.8) -> Colorize:
    """A deterministic stand-in colorizer for tests and demos: the photo's own ab, rotated by
    ``degrees`` and scaled by ``gain`` (needs the colour photo, unlike a real method)."""
    t = np.deg2rad(degrees)
    rot = gain * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])

    def colorize(rgb: np.ndarray) -> np.ndarray:
        lab = color.rgb_to_lab(rgb)
        ab = lab[..., 1:] @ rot.T
        return color.lab_to_rgb_uint8(np.concatenate([lab[..., :1], ab], axis=-1))

    return colorize


def sample_photos(folder: str | Path, n: int, seed: int = 0) -> list[str]:
    """``n`` image files drawn at random (seeded) from ``folder`` and its sub-folders."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: photo folder not found")
    files = sorted(str(p) for p in folder.rglob("*") if is_image_file(p))
    if not files:
        raise FileNotFoundError(f"{folder}: no images found")
    if n >= len(files):
        return files
    pick = np.random.default_rng(seed).choice(len(files), n, replace=False)
    return sorted(files[i] for i in pick)


@dataclass
class PrepareReport:
    ready: int = 0
    generated: int = 0
    skipped: list[str] = field(default_factory=list)  # "file: reason"


def prepare(
    store: StudyStore,
    study: str,
    colorizers: dict[str, Colorize] | None = None,
    device: str = "auto",
    progress: Callable[[int, int, str], None] | None = None,
) -> PrepareReport:
    """Generate and store the images ``study`` still lacks.

    ``colorizers`` maps a method name to ``rgb -> rgb``; methods not given are opened with
    ``backends.load(name, device)`` (raises :class:`backends.BackendUnavailable` with the fix).
    """
    s = store.require(study)
    design = s.design
    colorizers = dict(colorizers or {})
    roles = roles_needed(design)
    report = PrepareReport()
    total = len(design.photos)
    for i, source in enumerate(design.photos):
        if progress:
            progress(i, total, Path(source).name)
        photo = store.photo_id(study, source)
        missing = [r for r in roles if not store.has_image(study, photo, r)]
        if missing:
            try:
                real = square(load_image(source, mode="rgb"), design.size)
            except ImageError as exc:
                report.skipped.append(str(exc))
                continue
            for role in missing:
                if role == REAL:
                    img = real
                elif role == VIGILANCE:
                    img = vigilance_image(real)
                else:
                    if role not in colorizers:
                        import backends

                        model = backends.load(role, device)
                        colorizers[role] = model.colorize
                    img = np.asarray(colorizers[role](real), np.uint8)
                    if img.shape != real.shape:
                        raise ValueError(f"{role}: colorizer returned shape {img.shape}, expected {real.shape}")
                store.add_image(study, photo, role, png_bytes(img))
                report.generated += 1
        report.ready += 1
    if progress:
        progress(total, total, "done")
    return report
