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
import contextlib
import csv
import datetime as dt
import io
import json
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

import backends
from backends.base import CHECKPOINT_DIR, PROJECT_ROOT, config_from_dict, join_lab, resolve_device
from backends.errors import ColorizationError
from experiments import logsinks
from experiments.config import ExperimentConfig, dump_toml, load_config, project_path
from experiments.data import ImageFolderLab, fixed_batch
from experiments.datacache import StreamBatches, StreamCrops, build_cache, phase_at

LOG_FIXED = ["step", "epoch", "wall_s", "images_seen"]


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a run after its interrupt checkpoint was saved."""

    def __init__(self, signum: int, step: int = 0, checkpoint: Path | None = None):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"{signal.Signals(signum).name}: checkpoint saved at step {step} in {checkpoint}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # 130 for SIGINT (Ctrl-C), 143 for SIGTERM


# --- small pure helpers -----------------------------------------------------------------------


def git_commit() -> str:
    """The checkout's commit (``+dirty`` with uncommitted changes); ``COLORIZE_GIT_COMMIT`` names it
    where the code travelled without its history (the lent device machine)."""
    if os.environ.get("COLORIZE_GIT_COMMIT"):
        return os.environ["COLORIZE_GIT_COMMIT"]
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


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write a whole file so that a reader (or a crash at any moment) sees the old or the new
    version, never a part: a temporary file in the same folder, flushed to disk, then a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _log_rows(path: Path) -> tuple[list[str], list[dict], int]:
    """Header, well-formed rows and the number of rows dropped: a last line cut short by a crash
    (no newline at the end, too few fields or a step that is not a number) is not a row."""
    if not path.exists():
        return [], [], 0
    with path.open(newline="") as f:
        text = f.read()
    lines = text.splitlines(keepends=True)
    if not lines or not lines[0].endswith("\n"):
        return [], [], len(lines)
    fields = next(csv.reader([lines[0]]))
    rows, dropped = [], 0
    for line in lines[1:]:
        values = next(csv.reader([line]), [])
        ok = line.endswith("\n") and len(values) == len(fields) and "step" in fields
        if ok:
            row = dict(zip(fields, values))
            try:
                int(float(row["step"]))
            except ValueError:
                ok = False
        if ok:
            rows.append(row)
        elif line.strip():
            dropped += 1
    return fields, rows, dropped


def read_log(path: Path) -> list[dict]:
    """The rows of a run's CSV log; a torn last line (the run was killed mid-write) is left out."""
    return _log_rows(path)[1]


def truncate_log(path: Path, step: int) -> None:
    """On resume, drop rows logged after the checkpoint (and any torn line) so the log continues
    without duplicates; the rewrite is atomic."""
    if not path.exists():
        return
    fields, rows, dropped = _log_rows(path)
    if dropped:
        print(f"{path}: dropped {dropped} torn line(s) left by an interrupted write", file=sys.stderr)
    if not fields:
        path.unlink()
        return
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(r for r in rows if int(float(r["step"])) <= step)
    write_atomic(path, buf.getvalue())


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


def build_method(cfg: ExperimentConfig, device: str, class_names: list[str] | None = None):
    """The method from the config's [model]; a method with a class head (fusion) gets the training
    set's class names (and count) unless the config names them."""
    import dataclasses as dc

    cls = backends.method_class(cfg.method)
    model = dict(cfg.model)
    fields = {f.name for f in dc.fields(cls.Config)}
    if class_names and "class_names" in fields and "class_names" not in model:
        model["class_names"] = list(class_names)
        model["num_classes"] = len(class_names)
    return cls(config_from_dict(cls.Config, model), device)


def validation_photos(root: Path, n: int, seed: int = 0) -> list[tuple[np.ndarray, str]]:
    """A fixed sample of ``n`` validation photos (RGB at their stored size) with their file names."""
    from backends.imageio import load_image
    from experiments.data import scan_folder

    if n <= 0:
        return []
    samples, _ = scan_folder(root)
    rng = random.Random(seed)
    pick = sorted(rng.sample(range(len(samples)), min(n, len(samples))))
    return [(load_image(samples[i].path, mode="rgb"), samples[i].path.name) for i in pick]


