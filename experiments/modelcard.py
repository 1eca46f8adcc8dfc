"""Model cards: ``python -m experiments.modelcard`` adds a ``card`` to ``results/checkpoints/<method>.json``.

A card says what a reviewer needs to weigh a shipped model: its variant (encoder, global branch),
the data it saw, images seen, crop schedule, wall time, hardware, and its validation and test
numbers with their 95% intervals (from ``results/metrics/{val,test}.summary.csv``, which
``experiments.evaluate`` writes from the same shipped checkpoints). :func:`cards` reads them for the
README, the dashboard and the report; :func:`to_markdown` renders the README's table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import backends.base
from backends.base import PROJECT_ROOT

METRICS_DIR = PROJECT_ROOT / "results" / "metrics"
#: Columns a card carries from each evaluation summary (mean, lo, hi).
CARD_METRICS = ("auc_rebal", "auc", "psnr", "ssim", "ciede2000", "colorfulness", "colorfulness_diff")


def _summary_row(name: str, method: str, metrics_dir: Path | None = None) -> dict | None:
    path = (metrics_dir or METRICS_DIR) / f"{name}.summary.csv"
    if not path.exists():
        return None
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("method") == method:
                return row
    return None


def _metrics(name: str, method: str, metrics_dir: Path | None = None) -> dict | None:
    row = _summary_row(name, method, metrics_dir)
    if row is None:
        return None
    out: dict = {"n": int(float(row.get("n") or 0))}
    for col in CARD_METRICS:
        if row.get(col) not in (None, ""):
            out[col] = [round(float(row[col]), 4), round(float(row[f"{col}_lo"]), 4), round(float(row[f"{col}_hi"]), 4)]
    gray = _summary_row(name, "gray", metrics_dir)
    if gray and row.get("auc_rebal") and gray.get("auc_rebal"):
        out["auc_rebal_minus_gray"] = round(float(row["auc_rebal"]) - float(gray["auc_rebal"]), 4)
    return out


def variant(method: str, config: dict) -> str:
    model = config.get("model", {}) if "model" in config else config
    enc = model.get("encoder", "scratch")
    parts = [f"encoder: {'SqueezeNet 1.1 (ImageNet, frozen)' if enc == 'squeezenet' and not model.get('encoder_trainable') else 'SqueezeNet 1.1 (ImageNet, fine-tuned)' if enc == 'squeezenet' else 'learned from scratch (the paper)'}"]
    if "global_branch" in model:
        parts.append(f"global branch: {'frozen SqueezeNet embedding (Deep Koalarization)' if model['global_branch'] == 'squeezenet' else 'learned (Iizuka et al.)'}")
    if model.get("encoder_scale", 1.0) != 1.0 and enc == "squeezenet":
        parts.append(f"encoder input resized x{model['encoder_scale']:g} (ImageNet's scale; taps resampled to the decoder's grid)")
    if method == "gan" and model.get("dropout_blocks", 3) != 3:
        n = model["dropout_blocks"]
        parts.append(f"dropout in {n} decoder block{'s' if n != 1 else ''} (the paper: 3)")
    if method == "gan" and enc == "squeezenet" and model.get("ngf_decoder", 16) != 16:
        w = int(model["ngf_decoder"])
        parts.append(f"decoder widths from {w} (ngf_decoder; the first runs' 16, the paper's U-Net 64)")
    start, steps = int(model.get("decay_start") or 0), int(model.get("decay_steps") or 0)
    if method != "gan" and steps > 0:  # the gan's decay is pix2pix's own
        parts.append(f"learning rate decayed linearly to 0 over steps {start:,}-{start + steps:,} (pix2pix's policy; not in the paper)")
    if model.get("prior_correction"):
        parts.append(f"decoding: rebalancing weights^{model['prior_correction']:g} divided out before the annealed mean (not in the paper)")
    if method in ("classification", "gan", "regression") and model.get("keep_aspect", True):
        # the option came after most runs: their stored configs lack it and load with its default
        parts.append("aspect ratio kept at inference (longer side at the working size; the paper's code squashes to a square)")
    return "; ".join(parts)


def _budget_choice(choice: dict | None) -> str:
    """How the equal-budget rule picked the shipped weights (``experiments.average --run``)."""
    scores = (choice or {}).get("scores") or {}
    if not scores:
        return ""
    said = " against ".join(f"{name} {s['all']:.4f}" for name, s in sorted(scores.items(), key=lambda kv: kv[0] != choice["chosen"]))
    return f"; {choice['chosen']} shipped by the equal-budget rule ({said} on {choice.get('photos', '?')} validation photos)"


def _continued(meta: dict) -> str:
    """"; continued from run B at 360,008 images, which continued from run A at 200,000": the whole
    chain of ``--init-from`` runs, as far as ``results/runs`` has their records."""
    from experiments import runlogs

    chain = runlogs.ancestry(meta)
    said = [f"run {run} at {_count(n)} images" for run, n in chain]
    return "; continued from " + ", which continued from ".join(said) if said else ""


def _count(n) -> str:
    return f"{int(n):,}" if isinstance(n, (int, float)) else "?"


def _data_roots(roots, pack) -> list:
    if isinstance(pack, dict) and isinstance(pack.get("train_roots"), list) and pack["train_roots"]:
        return [f"{os.path.relpath(r, PROJECT_ROOT) if os.path.isabs(r) else r} (device pack)" for r in pack["train_roots"]]
    return roots if isinstance(roots, list) else [roots]


def _phases(data: dict) -> list[tuple[int, object, object]]:
    """``(from images, crop, batch)`` of a run's crop schedule."""
    return [(0, data.get("crop"), data.get("batch_size"))] + [(int(s), c, b) for s, c, b in (data.get("schedule") or [])]


