"""Pre-decoded training photos and a step-exact sample stream.

Training on 2 CPU cores must not be bound by JPEG decoding, and a resumed run must continue
exactly where it stopped. So:

* :func:`build_cache` decodes every photo of the training folders ONCE into one uint8 file
  (``results/cache/<name>-<key>.u8``, memory-mapped), each photo stored as RGB with its shorter side
  reduced to at most ``short`` pixels (never enlarged), plus an index (offset, height, width,
  label). The key hashes the file list (paths, sizes, mtimes) and ``short``, so a changed folder
  builds a new cache. Near-grey photos (mean CIELAB chroma < ``min_chroma``) are left out, as the
  image-folder dataset does.
* :class:`StreamCrops` maps a position in the infinite training stream to a sample: position
  ``p`` is photo ``perm_e[p mod N]`` of epoch ``e = p // N`` (a permutation seeded by (seed, e)),
  cropped and flipped by a generator seeded by (seed, p). So the stream is a pure function of the
  position: a run resumed at ``images_seen`` draws exactly the batches an uninterrupted run would
  have drawn, whatever the number of data-loader workers.
* :class:`StreamBatches` yields the positions of each batch (``world`` ranks interleaved).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from backends import color
from backends.base import PROJECT_ROOT
from backends.errors import ImageError
from backends.imageio import load_image

from .data import scan_folder

#: Where caches live: ``COLORIZE_CACHE_DIR``, else results/cache (not committed).
CACHE_DIR = Path(os.environ.get("COLORIZE_CACHE_DIR") or PROJECT_ROOT / "results" / "cache")
CACHE_VERSION = 1


@dataclass
class PhotoCache:
    """A memory-mapped block of uint8 RGB photos with their index."""

    data: np.ndarray  # flat uint8 memmap
    index: np.ndarray  # N x 4 int64: offset, height, width, label
    classes: list[str]
    path: Path

    def __len__(self) -> int:
        return len(self.index)

    def image(self, i: int) -> np.ndarray:
        off, h, w, _ = (int(v) for v in self.index[i])
        return np.asarray(self.data[off : off + h * w * 3]).reshape(h, w, 3)

    def label(self, i: int) -> int:
        return int(self.index[i, 3])

    @property
    def nbytes(self) -> int:
        return int(self.data.shape[0])


def _listing(roots: list[Path]) -> tuple[list[tuple[Path, int]], list[str]]:
    """(path, label) of every photo under ``roots`` with one label space (folder names)."""
    files: list[tuple[Path, str]] = []
    for root in roots:
        samples, classes = scan_folder(root)
        files += [(s.path, classes[s.label] if s.label >= 0 else "") for s in samples]
    names = sorted({c for _, c in files if c})
    lookup = {c: i for i, c in enumerate(names)}
    return [(p, lookup.get(c, -1)) for p, c in files], names


def cache_key(files: list[tuple[Path, int]], short: int, min_chroma: float) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION} short={short} min_chroma={min_chroma}".encode())
    for p, label in files:
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{int(st.st_mtime)}|{label}\n".encode())
    return h.hexdigest()[:16]


def _shrink(rgb: np.ndarray, short: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if min(h, w) <= short:
        return rgb
    s = short / min(h, w)
    im = Image.fromarray(rgb).resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
    return np.asarray(im)


def build_cache(
    roots: list[str | Path],
    short: int = 160,
    min_chroma: float = 4.0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> PhotoCache:
    """Decode ``roots`` once (or open the existing cache with the same key)."""
    roots = [Path(r) for r in roots]
    files, classes = _listing(roots)
    key = cache_key(files, short, min_chroma)
    cache_dir = Path(cache_dir) if cache_dir else CACHE_DIR  # read at call time (tests patch it)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = cache_dir / f"{'+'.join(r.name for r in roots)}-{short}-{key}"
    data_path, meta_path = stem.with_suffix(".u8"), stem.with_suffix(".json")
    if not (data_path.exists() and meta_path.exists()):
        _write_cache(files, classes, roots, short, min_chroma, data_path, meta_path, progress)
    meta = json.loads(meta_path.read_text())
    index = np.asarray(meta["index"], dtype=np.int64).reshape(-1, 4)
    data = np.memmap(data_path, dtype=np.uint8, mode="r")
    return PhotoCache(data, index, list(meta["classes"]), data_path)


def _write_cache(files, classes, roots, short, min_chroma, data_path: Path, meta_path: Path, progress: bool) -> None:
    it = files
    if progress:
        from tqdm import tqdm

        it = tqdm(files, desc=f"decoding {len(files)} photos once", unit="img", file=sys.stderr)
    tmp = data_path.with_suffix(".u8.tmp")
    index, skipped, off = [], 0, 0
    with tmp.open("wb") as f:
        for path, label in it:
            try:
                rgb = _shrink(load_image(path, mode="rgb"), short)
            except ImageError:
                skipped += 1
                continue
            if color.chroma(color.rgb_to_lab(rgb[::2, ::2])).mean() < min_chroma:
                skipped += 1
                continue
            buf = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
            f.write(buf)
            index.append([off, rgb.shape[0], rgb.shape[1], label])
            off += len(buf)
    if not index:
        tmp.unlink(missing_ok=True)
        raise FileNotFoundError(f"{', '.join(map(str, roots))}: no usable colour photos")
    os.replace(tmp, data_path)
    meta = {"version": CACHE_VERSION, "roots": [str(r) for r in roots], "short": short, "classes": classes,
            "skipped": skipped, "index": np.asarray(index, np.int64).ravel().tolist()}  # fmt: skip
    tmp_meta = meta_path.with_suffix(".json.tmp")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_path)


class StreamCrops:
    """Stream position -> ``{"L", "ab", "label", "index"}`` (a pure function of the position).

    Augmentation as the image-folder dataset: shorter side resized to a random size in
    [crop, crop * max_scale], a random ``crop x crop`` window, a random horizontal flip.
    """

    def __init__(self, cache: PhotoCache, crop: int, max_scale: float = 1.25, seed: int = 0):
        self.cache, self.crop, self.max_scale, self.seed = cache, crop, max_scale, seed
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.cache)

    def photo_at(self, pos: int) -> int:
        epoch, k = divmod(int(pos), len(self.cache))
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng((self.seed, epoch, 7919)).permutation(len(self.cache)))
        return int(self._perm[1][k])

    def __getitem__(self, pos: int) -> dict:
        import torch

        i = self.photo_at(pos)
        rng = np.random.default_rng((self.seed, int(pos)))
        c = self.crop
        im = Image.fromarray(self.cache.image(i))
        w, h = im.size
        short = int(rng.integers(c, max(c, int(c * self.max_scale)) + 1))
        s = short / min(w, h)
        nw, nh = max(c, round(w * s)), max(c, round(h * s))
        if (nw, nh) != (w, h):
            im = im.resize((nw, nh), Image.BICUBIC)
        x, y = int(rng.integers(0, nw - c + 1)), int(rng.integers(0, nh - c + 1))
        rgb = np.asarray(im)[y : y + c, x : x + c]
        if rng.random() < 0.5:
            rgb = rgb[:, ::-1]
        lab = color.rgb_to_lab(np.ascontiguousarray(rgb))
        t = torch.from_numpy(np.ascontiguousarray(lab.transpose(2, 0, 1), dtype=np.float32))
        return {"L": t[:1], "ab": t[1:], "label": torch.tensor(self.cache.label(i)), "index": torch.tensor(i)}


class StreamBatches:
    """Batch sampler over stream positions: ``[start + rank * B, ...)``, advancing ``B * world`` a
    batch, until ``stop`` (exclusive, on the global count; ``None``: forever)."""

    def __init__(self, start: int, batch_size: int, stop: int | None = None, world: int = 1, rank: int = 0):
        self.start, self.batch_size, self.stop, self.world, self.rank = start, batch_size, stop, world, rank

    def __iter__(self):
        pos = self.start
        while self.stop is None or pos < self.stop:
            first = pos + self.rank * self.batch_size
            yield list(range(first, first + self.batch_size))
            pos += self.batch_size * self.world

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("an endless stream has no length")
        return max(0, -(-(self.stop - self.start) // (self.batch_size * self.world)))


def phase_at(images_seen: int, schedule: list[list[int]], crop: int, batch_size: int) -> tuple[int, int, int | None]:
    """(crop, batch size, images_seen where the phase ends or None) under a crop schedule.

    ``schedule``: ``[[from_images, crop, batch_size], ...]`` sorted by ``from_images``; before the
    first entry (or with none) the config's ``crop`` and ``batch_size`` apply."""
    cur = (crop, batch_size)
    end = None
    for start, c, b in sorted(schedule):
        if images_seen >= start:
            cur = (int(c), int(b))
        else:
            end = int(start)
            break
    return cur[0], cur[1], end