def holdout_photos(root: Path, n: int = 400, gate: int = 200, table: int = 500, seed: int = 1, gate_seed: int = 0) -> list[tuple[np.ndarray, str]]:
    """A second opinion for a candidate model: ``n`` validation photos outside the ship gate's fixed
    sample (``gate`` photos, :func:`validation_photos` with ``gate_seed``) and outside the tables' sample
    (``python -m experiments.evaluate --limit table``), drawn with ``seed``; neither the gate nor the
    tables ever see them, so a gain the gate saw that they do not share is the gate's noise."""
    from backends.imageio import load_image
    from experiments.data import scan_folder
    from experiments.evaluate import scan_photos

    if n <= 0:
        return []
    samples, _ = scan_folder(root)
    gate_pick = random.Random(gate_seed).sample(range(len(samples)), min(gate, len(samples))) if gate > 0 else []
    gate_names = {samples[i].path.name for i in gate_pick}
    table_names = {p.path for p in scan_photos(root, table)} if table > 0 else set()
    rest = [s for s in samples if s.path.name not in gate_names and s.path not in table_names]
    random.Random(seed).shuffle(rest)
    return [(load_image(s.path, mode="rgb"), s.path.name) for s in rest[:n]]


def validate_photos(method, photos: list[tuple[np.ndarray, str]], chunk: int = 16) -> dict:
    """The full colorize flow on the fixed validation photos (grey input): mean rebalanced AuC,
    AuC and colourfulness ratio to the truth - the learning curves the Training page compares."""
    if not photos:
        return {}
    with _thread_count_kept():
        return _validate_photos(method, photos, chunk)


@contextlib.contextmanager
def _thread_count_kept():
    """Training goes on with its own PyTorch thread count, whatever colorize fitted it to inside."""
    import torch

    count = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != count:
            torch.set_num_threads(count)


def _photo_metrics(method, photos: list[tuple[np.ndarray, str]], chunk: int):
    """Each photo's :func:`experiments.metrics.pixel_metrics` under the full colorize flow (grey input)."""
    import torch

    from experiments.evaluate import gray_of
    from experiments.metrics import pixel_metrics

    for i in range(0, len(photos), chunk):
        part = [rgb for rgb, _ in photos[i : i + chunk]]
        outs = method.colorize_batch([gray_of(rgb) for rgb in part])
        for out, truth in zip(outs, part):
            x = torch.from_numpy(out).permute(2, 0, 1)[None].float() / 255
            y = torch.from_numpy(truth).permute(2, 0, 1)[None].float() / 255
            yield pixel_metrics(x, y)


def _validate_photos(method, photos: list[tuple[np.ndarray, str]], chunk: int) -> dict:
    sums = {"val_auc_rebal": 0.0, "val_auc": 0.0, "val_colorfulness": 0.0, "val_colorfulness_truth": 0.0}
    for m in _photo_metrics(method, photos, chunk):
        sums["val_auc_rebal"] += float(m["auc_rebal"][0])
        sums["val_auc"] += float(m["auc"][0])
        sums["val_colorfulness"] += float(m["colorfulness"][0])
        sums["val_colorfulness_truth"] += float(m["colorfulness"][0] - m["colorfulness_diff"][0])
    n = len(photos)
    out = {k: v / n for k, v in sums.items()}
    out["val_colorfulness_ratio"] = out.pop("val_colorfulness") / max(out.pop("val_colorfulness_truth"), 1e-6)
    return out


def auc_rebal_each(method, photos: list[tuple[np.ndarray, str]], chunk: int = 16) -> np.ndarray:
    """Each photo's rebalanced AuC under the full colorize flow (grey input): the paired scores of
    the ship rule's out-of-distribution guard (:func:`ship_model`'s ``guard``)."""
    with _thread_count_kept():
        return np.array([float(m["auc_rebal"][0]) for m in _photo_metrics(method, photos, chunk)])


