"""What each cheaper neural_style schedule costs in time and in quality.

    python -m experiments.scripts.neural_style_schedule --photos 6 [--data ../shared/data/val]

For a few photos (a fixed random sample, seed 0, of ``--data``, squashed to 256 px as
``experiments.evaluate`` does), each schedule colorizes the grey photo with the same reference (the
automatic pick of the default schedule, so only the optimisation differs) on ``--threads`` CPU
threads (default 1: its CPU seconds bound the wall time on 2 idle cores from above, and unlike wall
time they hardly change when the machine is shared). Per schedule: median seconds (CPU and wall) per photo, the pixel metrics of
``experiments.metrics`` against the truth (class-rebalanced AuC, CIEDE2000, colourfulness), the final
loss relative to the default schedule's, and how far its result is from the default schedule's
(mean CIEDE2000 between the two outputs). Prints a Markdown table; ``--out`` also writes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from backends.base import PROJECT_ROOT

#: name -> Config overrides. "default" is the reference the others are compared with.
SCHEDULES = {
    "30 iterations (before)": {"iterations": 30, "coarse_iterations": 0, "tolerance": 0.0},
    "20 iterations": {"iterations": 20, "coarse_iterations": 0, "tolerance": 0.0},
    "12 iterations": {"iterations": 12, "coarse_iterations": 0, "tolerance": 0.0},
    "30, early stop 1%": {"iterations": 30, "coarse_iterations": 0, "tolerance": 0.01},
    "coarse 20 @128 + 8 @256 (default)": {"iterations": 8, "coarse_iterations": 20, "tolerance": 0.0},
    "coarse 20 @128 + 12 @256, stop 1%": {"iterations": 12, "coarse_iterations": 20, "tolerance": 0.01},
}
BASE = "30 iterations (before)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data" / "val")
    p.add_argument("--photos", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--out", type=Path, help="also write the table (Markdown) and the raw numbers (.json beside it)")
    args = p.parse_args(argv)

    from backends import threads

    threads.apply(args.threads)
    import torch

    import backends
    from experiments import metrics as M
    from experiments.evaluate import gray_of, load_truth, scan_photos

    photos = scan_photos(args.data, limit=args.photos)
    model = backends.load("neural_style", device="cpu", progress_bar=False)
    default_cfg = model.config
    rows: dict[str, list[dict]] = {k: [] for k in SCHEDULES}
    outputs: dict[str, list[np.ndarray]] = {k: [] for k in SCHEDULES}

    def tensor(a):
        return torch.as_tensor(np.array(a), dtype=torch.float64).permute(2, 0, 1)[None]

    for ph in photos:
        truth = load_truth(ph.path, args.size)
        grey = gray_of(truth)
        from backends import color
        from backends.base import resize_plane

        L = color.lightness(grey)
        ref = model.pick_reference(resize_plane(L, model.working_shape(*L.shape)))["rgb"]
        for name, overrides in SCHEDULES.items():
            model.config = dataclasses.replace(default_cfg, **overrides)
            t, c = time.perf_counter(), time.process_time()
            out = model.colorize(grey, reference=ref)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            m = {k: float(v[0]) for k, v in M.pixel_metrics(tensor(out), tensor(truth), 255.0).items()}
            rows[name].append({"photo": ph.name, "wall_s": wall, "cpu_s": cpu, "loss": model.last_losses[-1]["total"], **m})
            outputs[name].append(out)
            print(f"{ph.name} {name}: {cpu:.1f} CPU-s, {wall:.1f} s, AuC rebal {m['auc_rebal']:.3f}", flush=True)
    model.config = default_cfg

    lines = [
        f"neural_style schedules on {len(photos)} photos of `{args.data.name}` at {args.size} px, {args.threads} CPU threads, "
        "same reference per photo; medians of seconds, means of metrics.",
        "",
        "| schedule | CPU (s) | wall (s) | AuC rebal. | CIEDE2000 | colourfulness | final loss / before | change vs before (CIEDE2000) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    summary = {}
    for name in SCHEDULES:
        r = rows[name]
        change = [
            float(M.ciede2000(tensor(a), tensor(b), 255.0)[0]) for a, b in zip(outputs[name], outputs[BASE])
        ]
        loss_ratio = [x["loss"] / max(b["loss"], 1e-12) for x, b in zip(r, rows[BASE])]
        s = {
            "wall_s": float(np.median([x["wall_s"] for x in r])),
            "cpu_s": float(np.median([x["cpu_s"] for x in r])),
            "auc_rebal": float(np.mean([x["auc_rebal"] for x in r])),
            "ciede2000": float(np.mean([x["ciede2000"] for x in r])),
            "colorfulness": float(np.mean([x["colorfulness"] for x in r])),
            "loss_ratio": float(np.median(loss_ratio)),
            "change": float(np.mean(change)),
        }
        summary[name] = {"overrides": SCHEDULES[name], **s, "photos": r}
        lines.append(
            f"| {name} | {s['cpu_s']:.1f} | {s['wall_s']:.1f} | {s['auc_rebal']:.3f} | {s['ciede2000']:.2f} | "
            f"{s['colorfulness']:.1f} | {s['loss_ratio']:.2f} | {s['change']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
