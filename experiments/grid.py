"""A comparison grid for the README: ``python -m experiments.grid --out results/sample_grid.jpg``.

Rows: photos (one per class, deterministic); columns: grey input, each available method, ground
truth. Methods that are unavailable are listed on stderr and left out. Beside the image,
``<out>.json`` names the photos and the checkpoint (path, SHA-256) behind each column.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import backends
from backends import color
from backends.base import PROJECT_ROOT
from backends.errors import ColorizationError
from backends.imageio import load_image
from experiments import provenance
from experiments.config import project_path
from experiments.data import scan_folder

#: height of the title strip above the tiles (the report reads the grid's rows below it)
HEAD = 22


def pick_photos(root: Path, count: int) -> list[Path]:
    """One photo per class in turn (the middle file of each class folder), ``count`` in all."""
    samples, classes = scan_folder(root)
    by_class: dict[int, list[Path]] = {}
    for s in samples:
        by_class.setdefault(s.label, []).append(s.path)
    picks: list[Path] = []
    depth = 0
    while len(picks) < count and depth < 10:
        for files in by_class.values():
            i = len(files) // 2 + depth * 7
            if i < len(files) and len(picks) < count:
                picks.append(files[i])
        depth += 1
    return picks


def sidecar(grid_path: Path) -> Path:
    """``results/sample_grid.jpg`` -> ``results/sample_grid.json``: the photos and checkpoints it shows."""
    return Path(grid_path).with_suffix(".json")


def _rel(p: Path) -> str:
    """A photo's path as the README's commands name it (``../shared/data/...``, from the project)."""
    return os.path.relpath(Path(p).resolve(), PROJECT_ROOT)


def tile(img: np.ndarray, size: int) -> Image.Image:
    return Image.fromarray(img).resize((size, size), Image.BICUBIC)


def make_grid(photos: list[Path], methods: list[str], size: int = 160, device: str = "auto", progress: bool = True,
              made_from: dict | None = None) -> Image.Image:  # fmt: skip
    """The grid image; ``made_from`` (when given) receives each column's checkpoint record."""
    models = {}
    for m in methods:
        try:
            models[m] = backends.load(m, device=device)
        except ColorizationError as exc:
            print(f"skipping {m}: {exc}", file=sys.stderr)
            continue
        if made_from is not None:
            made_from[m] = provenance.checkpoint_record(models[m])
    cols = ["input (grey)", *models, "ground truth"]
    head = HEAD
    grid = Image.new("RGB", (size * len(cols), head + size * len(photos)), "white")
    draw = ImageDraw.Draw(grid)
    for j, c in enumerate(cols):
        draw.text((j * size + 6, 5), c, fill="black")
    it = photos
    if progress:
        from tqdm import tqdm

        it = tqdm(photos, desc="grid", unit="photo", file=sys.stderr)
    for i, p in enumerate(it):
        rgb = load_image(p, mode="rgb")
        grey = color.lab_to_rgb_uint8(color.rgb_to_lab(rgb) * np.array([1, 0, 0], np.float32))
        outs = [grey] + [models[m].colorize(grey) for m in models] + [rgb]
        for j, o in enumerate(outs):
            grid.paste(tile(o, size), (j * size, head + i * size))
    return grid


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.grid", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/val")
    p.add_argument("--count", type=int, default=12)
    p.add_argument("--methods", default="all")
    p.add_argument("--size", type=int, default=160, help="tile size in the grid")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="results/sample_grid.jpg")
    args = p.parse_args(argv)
    methods = backends.names() if args.methods == "all" else [m.strip() for m in args.methods.split(",")]
    try:
        photos = pick_photos(project_path(args.data), args.count)
        made_from: dict = {}
        grid = make_grid(photos, methods, args.size, args.device, made_from=made_from)
    except (ColorizationError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = project_path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out, quality=88)
    # what the grid was made from, beside it: experiments.readme --check tells a grid of replaced checkpoints
    side = sidecar(out)
    side.write_text(json.dumps({"photos": [_rel(p) for p in photos], "made_from": made_from,
                                "created": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out} ({len(photos)} photos) and {side.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