def guard_photos(root: Path) -> list[tuple[np.ndarray, str]]:
    """Every photo under ``root`` (RGB at its stored size; e.g. ../shared/data/test, whose subjects
    the training data does not have) with its path below ``root``."""
    from backends.imageio import load_image
    from experiments.evaluate import scan_photos

    return [(load_image(p.path, mode="rgb"), str(Path(p.path).relative_to(root))) for p in scan_photos(root)]


def guard_verdict(candidate, shipped, root: Path) -> dict:
    """The out-of-distribution guard: ``candidate`` against ``shipped`` photo by photo on the photos
    under ``root``; ``passed`` is False only when the whole 95% interval of the difference in
    rebalanced AuC is below 0 (a significant loss there) - a veto, never a reason to ship."""
    from experiments.metrics import bootstrap_ci

    photos = guard_photos(root)
    mean, lo, hi, _ = bootstrap_ci(auc_rebal_each(candidate, photos) - auc_rebal_each(shipped, photos), n_resamples=2000)
    return {"data": str(root), "photos": len(photos), "auc_rebal_diff": [round(mean, 5), round(lo, 5), round(hi, 5)], "passed": not hi < 0}


class _Grey:
    """The grey baseline (ab = 0) in the shape :func:`validate_photos` expects of a method."""

    @staticmethod
    def colorize_batch(images: list[np.ndarray]) -> list[np.ndarray]:
        return images  # validate_photos hands it the grey inputs already