def crops_of(meta: dict) -> list[str]:
    """The crop schedule the model was trained on. A run continued from another (``--init-from``)
    saw the other run's schedule up to the images it went on from, then its own from there on (a
    160-px continuation at 300,000 images of a run that switched to 128 px at 200,000: "64 px;
    128 px from 200,000; 160 px from 300,000", not its own config's "160 px from 200,000")."""
    data = (meta.get("config") or {}).get("data") or {}
    phases = _phases(data)
    from experiments import runlogs

    run, at = runlogs.continued_from_run(meta)
    parent = runlogs.run_config(run).get("data") if run and at else None
    if parent:
        before = [p for p in _phases(parent) if p[0] < at]
        active = [p for p in phases if p[0] <= at][-1:]
        phases = before + [(at, c, b) for _, c, b in active] + [p for p in phases if p[0] > at]
    merged: list[tuple[int, object, object]] = []
    for p in phases:  # the same crop and batch on both sides of the continuation: one phase
        if not merged or (merged[-1][1], merged[-1][2]) != (p[1], p[2]):
            merged.append(p)
    return [f"{c} px (batch {b})" if s == 0 else f"{c} px (batch {b}) from {s:,} images" for s, c, b in merged]


def make_card(method: str, meta: dict, metrics_dir: Path | None = None) -> dict:
    """The card of a shipped model from its provenance ``meta``; its val and test numbers from the
    evaluation summaries in ``metrics_dir`` (default the project's ``results/metrics``)."""
    cfg = meta.get("config", {})
    data = cfg.get("data", {})
    roots = data.get("train")
    crops = crops_of(meta)
    averaged = meta.get("averaged") or {}
    seen = [c.get("images_seen") or 0 for c in averaged.get("checkpoints", [])]
    return {
        # a shipped average (experiments.average) is no paper's: the variant says so
        "variant": variant(method, cfg) + (f"; weights averaged over {len(seen)} checkpoints of the run ({min(seen):,}-{max(seen):,} images)" if seen else "")
        + _continued(meta)
        + _budget_choice(meta.get("budget_choice"))
        + (
            f"; trained on the device pack ({_count(pack.get('photos_packed'))} of {_count(pack.get('photos_listed'))} photos, "
            f"{pack.get('format') or 'WebP'} q{pack.get('quality') or '?'} at {pack.get('short_side') or '?'} px)"
            if isinstance(pack := meta.get("device_pack"), dict)
            else ""
        ),
        # a device run read the pack's unpacked copies under a scratch folder: the card names the originals
        "data": _data_roots(roots, meta.get("device_pack")),
        "images_seen": meta.get("images_seen"),
        "steps": meta.get("step"),
        "crops": crops,
        "wall_hours": round(float(meta.get("wall_s", 0)) / 3600, 2),
        "hardware": meta.get("hardware"),
        # of the last training chunk (train.precision); checkpoints from before it was recorded: float32
        "train_precision": meta.get("train_precision", "float32"),
        "commit": meta.get("commit"),
        "val": _metrics("val", method, metrics_dir),
        "test": _metrics("test", method, metrics_dir),
    }


def update_cards(methods: list[str] | None = None) -> list[Path]:
    written = []
    for path in sorted(backends.base.CHECKPOINT_DIR.glob("*.json")):  # read when called: tests point it elsewhere
        method = path.stem
        if methods and method not in methods:
            continue
        meta = json.loads(path.read_text())
        meta["card"] = make_card(method, meta)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, path)
        written.append(path)
    return written


def cards() -> dict[str, dict]:
    """method -> card of every shipped checkpoint (computed now when the json has none)."""
    out = {}
    for path in sorted(backends.base.CHECKPOINT_DIR.glob("*.json")):  # read when called: tests point it elsewhere
        meta = json.loads(path.read_text())
        out[path.stem] = meta.get("card") or make_card(path.stem, meta)
    return out


def _ci(v) -> str:
    return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" if v else "-"


def auc_cell(numbers: dict | None) -> str:
    """An evaluation's rebalanced AuC with its interval and its gain over grey: "0.842 [0.835, 0.850] (+0.036)"."""
    d = numbers or {}
    if not d.get("auc_rebal"):
        return "-"
    return f"{_ci(d['auc_rebal'])} ({d.get('auc_rebal_minus_gray', 0):+.3f})"


def to_markdown(all_cards: dict[str, dict] | None = None) -> str:
    all_cards = cards() if all_cards is None else all_cards
    lines = [
        "| method | variant | images seen | crops | wall time | hardware | val AuC rebal. (vs grey) | test AuC rebal. (vs grey) |",
        "|---|---|---:|---|---:|---|---|---|",
    ]
    for m, c in all_cards.items():
        lines.append(
            f"| `{m}` | {c['variant']} | {c['images_seen'] or 0:,} | {'; '.join(c['crops'])} | {c['wall_hours']} h | {c['hardware']} | {auc_cell(c.get('val'))} | {auc_cell(c.get('test'))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.modelcard", description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", help="comma-separated (default: every shipped checkpoint)")
    p.add_argument("--markdown", action="store_true", help="print the README's model-card table")
    args = p.parse_args(argv)
    written = update_cards(args.methods.split(",") if args.methods else None)
    if args.markdown:
        print(to_markdown())
    else:
        print("\n".join(f"wrote the card of {w.relative_to(PROJECT_ROOT)}" for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
