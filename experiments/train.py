"""Train any method from its config: ``python -m experiments.train --config experiments/configs/<m>.toml``.

The loop knows nothing method-specific; it reads top to bottom: config -> seeds -> data ->
method (fresh or resumed) -> steps (log every ``log_every``, checkpoint + sample grid + validation
every ``checkpoint_every`` and on interrupt) -> final checkpoint. Everything lands in
``results/runs/<run>/``: ``config.toml``, ``log.csv`` (one row per logged step: step, epoch,
wall_s, images_seen and one column per loss term), ``val.csv``, ``samples/step_XXXXXXX.png``,
``checkpoint.<ext>`` and ``checkpoint.json`` (provenance). ``--ship`` then writes the run's
checkpoint, in half precision, to ``results/checkpoints/<method>.<ext>`` with its provenance.

Multi-GPU: ``torchrun --nproc_per_node N -m experiments.train --config ...`` (PyTorch methods).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import backends
from backends.base import CHECKPOINT_DIR, PROJECT_ROOT, config_from_dict, join_lab, resolve_device
from backends.errors import ColorizationError
from experiments.config import ExperimentConfig, dump_toml, load_config, project_path
from experiments.data import ImageFolderLab, fixed_batch

LOG_FIXED = ["step", "epoch", "wall_s", "images_seen"]


# --- small pure helpers -----------------------------------------------------------------------


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware(device: str) -> str:
    cpu = f"{platform.machine()} {os.cpu_count()} cores"
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(0)} (CUDA) x{torch.cuda.device_count()}, {cpu}"
    return f"CPU {platform.processor() or platform.machine()}, {cpu}"


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def truncate_log(path: Path, step: int) -> None:
    """On resume, drop rows logged after the checkpoint so the log continues without duplicates."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        rows = [r for r in reader if int(float(r["step"])) <= step]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


class CsvLog:
    """Append-only CSV whose columns are fixed by the first row written (or the existing header)."""

    def __init__(self, path: Path):
        self.path = path
        self.fields: list[str] | None = None
        if path.exists() and path.stat().st_size:
            with path.open(newline="") as f:
                self.fields = next(csv.reader(f), None)

    def write(self, row: dict) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


def sample_grid(method, batch: dict) -> np.ndarray:
    """Rows: grey input, prediction, ground truth (one column per validation photo)."""
    from backends import color

    L = batch["L"][:, 0].numpy()
    ab_true = batch["ab"].numpy()
    ab_pred = np.asarray(method.predict_ab(L), dtype=np.float32)
    cols = []
    for i in range(len(L)):
        grey = color.lab_to_rgb_uint8(np.stack([L[i], 0 * L[i], 0 * L[i]], -1))
        pred = join_lab(L[i], ab_pred[i])
        true = color.lab_to_rgb_uint8(np.stack([L[i], ab_true[i, 0], ab_true[i, 1]], -1))
        cols.append(np.concatenate([grey, pred, true], axis=0))
    return np.concatenate(cols, axis=1)


def validate(method, batch: dict) -> dict:
    """Method-agnostic validation on the fixed batch: ab RMSE and predicted/true chroma ratio."""
    from PIL import Image

    L = batch["L"][:, 0].numpy()
    ab_true = batch["ab"].numpy()
    ab_pred = np.asarray(method.predict_ab(L), dtype=np.float32)
    if ab_pred.shape[-2:] != ab_true.shape[-2:]:
        h, w = ab_true.shape[-2:]
        ab_pred = np.stack(
            [[np.asarray(Image.fromarray(c, mode="F").resize((w, h), Image.BILINEAR)) for c in im] for im in ab_pred]
        )
    rmse = float(np.sqrt(((ab_pred - ab_true) ** 2).sum(1).mean()))
    chroma_ratio = float(np.hypot(*ab_pred.transpose(1, 0, 2, 3)).mean() / max(np.hypot(*ab_true.transpose(1, 0, 2, 3)).mean(), 1e-6))
    return {"val_ab_rmse": rmse, "val_chroma_ratio": chroma_ratio}


def build_method(cfg: ExperimentConfig, device: str):
    cls = backends.method_class(cfg.method)
    return cls(config_from_dict(cls.Config, cfg.model), device)


# --- the loop ---------------------------------------------------------------------------------