def write_val_reference(run_dir: Path, photos: list[tuple[np.ndarray, str]], root: Path, seed: int) -> dict:
    """``val_reference.json``: grey's scores on the run's fixed validation photos, the line its
    learning curves are read against (the Training page draws it), unless one for the same photos
    is there already."""
    path = run_dir / "val_reference.json"
    names = [name for _, name in photos]
    try:
        old = json.loads(path.read_text())
        if old.get("photos") == names:
            return old
    except (OSError, ValueError):
        pass
    ref = {"val": str(root), "seed": seed, "photos": names, "grey": validate_photos(_Grey, photos)}
    write_atomic(path, json.dumps(ref, indent=2))
    return ref


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
    if master:  # temporary files of a run killed mid-write (SIGKILL, power loss); the real files are intact
        for tmp in [*run_dir.glob("*.tmp"), *run_dir.glob(".*.tmp"), *(run_dir / "samples").glob(".*.tmp")]:
            tmp.unlink(missing_ok=True)
    roots = [project_path(r) for r in cfg.data.train_roots]
    if cfg.data.cache:
        # decoded once, memory-mapped; the stream is a pure function of images_seen (exact resume)
        cache = build_cache(roots, short=max(cfg.data.cache_short, cfg.data.crop), progress=progress and master)
        train_set = StreamCrops(cache, cfg.data.crop, cfg.data.max_scale, seed=cfg.train.seed)
        class_names = cache.classes
    else:
        if len(roots) != 1:
            raise ValueError("data.train lists several folders; that needs data.cache = true")
        train_set = ImageFolderLab(roots[0], cfg.data.crop, True, cfg.data.max_scale, limit=cfg.data.limit or None, seed=cfg.train.seed)
        class_names = train_set.classes
    val_set = ImageFolderLab(project_path(cfg.data.val), cfg.data.crop, False)
    val_photos = validation_photos(project_path(cfg.data.val), cfg.data.val_photos, seed=cfg.train.seed)
    val_batch = fixed_batch(val_set, cfg.data.val_count, seed=cfg.train.seed)
    grid_batch = {k: v[:8] for k, v in val_batch.items()}

    method = build_method(cfg, device, class_names)
    precision = method.set_train_precision(cfg.train.precision) if hasattr(method, "set_train_precision") else "float32"
    ckpt = run_dir / f"checkpoint{method.checkpoint_ext}"
    meta_path = run_dir / "checkpoint.json"
    log_path, val_path = run_dir / "log.csv", run_dir / "val.csv"
    sinks = logsinks.open_sinks(run_dir, cfg.to_dict()) if master else logsinks.Sinks([])  # TensorBoard / W&B, off by default
    state = {"step": 0, "epoch": 0, "wall_s": 0.0, "images_seen": 0}
    # Resume from the run's own checkpoint; or, when the run has none (checkpoints are not
    # committed), from ``init_from`` - e.g. the shipped model - whose weights and step/wall-time
    # counters continue (its optimiser state, when it has none, starts afresh).
    start = ckpt if ckpt.exists() and not fresh else (Path(init_from) if init_from and not fresh else None)
    continued_from = None  # the run this one went on from (--init-from), kept across its own resumes
    if start is not None:
        meta = method.load(start, training=True)
        state.update({k: meta.get(k, state[k]) for k in state})
        continued_from = meta.get("continued_from")
        if start != ckpt and meta.get("run") != run_dir.name:
            continued_from = {"run": meta.get("run"), "images_seen": meta.get("images_seen"), "file": str(start)}
        if master:
            truncate_log(log_path, state["step"])
            truncate_log(val_path, state["step"])
            drop_snapshots(run_dir, after=state["images_seen"])  # a later trajectory than this one's
            print(f"resuming {run_dir.name} from step {state['step']} ({start})", file=sys.stderr)
    elif master:
        for p in (log_path, val_path, ckpt, meta_path, run_dir / f"best{method.checkpoint_ext}", run_dir / "best.json"):
            p.unlink(missing_ok=True)
        for p in (run_dir / "samples").glob("*.png"):
            p.unlink()
        drop_snapshots(run_dir, after=-1)
    method.step = state["step"]
    if master:
        write_atomic(run_dir / "config.toml", dump_toml(cfg.to_dict()))
        if val_photos:
            write_val_reference(run_dir, val_photos, project_path(cfg.data.val), cfg.train.seed)
    if world > 1:
        method.distribute(local_rank)

    sampler = torch.utils.data.DistributedSampler(train_set, seed=cfg.train.seed) if world > 1 and not cfg.data.cache else None
    loader_gen = torch.Generator().manual_seed(cfg.train.seed)

    def stream():
        """Batches of the cached stream from ``images_seen`` on, phase by phase of the crop schedule."""
        while True:
            crop, batch_size, end = phase_at(state["images_seen"], cfg.data.schedule, cfg.data.crop, cfg.data.batch_size)
            train_set.crop = crop
            loader = torch.utils.data.DataLoader(
                train_set,
                batch_sampler=StreamBatches(state["images_seen"], batch_size, end, world, rank),
                num_workers=cfg.data.workers,
                worker_init_fn=_worker_init,
                persistent_workers=False,
            )
            for batch in loader:
                state["epoch"] = state["images_seen"] // len(train_set)
                yield batch

    def epochs():
        if cfg.data.cache:
            yield from stream()
            return
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
            val.update(validate_photos(method, val_photos))
            grid = sample_grid(method, grid_batch)
        from PIL import Image

        png = io.BytesIO()
        Image.fromarray(grid).save(png, "PNG")
        write_atomic(run_dir / "samples" / f"step_{state['step']:07d}.png", png.getvalue())
        CsvLog(val_path).write({"step": state["step"], "images_seen": state["images_seen"], "wall_s": round(state["wall_s"], 2), **{k: round(v, 5) for k, v in val.items()}})
        sinks.scalars(state["step"], val, "val")
        sinks.image(state["step"], "samples", grid)
        meta = {
            **state,
            "method": cfg.method,
            "run": run_dir.name,
            "config": cfg.to_dict(),
            "commit": git_commit(),
            "hardware": hardware(device),
            "world_size": world,
            "train_precision": precision,
            "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "validation": val,
            **({"continued_from": continued_from} if continued_from else {}),
        }
        method.save(ckpt, meta, training=True)
        write_atomic(meta_path, json.dumps(meta, indent=2))
        # the run's latest weights, small enough to commit (float16 where values fit, no optimiser
        # state): a new checkout, where checkpoint.* is gone, continues from here with --init-from
        # instead of from the shipped (best) model or from scratch (train_rounds.sh does this)
        method.save(run_dir / f"resume{method.checkpoint_ext}", meta, training=False, half=True)
        write_atomic(run_dir / "resume.json", json.dumps(meta, indent=2))
        if cfg.train.snapshots_from and state["images_seen"] >= cfg.train.snapshots_from:
            method.save(run_dir / "snapshots" / f"images_{state['images_seen']:07d}{method.checkpoint_ext}", meta, training=False, half=True)
        # the run's best checkpoint on the fixed validation photos (nanoGPT keeps its best val loss):
        # adversarial and high-lr runs swing by a point between checkpoints, and shipping takes this one
        score = val.get("val_auc_rebal")
        if score is not None and score > best_score(run_dir):
            method.save(run_dir / f"best{method.checkpoint_ext}", meta, training=False)
            write_atomic(run_dir / "best.json", json.dumps(meta, indent=2))
        method.train()

    # SIGINT (Ctrl-C) and SIGTERM (systemd, Slurm, kill -- -PGID) end the current step, save one
    # interrupt checkpoint and exit 130 / 143. A second signal while it saves is only reported:
    # the save finishes (and every file is written atomically, so even SIGKILL loses no more than
    # the steps since the last checkpoint). DataLoader workers ignore both (_worker_init).
    interrupted = {"signum": None, "saved_step": -1}

    def on_signal(signum, frame):  # os.write: print() here could re-enter a stderr write (tqdm)
        name = signal.Signals(signum).name
        if interrupted["signum"] is None:
            interrupted["signum"] = signum
            msg = f"\n{name}: finishing step {state['step'] + 1} and saving a checkpoint\n"
        else:
            msg = f"\n{name} again: still saving the interrupt checkpoint, please wait\n"
        if master:
            os.write(sys.stderr.fileno(), msg.encode())

    handled = (signal.SIGINT, signal.SIGTERM)
    in_main_thread = threading.current_thread() is threading.main_thread()
    old = {sig: signal.signal(sig, on_signal) for sig in handled} if in_main_thread else {}
    log = CsvLog(log_path) if master else None
    bar = None
    if progress and master:
        from tqdm import tqdm

        total, initial, unit = (cfg.train.images, state["images_seen"], "img") if cfg.train.images else (cfg.train.steps, state["step"], "step")
        bar = tqdm(total=total, initial=initial, desc=f"train {cfg.method}", unit=unit, dynamic_ncols=True)
    method.train()
    data = epochs()
    t0 = time.perf_counter() - state["wall_s"]

    def done() -> bool:
        return state["images_seen"] >= cfg.train.images if cfg.train.images else state["step"] >= cfg.train.steps

    try:
        while not done():
            batch = next(data)
            losses = method.train_step(batch)
            state["step"] += 1
            method.step = state["step"]
            state["images_seen"] += len(batch["L"]) * world
            state["wall_s"] = time.perf_counter() - t0
            if bar is not None:
                bar.update(len(batch["L"]) * world if cfg.train.images else 1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(losses.items())[:3]})
            if master and (state["step"] % cfg.train.log_every == 0 or done()):
                log.write({"step": state["step"], "epoch": state["epoch"], "wall_s": round(state["wall_s"], 3), "images_seen": state["images_seen"], **{k: round(float(v), 6) for k, v in losses.items()}})
                sinks.scalars(state["step"], {k: float(v) for k, v in losses.items()}, "train")
            if state["step"] % cfg.train.checkpoint_every == 0 or done():
                save_checkpoint()
                interrupted["saved_step"] = state["step"]
            if interrupted["signum"] is not None:
                raise TrainingInterrupted(interrupted["signum"], state["step"], ckpt)
    except KeyboardInterrupt as exc:
        interrupted["signum"] = interrupted["signum"] or signal.SIGINT  # a second signal now is only reported
        if interrupted["saved_step"] != state["step"]:
            save_checkpoint()
        if master:
            print(f"\ninterrupted: checkpoint saved at step {state['step']} in {ckpt}", file=sys.stderr)
        raise TrainingInterrupted(interrupted["signum"], state["step"], ckpt) from exc
    finally:
        data.close()  # shuts the DataLoader workers down now, not at garbage collection
        if interrupted["signum"] is None:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        # else on_signal stays installed: the caller is stopping, and a further Ctrl-C must not
        # raise KeyboardInterrupt inside interpreter-exit finalizers (main() then ignores both)
        if bar is not None:
            bar.close()
        if world > 1:
            torch.distributed.destroy_process_group()
    return run_dir


