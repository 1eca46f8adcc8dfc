"""Device pack: ``python -m experiments.devicepack [--out .devicepack] [--max-mib 56]``.

The lent GPU machine (the ``device`` tool of this workplace) receives the checkout and nothing
beside it - not ``../shared`` - and at most 64 MiB of it per call. This packs what a training run
there needs into one ignored folder that travels with the call (``carry=[".devicepack"]``):

- ``photos.bin`` + ``photos.json`` (one blob and its index of ``[path, offset, length]``, so the
  size that travels is the bytes themselves, not 21,000 small files; ``--unpack`` writes them out
  as ``<dest>/<root>/<label>/<photo>.webp`` on the device): every training photo the cache would keep (same roots and
  label folders, so the same 57 classes; photos under the cache's chroma floor are left out as the
  cache leaves them out), its shorter side reduced to ``--short`` (128: the last phase's crop; the
  crops are drawn from short sides of crop..1.25 x crop) and WebP-encoded at the highest quality in
  ``QUALITIES`` whose estimated total fits ``--max-mib``; if even the lowest does not fit, a fixed
  random share of each label is left out (the manifest says how many);
- ``val/<label>/`` in the same blob: the fixed validation photos of the training runs' gate
  (``experiments.train.validation_photos``, 200, seed 0) at their stored size, WebP quality 90, so a
  run there keeps its own best checkpoint; shipping is gated again here on the originals;
- ``weights/``: the SqueezeNet-1.1 features file the encoders load (found through the weights
  resolver; ``COLORIZE_WEIGHTS_DIR`` points there on the device); never committed;
- ``manifest.json``: sizes, quality, photos per root and what was left out.

``experiments/scripts/gpu_train.sh`` unpacks and reads it with ``PACK=.devicepack``; see the README's
"When a GPU is lent" for the whole round trip. The folder is in ``.gitignore``.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np

from backends import color
from backends.base import PROJECT_ROOT
from backends.errors import ColorizationError, ImageError
from backends.imageio import load_image

#: WebP qualities tried, best first
QUALITIES = (85, 80, 75, 70, 65, 60, 55)
MIB = 1 << 20


def _encode(rgb: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "WEBP", quality=quality, method=4)
    return buf.getvalue()


def _prepare(path: Path, short: int, min_chroma: float) -> np.ndarray | None:
    """The photo as the cache would store it at ``short`` (None: the cache would leave it out)."""
    from experiments.datacache import _shrink

    try:
        rgb = _shrink(load_image(path, mode="rgb"), short)
    except ImageError:
        return None
    if color.chroma(color.rgb_to_lab(rgb[::2, ::2])).mean() < min_chroma:
        return None
    return rgb


class _Blob:
    """``photos.bin`` (the files' bytes one after another) and ``photos.json`` (their index)."""

    def __init__(self, folder: Path):
        self.folder, self.index, self.size = folder, [], 0
        self.f = (folder / "photos.bin").open("wb")

    def add(self, rel: str, data: bytes) -> None:
        self.f.write(data)
        self.index.append([rel, self.size, len(data)])
        self.size += len(data)

    def close(self) -> None:
        self.f.close()
        (self.folder / "photos.json").write_text(json.dumps(self.index))


def unpack(pack: Path, dest: Path) -> dict:
    """Write the pack's photos out as ``dest/<root>/<label>/<photo>.webp`` (and ``dest/val/...``),
    the image folders the training configs read; returns the manifest."""
    pack, dest = Path(pack), Path(dest)
    try:
        manifest = json.loads((pack / "manifest.json").read_text())
        index = json.loads((pack / "photos.json").read_text())
    except (OSError, ValueError) as exc:
        raise ColorizationError(f"{pack}: not a device pack ({exc}); build one with python -m experiments.devicepack") from exc
    root = dest.resolve()
    with (pack / "photos.bin").open("rb") as f:
        for rel, off, n in index:
            dst = (dest / rel).resolve()
            if not dst.is_relative_to(root):
                raise ColorizationError(f"{pack}/photos.json: {rel!r} points outside {dest}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            f.seek(off)
            dst.write_bytes(f.read(n))
    return manifest


def build_pack(
    train_roots: list[Path],
    val_root: Path,
    out: Path,
    short: int = 128,
    max_mib: float = 56.0,
    val_photos: int = 200,
    weights: list[str] = ("squeezenet",),
    min_chroma: float = 4.0,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Write the pack to ``out`` (replacing an earlier pack there) and return its manifest."""
    from experiments.datacache import _listing
    from experiments.train import validation_photos

    for r in [*train_roots, val_root]:
        if not r.is_dir():
            raise ColorizationError(f"{r}: no such data folder (the pack is built from the photos beside the project)")
    names = [r.name for r in train_roots]
    if len(set(names)) != len(names) or "val" in names:
        raise ColorizationError(f"training roots need distinct folder names other than 'val' in the pack: {names}")
    files, classes = _listing(train_roots)
    if not files:
        raise ColorizationError(f"no photos under {', '.join(map(str, train_roots))}")

    def root_of(path: Path) -> Path:
        return next(r for r in train_roots if path.is_relative_to(r))

    # validation photos first (they must travel whatever the training photos cost)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    blob = _Blob(tmp)
    from experiments.data import scan_folder

    samples, val_classes = scan_folder(val_root)
    by_name = {s.path.name: s for s in samples}
    n_val = 0
    for rgb, name in validation_photos(val_root, val_photos, seed):
        s = by_name[name]
        label = val_classes[s.label] if s.label >= 0 else "_"
        blob.add(f"val/{label}/{Path(name).stem}.webp", _encode(rgb, 90))
        n_val += 1
    val_bytes = blob.size

    weight_files = []
    from backends.weights import resolve

    for w in weights:
        src = resolve(w).path
        dst = tmp / "weights" / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        weight_files.append({"name": w, "file": src.name, "bytes": dst.stat().st_size})
    fixed = val_bytes + sum(w["bytes"] for w in weight_files) + 96 * (len(files) + n_val) + 4096  # + the index and manifest
    budget = max_mib * MIB - fixed
    if budget <= 0:
        raise ColorizationError(f"--max-mib {max_mib}: the validation photos and weights alone take {fixed / MIB:.1f} MiB")

    # quality: the best whose estimate (from a fixed sample of 300 photos) fits the budget
    rng = random.Random(seed)
    probe = [files[i] for i in rng.sample(range(len(files)), min(300, len(files)))]
    probe_rgb = [x for x in (_prepare(p, short, min_chroma) for p, _ in probe) if x is not None]
    kept_share = len(probe_rgb) / max(1, len(probe))
    estimate = {}
    for q in QUALITIES:
        per = float(np.mean([len(_encode(x, q)) for x in probe_rgb])) if probe_rgb else 0.0
        estimate[q] = per * len(files) * kept_share
        if estimate[q] <= budget * 0.97:
            break
    quality = q
    keep_share = min(1.0, budget * 0.97 / estimate[quality]) if estimate[quality] else 1.0
    # which photos travel: all, or a fixed random share of each label when even the lowest quality is too big
    order = list(range(len(files)))
    if keep_share < 1.0:
        by_label: dict[int, list[int]] = {}
        for i, (_, label) in enumerate(files):
            by_label.setdefault(label, []).append(i)
        order = []
        for label in sorted(by_label):
            idx = by_label[label]
            random.Random(seed + 1 + label).shuffle(idx)
            order += sorted(idx[: max(1, round(len(idx) * keep_share))])
        order.sort()

    it = order
    if progress:
        from tqdm import tqdm

        it = tqdm(order, desc=f"packing photos (WebP q{quality}, short side {short})", unit="img", file=sys.stderr)
    per_root: dict[str, int] = {n: 0 for n in names}
    data_bytes, dropped_chroma, over = 0, 0, 0
    for i in it:
        path, label = files[i]
        rgb = _prepare(path, short, min_chroma)
        if rgb is None:
            dropped_chroma += 1
            continue
        data = _encode(rgb, quality)
        if data_bytes + len(data) > budget:
            over += 1
            continue
        root = root_of(path)
        blob.add(f"{root.name}/{path.relative_to(root).with_suffix('.webp').as_posix()}", data)
        data_bytes += len(data)
        per_root[root.name] += 1

    manifest = {
        "what": "training photos, gate validation photos and encoder weights for a run on a lent GPU (experiments.devicepack)",
        "short_side": short,
        "format": "WebP",
        "quality": quality,
        "val_quality": 90,
        "train_roots": [str(r) for r in train_roots],
        "val_root": str(val_root),
        "photos_listed": len(files),
        "photos_packed": sum(per_root.values()),
        "photos_per_root": per_root,
        "left_out_low_chroma": dropped_chroma,
        "left_out_for_size": (len(files) - len(order)) + over,
        "classes": len(classes),
        "val_photos": n_val,
        "weights": weight_files,
        "bytes": 0,
        "max_mib": max_mib,
    }
    blob.close()
    # the size of everything the pack sends, its manifest included (two passes: the numbers' own digits)
    others = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file() and p.name != "manifest.json")
    for _ in range(3):
        text = json.dumps(manifest, indent=2) + "\n"
        manifest["bytes"] = others + len(text.encode())
        manifest["mib"] = round(manifest["bytes"] / MIB, 2)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return manifest


def main(argv: list[str] | None = None) -> int:
    from experiments.config import load_config, project_path

    p = argparse.ArgumentParser(prog="python -m experiments.devicepack", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=".devicepack", help="pack folder, relative to the project (default .devicepack, ignored by git)")
    p.add_argument("--config", default="experiments/configs/classification.toml", help="whose data.train / data.val to pack (every learned method's config reads the same)")
    p.add_argument("--train", nargs="+", help="training folders (default: the config's)")
    p.add_argument("--val", help="validation folder (default: the config's)")
    p.add_argument("--short", type=int, default=128, help="shorter side of the packed training photos (default 128)")
    p.add_argument("--max-mib", type=float, default=56.0, help="size of the whole pack (default 56: the code and the call's 64 MiB limit leave room for it)")
    p.add_argument("--val-photos", type=int, default=200)
    p.add_argument("--unpack", nargs=2, metavar=("PACK", "DEST"), help="write a pack's photos out as image folders under DEST (on the device)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.unpack:
            m = unpack(Path(args.unpack[0]), Path(args.unpack[1]))
            print(f"{args.unpack[1]}: {m['photos_packed']} training and {m['val_photos']} validation photos unpacked")
            return 0
        d = load_config(args.config, []).data
        train_roots = [project_path(r) for r in (args.train or d.train_roots)]
        val_root = project_path(args.val or d.val)
        out = Path(args.out)
        out = out if out.is_absolute() else PROJECT_ROOT / out
        m = build_pack(train_roots, val_root, out, args.short, args.max_mib, args.val_photos, progress=not args.quiet and sys.stderr.isatty())
    except (ColorizationError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{out}: {m['photos_packed']} of {m['photos_listed']} training photos (WebP q{m['quality']}, short side {m['short_side']}; "
        f"{m['left_out_low_chroma']} under the chroma floor, {m['left_out_for_size']} left out for size), "
        f"{m['val_photos']} validation photos, {len(m['weights'])} weight file(s): {m['mib']} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