def train(cfg: ExperimentConfig, device: str = "auto", fresh: bool = False, progress: bool = True, init_from: str | Path | None = None) -> Path:
    import torch

    # distributed (torchrun) or single process
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device)
    if world > 1:
        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend)
        if device.startswith("cuda"):
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(local_rank)
    master = rank == 0
    seed_everything(cfg.train.seed + rank)

    run_dir = cfg.run_dir
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    train_set = ImageFolderLab(project_path(cfg.data.train), cfg.data.crop, True, cfg.data.max_scale, limit=cfg.data.limit or None, seed=cfg.train.seed)
    val_set = ImageFolderLab(project_path(cfg.data.val), cfg.data.crop, False)
    val_batch = fixed_batch(val_set, cfg.data.val_count, seed=cfg.train.seed)
    grid_batch = {k: v[:8] for k, v in val_batch.items()}

    method = build_method(cfg, device)
    ckpt = run_dir / f"checkpoint{method.checkpoint_ext}"
    meta_path = run_dir / "checkpoint.json"
    log_path, val_path = run_dir / "log.csv", run_dir / "val.csv"
    state = {"step": 0, "epoch": 0, "wall_s": 0.0, "images_seen": 0}
    # Resume from the run's own checkpoint; or, when the run has none (checkpoints are not
    # committed), from ``init_from`` - e.g. the shipped model - whose weights and step/wall-time
    # counters continue (its optimiser state, when it has none, starts afresh).
    start = ckpt if ckpt.exists() and not fresh else (Path(init_from) if init_from and not fresh else None)
    if start is not None:
        meta = method.load(start, training=True)
        state.update({k: meta.get(k, state[k]) for k in state})
        if master:
            truncate_log(log_path, state["step"])
            truncate_log(val_path, state["step"])
            print(f"resuming {run_dir.name} from step {state['step']} ({start})", file=sys.stderr)
    elif master:
        for p in (log_path, val_path, ckpt, meta_path):
            p.unlink(missing_ok=True)
        for p in (run_dir / "samples").glob("*.png"):
            p.unlink()
    method.step = state["step"]
    if master:
        (run_dir / "config.toml").write_text(dump_toml(cfg.to_dict()))
    if world > 1:
        method.distribute(local_rank)

    sampler = torch.utils.data.DistributedSampler(train_set, seed=cfg.train.seed) if world > 1 else None
    loader_gen = torch.Generator().manual_seed(cfg.train.seed)

    def epochs():
        while True:
            if sampler is not None:
                sampler.set_epoch(state["epoch"])
            else:
                loader_gen.manual_seed(cfg.train.seed + state["epoch"])
            loader = torch.utils.data.DataLoader(
                train_set,
                batch_size=cfg.data.batch_size,
                shuffle=sampler is None,
                sampler=sampler,
                generator=loader_gen if sampler is None else None,
                num_workers=cfg.data.workers,
                drop_last=len(train_set) >= cfg.data.batch_size,
                worker_init_fn=_worker_init,
                persistent_workers=False,
            )
            yield from loader
            state["epoch"] += 1

    def save_checkpoint():
        if not master:
            return
        method.eval()
        with torch.no_grad():
            val = validate(method, val_batch)
            grid = sample_grid(method, grid_batch)
        from PIL import Image

        Image.fromarray(grid).save(run_dir / "samples" / f"step_{state['step']:07d}.png")
        CsvLog(val_path).write({"step": state["step"], "wall_s": round(state["wall_s"], 2), **{k: round(v, 5) for k, v in val.items()}})
        meta = {
            **state,
            "method": cfg.method,
            "run": run_dir.name,
            "config": cfg.to_dict(),
            "commit": git_commit(),
            "hardware": hardware(device),
            "world_size": world,
            "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "validation": val,
        }
        method.save(ckpt, meta, training=True)
        meta_path.write_text(json.dumps(meta, indent=2))
        method.train()

    interrupted = {"flag": False}

    def on_signal(signum, frame):
        interrupted["flag"] = True

    old = signal.signal(signal.SIGTERM, on_signal)
    log = CsvLog(log_path) if master else None
    bar = None
    if progress and master:
        from tqdm import tqdm

        bar = tqdm(total=cfg.train.steps, initial=state["step"], desc=f"train {cfg.method}", unit="step", dynamic_ncols=True)
    method.train()
    data = epochs()
    t0 = time.perf_counter() - state["wall_s"]
    try:
        while state["step"] < cfg.train.steps:
            batch = next(data)
            losses = method.train_step(batch)
            state["step"] += 1
            method.step = state["step"]
            state["images_seen"] += len(batch["L"]) * world
            state["wall_s"] = time.perf_counter() - t0
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(losses.items())[:3]})
            if master and (state["step"] % cfg.train.log_every == 0 or state["step"] == cfg.train.steps):
                log.write({"step": state["step"], "epoch": state["epoch"], "wall_s": round(state["wall_s"], 3), "images_seen": state["images_seen"], **{k: round(float(v), 6) for k, v in losses.items()}})
            if state["step"] % cfg.train.checkpoint_every == 0 or state["step"] == cfg.train.steps:
                save_checkpoint()
            if interrupted["flag"]:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        save_checkpoint()
        if master:
            print(f"\ninterrupted: checkpoint saved at step {state['step']} in {ckpt}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, old)
        if bar is not None:
            bar.close()
        if world > 1:
            torch.distributed.destroy_process_group()
    return run_dir


def _worker_init(worker_id: int) -> None:
    import torch

    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def ship(run_dir: Path, method_name: str) -> Path:
    """Copy a run's checkpoint to results/checkpoints/<method>.<ext> (half precision) with provenance."""
    cls = backends.method_class(method_name)
    src = run_dir / f"checkpoint{cls.checkpoint_ext}"
    meta = json.loads((run_dir / "checkpoint.json").read_text())
    model = cls.from_checkpoint(src, device="cpu")
    dst = CHECKPOINT_DIR / f"{method_name}{cls.checkpoint_ext}"
    model.save(dst, meta, training=False, half=True)
    (CHECKPOINT_DIR / f"{method_name}.json").write_text(json.dumps({**meta, "shipped_from": str(run_dir.relative_to(PROJECT_ROOT)) if run_dir.is_relative_to(PROJECT_ROOT) else str(run_dir), "precision": "float16"}, indent=2))
    return dst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="experiments/configs/<method>.toml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.steps=100 data.crop=128")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming the run's checkpoint")
    p.add_argument("--init-from", metavar="CKPT", help="when the run has no checkpoint of its own, start from this one's weights and step (e.g. results/checkpoints/<method>.pt)")
    p.add_argument("--ship", action="store_true", help="after training, ship the checkpoint to results/checkpoints")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        run_dir = train(cfg, args.device, fresh=args.fresh, progress=not args.no_progress, init_from=args.init_from)
        if args.ship and int(os.environ.get("RANK", "0")) == 0:
            print(f"shipped {ship(run_dir, cfg.method)}")
    except KeyboardInterrupt:
        return 130
    except (ColorizationError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