def _worker_init(worker_id: int) -> None:
    import torch

    # the main process handles SIGINT/SIGTERM (one interrupt checkpoint, then it stops the workers);
    # a signal sent to the whole process group must not kill a worker under it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def project_relative(run_dir: Path) -> str:
    """A run folder as the model card records it: relative to the project (so the provenance holds
    in any clone), also when it was reached through a link - e.g. a second work tree whose
    results/runs links to the checkout's; else absolute."""
    real = run_dir.resolve()
    if (PROJECT_ROOT / "results" / "runs" / run_dir.name).resolve() == real:
        return f"results/runs/{run_dir.name}"
    return str(real.relative_to(PROJECT_ROOT.resolve())) if real.is_relative_to(PROJECT_ROOT.resolve()) else str(run_dir)


def drop_snapshots(run_dir: Path, after: int) -> None:
    """Delete the run's weight snapshots (``train.snapshots_from``) taken after ``after`` images."""
    for p in (run_dir / "snapshots").glob("images_*"):
        try:
            seen = int(p.stem.split("_")[1])
        except (IndexError, ValueError):
            continue
        if seen > after:
            p.unlink()


def best_score(run_dir: Path) -> float:
    """Rebalanced AuC on the validation photos of the run's best checkpoint so far (-inf: none)."""
    try:
        return float(json.loads((run_dir / "best.json").read_text())["validation"]["val_auc_rebal"])
    except (OSError, ValueError, KeyError, TypeError):
        return float("-inf")


