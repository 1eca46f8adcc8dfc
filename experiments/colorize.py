"""Colorize a photo or a folder: ``python -m experiments.colorize --method NAME --input X --output Y``.

Nothing is ever lost: the CLI never writes over one of its inputs, never over an existing file
unless ``--overwrite`` is given, refuses an output folder equal to or inside the input folder
unless ``--suffix`` gives the outputs distinct names, keeps every result when two inputs would get
the same output name (``x.jpg`` and ``x.png`` -> ``x.jpg.png`` and ``x.png.png``), checks that it
can write the output format before loading a model, and writes each output atomically (a
temporary file, then a rename).

A folder input writes ``<output>/<relative path>/<stem><suffix>.<format>`` for each image in it
and prints one line per file (written, skipped, failed) and a count at the end. Exit status: 0
when every input was written or skipped because its output exists, 2 for bad input (an argument,
an unreadable image, an unavailable method or checkpoint; nothing written for a bad argument), 1
when a result could not be written or a method failed on a readable image.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import backends
from backends.errors import ColorizationError
from backends.imageio import is_image_file, load_image, max_pixels, save_image, writable_format
from experiments.config import parse_value

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


@dataclass
class Job:
    src: Path
    dst: Path


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve() == folder.resolve() or path.resolve().is_relative_to(folder.resolve())


def collect_inputs(inp: Path, exclude: Path | None = None, earlier: tuple[str, str] | None = None) -> list[Path]:
    """The images of a folder (recursively, sorted) or the file itself. Left out: hidden files, the
    folder ``exclude`` and, with ``earlier = (suffix, ext)``, files named like this run's outputs."""
    if inp.is_dir():

        def wanted(p: Path) -> bool:
            if not is_image_file(p) or (exclude is not None and _inside(p, exclude)):
                return False
            return not (earlier and p.stem.endswith(earlier[0]) and p.suffix.lower() == earlier[1])

        files = sorted(p for p in inp.rglob("*") if wanted(p))
        if not files:
            raise ColorizationError(f"{inp}: folder holds no images")
        return files
    return [inp]


def plan(files: list[Path], inp: Path, out: Path, fmt_ext: str, suffix: str, to_folder: bool) -> list[Job]:
    """Output path of every input. Inputs whose outputs would share a name (``x.jpg``, ``x.png``;
    case-insensitively, as on macOS and Windows) keep their full name: ``x.jpg.png``, ``x.png.png``."""
    if not to_folder:
        return [Job(files[0], out)]

    def rel(src: Path) -> Path:
        return src.relative_to(inp) if inp.is_dir() else Path(src.name)

    def name(src: Path, keep_ext: bool) -> Path:
        r = rel(src)
        stem = r.name if keep_ext else r.stem
        return out / r.parent / f"{stem}{suffix}{fmt_ext}"

    first = {src: name(src, False) for src in files}
    claims: dict[str, list[Path]] = defaultdict(list)
    for src, dst in first.items():
        claims[str(dst).lower()].append(src)
    jobs = [Job(src, name(src, True) if len(claims[str(dst).lower()]) > 1 else dst) for src, dst in first.items()]
    seen: dict[str, int] = defaultdict(int)
    for job in jobs:  # a name kept in full can still meet another output (x.jpg.png as an input stem)
        key = str(job.dst).lower()
        seen[key] += 1
        if seen[key] > 1:
            job.dst = job.dst.with_name(f"{job.dst.stem}-{seen[key]}{job.dst.suffix}")
    return jobs


def check_folders(args, to_folder: bool) -> None:
    """Refuse, before anything runs, an output folder that could hold or replace the inputs."""
    inp, out = args.input, args.output
    if to_folder and inp.is_dir() and _inside(out, inp) and not args.suffix:
        raise ColorizationError(
            f"{out}: the output folder is {'the input folder' if out.resolve() == inp.resolve() else 'inside the input folder'} "
            f"{inp}; its results could replace the originals and be read as inputs next time - choose another folder, "
            "or give the outputs distinct names with --suffix (e.g. --suffix _color)"
        )


def check_single(job: Job, overwrite: bool) -> None:
    """One input photo: refuse, before the model loads, to write over it or over an existing file."""
    if job.dst.resolve() == job.src.resolve():
        raise ColorizationError(f"{job.dst}: is the input photo; refusing to overwrite it - choose another --output")
    if job.dst.exists() and not job.dst.is_file():
        raise ColorizationError(f"{job.dst}: exists and is not a regular file")
    if job.dst.exists() and not overwrite:
        raise ColorizationError(f"{job.dst}: already exists; choose another --output or add --overwrite to replace it")


