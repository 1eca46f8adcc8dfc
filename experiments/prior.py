"""Compute the ab bin set and its empirical prior: ``python -m experiments.prior [--data DIR ...]``.

Q = the ab cells on a grid of 10 that some 8-bit sRGB colour falls into (261), plus any cell the
training photos hit (none more, by construction), so every training ab value falls in a kept bin;
the stricter test (bin centre inside sRGB for some L, 226 cells) is recorded beside it.
The prior (fraction of pixels per bin) drives Zhang et al.'s class rebalancing. Writes
``backends/assets/ab_gamut.npz`` and prints Q.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from backends import color
from backends.imageio import load_image
from experiments.config import project_path
from experiments.data import scan_folder


def cache_counts(roots, progress: bool = True) -> np.ndarray:
    """Bin counts over the pre-decoded training cache (experiments.datacache: the photos with their
    shorter side at most 160 px, as the methods train on them) - seconds instead of minutes."""
    from experiments.datacache import build_cache

    cache = build_cache(roots, progress=progress)
    counts = np.zeros(len(color.grid_centres()), np.int64)
    it = range(len(cache))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="ab prior (cache)", unit="img", file=sys.stderr)
    for i in it:
        lab = color.rgb_to_lab(cache.image(i))
        counts += np.bincount(color.nearest_grid_index(lab[..., 1:]).ravel(), minlength=len(counts))
    return counts


def grid_counts(root, size: int = 64, limit: int | None = None, progress: bool = True) -> np.ndarray:
    roots = [root] if isinstance(root, (str, Path)) else list(root)
    samples = [s for r in roots for s in scan_folder(r)[0]]
    if limit:
        samples = samples[:: max(1, len(samples) // limit)][:limit]
    counts = np.zeros(len(color.grid_centres()), np.int64)
    it = samples
    if progress:
        from tqdm import tqdm

        it = tqdm(samples, desc="ab prior", unit="img", file=sys.stderr)
    for s in it:
        rgb = load_image(s.path, mode="rgb")
        lab = color.rgb_to_lab(rgb)
        counts += np.bincount(color.nearest_grid_index(lab[..., 1:]).ravel(), minlength=len(counts))
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.prior", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", default=["../shared/data/train", "../shared/data/train_extra"], help="training folders (default: train and train_extra)")
    p.add_argument("--limit", type=int, default=0, help="use about this many photos (0: all)")
    p.add_argument("--full-size", action="store_true", help="decode the photos at full size instead of reading the training cache")
    p.add_argument("--out", default=str(color.ASSET))
    args = p.parse_args(argv)
    roots = [project_path(d) for d in args.data]
    counts = grid_counts(roots, limit=args.limit or None) if args.full_size or args.limit else cache_counts(roots)
    gamut = color.gamut_from_counts(counts, source=f"{' + '.join(args.data)} ({'all' if not args.limit else args.limit} photos{'' if args.full_size or args.limit else ', training cache'})")
    gamut.save(project_path(args.out))
    print(f"strict-centre bins: {gamut.strict_count}; kept Q = {gamut.q}; bins hit by the photos: {int((counts > 0).sum())}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