def ship(run_dir: Path, method_name: str, if_better: bool = False, val_photos: int = 200, seed: int = 0, min_margin: float = 0.0,
         holdout: int = 0, guard: str | Path | None = None) -> Path | None:  # fmt: skip
    """Copy a run's best checkpoint on the validation photos (``best.<ext>``; else its latest) to
    results/checkpoints/<method>.<ext> (half precision) with provenance.

    ``if_better``: only when the run's model scores at least the shipped one's rebalanced AuC on
    the fixed validation photos (both scored now, with the same photos, prior and code, in half
    precision as shipped); returns None when the shipped model stays."""
    cls = backends.method_class(method_name)
    best = run_dir / f"best{cls.checkpoint_ext}"
    use_best = best.exists() and (run_dir / "best.json").exists()  # the run's best on the validation photos
    src = best if use_best else run_dir / f"checkpoint{cls.checkpoint_ext}"
    meta = json.loads((run_dir / ("best.json" if use_best else "checkpoint.json")).read_text())
    return ship_model(cls.from_checkpoint(src, device="cpu"), meta, project_relative(run_dir), if_better, val_photos, seed, min_margin, holdout, guard)


def as_shipped(model):
    """``model`` as it would ship: written in half precision and read back (so a candidate scores
    what its shipped file will)."""
    import tempfile

    cls = type(model)
    with tempfile.TemporaryDirectory(prefix="gate-") as d:
        tmp = Path(d) / f"candidate{cls.checkpoint_ext}"
        model.save(tmp, dict(getattr(model, "checkpoint_meta", None) or {}), training=False, half=True)
        return cls.from_checkpoint(tmp, device="cpu")