def loader_throughput(roots: list[str | Path], crop: int = 64, n: int = 256, seed: int = 0) -> dict[str, float]:
    """Samples per CPU-second of the two training inputs at ``crop``, one process, no workers:
    ``jpeg`` (the image-folder dataset: decode + resize + crop + Lab per sample) and ``cache``
    (:class:`StreamCrops` on the pre-decoded cache). The cache must exist (built once)."""
    import random as _random
    import time

    from .data import ImageFolderLab

    roots = [Path(r) for r in roots]
    cache = build_cache(roots, progress=False)
    stream = StreamCrops(cache, crop, seed=seed)
    folder = ImageFolderLab(roots[0], crop, True, seed=seed)
    rng = _random.Random(seed)
    picks = [rng.randrange(len(folder)) for _ in range(n)]
    t = time.process_time()
    for i in picks:
        folder[i]
    jpeg = n / (time.process_time() - t)
    t = time.process_time()
    for p in range(n):
        stream[p]
    cached = n / (time.process_time() - t)
    return {"crop": crop, "jpeg_per_cpu_s": round(jpeg, 1), "cache_per_cpu_s": round(cached, 1), "speedup": round(cached / jpeg, 2)}


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(prog="python -m experiments.datacache", description="Build the training cache; --bench measures loader throughput.")
    p.add_argument("--data", nargs="+", default=["../shared/data/train", "../shared/data/train_extra"])
    p.add_argument("--short", type=int, default=160)
    p.add_argument("--bench", action="store_true", help="samples per CPU-second: JPEG folder loader vs the cache, at 64 and 128 px")
    args = p.parse_args()
    from .config import project_path

    roots = [project_path(d) for d in args.data]
    c = build_cache(roots, short=args.short)
    print(f"{c.path}: {len(c)} photos, {c.nbytes / 1e6:.0f} MB, {len(c.classes)} labels")
    if args.bench:
        for crop in (64, 128):
            print(loader_throughput(roots, crop))
