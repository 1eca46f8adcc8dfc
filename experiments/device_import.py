"""GPU runs to and from the lent device machine: ``python -m experiments.device_import DIR``.

``experiments/scripts/gpu_train.sh`` trains on the device machine and, with ``EXPORT``, calls
``--export RUN_DIR DEST`` for each run: one ``<run>.tar.gz`` (at most 16 MiB, what a file coming
back may weigh) with the run's best weights on its validation photos in half precision (else its
latest) - or the mean of its weight snapshots from the last fifth of the budget, when that scores
at least as high there (:func:`snapshot_mean`; only one model fits in the file), their provenance (``best.json``: images seen, wall time, hardware, config), the logs
(``log.csv``, ``val.csv``), the config, the last sample grid, the run's console output and the
device pack's manifest.

Back here, ``python -m experiments.device_import DIR`` unpacks every ``*.tar.gz`` in ``DIR`` into
``results/runs/<run>/`` (only plain files with the expected names; nothing outside that folder),
keeps its model as ``model.pt`` + ``model.json`` (committed: an additional checkpoint with its
provenance, ``--checkpoint results/runs/<run>/model.pt``), and ships each run's model when it beats the
shipped one on the fixed validation photos - the originals, not the pack's re-encoded copies - by at
least ``--min-margin`` (0.001) and on 400 other validation photos too (``--holdout``), and not significantly worse photo by photo on ``--guard`` (../shared/data/test): the README's
rule for candidates shipped by hand (``experiments.train.ship``). The shipped model card
keeps the run's provenance plus ``device_pack`` (what the device trained on).
``--no-ship`` only unpacks; a run folder that already holds a run is never merged into (the same
archive again is a no-op); ``--force`` clears it and imports.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path

from backends.errors import ColorizationError

#: a file coming back from the device may weigh at most this much
MAX_BYTES = 16 * (1 << 20)
#: the files a run's archive may hold (and nothing else is unpacked)
MEMBERS = ("best.pt", "best.json", "checkpoint.json", "log.csv", "val.csv", "config.toml", "val_reference.json", "console.txt", "device_pack.json", "sample.png")


def export_run(run_dir: Path, dest: Path, pack: Path | None = None) -> Path:
    """``dest/<run>.tar.gz`` of ``run_dir`` (see the module text); raises when nothing was trained."""
    import backends

    run_dir, dest = Path(run_dir), Path(dest)
    meta_name = "best.json" if (run_dir / "best.json").exists() else "checkpoint.json"
    try:
        meta = json.loads((run_dir / meta_name).read_text())
    except (OSError, ValueError) as exc:
        raise ColorizationError(f"{run_dir}: no checkpoint to export ({exc})") from exc
    cls = backends.method_class(meta["method"])
    src = run_dir / (f"best{cls.checkpoint_ext}" if meta_name == "best.json" else f"checkpoint{cls.checkpoint_ext}")
    if cls.checkpoint_ext != ".pt":
        raise ColorizationError(f"{run_dir}: only PyTorch runs travel back from the device ({cls.checkpoint_ext})")
    dest.mkdir(parents=True, exist_ok=True)
    half = dest / f".{run_dir.name}-best.pt"
    mean = snapshot_mean(run_dir, meta)  # the mean of the run's last snapshots, when it scores as high
    if mean is not None:
        model, meta = mean
        model.save(half, meta, training=False, half=True)
    else:
        cls.from_checkpoint(src, device="cpu").save(half, meta, training=False, half=True)
    files: dict[str, bytes] = {"best.pt": half.read_bytes(), "best.json": json.dumps(meta, indent=2).encode()}
    half.unlink()
    for name in ("checkpoint.json", "log.csv", "val.csv", "config.toml", "val_reference.json"):
        if (run_dir / name).exists():
            files[name] = (run_dir / name).read_bytes()
    console = run_dir.parent / f"{run_dir.name}.out"
    if console.exists():
        files["console.txt"] = console.read_bytes()[-200_000:]
    if pack is not None and (Path(pack) / "manifest.json").exists():
        files["device_pack.json"] = (Path(pack) / "manifest.json").read_bytes()
    samples = sorted((run_dir / "samples").glob("step_*.png"))
    if samples:
        files["sample.png"] = samples[-1].read_bytes()
    out = dest / f"{run_dir.name}.tar.gz"
    for drop in (None, "sample.png", "console.txt"):  # lighten it when it would not come back
        files.pop(drop, None)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"{run_dir.name}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        if buf.tell() <= MAX_BYTES:
            out.write_bytes(buf.getvalue())
            return out
    raise ColorizationError(f"{run_dir}: its weights alone take {buf.tell() / (1 << 20):.1f} MiB, more than a file coming back from the device may weigh (16 MiB)")


def snapshot_mean(run_dir: Path, best_meta: dict):
    """(model, meta) of the mean of ``run_dir``'s weight snapshots (``train.snapshots_from``; the
    CPU recipe ships such means, ``experiments.average``) when it scores at least as high as the
    run's best checkpoint on the run's own validation photos - the ones that picked that best, so
    the comparison leans towards the best; ``None`` when there are fewer than two snapshots or the
    best scores higher. Either way, what was compared goes in the meta (``export_choice``)."""
    import torch

    from experiments.average import average
    from experiments.config import load_config, project_path
    from experiments.train import validate_photos, validation_photos

    snaps = sorted((run_dir / "snapshots").glob("images_*.pt"))
    best = (best_meta.get("validation") or {}).get("val_auc_rebal")
    if len(snaps) < 2 or best is None:
        return None
    try:
        cfg = load_config(run_dir / "config.toml")  # the run's own gate: its photos, count and seed
        photos = validation_photos(project_path(cfg.data.val), cfg.data.val_photos, seed=cfg.train.seed)
    except (OSError, KeyError, ValueError) as exc:
        print(f"{run_dir.name}: snapshot mean not scored ({exc}); exporting the best checkpoint", file=sys.stderr)
        return None
    if not photos:
        return None
    import backends

    model, meta = average(best_meta["method"], [str(p) for p in snaps], device=backends.resolve_device("auto"))
    model.eval()
    with torch.no_grad():
        score = float(validate_photos(model, photos)["val_auc_rebal"])
    choice = {"snapshot_mean": round(score, 5), "snapshots": len(snaps), "best_checkpoint": round(float(best), 5),
              "best_images_seen": best_meta.get("images_seen"), "photos": len(photos)}
    print(f"{run_dir.name}: mean of {len(snaps)} snapshots {score:.4f}, best checkpoint {best:.4f} on {len(photos)} validation photos", file=sys.stderr)
    if score < best:
        best_meta["export_choice"] = {**choice, "exported": "best checkpoint"}
        return None
    meta["validation"] = {**(meta.get("validation") or {}), "val_auc_rebal": score}
    meta["export_choice"] = {**choice, "exported": "snapshot mean"}
    return model, meta


def import_archive(archive: Path, runs_dir: Path, force: bool = False) -> Path:
    """Unpack one ``<run>.tar.gz`` into ``runs_dir/<run>/``; returns that folder."""
    archive = Path(archive)
    try:
        tar = tarfile.open(archive, mode="r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise ColorizationError(f"{archive}: not a run archive from gpu_train.sh ({exc})") from exc
    with tar:
        members = tar.getmembers()
        runs = {m.name.split("/", 1)[0] for m in members}
        if len(runs) != 1:
            raise ColorizationError(f"{archive}: holds {len(runs)} run folders, expected one")
        run = runs.pop()
        if not run or run in (".", "..") or "\\" in run or not all(c.isalnum() or c in "-_." for c in run):
            raise ColorizationError(f"{archive}: bad run name {run!r}")
        files = {}
        for m in members:
            name = m.name.split("/", 1)[1] if "/" in m.name else ""
            if not m.isfile() or name not in MEMBERS:
                raise ColorizationError(f"{archive}: unexpected member {m.name!r}")
            if m.size > MAX_BYTES or sum(len(v) for v in files.values()) + m.size > 4 * MAX_BYTES:
                raise ColorizationError(f"{archive}: member {m.name!r} is {m.size / (1 << 20):.1f} MiB unpacked, more than a run's archive holds")
            files[name] = tar.extractfile(m).read()
    if "best.pt" not in files or "best.json" not in files:
        raise ColorizationError(f"{archive}: no weights (best.pt and best.json) in it")
    meta = json.loads(files["best.json"])
    if "device_pack.json" in files:
        pack = json.loads(files["device_pack.json"])
        meta["device_pack"] = {k: pack.get(k) for k in ("format", "quality", "short_side", "photos_packed", "photos_listed", "left_out_for_size", "val_photos", "train_roots")}
        files["best.json"] = json.dumps(meta, indent=2).encode()
    run_dir = Path(runs_dir) / run
    # a run folder that holds anything (a committed import's model.json and logs, a CPU run of the
    # same name) is never merged into: the same archive again is a no-op, another needs --force,
    # which clears the folder's imported files first (nothing stale stays beside the new ones)
    held = [n for n in ("model.json", "best.json", "log.csv", "val.csv") if (run_dir / n).exists()]
    if held:
        try:
            prev = json.loads((run_dir / ("model.json" if "model.json" in held else "best.json")).read_text()).get("saved_at")
        except (OSError, ValueError, AttributeError):
            prev = None
        same = prev is not None and prev == meta.get("saved_at")  # this very archive, imported before
        if same and "model.json" in held and not force:
            return run_dir  # already imported whole (model.json is written last)
        if not same and not force:
            raise ColorizationError(
                f"{run_dir} already holds a run ({', '.join(held)}"
                + (f", saved at {prev}" if prev else "") + "); give the device runs another name (RUN_TAG) or --force to replace it"
            )
        for name in (*MEMBERS, "model.pt", "model.json", "samples/step_last.png", "checkpoint.pt", "resume.pt", "resume.json"):
            (run_dir / name).unlink(missing_ok=True)
    from experiments.train import write_atomic

    run_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = run_dir / ("samples/step_last.png" if name == "sample.png" else name)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
    # the run's model as it came back, kept beside the shipped one whether or not it ships
    # (best.* is not committed; model.* is: --checkpoint results/runs/<run>/model.pt loads it);
    # model.json last: its presence says the import is whole
    write_atomic(run_dir / "model.pt", files["best.pt"])
    write_atomic(run_dir / "model.json", files["best.json"])
    return run_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.device_import", description=__doc__.split("\n\n")[0])
    p.add_argument("dir", nargs="?", help="folder holding the <run>.tar.gz files that came back")
    p.add_argument("--export", nargs=2, metavar=("RUN_DIR", "DEST"), help="(on the device) write DEST/<run>.tar.gz")
    p.add_argument("--pack", default=None, help="(with --export) the device pack the run trained on: its manifest goes with the export")
    p.add_argument("--runs-dir", default=None, help="default results/runs")
    p.add_argument("--no-ship", action="store_true", help="unpack only")
    p.add_argument("--min-margin", type=float, default=0.001, help="ship only with at least this gate gain (the README's rule; default 0.001)")
    p.add_argument("--holdout", type=int, default=400, help="and a win on this many other validation photos too (default 400; 0: gate only)")
    p.add_argument("--guard", default="../shared/data/test",
                   help="and no significant loss, photo by photo, on these photos (default ../shared/data/test; '' : none)")
    p.add_argument("--force", action="store_true", help="replace a run folder that already holds another run")
    args = p.parse_args(argv)
    try:
        if args.export:
            out = export_run(Path(args.export[0]), Path(args.export[1]), Path(args.pack) if args.pack else None)
            print(f"exported {out} ({out.stat().st_size / (1 << 20):.1f} MiB)")
            return 0
        if not args.dir:
            p.error("give the folder that came back, or --export")
        from backends.base import PROJECT_ROOT
        from experiments.train import ship

        runs_dir = Path(args.runs_dir) if args.runs_dir else PROJECT_ROOT / "results" / "runs"
        archives = sorted(Path(args.dir).glob("*.tar.gz"))
        if not archives:
            raise ColorizationError(f"{args.dir}: no <run>.tar.gz in it")
        failed = 0
        for a in archives:
            try:
                run_dir = import_archive(a, runs_dir, force=args.force)
            except ColorizationError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failed += 1
                continue
            meta = json.loads((run_dir / "best.json").read_text())
            print(f"{a.name} -> {run_dir}: {meta.get('method')}, {meta.get('images_seen')} images, {meta.get('hardware')}")
            if not args.no_ship:
                dst = ship(run_dir, meta["method"], if_better=True, min_margin=args.min_margin, holdout=args.holdout, guard=args.guard or None)
                print(f"shipped {dst}" if dst else f"{meta['method']}: not shipped (it does not beat the shipped model by the rule)")
        return 1 if failed else 0
    except ColorizationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