def gate_photo_sets(val_photos: int = 200, seed: int = 0, holdout: int = 0) -> dict[str, list]:
    """The ship gate's photos: ``{"gate": the fixed validation photos}``, and with ``holdout``
    ``"holdout"``: that many other validation photos (:func:`holdout_photos`)."""
    from experiments.config import DataConfig

    root = project_path(DataConfig().val)
    sets = {"gate": validation_photos(root, val_photos, seed)}
    if holdout:
        sets["holdout"] = holdout_photos(root, holdout, val_photos, gate_seed=seed)
    return sets


def score_against_shipped(model, val_photos: int = 200, seed: int = 0, holdout: int = 0, guard: str | Path | None = None) -> dict:
    """What the ship gate would see, shipping nothing: ``model``'s and the shipped model's mean
    rebalanced AuC on the fixed validation photos and, with ``holdout``, on that many other
    validation photos (:func:`holdout_photos`) - for a candidate not due to ship yet (a run's
    snapshots averaged before its budget is reached). ``shipped`` is None when nothing is shipped.
    The candidate is scored as it would ship: written in half precision and read back, as
    :func:`ship_model` scores it, so the two print the same numbers for the same weights."""
    cls = type(model)
    dst = CHECKPOINT_DIR / f"{cls.name}{cls.checkpoint_ext}"
    model = as_shipped(model)
    shipped = cls.from_checkpoint(dst, device="cpu") if dst.exists() else None
    sets = gate_photo_sets(val_photos, seed, holdout)
    out = {name: {"photos": len(photos), "candidate": validate_photos(model, photos)["val_auc_rebal"],
                  "shipped": validate_photos(shipped, photos)["val_auc_rebal"] if shipped is not None else None}
           for name, photos in sets.items() if photos}  # fmt: skip
    if guard and shipped is not None:
        out["guard"] = guard_verdict(model, shipped, project_path(guard))
    return out


