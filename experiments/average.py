"""Checkpoint averaging: ``python -m experiments.average --method fusion CKPT CKPT ... --out PATH``.

The weights of several checkpoints of one run, averaged element by element - Polyak averaging
over the run's last checkpoints (Izmailov et al., "Averaging Weights Leads to Wider Optima and
Better Generalization", 2018; the checkpoint averaging of Vaswani et al., 2017). A run at a
constant learning rate wanders around a basin, and its checkpoints score a point apart on the
validation photos from one save to the next; their average sits nearer the middle. The averaged
model has seen no more images than the latest of its checkpoints, so it stays inside the run's
budget. No paper of the five does this: a shipped average says so in its model card.

Each ``CKPT`` is a checkpoint file, or ``REV:PATH`` - the file as committed at git revision
``REV`` (the training loop commits each run's latest weights as ``resume.<ext>`` after every
chunk, so the history holds the run's trajectory). Every checkpoint must be of ``--method`` with
the same network configuration; floating-point weights and buffers (BatchNorm statistics too)
are averaged, integer buffers taken from the last checkpoint.

    python -m experiments.average --method fusion --out /tmp/fusion-avg.pt \\
        ed7a256:results/runs/fusion-squeezenet/resume.pt results/runs/fusion-squeezenet/resume.pt
    python -m experiments.average --method fusion ... --ship-if-better   # gate, then ship
    python -m experiments.average --method gan ... --gate-only --holdout 400   # the gate's numbers only
    python -m experiments.average --method gan ... --ship-at-budget --holdout 400 --guard ../shared/data/test
        # the equal-budget rule: ships it, the numbers against the replaced model in its card
    python -m experiments.average --method regression results/runs/R/snapshots/images_0300008.keras \\
        --gate-only --holdout 400 --guard ../shared/data/test   # one checkpoint: scored as it is
    python -m experiments.average --method gan --run results/runs/gan-r400 --ship-at-budget --holdout 400 \\
        --guard ../shared/data/test   # the equal-budget rule whole: the run's last weights, or the mean
        # of its snapshots over its last 40,000 images when that scores higher on the 600 photos
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import backends
from backends.base import PROJECT_ROOT
from backends.errors import CheckpointError, ColorizationError


def resolve_source(spec: str, scratch: Path) -> Path:
    """A checkpoint path; ``REV:PATH`` (and no such file) is read from git into ``scratch``."""
    path = Path(spec)
    if path.exists() or ":" not in spec:
        if not path.exists():
            raise CheckpointError(f"{spec}: checkpoint not found")
        return path
    rev, rel = spec.split(":", 1)
    out = scratch / f"{len(list(scratch.iterdir())):02d}-{rev.replace('/', '_')}{Path(rel).suffix}"
    res = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=PROJECT_ROOT, capture_output=True)
    if res.returncode != 0:
        raise CheckpointError(f"{spec}: not in git ({res.stderr.decode(errors='replace').strip()[:160]})")
    out.write_bytes(res.stdout)
    return out


def average_arrays(all_arrays: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, np.ndarray]:
    """Element-wise mean of floating arrays (float64 sums), integer arrays from the last one;
    every dict must hold the same names and shapes (``names`` say whose arrays they are)."""
    first = all_arrays[0]
    for arrays, name in zip(all_arrays[1:], names[1:]):
        if set(arrays) != set(first):
            extra = sorted(set(arrays) ^ set(first))[:3]
            raise CheckpointError(f"{name}: its networks differ from {names[0]}'s (weights {', '.join(extra)})")
        for k, v in arrays.items():
            if v.shape != first[k].shape:
                raise CheckpointError(f"{name}: weight {k} has shape {v.shape}, {names[0]} has {first[k].shape}")
    out = {}
    for k, v in first.items():
        if np.issubdtype(v.dtype, np.floating):
            out[k] = (sum(a[k].astype(np.float64) for a in all_arrays) / len(all_arrays)).astype(np.float32)
        else:
            out[k] = all_arrays[-1][k]
    return out


def average(method: str, sources: list[str], device: str = "cpu"):
    """(model holding the averaged weights, provenance meta) of the checkpoints ``sources``; one
    source is that checkpoint as it is (its own provenance, nothing "averaged"), so a run's single
    best checkpoint goes through the same rule - gate, hold-out, guard - as a mean of several."""
    if not sources:
        raise ValueError("no checkpoints given")
    cls = backends.method_class(method)
    with tempfile.TemporaryDirectory(prefix="average-") as d:
        models, metas = [], []
        for spec in sources:
            path = resolve_source(spec, Path(d))
            model = cls.from_checkpoint(path, device=device)  # read once: weights and provenance
            metas.append(model.checkpoint_meta)
            models.append(model)
    if len(models) == 1:
        return models[0], dict(metas[0])
    configs = [json.dumps(_net_config(m), sort_keys=True, default=str) for m in models]
    for spec, c in zip(sources[1:], configs[1:]):
        if c != configs[0]:
            raise CheckpointError(f"{spec}: its {method} configuration differs from {sources[0]}'s; only checkpoints of one network average")
    arrays = average_arrays([m.weight_arrays() for m in models], sources)
    model = models[-1]
    model.set_weight_arrays(arrays)
    latest = max(range(len(metas)), key=lambda i: int(metas[i].get("images_seen") or 0))
    meta = dict(metas[latest])  # the run, config, hardware and budget of the latest checkpoint
    meta["averaged"] = {
        "how": "element-wise mean of the weights and BatchNorm statistics (experiments.average)",
        "checkpoints": [
            {"source": spec, "images_seen": m.get("images_seen"), "step": m.get("step"), "commit": m.get("commit"),
             "val_auc_rebal": (m.get("validation") or {}).get("val_auc_rebal")}
            for spec, m in zip(sources, metas)
        ],
    }
    model.checkpoint_meta = meta  # the weights' provenance is the mean's now
    return model, meta


SNAPSHOT_MEAN = "snapshot-mean"  # results/runs/<run>/snapshot-mean.<ext>: the mean kept, to commit


def budget_candidates(method: str, run_dir: Path, window: int = 40_000) -> dict[str, tuple]:
    """The equal-budget rule's two candidates of a run at its budget (README, docs/training.md):
    ``"last"``, its latest weights (``resume.<ext>``, committed with the run's logs), and
    ``"snapshot mean"``, the mean of its snapshots over its last ``window`` images (``snapshots/``,
    which git does not keep; the mean is written beside them as ``snapshot-mean.<ext>`` to commit,
    and read from there when they are gone). Each is a (model, meta) pair."""
    cls = backends.method_class(method)
    resume = run_dir / f"resume{cls.checkpoint_ext}"
    if not resume.exists():
        raise CheckpointError(f"{resume}: not found - {run_dir} has no latest weights (is it a training run's folder?)")
    last = cls.from_checkpoint(resume, device="cpu")
    seen = int(last.checkpoint_meta.get("images_seen") or 0)
    snaps = [p for p in sorted((run_dir / "snapshots").glob(f"images_*{cls.checkpoint_ext}"))
             if seen - window <= int(p.stem.split("_")[1]) <= seen]  # fmt: skip
    kept = run_dir / f"{SNAPSHOT_MEAN}{cls.checkpoint_ext}"
    out = {"last": (last, dict(last.checkpoint_meta))}
    if kept.exists():  # made before: used when it is the mean of this trajectory's end (of these very snapshots, where they are here)
        model = cls.from_checkpoint(kept, device="cpu")
        meta = dict(model.checkpoint_meta)
        of = [c.get("images_seen") for c in (meta.get("averaged") or {}).get("checkpoints", [])]
        if int(meta.get("images_seen") or 0) == seen and (len(snaps) < 2 or of == [int(p.stem.split("_")[1]) for p in snaps]):
            out["snapshot mean"] = (model, meta)
            return out
    if len(snaps) >= 2:
        model, meta = average(method, [str(p) for p in snaps])
        model.save(kept, meta, training=False, half=True)
        out["snapshot mean"] = (model, meta)
    return out


def choose_at_budget(method: str, run_dir: Path, window: int = 40_000, val_photos: int = 200, holdout: int = 400, seed: int = 0):
    """(model, meta) the equal-budget rule ships of ``run_dir``: its last weights, or the mean of its
    snapshots over the last ``window`` images when that scores higher on the gate's photos and the
    ``holdout`` others together (each scored as it would ship, in half precision). The comparison
    goes into the meta (``budget_choice``) and is printed."""
    from experiments.train import as_shipped, gate_photo_sets, validate_photos

    sets = gate_photo_sets(val_photos, seed, holdout)
    n = sum(len(p) for p in sets.values())
    scores, candidates = {}, budget_candidates(method, Path(run_dir), window)
    for name, (model, _) in candidates.items():
        shipped_as = as_shipped(model)
        per = {k: validate_photos(shipped_as, photos)["val_auc_rebal"] for k, photos in sets.items() if photos}
        scores[name] = {**{k: round(v, 5) for k, v in per.items()}, "all": round(sum(v * len(sets[k]) for k, v in per.items()) / max(n, 1), 5)}
        print(f"{method}: {Path(run_dir).name} {name} {scores[name]['all']:.4f} on {n} validation photos "
              f"({', '.join(f'{k} {v:.4f}' for k, v in per.items())})")  # fmt: skip
    chosen = max(candidates, key=lambda k: (scores[k]["all"], k == "last"))  # a tie keeps the last weights
    model, meta = candidates[chosen]
    averaged = meta.get("averaged") or {}
    meta["budget_choice"] = {"rule": f"the last weights, or the mean of the snapshots over the last {window:,} images when it scores higher "
                                     f"on {n} validation photos", "chosen": chosen, "scores": scores, "photos": n,
                             "snapshots": len(averaged.get("checkpoints") or [])}  # fmt: skip
    print(f"{method}: chosen {chosen}")
    return model, meta


def _net_config(model) -> dict:
    import dataclasses

    cfg = dataclasses.asdict(model.config)
    # options that do not change the networks' weights (inference or optimiser settings)
    inference = ("temperature", "prior_correction", "test_dropout", "working_size", "keep_aspect", "mirror_average", "squeezenet_weights")
    for k in ("lr", "lr_milestones", "lr_gamma", "decay_start", "decay_steps", *inference):
        cfg.pop(k, None)
    return cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.average", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="*", help="checkpoint files, or REV:PATH for a committed one")
    p.add_argument("--run", help="instead of CHECKPOINTs: a run at its budget - its last weights, or the mean of its snapshots over "
                                 "the last --window images when that scores higher on the gate's and --holdout photos (the equal-budget rule)")
    p.add_argument("--window", type=int, default=40_000, help="with --run: the snapshots averaged, over this many last images")
    p.add_argument("--method", required=True, help="the checkpoints' method, e.g. fusion")
    p.add_argument("--out", help="write the averaged checkpoint here (float16, with its provenance)")
    p.add_argument("--ship-if-better", action="store_true", help="ship it when it beats the shipped model on the fixed validation photos")
    p.add_argument("--val-photos", type=int, default=200, help="validation photos of the ship gate (the training runs' 200)")
    p.add_argument("--min-margin", type=float, default=0.0, help="ship only when the gate gain is at least this (the README's rule: 0.001)")
    p.add_argument("--holdout", type=int, default=0, help="and only when it also wins on this many other validation photos (the rule: 400)")
    p.add_argument("--guard", help="and not when significantly worse, photo by photo, on these photos (the rule: ../shared/data/test)")
    p.add_argument("--gate-only", action="store_true", help="score it and the shipped model as --ship-if-better would, and ship nothing")
    p.add_argument("--ship-at-budget", action="store_true",
                   help="ship it whatever the gate says (the README's equal-budget rule), with the gate's numbers against the model it replaces in its card")  # fmt: skip
    args = p.parse_args(argv)
    if bool(args.run) == bool(args.checkpoints):
        p.error("give checkpoints or --run RUN_DIR, not both")
    what = "average" if len(args.checkpoints) > 1 else "candidate"
    try:
        if args.run:
            model, meta = choose_at_budget(args.method, Path(args.run), args.window, args.val_photos, args.holdout)
            what = meta["budget_choice"]["chosen"]
        else:
            model, meta = average(args.method, args.checkpoints)
        if args.out:
            model.save(Path(args.out), meta, training=False, half=True)
            print(f"wrote {args.out}")
        if args.gate_only:
            from experiments.train import score_against_shipped

            for name, r in score_against_shipped(model, args.val_photos, holdout=args.holdout, guard=args.guard).items():
                if name == "guard":
                    mean, lo, hi = r["auc_rebal_diff"]
                    print(f"{args.method}: {what} - shipped {mean:+.4f} [{lo:+.4f}, {hi:+.4f}] per photo on {r['photos']} photos of {r['data']}")
                    continue
                where = f"the gate's {r['photos']}" if name == "gate" else f"{r['photos']} other"
                shipped = "nothing shipped" if r["shipped"] is None else f"shipped {r['shipped']:.4f} ({r['candidate'] - r['shipped']:+.4f})"
                print(f"{args.method}: {what} {r['candidate']:.4f}, {shipped} on {where} validation photos")
        elif args.ship_if_better or args.ship_at_budget:
            from experiments.train import ship_model

            run = f"results/runs/{meta['run']}" if meta.get("run") else "checkpoints"
            dst = ship_model(model, meta, run, True, args.val_photos, min_margin=args.min_margin, holdout=args.holdout, guard=args.guard,
                             veto=not args.ship_at_budget)  # "averaged" in the meta says how; fmt: skip
            print(f"shipped {dst}" if dst else "not shipped: the shipped model scores as high or higher")
    except (ColorizationError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