def parse_options(items: list[str]) -> dict:
    options = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r} is not KEY=VALUE")
        k, v = item.split("=", 1)
        options[k.strip()] = parse_value(v.strip())
    return options


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.colorize", description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True, help=f"one of: {', '.join(backends.names())}")
    p.add_argument("--input", required=True, type=Path, help="image file or folder")
    p.add_argument("--output", required=True, type=Path, help="output file (.png/.jpg/...) or folder (no extension, or an existing folder)")
    p.add_argument("--format", default="png", help="file format of a folder's outputs (png, jpg, tif, webp, ...; default png)")
    p.add_argument("--suffix", default="", help="added to each output's name, e.g. _color (needed to write into the input folder)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (inputs are never overwritten)")
    p.add_argument("--reference", type=Path, help="colour reference photo (neural_style)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint to load instead of the shipped one")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE", help="method option, e.g. temperature=0.2")
    from experiments import video

    video.add_cli_options(p)
    args = p.parse_args(argv)
    if video.wants_clip(args):  # a video file or a folder of numbered frames: experiments.video
        return video.colorize_main(args)

    try:
        options = parse_options(args.options)
        max_pixels()  # a bad COLORIZE_MAX_PIXELS is named once, before anything runs
        if not args.input.exists():
            raise ColorizationError(f"{args.input}: input not found")
        if args.suffix and any(c in args.suffix for c in "/\\\0"):
            raise ValueError(f"--suffix {args.suffix!r}: must not contain a path separator")
        to_folder = args.input.is_dir() or args.output.is_dir() or not args.output.suffix
        fmt_ext = "." + args.format.lower().lstrip(".")
        writable_format(Path(f"output{fmt_ext}") if to_folder else args.output)
        if to_folder and args.output.exists() and not args.output.is_dir():
            raise ColorizationError(f"{args.output}: exists and is not a folder; a folder input needs an output folder")
        into_input = args.input.is_dir() and _inside(args.output, args.input)
        exclude = args.output if into_input and args.output.resolve() != args.input.resolve() else None
        earlier = (args.suffix, fmt_ext) if into_input and args.suffix else None
        files = collect_inputs(args.input, exclude, earlier)
        check_folders(args, to_folder)
        jobs = plan(files, args.input, args.output, fmt_ext, args.suffix, to_folder)
        if not args.input.is_dir():
            check_single(jobs[0], args.overwrite)
        reference = load_image(args.reference, mode="rgb") if args.reference else None
        model = backends.load(args.method, device=args.device, checkpoint=args.checkpoint, **options)
    except (ColorizationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    inputs = {f.resolve() for f in files}
    many = args.input.is_dir()
    written, skipped, bad, failed = 0, 0, 0, 0
    say = print
    progress = None
    if many:
        from tqdm import tqdm

        progress = tqdm(jobs, desc=f"colorize {args.method}", unit="img", file=sys.stderr)
        say = tqdm.write
    for job in progress or jobs:
        src, dst = job.src, job.dst
        if dst.resolve() in inputs:
            skipped += 1
            say(f"skipped: {src} -> {dst} would overwrite an input photo", file=sys.stderr)
            continue
        if dst.exists() and not args.overwrite:
            skipped += 1
            say(f"skipped: {src} -> {dst} exists (--overwrite replaces it)", file=sys.stderr)
            continue
        try:
            image = load_image(src)
        except ColorizationError as exc:
            bad += 1
            say(f"error: {exc}", file=sys.stderr)
            continue
        try:
            result = model.colorize(image, reference=reference)
        except ColorizationError as exc:
            bad += 1
            say(f"error: {src}: {exc}", file=sys.stderr)
            continue
        except Exception as exc:  # noqa: BLE001 - one photo's failure must not stop a folder run
            failed += 1
            say(f"error: {src}: {args.method} failed ({type(exc).__name__}: {str(exc)[:200]})", file=sys.stderr)
            continue
        try:
            save_image(result, dst, overwrite=args.overwrite)
        except FileExistsError:
            skipped += 1
            say(f"skipped: {src} -> {dst} appeared meanwhile (--overwrite replaces it)", file=sys.stderr)
            continue
        except (OSError, ColorizationError) as exc:
            failed += 1
            say(f"error: {dst}: cannot write output ({getattr(exc, 'strerror', None) or exc})", file=sys.stderr)
            continue
        written += 1
        say(f"{src} -> {dst}")
    if many:
        parts = [f"colorized {written} of {len(jobs)} images into {args.output}"]
        if skipped:
            parts.append(f"{skipped} skipped (output exists)")
        if bad:
            parts.append(f"{bad} unreadable")
        if failed:
            parts.append(f"{failed} failed")
        print("; ".join(parts))
    if bad:
        return EXIT_BAD_INPUT
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