def ship_model(model, meta: dict, shipped_from: str, if_better: bool = False, val_photos: int = 200, seed: int = 0,
               min_margin: float = 0.0, holdout: int = 0, guard: str | Path | None = None, veto: bool = True) -> Path | None:  # fmt: skip
    """Write ``model`` (half precision) and its provenance ``meta`` as results/checkpoints/<method>.*;
    with ``if_better`` only when it beats the shipped model on the fixed validation photos
    (:func:`ship`; :mod:`experiments.average` ships averaged weights through it too) - by at least
    ``min_margin`` of rebalanced AuC, and, with ``holdout``, on that many other validation photos
    too (:func:`holdout_photos`): the README's rule for candidates picked by hand. With ``guard`` (a
    folder of photos, the rule's ../shared/data/test), not when it loses there significantly
    (:func:`guard_verdict`: the per-photo difference's 95% interval wholly below 0). With ``veto``
    off it ships whatever the numbers say and records them against the model it replaces (the
    README's equal-budget rule: each method ships its model at the common budget, and its card
    says what that cost or gained against the one before)."""
    cls = type(model)
    method_name = cls.name
    dst = CHECKPOINT_DIR / f"{method_name}{cls.checkpoint_ext}"
    tmp = dst.with_name(f".candidate-{os.getpid()}{cls.checkpoint_ext}")
    model.save(tmp, meta, training=False, half=True)
    gate = {}
    if if_better:
        from experiments.config import DataConfig

        photos = validation_photos(project_path(DataConfig().val), val_photos, seed)
        candidate = cls.from_checkpoint(tmp, device="cpu")  # loaded once for the gate and the other photos
        shipped = cls.from_checkpoint(dst, device="cpu") if dst.exists() else None
        new = validate_photos(candidate, photos)["val_auc_rebal"]
        old = validate_photos(shipped, photos)["val_auc_rebal"] if shipped is not None else float("-inf")
        gate = {"ship_gate": {"photos": len(photos), "val_auc_rebal": round(new, 5), "replaced_val_auc_rebal": round(old, 5) if dst.exists() else None}}
        print(f"ship gate {method_name}: candidate {new:.4f} vs shipped {old:.4f} on {len(photos)} validation photos", file=sys.stderr)
        if veto and (new <= old or new < old + min_margin):  # strictly better: the run's best may be the very weights already shipped
            if min_margin and new > old:
                print(f"ship gate {method_name}: a gain of {new - old:.4f} is below the margin of {min_margin:g}", file=sys.stderr)
            tmp.unlink(missing_ok=True)
            return None
        if holdout and shipped is not None:
            others = holdout_photos(project_path(DataConfig().val), holdout, val_photos, gate_seed=seed)
            h_new = validate_photos(candidate, others)["val_auc_rebal"]
            h_old = validate_photos(shipped, others)["val_auc_rebal"]
            gate["ship_gate"]["holdout"] = {"photos": len(others), "val_auc_rebal": round(h_new, 5), "replaced_val_auc_rebal": round(h_old, 5)}
            print(f"ship gate {method_name}: candidate {h_new:.4f} vs shipped {h_old:.4f} on {len(others)} other validation photos", file=sys.stderr)
            if veto and h_new <= h_old:
                tmp.unlink(missing_ok=True)
                return None
        if guard and shipped is not None:
            verdict = guard_verdict(candidate, shipped, project_path(guard))
            gate["ship_gate"]["guard"] = {k: v for k, v in verdict.items() if k != "passed"}
            mean, lo, hi = verdict["auc_rebal_diff"]
            print(f"ship gate {method_name}: candidate - shipped {mean:+.4f} [{lo:+.4f}, {hi:+.4f}] per photo on {verdict['photos']} photos of {guard}",
                  file=sys.stderr)  # fmt: skip
            if veto and not verdict["passed"]:
                print(f"ship gate {method_name}: significantly worse on {guard}: not shipped", file=sys.stderr)
                tmp.unlink(missing_ok=True)
                return None
    if gate and not veto:
        card = CHECKPOINT_DIR / f"{method_name}.json"
        before = json.loads(card.read_text()) if card.exists() else {}
        gate["ship_gate"]["rule"] = "equal budget: shipped whatever the gate says; the numbers are against the model it replaced"
        gate["ship_gate"]["replaced"] = {k: before.get(k) for k in ("run", "images_seen")} if before else None
    os.replace(tmp, dst)
    write_atomic(CHECKPOINT_DIR / f"{method_name}.json", json.dumps({**meta, **gate, "shipped_from": shipped_from, "precision": "float16"}, indent=2))
    # the committed tables and grid were made from the replaced weights (experiments.provenance)
    print(f"{method_name}: the README's tables and grid still show the model this replaced; "
          "remake them: python -m experiments.readme --refresh", file=sys.stderr)  # fmt: skip
    return dst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="experiments/configs/<method>.toml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.steps=100 data.crop=128")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming the run's checkpoint")
    p.add_argument("--init-from", metavar="CKPT", help="when the run has no checkpoint of its own, start from this one's weights and step (e.g. results/checkpoints/<method>.pt)")
    p.add_argument("--ship", action="store_true", help="after training, ship the checkpoint to results/checkpoints")
    p.add_argument("--ship-if-better", action="store_true", help="ship only when it beats the shipped model's rebalanced AuC on the validation photos")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_intermixed_args(argv)  # overrides before or after --device and the other options
    try:
        cfg = load_config(args.config, args.overrides)
        run_dir = train(cfg, args.device, fresh=args.fresh, progress=not args.no_progress, init_from=args.init_from)
        if (args.ship or args.ship_if_better) and int(os.environ.get("RANK", "0")) == 0:
            dst = ship(run_dir, cfg.method, if_better=args.ship_if_better, val_photos=cfg.data.val_photos or 200, seed=cfg.train.seed)
            print(f"shipped {dst}" if dst else "not shipped: the shipped model scores as high or higher")
    except TrainingInterrupted as exc:
        for sig in (signal.SIGINT, signal.SIGTERM):  # exiting: more presses change nothing
            signal.signal(sig, signal.SIG_IGN)
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"stopped by {signal.Signals(exc.signum).name} at step {exc.step}; the same command resumes from {exc.checkpoint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except (ColorizationError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
