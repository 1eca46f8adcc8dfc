"""Colorize a photo or a folder: ``python -m experiments.colorize --method NAME --input X --output Y``.

A folder input writes ``<output>/<stem>.png`` for each image in it. A bad input prints one line
naming the file and the reason; the others are still colorized; the exit status is 1 when any
input failed, 2 when nothing could run (unknown method, unavailable backend, bad checkpoint).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import backends
from backends.errors import ColorizationError
from backends.imageio import is_image_file, load_image, save_image
from experiments.config import parse_value


def collect_inputs(inp: Path) -> list[Path]:
    if inp.is_dir():
        files = sorted(p for p in inp.rglob("*") if is_image_file(p))
        if not files:
            raise ColorizationError(f"{inp}: folder holds no images")
        return files
    return [inp]


def output_path(src: Path, inp: Path, out: Path, many: bool) -> Path:
    if many or out.is_dir() or not out.suffix:
        rel = src.relative_to(inp).with_suffix(".png") if inp.is_dir() else Path(src.stem + ".png")
        return out / rel
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.colorize", description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True, help=f"one of: {', '.join(backends.names())}")
    p.add_argument("--input", required=True, type=Path, help="image file or folder")
    p.add_argument("--output", required=True, type=Path, help="output file (.png/.jpg) or folder")
    p.add_argument("--reference", type=Path, help="colour reference photo (neural_style)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint to load instead of the shipped one")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE", help="method option, e.g. temperature=0.2")
    args = p.parse_args(argv)

    try:
        options = {}
        for item in args.options:
            if "=" not in item:
                raise ValueError(f"--set {item!r} is not KEY=VALUE")
            k, v = item.split("=", 1)
            options[k.strip()] = parse_value(v.strip())
        if not args.input.exists():
            raise ColorizationError(f"{args.input}: input not found")
        files = collect_inputs(args.input)
        reference = load_image(args.reference, mode="rgb") if args.reference else None
        model = backends.load(args.method, device=args.device, checkpoint=args.checkpoint, **options)
    except (ColorizationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    many = args.input.is_dir()
    failed = 0
    progress = None
    if many:
        from tqdm import tqdm

        progress = tqdm(files, desc=f"colorize {args.method}", unit="img", file=sys.stderr)
    for src in progress or files:
        try:
            image = load_image(src)
            result = model.colorize(image, reference=reference)
            dst = output_path(src, args.input, args.output, many)
            save_image(result, dst)
            if not many:
                print(f"{src} -> {dst}")
        except ColorizationError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
        except OSError as exc:
            failed += 1
            print(f"error: {src}: cannot write output ({exc})", file=sys.stderr)
    if many:
        print(f"colorized {len(files) - failed} of {len(files)} images into {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
