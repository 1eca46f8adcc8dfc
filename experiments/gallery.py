"""Build neural_style's reference gallery: ``python -m experiments.gallery``.

    python -m experiments.gallery                   # curate ../shared/data/{train,train_extra}: .toml + .npz
    python -m experiments.gallery --features-only   # only recompute the .npz for the listed photos
    python -m experiments.gallery --check           # exit 1 when the .npz does not match the list

The rule (the same for every label folder): score the first ``--scan`` photos of the folder (name
order) by Hasler & Suesstrunk colourfulness and take ``--per-label`` of them at evenly spaced
ranks between the ``--band`` percentiles (default 3 between the 80th and the 94th) - clearly
colourful, but not the garish extremes. The list goes to ``backends/assets/neural_style_gallery.toml``
as paths relative to the data folder (photos are referenced, never copied); the semantic features
of their *grey* versions (SqueezeNet 1.1, see ``backends.neural_style.semantic_features``) go to
``neural_style_gallery.npz`` beside it, keyed by path and file size, with the weights file they
came from. Run it again whenever the data or the weights change; the backend computes any photo
the ``.npz`` lacks on the fly, so a stale file costs time, never correctness.

Exit status: 0 on success, 1 for ``--check`` finding a stale file, 2 for bad input (a missing
folder, no SqueezeNet weights) with one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from backends import color
from backends.base import PROJECT_ROOT
from backends.errors import ImageError, WeightsUnavailable
from backends.imageio import is_image_file, load_image
from backends.neural_style import (
    GALLERY_FEATURES,
    GALLERY_FILE,
    gallery_feature_key,
    gallery_paths,
    load_gallery_features,
    load_semantic_encoder,
    save_gallery_features,
    semantic_features,
)

DATA = PROJECT_ROOT.parent / "shared" / "data"
DEFAULT_ROOTS = (DATA / "train", DATA / "train_extra")

HEADER = """\
# neural_style's shipped reference gallery: the colour photos an automatic reference is picked
# from (by semantic similarity of their grey versions to the grey input - SqueezeNet 1.1 features,
# precomputed in neural_style_gallery.npz - or, without SqueezeNet weights, by greyscale
# similarity; never the input's own colour original).
# Built by: python -m experiments.gallery (see its --help for the rule) from {roots}:
# for each of the {labels} label folders, the first {scan} photos in name order are scored by
# Hasler & Suesstrunk colourfulness and {per_label} are taken at evenly spaced ranks between the
# {lo:.0f}th and {hi:.0f}th percentile - clearly colourful, but not the garish extremes. Paths are
# relative to `root` (itself relative to the project root); a user without ../shared falls back to
# scikit-image's bundled colour photos, and can point the gallery option at any folder or list.
"""


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk M3 of one RGB uint8 photo (``experiments.metrics.colorfulness``)."""
    import torch

    from experiments.metrics import colorfulness

    return float(colorfulness(torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].double(), 255.0)[0])


def curate(roots, base: Path, per_label: int = 3, scan: int = 200, band=(0.80, 0.94), progress: bool = True) -> list[str]:
    """The rule above over every label folder of ``roots``: photo paths relative to ``base``."""
    chosen: list[str] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a folder of label folders")
        for label in sorted(d for d in root.iterdir() if d.is_dir()):
            files = sorted(f for f in label.iterdir() if is_image_file(f))[:scan]
            scores = []
            for f in files:
                try:
                    scores.append(colourfulness(load_image(f, mode="rgb")))
                except ImageError:
                    scores.append(-1.0)  # unreadable: ranked lowest, never inside the band
            if not files:
                continue
            order = np.argsort(scores, kind="stable")
            ranks = np.linspace(band[0], band[1], per_label) * (len(files) - 1)
            picks = list(dict.fromkeys(files[order[int(round(r))]] for r in ranks))
            chosen += [Path(p).resolve().relative_to(base.resolve()).as_posix() for p in picks]
            if progress:
                print(f"{label.relative_to(root.parent)}: {len(files)} scored, {len(picks)} taken", file=sys.stderr)
    return chosen


def write_list(path: Path, base: Path, photos: list[str], roots, per_label: int, scan: int, band) -> None:
    import os

    labels = len({p.rsplit("/", 1)[0] for p in photos})
    rel_roots = ", ".join(Path(os.path.relpath(Path(r).resolve(), PROJECT_ROOT)).as_posix() for r in roots)
    text = HEADER.format(roots=rel_roots, labels=labels, scan=scan, per_label=per_label, lo=band[0] * 100, hi=band[1] * 100)
    root = Path(os.path.relpath(base.resolve(), PROJECT_ROOT)).as_posix()
    text += f'[gallery]\nroot = "{root}"\nphotos = [\n' + "".join(f'    "{p}",\n' for p in photos) + "]\n"
    path.write_text(text)


def compute_features(list_file: Path, features_file: Path, device: str = "cpu") -> tuple[int, str]:
    """(photos, weights used): the semantic features of the grey version of every listed photo."""
    net, found = load_semantic_encoder(device)
    paths = gallery_paths([str(list_file)])
    planes = [color.rgb_to_lab(load_image(p, mode="rgb"))[..., 0] for p in paths]
    save_gallery_features(features_file, paths, semantic_features(net, planes), found.path)
    return len(paths), f"{found.path} ({found.source})"


def stale(list_file: Path, features_file: Path) -> list[str]:
    """Listed photos whose features the file lacks (or all, when made with other weights)."""
    from backends.weights import resolve

    stored = load_gallery_features(features_file, resolve("squeezenet").path)
    return [p.as_posix() for p in gallery_paths([str(list_file)]) if gallery_feature_key(p) not in stored]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.gallery", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    p.add_argument("--roots", nargs="+", type=Path, default=list(DEFAULT_ROOTS), help="folders of label folders")
    p.add_argument("--base", type=Path, default=DATA, help="the list's paths are relative to this folder")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / GALLERY_FILE, help="the gallery list (.toml)")
    p.add_argument("--features", type=Path, default=PROJECT_ROOT / GALLERY_FEATURES, help="the features file (.npz)")
    p.add_argument("--per-label", type=int, default=3)
    p.add_argument("--scan", type=int, default=200)
    p.add_argument("--band", type=float, nargs=2, default=(0.80, 0.94), metavar=("LOW", "HIGH"))
    p.add_argument("--features-only", action="store_true", help="keep the list, recompute the features")
    p.add_argument("--check", action="store_true", help="only report whether the features match the list")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    try:
        if not 0 <= args.band[0] <= args.band[1] <= 1 or args.per_label < 1 or args.scan < 1:
            raise ValueError("--band needs 0 <= LOW <= HIGH <= 1, --per-label and --scan at least 1")
        if args.check:
            missing = stale(args.out, args.features)
            print(f"{args.features}: {'up to date' if not missing else f'{len(missing)} photos stale, e.g. {missing[0]}'}")
            return 1 if missing else 0
        t0 = time.time()
        if not args.features_only:
            photos = curate(args.roots, args.base, args.per_label, args.scan, tuple(args.band))
            write_list(args.out, args.base, photos, args.roots, args.per_label, args.scan, tuple(args.band))
            print(f"{args.out}: {len(photos)} photos ({time.time() - t0:.0f} s)")
        n, weights = compute_features(args.out, args.features, args.device)
        print(f"{args.features}: features of {n} photos from {weights} ({time.time() - t0:.0f} s)")
    except (FileNotFoundError, ValueError, WeightsUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
