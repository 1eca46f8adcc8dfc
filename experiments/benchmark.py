"""Speed and memory of every method: ``python -m experiments.benchmark``.

    python -m experiments.benchmark                                  # all methods, 256/512/1024 px, auto device
    python -m experiments.benchmark --device all                     # CPU, and CUDA when present
    python -m experiments.benchmark --methods classification,gan --sizes 512 --repeats 3
    python -m experiments.benchmark --skip-slow                      # neural_style at 256 px only

What is measured, for each method and device, each (method, device) in a fresh Python process
(``--no-isolate``: all in this one), CPU runs pinned to ``--cpu-threads`` cores (2, the targets'
setting; 0 leaves the process as it is):

* load: seconds to load the model (``backends.load``: the shipped checkpoint of
  ``--checkpoints``, default ``results/checkpoints``).
* latency: ``colorize`` of one grey photo squashed to ``size x size`` (``--photo``, default the
  first photo of ../shared/data/test, else scikit-image's astronaut), ``--warmup`` untimed calls
  (at most 1 for neural_style) then ``--repeats`` timed ones: median and p90 seconds.
* throughput: ``colorize_batch`` of ``--batch`` different 256-px photos in one call (the shared
  flow batches every method's forward pass; neural_style optimises photo by photo): images/s.
* evaluation: what ``experiments.evaluate`` does per method and batch at 256 px - grey rendering,
  ``colorize_batch`` and the pixel metrics (``_score_batch`` without the model-based metrics) - over
  ``--eval-photos`` photos of ``--data``, decoded and resized beforehand as evaluate does once for
  all methods: photos/s. Feed-forward methods only.
* peak memory per row: on CUDA ``torch.cuda.max_memory_allocated`` during that row (weights
  included); on CPU the growth of the process's peak resident set (``ru_maxrss``) over its size
  before the model was loaded, a high-water mark up to and including that row (rows run in table
  order), which includes the weights, allocator caches and thread pools.
* dashboard start (``--app``): seconds from ``streamlit run dashboard/app.py`` until the home page
  shows its method table in headless Chromium (Debian's ``chromium`` through Playwright).

* where the time goes (issue 15; ``--no-speed`` skips it), on CPU: per feed-forward method the CPU
  time of ``colorize`` over its own ``predict_ab`` at 512 and 1024 px (1 thread: what the shared
  full-resolution flow adds; target <= 1.6x and <= 3x), ``colorize`` at 2 threads over 1 thread
  beside a CPU-bound process (busy machine; <= 1x), ``train_step`` images per CPU-second against the
  FLOP limit (>= 0.5 of it); a warm click on the dashboard's Compare page (Streamlit's AppTest) over
  the four methods' own colorize time (<= 1.5x, CPU); ``experiments.evaluate`` over a plain
  scikit-image script computing the same rows (<= 1x, CPU; wall and peak memory beside it). CPU-time
  ratios, because a shared machine inflates wall times; the table records the load average.

Targets (from the project's issues; PASS/FAIL columns): each feed-forward method colorizes a
512-px photo in at most 0.25 s on 2 CPU cores; neural_style at its 256-px working size in at most
20 s on CPU and 2 s on a GPU; evaluation at 10 photos/s or more per feed-forward method on CPU at
256 px; comparing the four feed-forward methods on one 512-px photo (the dashboard's Compare page,
the sum of their median latencies) takes at most 2 s on 2 CPU cores; the dashboard's home page is
ready within 5 s of start.

Outputs in ``--out`` (default ``results/benchmarks``), named after the hardware:
``<hardware>.json`` (settings, versions, every row), ``<hardware>.csv`` (one row per method,
device, kind and size) and ``<hardware>.md`` (the tables, the hardware, versions, threads, date and
commit). A method that cannot run here (no checkpoint, no weights) is listed with the reason and
skipped. Exit status: 0 on success, 2 for a bad option (one line on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import importlib.metadata
import inspect
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import backends
from backends.base import CHECKPOINT_DIR, PROJECT_ROOT
from backends.errors import ColorizationError

FEED_FORWARD = ("regression", "classification", "fusion", "gan")
#: Methods that optimise each photo (seconds, not milliseconds): one warm-up at most, no
#: throughput or evaluation rows, and only 256 px with --skip-slow. From each method's declaration
#: (speed "slow"), so a method from outside is timed the way it declares itself.
SLOW = tuple(backends.names("slow"))
DEFAULT_SIZES = (256, 512, 1024)
DEFAULT_OUT = PROJECT_ROOT / "results" / "benchmarks"
DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "test"
DEFAULT_PHOTO = "skimage:astronaut"
EVAL_SIZE = 256
BATCH_SIZE = 256
#: Options the benchmark loads methods with (no inner progress bars).
LOAD_OPTIONS = {"neural_style": {"progress_bar": False}}
COMPARE = "+".join(FEED_FORWARD)
APP = "dashboard home"
CHROMIUM = "/usr/bin/chromium"
COLUMNS = ["kind", "method", "device", "ran_on", "size", "working_size", "batch", "n", "median_s", "p90_s", "min_s", "mean_s",
           "total_s", "per_s", "peak_mem_mb", "memory", "ratio", "ratio_lo", "ratio_hi", "policy_threads", "methods", "cpu_s", "precision", "target", "result",
           "status"]  # fmt: skip
MARK = "@@benchmark "


# --- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    kind: str  # latency | evaluation | compare
    methods: tuple[str, ...]
    device: str
    size: int
    limit: float
    unit: str  # "s": at most; "photos/s": at least
    what: str

    def text(self) -> str:
        if self.unit == "x":
            return f"<= {self.limit:g}x"
        return f"<= {self.limit:g} s" if self.unit == "s" else f">= {self.limit:g} {self.unit}"

    def check(self, row: dict) -> str:
        if self.unit in ("x", "of the FLOP limit"):  # ratios: "x" at most, a fraction of a limit at least
            # busy machine: "no slower" unless the whole 95% interval lies above the limit
            v = row.get("ratio_lo", row.get("ratio")) if self.kind == "busy" else row.get("ratio")
            return "-" if v is None else "PASS" if (v <= self.limit if self.unit == "x" else v >= self.limit) else "FAIL"
        value = row["per_s"] if self.unit != "s" else (row["total_s"] if row["kind"] in ("compare", "app") else row["median_s"])
        if value is None:
            return "-"
        return "PASS" if (value <= self.limit if self.unit == "s" else value >= self.limit) else "FAIL"


TARGETS = (
    Target("latency", FEED_FORWARD, "cpu", 512, 0.25, "s", "feed-forward method, one 512-px photo, 2 CPU cores"),
    Target("latency", SLOW, "cpu", 256, 20.0, "s", "neural_style at a 256-px working size on CPU"),
    Target("latency", SLOW, "cuda", 256, 2.0, "s", "neural_style at a 256-px working size on a GPU"),
    Target("evaluation", FEED_FORWARD, "cpu", EVAL_SIZE, 10.0, "photos/s", "evaluation per feed-forward method on CPU at 256 px"),
    Target(
        "compare", (COMPARE,), "cpu", 512, 2.0, "s", "dashboard: the four feed-forward methods on one 512-px photo, 2 CPU cores"
    ),
    Target("app", (APP,), "cpu", 0, 5.0, "s", "dashboard: the home page ready (method table shown) after `streamlit run`"),
)


def target_for(row: dict) -> Target | None:
    for t in TARGETS:
        if (t.kind == row["kind"] and row["method"] in t.methods and t.device == row["device"] and t.size == row["size"]
                and row.get("ran_on", row["device"]) == t.device
                and (row["method"] not in SLOW or row.get("working_size") == 256)):  # fmt: skip
            return t
    return None


def judge(row: dict) -> dict:
    t = target_for(row) if row.get("status") == "ok" else None
    row["target"], row["result"] = (t.text(), t.check(row)) if t else ("", "")
    return row


# --- hardware and environment -------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_name(devices: list[str]) -> str:
    """What the numbers were measured on: the GPU (when CUDA was measured) and the CPU."""
    cpu = f"{cpu_model()}, {platform.machine()} {os.cpu_count()} cores"
    if any(d.startswith("cuda") for d in devices):
        import torch

        return f"{torch.cuda.get_device_name(0)} (CUDA) x{torch.cuda.device_count()}, {cpu}"
    return f"CPU {cpu}"


def slug(text: str) -> str:
    s = re.sub(r"\(r\)|\(tm\)|\bcpu\b|\bwith\b", " ", text.lower())
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return re.sub(r"-+", "-", s)[:80].strip("-") or "unknown"


def package_version(*names: str) -> str | None:
    for n in names:
        try:
            return importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def software() -> dict:
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
           "tensorflow": package_version("tensorflow", "tensorflow-cpu"), "keras": package_version("keras"),
           "numpy": np.__version__, "platform": platform.platform()}  # fmt: skip
    if torch.cuda.is_available():
        out["cudnn"] = torch.backends.cudnn.version()
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def git_commit() -> str:
    from experiments.train import git_commit as commit

    return commit()


# --- memory -------------------------------------------------------------------------------------


def rss_mb() -> float | None:
    """Current resident set size (Linux /proc), None elsewhere."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """The process's peak resident set so far: Linux's ``VmHWM`` (this program's own memory: unlike
    ``ru_maxrss``, it does not inherit the peak of the process that forked it, e.g. a 2-GB pytest),
    else ``ru_maxrss`` (KiB on Linux, bytes on macOS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class MemoryProbe:
    """Peak memory of one row: CUDA allocations on a GPU, else the growth of the peak RSS."""

    def __init__(self, isolated: bool):
        self.isolated = isolated
        self.base = rss_mb()
        self.high_before = peak_rss_mb()
        if self.base is None:
            self.base = self.high_before
        self.cuda = False
        self.keras = False

    def watch(self, model) -> None:
        self.cuda = str(getattr(model, "device", "cpu")).startswith("cuda")
        self.keras = type(model).checkpoint_ext == ".keras"

    def start(self) -> None:
        if self.cuda and not self.keras:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def read(self) -> tuple[float | None, str]:
        if self.cuda:
            if self.keras:
                return None, "n/a (TensorFlow GPU memory is not tracked)"
            import torch

            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**20, "cuda max_memory_allocated"
        high = peak_rss_mb()
        if self.isolated or high > self.high_before:
            return max(high - self.base, 0.0), "peak RSS growth since before loading (high-water mark)"
        return None, "n/a (the process's peak RSS was set by an earlier method; run isolated)"


# --- photos -------------------------------------------------------------------------------------


def default_photo() -> str:
    """The first photo of ../shared/data/test when present, else scikit-image's astronaut."""
    if DEFAULT_DATA.is_dir():
        from experiments.evaluate import scan_photos

        try:
            return str(sorted(scan_photos(DEFAULT_DATA), key=lambda p: p.name)[0].path)
        except (FileNotFoundError, IndexError):
            pass
    return DEFAULT_PHOTO


def load_photo(spec: str) -> np.ndarray:
    if spec.startswith("skimage:"):
        import skimage.data

        return np.ascontiguousarray(getattr(skimage.data, spec.partition(":")[2])()[..., :3])
    from backends.imageio import load_image

    return load_image(spec, mode="rgb")


def squash(rgb: np.ndarray, size: int) -> np.ndarray:
    """``size x size`` RGB (bicubic, aspect ratio not kept: evaluate's protocol)."""
    if rgb.shape[:2] == (size, size):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))


def eval_truths(spec: dict, n: int) -> list[np.ndarray]:
    """``n`` 256-px colour photos: those of the data folder, else the 8 flips/rotations of the photo."""
    from experiments.evaluate import load_truth

    if spec["eval_paths"]:
        base = [load_truth(p, EVAL_SIZE) for p in spec["eval_paths"]]
    else:
        p = squash(load_photo(spec["photo"]), EVAL_SIZE)
        base = [np.ascontiguousarray(np.rot90(q, k)) for q in (p, p[:, ::-1]) for k in range(4)]
    return [base[i % len(base)] for i in range(n)]


# --- one method on one device -------------------------------------------------------------------


def open_method(name: str, device: str, checkpoints: Path):
    """``backends.load`` with the checkpoint of ``checkpoints``; BackendUnavailable saying why not."""
    options = LOAD_OPTIONS.get(name, {})
    if checkpoints.resolve() == CHECKPOINT_DIR.resolve():
        st = backends.status(name)
        if not st.available:
            raise backends.BackendUnavailable(st.reason)
        return backends.load(name, device=device, **options)
    cls = backends.method_class(name)
    if cls.open.__func__ is not backends.Colorizer.open.__func__:  # its own loading (neural_style: no checkpoint)
        return backends.load(name, device=device, **options)
    path = checkpoints / f"{name}{cls.checkpoint_ext}"
    if not path.exists():
        raise backends.BackendUnavailable(
            f"{name}: no trained checkpoint at {path}; fix: python -m experiments.train --config experiments/configs/{name}.toml"
        )
    return backends.load(name, device=device, checkpoint=path, **options)


def plan_units(spec: dict) -> int:
    """Progress units of one (method, device): load, every call, every evaluated photo."""
    slow = spec["method"] in SLOW
    warm = min(spec["warmup"], 1) if slow else spec["warmup"]
    n = 1 + len(spec["sizes"]) * (warm + spec["repeats"])
    if not slow:
        if spec["batch"]:
            n += min(warm, 1) + spec["repeats"]
        n += spec["eval_photos"]
        if spec.get("speed") and spec["device"] == "cpu":
            n += 4  # ratios at 512 and 1024 px, busy machine, training
    return n


def _row(kind: str, spec: dict, **values) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(kind=kind, method=spec["method"], device=spec["device"], ran_on=spec["device"], status="ok")
    row.update(values)
    return row


def _stats(times: list[float]) -> dict:
    t = np.asarray(times, dtype=float)
    return {"n": len(t), "median_s": float(np.median(t)), "p90_s": float(np.percentile(t, 90)), "min_s": float(t.min()),
            "mean_s": float(t.mean())}  # fmt: skip


def _failure(exc: BaseException) -> str:
    if isinstance(exc, ColorizationError):
        return f"failed: {exc}"
    return f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")


def measure(spec: dict, tick: Callable[[int, str], None], save: Callable[[dict], None], isolated: bool) -> dict:
    """Every measurement of one method on one device; ``save`` receives the partial result after each row."""
    name, device = spec["method"], spec["device"]
    slow = name in SLOW
    warm = min(spec["warmup"], 1) if slow else spec["warmup"]
    result: dict = {"method": name, "device": device, "rows": [], "unavailable": None, "info": {}, "env": worker_env()}
    result["env"]["pinned"] = isolated and device == "cpu" and spec["cpu_threads"] > 0
    probe = MemoryProbe(isolated)
    t0 = time.perf_counter()
    try:
        model = open_method(name, device, Path(spec["checkpoints"]))
    except (ColorizationError, ValueError, ImportError) as exc:
        result["unavailable"] = str(exc)
        tick(plan_units(spec), f"{name} {device}: unavailable")
        save(result)
        return result
    load_s = time.perf_counter() - t0
    probe.watch(model)
    ran_on = str(getattr(model, "device", device))
    try:
        result["info"] = json.loads(json.dumps(model.info(), default=str))
    except Exception:  # noqa: BLE001 - info is decoration
        result["info"] = {}
    mem, how = probe.read()
    rows = result["rows"]
    rows.append(_row("load", spec, ran_on=ran_on, total_s=load_s, peak_mem_mb=mem, memory=how))
    tick(1, f"{name} {device}: loaded")
    save(result)
    sync = _cuda_sync if ran_on.startswith("cuda") else (lambda: None)

    def timed(fn, calls: int, warmups: int, label: str) -> list[float]:
        for _ in range(warmups):
            fn()
            sync()
            tick(1, label)
        times = []
        for _ in range(calls):
            t = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t)
            tick(1, label)
        return times

    photo = load_photo(spec["photo"])
    from experiments.evaluate import gray_of

    for size in spec["sizes"]:
        label = f"{name} {device} {size}px"
        grey = gray_of(squash(photo, size))
        ws = model.working_shape(size, size)
        working = ws[0] if ws[0] == ws[1] else f"{ws[0]}x{ws[1]}"
        probe.start()
        try:
            times = timed(lambda g=grey: model.colorize(g), spec["repeats"], warm, label)
        except Exception as exc:  # noqa: BLE001 - out of memory at 1024 px must not lose the other rows
            rows.append(_row("latency", spec, ran_on=ran_on, size=size, working_size=working, status=_failure(exc)))
            _release(ran_on)
            save(result)
            continue
        mem, how = probe.read()
        rows.append(_row("latency", spec, ran_on=ran_on, size=size, working_size=working,
                         peak_mem_mb=mem, memory=how, **_stats(times)))  # fmt: skip
        save(result)

    if spec.get("speed") and not slow and ran_on == "cpu":
        rows += speed_rows(model, spec, photo, ran_on, tick)
        save(result)
    if slow:
        return result
    truths = eval_truths(spec, max(spec["eval_photos"], spec["batch"]))
    if spec["batch"]:
        label = f"{name} {device} batch {spec['batch']}"
        greys = [gray_of(t) for t in truths[: spec["batch"]]]
        probe.start()
        try:
            times = timed(lambda: model.colorize_batch(greys), spec["repeats"], min(warm, 1), label)
            st = _stats(times)
            mem, how = probe.read()
            rows.append(_row("throughput", spec, ran_on=ran_on, size=BATCH_SIZE, batch=spec["batch"], peak_mem_mb=mem, memory=how,
                             per_s=spec["batch"] / st["median_s"], **st))  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            rows.append(_row("throughput", spec, ran_on=ran_on, size=BATCH_SIZE, batch=spec["batch"], status=_failure(exc)))
            _release(ran_on)
        save(result)
    if spec["eval_photos"]:
        label = f"{name} {device} evaluation"
        probe.start()
        try:
            # the median of 3 passes: one pass of 16 photos moved by 20% between runs on a shared machine
            total = float(np.median([evaluation_pass(model, truths[: spec["eval_photos"]], ran_on,
                                                     (lambda k: tick(k, label)) if i == 0 else (lambda k: None))
                                     for i in range(EVAL_PASSES)]))  # fmt: skip
            mem, how = probe.read()
            n = spec["eval_photos"]
            rows.append(_row("evaluation", spec, ran_on=ran_on, size=EVAL_SIZE, batch=eval_batch_size(), n=n, total_s=total,
                             per_s=n / total, peak_mem_mb=mem, memory=how))  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            rows.append(_row("evaluation", spec, ran_on=ran_on, size=EVAL_SIZE, status=_failure(exc)))
            _release(ran_on)
        save(result)
    return result


EVAL_PASSES = 3


def eval_batch_size() -> int:
    from experiments.evaluate import evaluate

    return int(inspect.signature(evaluate).parameters["batch_size"].default)


def evaluation_pass(model, truths: list[np.ndarray], device: str, tick: Callable[[int], None]) -> float:
    """Seconds for what experiments.evaluate does per method: grey rendering, colorize_batch and
    the pixel metrics, batch by batch (photos already decoded, as evaluate caches them)."""
    from experiments.evaluate import ModelMetrics, _score_batch, gray_of

    mm = ModelMetrics()  # pixel metrics only, as with --no-models
    bs = eval_batch_size()
    _score_batch(truths[:1], truths[:1], [""], mm, device)  # first-call costs of the metrics
    # and of a full batch through the network (oneDNN sets up its kernels per shape): a real
    # evaluation (91 or 500 photos) pays that once over many batches, a 16-photo pass in its only one
    model.colorize_batch([gray_of(t) for t in truths[:bs]])
    t0 = time.perf_counter()
    for i in range(0, len(truths), bs):
        batch = truths[i : i + bs]
        preds = model.colorize_batch([gray_of(t) for t in batch])
        _score_batch(preds, batch, [""] * len(batch), mm, device)
        tick(len(batch))
    return time.perf_counter() - t0


def _release(device: str) -> None:
    """After a failure (out of memory): give cached CUDA blocks back before the next row."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _cuda_sync() -> None:
    import torch

    torch.cuda.synchronize()


def worker_env() -> dict:
    import torch

    env = {"torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    if hasattr(os, "sched_getaffinity"):
        env["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    return env


def torch_first() -> None:
    """PyTorch (with torch._dynamo) before TensorFlow: the other order aborts (both bundle LLVM)."""
    if "tensorflow" in sys.modules:
        return
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401


def pin_cpu(threads: int) -> None:
    """This process on ``threads`` cores (the first of its affinity) and that many torch threads."""
    if threads <= 0:
        return
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cores)
    import torch

    torch.set_num_threads(threads)


def thread_env(threads: int) -> dict[str, str]:
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")
    return {n: str(threads) for n in names} if threads > 0 else {}


def worker_main(spec_path: str) -> int:
    """``--worker SPEC``: run :func:`measure` and write the result JSON next to the spec."""
    spec = json.loads(Path(spec_path).read_text())
    if spec["device"] == "cpu":
        pin_cpu(spec["cpu_threads"])
    torch_first()
    out = Path(spec["result"])

    def save(result: dict) -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, default=str))
        os.replace(tmp, out)

    def tick(k: int, label: str) -> None:
        print(MARK + json.dumps({"advance": k, "label": label}), flush=True)

    measure(spec, tick, save, isolated=True)
    return 0


def run_isolated(spec: dict, bar) -> dict:
    """:func:`measure` in a fresh Python process; its progress drives ``bar``."""
    with tempfile.TemporaryDirectory(prefix="benchmark-") as tmp:
        spec = {**spec, "result": str(Path(tmp) / "result.json")}
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        if spec["device"] == "cpu":
            env.update(thread_env(spec["cpu_threads"]))
        env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        cmd = [sys.executable, "-m", "experiments.benchmark", "--worker", str(spec_path)]
        done = 0
        with subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True) as proc:
            for line in proc.stdout:
                if line.startswith(MARK):
                    msg = json.loads(line[len(MARK) :])
                    done += msg["advance"]
                    bar.update(msg["advance"])
                    bar.set_postfix_str(msg["label"])
                else:
                    sys.stderr.write(line)
            rc = proc.wait()
        bar.update(max(plan_units(spec) - done, 0))
        path = Path(spec["result"])
        result = json.loads(path.read_text()) if path.exists() else {"rows": [], "unavailable": None, "info": {}, "env": {}}
        if rc != 0:
            why = "killed (out of memory?)" if rc in (-9, 137) else f"exit status {rc}"
            result["crashed"] = f"failed: the benchmark process of {spec['method']} on {spec['device']} stopped: {why}"
        return result


def run_in_process(spec: dict, bar) -> dict:
    torch_first()
    import torch

    before = torch.get_num_threads()
    if spec["device"] == "cpu" and spec["cpu_threads"] > 0:
        torch.set_num_threads(spec["cpu_threads"])
    done = 0

    def tick(k: int, label: str) -> None:
        nonlocal done
        done += k
        bar.update(k)
        bar.set_postfix_str(label)

    partial: dict = {"rows": [], "unavailable": None, "info": {}, "env": {}}
    try:
        result = measure(spec, tick, partial.update, isolated=False)
    except Exception as exc:  # noqa: BLE001 - one broken method must not stop the others
        result = {**partial, "crashed": _failure(exc)}
    finally:
        torch.set_num_threads(before)
    bar.update(max(plan_units(spec) - done, 0))
    return result


# --- the whole benchmark ------------------------------------------------------------------------


def run(methods: list[str], devices: list[str], sizes: list[int], repeats: int = 5, warmup: int = 2, batch: int = 16,
        eval_photos: int = 32, photo: str | None = None, data: Path | None = None, checkpoints: Path | None = None,
        cpu_threads: int = 2, skip_slow: bool = False, isolate: bool = True, progress: bool = True,
        command: str | None = None, app: bool = False, speed: bool = True, eval_cli_photos: int = 0) -> dict:  # fmt: skip
    """Benchmark ``methods`` on ``devices``; the report (what :func:`write_outputs` writes)."""
    from tqdm import tqdm

    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    photo = photo or default_photo()
    data = data if data is not None else (DEFAULT_DATA if DEFAULT_DATA.is_dir() else None)
    eval_paths: list[str] = []
    if data is not None and eval_photos:
        from experiments.evaluate import scan_photos

        eval_paths = [str(p.path) for p in scan_photos(data, limit=eval_photos)]
    checkpoints = Path(checkpoints) if checkpoints else CHECKPOINT_DIR
    specs = []
    for device in devices:
        for m in methods:
            msizes = [s for s in sizes if not (skip_slow and m in SLOW and s != 256)] or ([256] if m in SLOW else sizes)
            specs.append({"method": m, "device": device, "sizes": msizes, "repeats": repeats, "warmup": warmup,
                          "batch": batch, "eval_photos": eval_photos, "photo": photo, "eval_paths": eval_paths,
                          "checkpoints": str(checkpoints), "cpu_threads": cpu_threads,
                          "speed": speed})  # fmt: skip
    rows: list[dict] = []
    info: dict[str, dict] = {}
    envs: dict[str, dict] = {}
    bar = tqdm(total=sum(plan_units(s) for s in specs), desc="benchmark", unit="run", file=sys.stderr, disable=not progress)
    for spec in specs:
        bar.set_postfix_str(f"{spec['method']} {spec['device']}")
        res = run_isolated(spec, bar) if isolate else run_in_process(spec, bar)
        rows += res["rows"]
        if res.get("unavailable"):
            rows.append(_row("unavailable", spec, ran_on=None, status=f"unavailable: {res['unavailable']}"))
        elif res.get("crashed"):
            rows.append(_row("failed", spec, ran_on=None, status=res["crashed"]))
        if res.get("info"):
            info[f"{spec['method']} ({spec['device']})"] = res["info"]
        if res.get("env") and spec["device"] not in envs:
            envs[spec["device"]] = res["env"]
    bar.close()
    rows += compare_rows(rows, devices)
    if speed and "cpu" in devices:
        if all(m in methods for m in FEED_FORWARD):
            bar.set_postfix_str("Compare click")
            rows.append(click_row(cpu_threads))
            bar.set_postfix_str("Compare click in a browser")
            rows.append(browser_click_row(cpu_threads))
        bar.set_postfix_str("evaluate CLI vs scikit-image")
        rows.append(eval_cli_row(data, eval_cli_photos or None, 5, cpu_threads))
    if app:
        rows.append(app_startup(repeats=max(repeats, 3)))
    rows = [judge(r) for r in rows]
    return {
        "hardware": hardware_name(devices),
        "created": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": git_commit(),
        "command": command,
        "software": software(),
        "cpu": {"model": cpu_model(), "cores": os.cpu_count(), "threads": cpu_threads or None, "workers": envs,
                "load": {"start": load_start, "end": os.getloadavg() if load_start is not None else None}},
        "settings": {
            "methods": methods,
            "devices": devices,
            "sizes": sizes,
            "repeats": repeats,
            "warmup": warmup,
            "warmup_slow": min(warmup, 1),
            "batch": batch,
            "batch_size_px": BATCH_SIZE,
            "eval_photos": eval_photos,
            "eval_size": EVAL_SIZE,
            "eval_batch": eval_batch_size(),
            "skip_slow": skip_slow,
            "isolated": isolate,
            "photo": photo,
            "data": str(data) if data and eval_paths else None,
            "checkpoints": str(checkpoints),
        },  # fmt: skip
        "targets": [{**asdict(t), "target": t.text()} for t in TARGETS],
        "methods": info,
        "unavailable": {
            f"{r['method']} ({r['device']})": r["status"].partition(": ")[2] for r in rows if r["kind"] == "unavailable"
        },
        "rows": rows,
    }


def compare_rows(rows: list[dict], devices: list[str]) -> list[dict]:
    """The dashboard's Compare page: the four feed-forward methods one after another on one 512-px
    photo, as the sum of their median latencies."""
    out = []
    for device in devices:
        lat = {r["method"]: r for r in rows if r["kind"] == "latency" and r["device"] == device and r["size"] == 512}
        if not any(m in lat for m in FEED_FORWARD):
            continue
        missing = [m for m in FEED_FORWARD if lat.get(m, {}).get("status") != "ok"]
        row = _row("compare", {"method": COMPARE, "device": device}, size=512, n=len(FEED_FORWARD) - len(missing))
        if missing:
            row["status"] = f"n/a: no 512-px latency of {', '.join(missing)}"
        else:
            row["total_s"] = float(sum(lat[m]["median_s"] for m in FEED_FORWARD))
            row["ran_on"] = device if all(lat[m]["ran_on"] == device for m in FEED_FORWARD) else "mixed"
        out.append(row)
    return out


#: Headless Chromium as root on a machine without a network (background requests refused).
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip


@contextlib.contextmanager
def streamlit_app(env: dict | None = None, log=subprocess.DEVNULL, timeout: float = 120.0, script: str = "dashboard/app.py",
                  procs: list | None = None):  # fmt: skip
    """``streamlit run dashboard/app.py`` (or ``script``) on a free local port; yields ``(url, t0, health_s)``:
    the address, the perf_counter at the start and the seconds until ``/_stcore/health``
    answered (the server's process is appended to ``procs`` when given). The server is stopped on exit."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],  # fmt: skip
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    if procs is not None:
        procs.append(proc)
    try:
        health = None
        while time.perf_counter() - t0 < timeout and proc.poll() is None:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    health = time.perf_counter() - t0
                    break
            except OSError:
                time.sleep(0.05)
        if health is None:
            raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout:g} s (exit status {proc.poll()})")
        yield url, t0, health
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _chromium() -> tuple[str, str | None]:
    """(Chromium's path, None) when the browser rows can run here, else (path, the reason they cannot)."""
    import importlib.util
    import shutil

    chromium = shutil.which("chromium") or CHROMIUM
    if importlib.util.find_spec("playwright") is None:
        return chromium, "n/a: needs the Python package playwright"
    if not Path(chromium).exists():
        return chromium, "n/a: needs Debian's chromium (apt-get install chromium)"
    return chromium, None


def app_startup(timeout: float = 120.0, repeats: int = 3) -> dict:
    """Seconds from ``streamlit run dashboard/app.py`` until the home page shows its method table
    in headless Chromium (Playwright; Debian's ``chromium``), cold: a fresh server, a fresh page
    in a browser that was already running.
    Also records when the server first answered its health check."""
    row = _row("app", {"method": APP, "device": "cpu"}, size=0, n=1)
    chromium, missing = _chromium()
    if missing:
        row["status"] = missing
        return row
    from playwright.sync_api import sync_playwright

    try:
        # the browser is already open (as a user's is), then the server starts: the clock runs from there
        ready, healthy, bare = [], [], []
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            # the yardstick: a bare Streamlit page with one table, started the same way in the same run
            bare_script = Path(tmp) / "bare.py"
            bare_script.write_text('import streamlit as st\nst.title("bare")\nst.dataframe({"a": [1, 2]})\n')
            with sync_playwright() as pw, pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS) as browser:
                for _ in range(repeats):
                    for script, times in ((str(bare_script), bare), ("dashboard/app.py", ready)):
                        page = browser.new_page(viewport={"width": 1280, "height": 900})
                        with streamlit_app(timeout=timeout, script=script) as (url, t0, health):
                            page.goto(url)
                            page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=timeout * 1000)
                            times.append(time.perf_counter() - t0)
                            if times is ready:
                                healthy.append(health)
                        page.close()
        row.update(_stats(ready), n=repeats, min_s=float(np.median(healthy)))
        row["total_s"] = row["median_s"]
        row["bare_s"] = float(np.median(bare))
        row["ratio"] = row["total_s"] / row["bare_s"]
    except Exception as exc:  # noqa: BLE001 - reported in the table, never a crash
        row["status"] = _failure(exc)
    return row


# --- where the time really goes: the full-resolution path, threads, Compare, evaluate, training -----
#
# Ratios of CPU time, which a machine shared with other work changes far less than wall time.

TRAINABLE = tuple(m for m in FEED_FORWARD)
EVAL_CLI = "evaluate CLI"
COMPARE_BROWSER = "Compare page, default methods (browser)"
#: Training throughput bar: images per CPU-second at least this fraction of the FLOP limit (the
#: benchmark's own bar; the issue asks for "toward the limit").
TRAIN_FRACTION = 0.5
SPEED_TARGETS = (
    Target("ratio", FEED_FORWARD, "cpu", 512, 1.6, "x", "colorize / predict_ab CPU time, 1 thread, 512-px photo"),
    Target("ratio", FEED_FORWARD, "cpu", 1024, 3.0, "x", "colorize / predict_ab CPU time, 1 thread, 1024-px photo"),
    Target("busy", FEED_FORWARD, "cpu", 512, 1.0, "x", "busy machine: colorize at 2 threads / 1 thread beside a CPU-bound process"),
    # the Compare click's target is judged in a browser (the "measured in a browser"); the
    # AppTest row ("click") is reported beside it without one: its harness parses every element in
    # the measured process, work that a browser does in its own
    Target("click_browser", (COMPARE_BROWSER,), "cpu", 512, 1.5, "x",
           "warm Compare click in a browser (the page's default methods): server CPU / their own colorize CPU"),
    Target("eval_cli", (EVAL_CLI,), "cpu", EVAL_SIZE, 1.0, "x", "evaluate CLI / a plain scikit-image script over the same rows"),
    Target("train", TRAINABLE, "cpu", 0, TRAIN_FRACTION, "of the FLOP limit", "training images per CPU-second against the FLOP limit"),
)
TARGETS = TARGETS + SPEED_TARGETS


@contextlib.contextmanager
def torch_threads(n: int, force: bool = True):
    """PyTorch at ``n`` threads, also the ceiling the thread policy's ``fit_to_load`` works under.
    ``force=False``: only the ceiling - the policy sets the count before each forward pass, as in a
    process configured for ``n`` threads (the busy-machine row)."""
    import torch

    from backends import threads

    before, ceiling = torch.get_num_threads(), threads.CEILING
    threads.CEILING = n
    if force:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        threads.CEILING = ceiling
        if force:
            torch.set_num_threads(before)


def _cpu_times(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        c = time.process_time()
        fn()
        out.append(time.process_time() - c)
    return out


def ratio_row(model, spec: dict, photo: np.ndarray, size: int, ran_on: str) -> dict:
    """CPU time of ``colorize`` against the method's own ``predict_ab`` (its L at the working
    size, as colorize makes it), 1 thread: what the shared full-resolution flow adds."""
    from backends import color
    from backends.base import resize_plane
    from experiments.evaluate import gray_of

    grey = gray_of(squash(photo, size))
    L = color.lightness(grey)
    Ls = np.stack([resize_plane(L, model.working_shape(*L.shape))])
    row = _row("ratio", spec, ran_on=ran_on, size=size)
    try:
        with torch_threads(1):
            model.colorize(grey)
            model.predict_ab(Ls)
            n = max(spec["repeats"], 7)  # single calls of 30-100 ms: a median of 3 moved by 20% between runs
            tc, tp = [], []
            for _ in range(n):  # interleaved, so a burst of load on the machine hits both
                tc += _cpu_times(lambda: model.colorize(grey), 1)
                tp += _cpu_times(lambda: model.predict_ab(Ls), 1)
        c, p = float(np.median(tc)), float(np.median(tp))
        row.update(n=n, cpu_s=c, median_s=p, ratio=c / p if p > 0 else None)
    except Exception as exc:  # noqa: BLE001
        row["status"] = _failure(exc)
    return row


def busy_row(model, spec: dict, photo: np.ndarray, ran_on: str) -> dict:
    """Wall time of ``colorize`` (512 px) at 2 torch threads against 1 thread while another
    process keeps one core busy: with OpenMP's passive waiting, 2 threads are no slower."""
    from experiments.evaluate import gray_of

    row = _row("busy", spec, ran_on=ran_on, size=512, batch=2)
    if type(model).checkpoint_ext == ".keras":
        row["status"] = "n/a: TensorFlow fixes its thread count when it starts (torch methods only)"
        return row
    grey = gray_of(squash(photo, 512))
    import torch

    count = torch.get_num_threads()  # put back afterwards (the policy leaves its fitted count)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # inherits this process's cores
    try:
        time.sleep(0.5)

        times: dict[int, list[float]] = {1: [], 2: []}
        used: list[int] = []  # the threads the policy ran the 2-thread setting with (backends.threads.fit_to_load)
        n = max(spec["repeats"], 9)
        for k in range(n + 1):
            for threads in (1, 2) if k % 2 else (2, 1):
                with torch_threads(threads, force=False):  # as a process configured for 1 or 2 threads
                    t = time.perf_counter()
                    model.colorize(grey)
                    if k:  # the first round warms up
                        times[threads].append(time.perf_counter() - t)
                        if threads == 2:
                            used.append(backends.threads.LAST_FIT or torch.get_num_threads())
        t1, t2 = np.array(times[1]), np.array(times[2])
        one, two = float(np.median(t1)), float(np.median(t2))
        # 95% interval of the ratio of medians (rounds resampled in pairs): "no slower" is judged on its
        # lower end, since the two settings may run the very same thread count and differ by noise only
        rng = np.random.default_rng(0)
        boot = [float(np.median(t2[i]) / np.median(t1[i])) for i in (rng.integers(0, len(t1), len(t1)) for _ in range(1000))]
        row.update(n=n, median_s=two, min_s=one, ratio=two / one, ratio_lo=float(np.percentile(boot, 2.5)),
                   ratio_hi=float(np.percentile(boot, 97.5)), policy_threads=sorted(set(used)))  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        row["status"] = _failure(exc)
    finally:
        hog.kill()
        hog.wait()
        torch.set_num_threads(count)
    return row


def matmul_gflops_per_cpu_s(n: int = 2048, repeats: int = 3) -> float:
    """What one core reaches on a large float32 matmul (GFLOP per CPU-second, 1 thread)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch_threads(1):
        a @ b
        best = min(_cpu_times(lambda: a @ b, repeats))
    return 2 * n**3 / best / 1e9


def train_row(name: str, spec: dict, gflops: float, config: dict | None = None) -> dict:
    """Images per CPU-second of the method's ``train_step`` (1 thread) on synthetic batches of
    its config's crop and batch size, against the FLOP limit: the core's matmul GFLOP/s over the
    FLOPs a step counts per image (forward and backward, about 3x the forward pass)."""
    import tomllib
    import torch

    from backends.base import config_from_dict

    row = _row("train", spec, size=0)
    try:
        cfg = config or tomllib.loads((PROJECT_ROOT / "experiments" / "configs" / f"{name}.toml").read_text())
        crop, bs = int(cfg.get("data", {}).get("crop", 64)), int(cfg.get("data", {}).get("batch_size", 16))
        cls = backends.method_class(name)
        with torch_threads(1):
            model = cls(config_from_dict(cls.Config, cfg.get("model", {})), "cpu")
            # as experiments.train runs it (train.precision, default auto: bfloat16 where the CPU has it)
            precision = str(cfg.get("train", {}).get("precision", "auto"))
            row["precision"] = model.set_train_precision(precision) if hasattr(model, "set_train_precision") else "float32"
            model.train()
            g = torch.Generator().manual_seed(0)
            batch = {"L": torch.rand(bs, 1, crop, crop, generator=g) * 100, "ab": (torch.rand(bs, 2, crop, crop, generator=g) - 0.5) * 80,
                     "label": torch.zeros(bs, dtype=torch.long)}  # fmt: skip
            model.train_step(batch)  # warm-up (allocations, first-call costs)
            flops = None
            if cls.checkpoint_ext == ".pt":
                from torch.utils.flop_counter import FlopCounterMode

                with FlopCounterMode(display=False) as counter:
                    model.train_step(batch)
                flops = counter.get_total_flops() / bs
            n = max(spec["repeats"], 3)
            per = float(np.median(_cpu_times(lambda: model.train_step(batch), n)))
        rate = bs / per
        row.update(batch=bs, working_size=crop, n=n, median_s=per, per_s=rate, cpu_s=per)
        if flops:
            limit = gflops * 1e9 / flops
            row.update(ratio=rate / limit, p90_s=limit, min_s=flops / 1e9)  # p90_s: the limit (images/CPU-s); min_s: GFLOP/image
        else:
            row["memory"] = "FLOP limit n/a (Keras: FLOPs not counted)"
    except Exception as exc:  # noqa: BLE001
        row["status"] = _failure(exc)
    return row


def speed_rows(model, spec: dict, photo: np.ndarray, ran_on: str, tick: Callable[[int, str], None]) -> list[dict]:
    """The issue-15 rows of one feed-forward method on CPU: CPU ratios at 512 and 1024 px, the
    busy-machine thread ratio and the training throughput."""
    name = spec["method"]
    rows = []
    for size in (512, 1024):
        rows.append(ratio_row(model, spec, photo, size, ran_on))
        tick(1, f"{name} ratio {size}px")
    rows.append(busy_row(model, spec, photo, ran_on))
    tick(1, f"{name} busy machine")
    if spec.get("train", True):
        rows.append(train_row(name, spec, matmul_gflops_per_cpu_s()))
    tick(1, f"{name} training")
    return rows


# --- the Compare click, end to end (Streamlit's AppTest: the page's script run by a click) ---------

CLICK_COLD = "coffee"  # scikit-image sample photos (the Compare page's "Sample photo" choices)
CLICK_WARM = ("astronaut", "rocket", "motorcycle", "cat (chelsea)")  # 512 x 512, 427 x 640, 500 x 740, 451 x 300


def click_worker(out: str) -> int:
    """``--click-worker OUT``: the dashboard's Compare page under Streamlit's AppTest (the page's
    script, run as a click runs it, without a browser), the four feed-forward methods. A first
    click on one sample photo loads the models; then one click on each of the other sample photos
    (nothing cached: each photo is new to the page), each colorizing, saving to History and showing
    the results, slider and downloads (metrics are on demand). Then the same four ``colorize`` calls
    on the same photos, timed alone in the same process (median of 3 each). Sums over the photos."""
    import resource as _resource

    from streamlit.testing.v1 import AppTest

    torch_first()
    result: dict = {}
    try:
        at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=900)
        at.run()
        at.switch_page("views/compare.py").run()
        at.radio(key="cmp_source").set_value("Sample photo").run()
        at.multiselect(key="cmp_methods").set_value(list(FEED_FORWARD)).run()
        at.selectbox(key="cmp_sample").set_value(CLICK_COLD).run()
        at.button(key="cmp_run").click().run()
        wall = cpu = 0.0
        errors: list = []
        for photo in CLICK_WARM:
            at.selectbox(key="cmp_sample").set_value(photo).run()  # choosing the photo: its own rerun
            ru0 = _resource.getrusage(_resource.RUSAGE_SELF)
            t = time.perf_counter()
            at.button(key="cmp_run").click().run()
            wall += time.perf_counter() - t
            ru1 = _resource.getrusage(_resource.RUSAGE_SELF)
            errors += [e.value for e in at.exception] + [e.value for e in at.error]
            cpu += (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        own_wall, own_cpu = _own_colorize(FEED_FORWARD)
        result = {"click_wall": wall, "click_cpu": cpu, "own_wall": own_wall, "own_cpu": own_cpu, "errors": errors}
    except Exception as exc:  # noqa: BLE001
        result = {"failed": _failure(exc)}
    Path(out).write_text(json.dumps(result, default=str))
    return 0


def _own_colorize(names) -> tuple[float, float]:
    """(wall s, CPU s): the methods' own ``colorize`` on the grey Compare sample photos of
    :data:`CLICK_WARM`, median of 3 each, summed; loaded and warmed up on :data:`CLICK_COLD` first."""
    models = _own_models(names)
    wall = cpu = 0.0
    for photo in CLICK_WARM:
        w, c = _own_colorize_photo(models, photo)
        wall, cpu = wall + w, cpu + c
    return wall, cpu


def _own_models(names) -> dict:
    """The methods loaded as ``backends.load`` gives them, each warmed up on :data:`CLICK_COLD`."""
    from dashboard import common
    from experiments.evaluate import gray_of

    models = {m: backends.load(m, device="cpu") for m in names}
    for m in models.values():
        m.colorize(gray_of(comparisons_sample(common, CLICK_COLD)))
    return models


def _own_colorize_photo(models: dict, photo: str) -> tuple[float, float]:
    """(wall s, CPU s) of the methods' ``colorize`` on one grey sample photo: median of 3 rounds
    each, summed over the methods. Each round runs the methods one after another on the photo, as
    a click does (each method then starts with the others' weights in the caches, not its own from
    a repeat of itself)."""
    from dashboard import common
    from experiments.evaluate import gray_of

    grey = gray_of(comparisons_sample(common, photo))
    w: dict[str, list[float]] = {m: [] for m in models}
    c: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(3):
        for name, m in models.items():
            t, p = time.perf_counter(), time.process_time()
            m.colorize(grey)
            w[name].append(time.perf_counter() - t)
            c[name].append(time.process_time() - p)
    return sum(float(np.median(v)) for v in w.values()), sum(float(np.median(v)) for v in c.values())


def own_colorize_server() -> int:
    """``--own-colorize-server``: the baseline of the browser click, photo by photo on request, so
    that it is measured between the clicks (the same minutes, the same state of the machine) rather
    than minutes later: its CPU time for the same work moved by 30% between runs. Reads a JSON list
    of methods on the first line of stdin (answers ``{"ready": true}`` once they are loaded and
    warmed up), then one photo label per line (answers ``{"wall": s, "cpu": s}``, see
    :func:`_own_colorize_photo`); answers start with :data:`MARK`; ends at end of input."""
    torch_first()
    try:
        models = _own_models(json.loads(sys.stdin.readline()))
        print(MARK + json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            w, c = _own_colorize_photo(models, line.strip())
            print(MARK + json.dumps({"wall": w, "cpu": c}), flush=True)
    except Exception as exc:  # noqa: BLE001 - reported by the row
        print(MARK + json.dumps({"failed": _failure(exc)}), flush=True)
    return 0


class _OwnColorize:
    """A running :func:`own_colorize_server`: ``ask(photo)`` -> (wall s, CPU s)."""

    def __init__(self, methods: list[str], env: dict, timeout: float):
        self.proc = subprocess.Popen([sys.executable, "-m", "experiments.benchmark", "--own-colorize-server"], cwd=PROJECT_ROOT,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        self.timeout = timeout
        try:
            self._send(json.dumps(methods))
        except Exception:
            self.close()
            raise

    def _send(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            out = self.proc.stdout.readline()
            if not out:
                raise RuntimeError(f"the colorize worker ended (exit status {self.proc.poll()})")
            if out.startswith(MARK):
                msg = json.loads(out[len(MARK) :])
                if msg.get("failed"):
                    raise RuntimeError(msg["failed"])
                return msg
        raise RuntimeError("the colorize worker did not answer in time")

    def ask(self, photo: str) -> tuple[float, float]:
        msg = self._send(photo)
        return msg["wall"], msg["cpu"]

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def comparisons_sample(common, photo: str) -> np.ndarray:
    """A Compare sample photo by its label, as the page loads it."""
    return common.sample_photo(common.SAMPLE_PHOTOS[photo])


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a running process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: Fresh servers the browser click row runs its clicks on (one click per warm photo each): a round's
#: CPU ratio moved by about 0.1 between runs; the row reports the pooled ratio and each round's.
CLICK_ROUNDS = 2


def browser_click_row(threads: int, timeout: float = 300.0, rounds: int = CLICK_ROUNDS) -> dict:
    """Warm Compare clicks in a real browser (headless Chromium through Playwright against
    ``streamlit run dashboard/app.py``), the page's default methods: a first click on one sample
    photo loads them; then for each photo of :data:`CLICK_WARM`, the photo is chosen (its own rerun)
    and Colorize clicked, until the page says the comparison is saved and its downloads are drawn.
    The server's CPU time over each click (all its threads: the script, the websocket, the image
    requests; from /proc) and the click's wall time, summed, against the same methods' own
    ``colorize`` on the same photos in another process, measured photo by photo just before each
    click (:func:`own_colorize_server`). ``rounds`` times, each on a fresh server (nothing cached);
    the ratios are of the sums over all rounds (``ratio_lo``/``ratio_hi``: the rounds' own)."""
    row = _row("click_browser", {"method": COMPARE_BROWSER, "device": "cpu"}, size=512, n=len(CLICK_WARM) * rounds)
    chromium, missing = _chromium()
    if missing:
        row["status"] = missing
        return row
    from playwright.sync_api import sync_playwright

    base_env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **thread_env(threads)}
    own: _OwnColorize | None = None
    wall = cpu = own_wall = own_cpu = 0.0
    per_round: list[float] = []
    methods: list[str] = []
    try:
        with sync_playwright() as pw, pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS) as browser:
            for _ in range(rounds):
                with tempfile.TemporaryDirectory(prefix="benchmark-browser-click-") as tmp:
                    (Path(tmp) / "checkpoints").symlink_to(PROJECT_ROOT / "results" / "checkpoints")  # the shipped models, History in tmp
                    env = {**base_env, "COLORIZE_RESULTS_DIR": tmp}
                    env.setdefault("COLORIZE_STUDY_ADMIN_TOKEN", "benchmark")
                    procs: list = []
                    with streamlit_app(env, timeout=120, procs=procs) as (url, _t0, _h):
                        pid = procs[0].pid
                        page = browser.new_page(viewport={"width": 1280, "height": 900})
                        page.goto(f"{url}/compare")
                        page.get_by_role("button", name="Colorize").wait_for(timeout=timeout * 1000)
                        _settle(page, timeout)
                        saved = page.get_by_text("Saved as comparison")
                        zip_button = page.get_by_role("button", name="Everything (zip)")

                        def pick(photo: str, page=page, saved=saved) -> None:
                            page.locator('[data-testid="stSelectbox"]').filter(has_text="Sample photo").click()
                            page.get_by_role("option", name=photo, exact=True).click()
                            saved.wait_for(state="detached", timeout=timeout * 1000)
                            page.get_by_role("button", name="Colorize").wait_for(timeout=timeout * 1000)
                            _settle(page, timeout)

                        def click(page=page, saved=saved, zip_button=zip_button, pid=pid) -> tuple[float, float]:
                            c0, t = _process_cpu(pid), time.perf_counter()
                            page.get_by_role("button", name="Colorize").click()
                            saved.wait_for(timeout=timeout * 1000)
                            zip_button.wait_for(timeout=timeout * 1000)
                            page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=timeout * 1000)
                            wall = time.perf_counter() - t  # the click's results, save and downloads shown, the run over
                            _settle(page, timeout)  # the server's CPU once the last image requests are served
                            return wall, _process_cpu(pid) - c0

                        pick(CLICK_COLD)
                        click()  # loads the methods
                        if own is None:
                            (meta,) = [json.loads(p.read_text()) for p in (Path(tmp) / "comparisons").glob("*/meta.json")]
                            methods = [m for m, v in meta["methods"].items() if not v.get("error")]
                            own = _OwnColorize(methods, base_env, timeout)
                        r_cpu = r_own = 0.0
                        for photo in CLICK_WARM:
                            pick(photo)
                            w, c = own.ask(photo)  # the baseline for this photo, measured just before its click
                            own_wall, own_cpu, r_own = own_wall + w, own_cpu + c, r_own + c
                            w, c = click()
                            wall, cpu, r_cpu = wall + w, cpu + c, r_cpu + c
                        per_round.append(r_cpu / r_own)
                        page.close()
        row.update(total_s=wall, cpu_s=cpu, median_s=own_wall, min_s=own_cpu, ratio=cpu / own_cpu, per_s=wall / own_wall,
                   ratio_lo=min(per_round), ratio_hi=max(per_round), batch=len(methods))  # fmt: skip
        row["methods"] = methods
        row["memory"] = "server CPU over the clicks (all threads, /proc) against the methods' own colorize CPU in another process, between the clicks"
    except Exception as exc:  # noqa: BLE001 - reported in the table, never a crash
        row["status"] = _failure(exc)
    finally:
        if own is not None:
            own.close()
    return row


def _settle(page, timeout: float) -> None:
    """Until the script run is over (Streamlit's running indicator gone), then a moment for the last
    image requests."""
    deadline = time.time() + timeout
    time.sleep(0.2)
    while time.time() < deadline and page.locator('[data-testid="stStatusWidget"]').count():
        time.sleep(0.05)
    time.sleep(0.3)


def click_row(threads: int) -> dict:
    row = _row("click", {"method": COMPARE, "device": "cpu"}, size=512, n=1)
    with tempfile.TemporaryDirectory(prefix="benchmark-click-") as tmp:
        out = Path(tmp) / "click.json"
        env = {**os.environ, "COLORIZE_RESULTS_DIR": tmp, "PYTHONPATH": str(PROJECT_ROOT), **thread_env(threads)}
        env.setdefault("COLORIZE_STUDY_ADMIN_TOKEN", "benchmark")
        proc = subprocess.run([sys.executable, "-m", "experiments.benchmark", "--click-worker", str(out)], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=3600)  # fmt: skip
        res = json.loads(out.read_text()) if out.exists() else {"failed": f"failed: exit status {proc.returncode}: {proc.stderr[-300:]}"}
    if res.get("failed"):
        row["status"] = res["failed"]
    elif res.get("errors"):
        row["status"] = f"failed: the page showed an error: {str(res['errors'][0])[:200]}"
    else:
        row.update(total_s=res["click_wall"], cpu_s=res["click_cpu"], median_s=res["own_wall"], min_s=res["own_cpu"],
                   ratio=res["click_cpu"] / res["own_cpu"], n=len(CLICK_WARM))  # fmt: skip
    return row


# --- the evaluation CLI against a plain scikit-image script ------------------------------------------

SKIMAGE_SCRIPT = '''"""The same rows as `experiments.evaluate --methods gray --no-models` (gray and truth), with
scikit-image: photos squashed to 256 px (bicubic), the grey input made from L with a = b = 0,
PSNR, SSIM and mean CIEDE2000 per photo and row, one CSV."""
import csv
import sys

import numpy as np
from PIL import Image
from skimage import color, metrics

out, size, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = []
for path in paths:
    rgb = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC))
    lab = color.rgb2lab(rgb)
    grey_lab = lab.copy()
    grey_lab[..., 1:] = 0
    grey = np.repeat(np.round(color.lab2rgb(grey_lab).mean(-1) * 255).astype(np.uint8)[..., None], 3, -1)
    for name, pred in (("gray", grey), ("truth", rgb)):
        mse = np.mean((pred.astype(float) - rgb) ** 2)
        psnr = metrics.peak_signal_noise_ratio(rgb, pred, data_range=255) if mse > 0 else float("inf")
        ssim = metrics.structural_similarity(rgb, pred, channel_axis=-1, data_range=255)
        de = float(color.deltaE_ciede2000(lab, color.rgb2lab(pred)).mean())
        rows.append({"method": name, "image": path, "psnr": psnr, "ssim": ssim, "ciede2000": de})
with open(out, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
'''
#: Run a command and report its peak resident set on stderr (the child's own ru_maxrss).
_RSS_WRAPPER = ("import atexit, resource, runpy, sys; atexit.register(lambda: print('@@maxrss', "
                "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)); sys.argv = sys.argv[1:]; "
                "runpy.run_module(sys.argv[0], run_name='__main__')")  # fmt: skip


def _timed_child(cmd: list[str], env: dict) -> tuple[float, float, float | None, int]:
    """(wall s, CPU s, peak RSS MB, exit status) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss = next((float(x.split()[1]) / 1024 for x in proc.stderr.splitlines() if x.startswith("@@maxrss")), None)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[-6:])}: exit status {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return wall, cpu, rss, proc.returncode


def eval_cli_row(data: Path | None, photos: int | None, repeats: int, threads: int) -> dict:
    """``python -m experiments.evaluate --methods gray --no-models --no-cache`` (the gray and truth
    rows) against :data:`SKIMAGE_SCRIPT` over the same photos, each a fresh process, alternately:
    median wall and CPU seconds and peak memory; judged on the CPU ratio (wall shown beside it)."""
    from experiments.evaluate import scan_photos

    row = _row("eval_cli", {"method": EVAL_CLI, "device": "cpu"}, size=EVAL_SIZE, n=photos)
    if data is None:
        row["status"] = "n/a: no photo folder (--data)"
        return row
    try:
        chosen = scan_photos(data, limit=photos)
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **thread_env(threads)}
        with tempfile.TemporaryDirectory(prefix="benchmark-eval-") as tmp:
            folder = Path(tmp) / "photos"
            for p in chosen:  # the same photos in a folder of their own (links)
                (folder / p.name).parent.mkdir(parents=True, exist_ok=True)
                (folder / p.name).symlink_to(Path(p.path).resolve())
            script = Path(tmp) / "skimage_rows.py"
            script.write_text(SKIMAGE_SCRIPT)
            ours = [sys.executable, "-c", _RSS_WRAPPER, "experiments.evaluate", "--data", str(folder), "--methods", "gray",
                    "--no-models", "--no-cache", "--quiet", "--out", str(Path(tmp) / "ours" / "rows.csv")]  # fmt: skip
            theirs = [sys.executable, "-c", _RSS_WRAPPER.replace("runpy.run_module(sys.argv[0], run_name='__main__')",
                      "runpy.run_path(sys.argv[0], run_name='__main__')"), str(script), str(Path(tmp) / "sk.csv"), str(EVAL_SIZE),
                      *[str(folder / p.name) for p in chosen]]  # fmt: skip
            got: dict[str, list] = {"ours": [], "theirs": []}
            for k in range(repeats):
                for which in ("ours", "theirs") if k % 2 == 0 else ("theirs", "ours"):
                    got[which].append(_timed_child(ours if which == "ours" else theirs, env))
        med = {w: [float(np.median([r[i] for r in v if r[i] is not None] or [np.nan])) for i in range(3)] for w, v in got.items()}
        row.update(total_s=med["ours"][0], cpu_s=med["ours"][1], peak_mem_mb=med["ours"][2], median_s=med["theirs"][0],
                   min_s=med["theirs"][1], p90_s=med["theirs"][2], n=len(chosen), batch=repeats,
                   ratio=med["ours"][1] / med["theirs"][1], per_s=med["ours"][0] / med["theirs"][0])  # fmt: skip
        row["memory"] = "peak RSS of each process (ru_maxrss); median_s/min_s/p90_s: the script's wall, CPU, peak MB; per_s: wall ratio"
    except Exception as exc:  # noqa: BLE001
        row["status"] = _failure(exc)
    return row


def speed_sections(rows: list[dict], section, verdict) -> None:
    """The Markdown tables of the rows above (called by :func:`to_markdown`)."""
    section("ratio", "Full-resolution path: colorize / predict_ab",
            "CPU seconds of `colorize` (grey photo of the given size: lightness, resize, the method, ab upsampling, Lab -> sRGB, "
            "gamut mapping) against the method's own `predict_ab` at its working size; 1 torch thread; medians of at least 7 interleaved runs.",
            ["method", "photo (px)", "colorize (CPU s)", "predict_ab (CPU s)", "ratio", "target", "result"],
            lambda r: [r["method"], str(r["size"]), _f(r["cpu_s"]), _f(r["median_s"]), _f(r["ratio"], 2), *verdict(r)], 2)  # fmt: skip
    section("busy", "Busy machine: 2 threads against 1",
            "`colorize` of a 512-px photo while another process (`while True: pass`) runs on the same cores; wall seconds, medians of "
            "alternating runs; OpenMP waiting passive and the thread count fitted to the free cores before each forward pass "
            "(`backends.threads.fit_to_load`: the 2-thread setting runs the threads shown). Judged on the lower end of the "
            "ratio's 95% interval (rounds resampled in pairs): no slower unless the whole interval lies above 1.",
            ["method", "1 thread (s)", "2 threads (s)", "2 / 1", "95% interval", "threads used", "target", "result"],
            lambda r: [r["method"], _f(r["min_s"]), _f(r["median_s"]), _f(r["ratio"], 2),
                       f"{r['ratio_lo']:.2f}-{r['ratio_hi']:.2f}" if r.get("ratio_lo") is not None else "-",
                       ", ".join(map(str, r.get("policy_threads") or [])) or "-", *verdict(r)], 1)  # fmt: skip
    section("click", "Compare click against colorizing",
            f"Warm clicks on the dashboard's Compare page (the four feed-forward methods; one click on each of scikit-image's "
            f"{', '.join(CLICK_WARM)} - 512 x 512 to 500 x 740 - after a first click has loaded the models; Streamlit's AppTest runs "
            "the page's script as the click does - no browser): colorize, save to History, show the results, slider, downloads "
            "(drawn when clicked); per-image metrics are on demand (a button, or a toggle for every click). Against the same "
            "four `colorize` calls on the same photos alone in the same process (median of 3 each). Sums over the photos. "
            "For reference, without a target: the target is judged in a browser (next table), since AppTest's harness "
            "parses every element the page sends in the measured process - work a browser does in its own.",
            ["methods", "click (s)", "click (CPU s)", "colorize (s)", "colorize (CPU s)", "CPU ratio", "target", "result"],
            lambda r: [r["method"], _f(r["total_s"]), _f(r["cpu_s"]), _f(r["median_s"]), _f(r["min_s"]), _f(r["ratio"], 2),
                       *verdict(r)], 1)  # fmt: skip
    section("click_browser", "Compare click in a browser",
            "The same clicks in headless Chromium (Playwright) against `streamlit run dashboard/app.py` with the project's "
            "`.streamlit/config.toml`, the page's default methods (those shown), History in a temporary folder: one click "
            "on each sample photo after a first click has loaded the methods, each until the page shows the save message "
            "and the downloads and its run is over; in rounds, each on a fresh server (nothing cached). The server's CPU "
            "time over each click (all its threads - the script, the websocket, the image requests - from /proc) against "
            "the same methods' own `colorize` on the same photos in another process, measured photo by photo just before "
            "each click so that both see the machine in the same state (the methods one after another on the photo, as the "
            "click runs them; median of 3 rounds each); sums over the photos and rounds, and each round's CPU ratio. Judged "
            "on the sums' CPU ratio; the wall ratio includes the browser fetching and drawing the images.",
            ["methods", "clicks", "click (s)", "server (CPU s)", "colorize (s)", "colorize (CPU s)", "wall ratio", "CPU ratio",
             "rounds' CPU ratios", "target", "result"],
            lambda r: [", ".join(r.get("methods") or []) or r["method"], str(r.get("n", "")), _f(r["total_s"]), _f(r["cpu_s"]),
                       _f(r["median_s"]), _f(r["min_s"]), _f(r["per_s"], 2), _f(r["ratio"], 2),
                       f"{_f(r.get('ratio_lo'), 2)}-{_f(r.get('ratio_hi'), 2)}" if r.get("ratio_lo") is not None else "",
                       *verdict(r)], 1)  # fmt: skip
    section("eval_cli", "Evaluation CLI against scikit-image",
            "`python -m experiments.evaluate --methods gray --no-models --no-cache` (rows gray and truth; PSNR, SSIM, CIEDE2000, "
            "colourfulness, AuC, artefact measures, bootstrap summary, five output files) against a plain scikit-image script "
            "computing PSNR, SSIM and CIEDE2000 for the same rows and photos (by default every photo of --data, as the README "
            "evaluates the test folder); fresh processes, alternating, medians of 5 each (the script alone moved by 25% between runs). Judged on CPU time. The CLI starts about 2.5 s "
            "later than the script (PyTorch and pandas imports against scikit-image's lazy ones) and is faster per photo, so "
            "on a handful of photos the script wins.",
            ["what", "photos", "CLI (s)", "CLI (CPU s)", "CLI peak (MB)", "script (s)", "script (CPU s)", "script peak (MB)",
             "wall ratio", "CPU ratio", "target", "result"],
            lambda r: [r["method"], _f(r["n"]), _f(r["total_s"]), _f(r["cpu_s"]), _mb(r["peak_mem_mb"]), _f(r["median_s"]),
                       _f(r["min_s"]), _mb(r["p90_s"]), _f(r["per_s"], 2), _f(r["ratio"], 2), *verdict(r)], 1)  # fmt: skip
    section("train", "Training throughput",
            "`train_step` on synthetic batches of the config's crop and batch size, 1 torch thread: images per CPU-second against "
            "the FLOP limit (the core's 2048 x 2048 float32 matmul GFLOP per CPU-second over the FLOPs a step counts per image, "
            "forward and backward). In the precision `experiments.train` uses (`train.precision = \"auto\"`: bfloat16 autocast "
            "and channels-last networks on a CPU with native bfloat16, else float32); the limit stays float32's.",
            ["method", "crop (px)", "batch", "precision", "images / CPU-s", "GFLOP / image", "limit (images / CPU-s)", "fraction",
             "target", "result"],
            lambda r: [r["method"], _f(r["working_size"]), _f(r["batch"]), r.get("precision") or "float32", _f(r["per_s"], 1),
                       _f(r["min_s"]), _f(r["p90_s"], 1), _f(r["ratio"], 2), *verdict(r)], 1)  # fmt: skip


# --- output files -------------------------------------------------------------------------------


def _f(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.0f}" if v >= 100 else f"{v:.{digits}f}"  # 100.4 -> "100", not "1e+02"
    return str(v)


def _mb(v) -> str:
    return "-" if v is None else f"{v:.0f}"


def _device(r: dict) -> str:
    return r["device"] if r.get("ran_on") in (None, r["device"]) else f"{r['device']} (ran on {r['ran_on']})"


def to_markdown(report: dict) -> str:
    rows, s, sw, cpu = report["rows"], report["settings"], report["software"], report["cpu"]
    env = cpu.get("workers", {}).get("cpu", {})
    if not env:
        thread_text = "no CPU run"
    elif env.get("pinned"):
        thread_text = f"{env.get('torch_threads')} torch thread(s), pinned to core(s) {env.get('cpu_affinity')}"
    else:
        thread_text = f"{env.get('torch_threads')} torch thread(s), not pinned (CPU affinity {env.get('cpu_affinity')})"
    tf = f"TensorFlow {sw['tensorflow']}, Keras {sw['keras']}" if sw.get("tensorflow") else "TensorFlow not installed"
    cuda = f" (CUDA {sw['torch_cuda']})" if sw.get("torch_cuda") else ""
    order = "each method in a fresh process" if s["isolated"] else "all methods in one process, in the order below"
    lines = [
        f"# Benchmark: {report['hardware']}",
        "",
        "| | |",
        "|---|---|",
        f"| hardware | {report['hardware']} |",
        f"| software | Python {sw['python']}, PyTorch {sw['torch']}{cuda}, {tf}, {sw['platform']} |",
        f"| CPU threads | {thread_text}; {cpu['cores']} cores in the machine |",
        f"| date | {report['created']} |",
        f"| commit | {report['commit']} |",
        f"| command | `{report.get('command') or 'experiments.benchmark.run()'}` |",
        f"| photo | `{s['photo']}`, squashed to size x size; its grey version is the input |",
        f"| runs | {s['repeats']} timed after {s['warmup']} warm-up(s) ({s['warmup_slow']} for {', '.join(SLOW)}); {order} |",
        *_load_line(cpu.get("load"), cpu["cores"]),
        "",
    ]
    if env and env.get("torch_threads") != 2:
        lines += [f"CPU targets are stated for 2 CPU cores; this run used {env.get('torch_threads')} thread(s).", ""]

    def section(kind: str, title: str, intro: str, head: list[str], cells: Callable[[dict], list[str]], k: int) -> None:
        """A table of the rows of ``kind``; a row that failed shows its status from column ``k`` on."""
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            return
        body = [cells(r) if r["status"] == "ok" else cells(r)[:k] + [r["status"]] + ["-"] * (len(head) - k - 1) for r in sel]
        numeric = [all(re.fullmatch(r"[-+\d.e]+|-", row[i]) for row in body) for i in range(len(head))]
        lines.extend([f"## {title}", "", intro, ""] if intro else [f"## {title}", ""])
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
        lines.extend("| " + " | ".join(b) + " |" for b in body)
        lines.append("")

    def verdict(r: dict) -> list[str]:
        return [r["target"] or "-", r["result"] or "-"]

    section("latency", "Latency: one photo", "`colorize` of one grey photo; median and 90th percentile of the timed runs.",
            ["method", "device", "photo (px)", "working (px)", "median (s)", "p90 (s)", "peak memory (MB)", "target", "result"],
            lambda r: [r["method"], _device(r), str(r["size"]), _f(r["working_size"]), _f(r["median_s"]), _f(r["p90_s"]),
                       _mb(r["peak_mem_mb"]), *verdict(r)], 4)  # fmt: skip
    section("compare", "Dashboard comparison",
            "The four feed-forward methods one after another on one 512-px photo: the sum of their median latencies.",
            ["methods", "device", "photo (px)", "total (s)", "target", "result"],
            lambda r: [r["method"], _device(r), str(r["size"]), _f(r["total_s"]), *verdict(r)], 3)  # fmt: skip
    section("app", "Dashboard start",
            "`streamlit run dashboard/app.py` cold (fresh server and headless Chromium) until the home page shows its method "
            "table, in a browser already open; median of the cold starts; 'server' is when it first answered its health check; "
            "'bare page' is a Streamlit page holding only a title and a table, started the same way in the same run (the "
            "target for the ratio is <= 2x).",
            ["what", "cold starts", "server (s)", "home page ready (s)", "p90 (s)", "bare page (s)", "ratio", "target", "result"],
            lambda r: [r["method"], _f(r["n"]), _f(r["min_s"]), _f(r["total_s"]), _f(r["p90_s"]), _f(r.get("bare_s")),
                       _f(r.get("ratio"), 2), *verdict(r)], 1)  # fmt: skip
    section("throughput", "Batched throughput", f"`colorize_batch` of {s['batch']} different {BATCH_SIZE}-px photos in one call.",
            ["method", "device", "batch", "median (s)", "images/s", "peak memory (MB)"],
            lambda r: [r["method"], _device(r), _f(r["batch"]), _f(r["median_s"]), _f(r["per_s"], 1), _mb(r["peak_mem_mb"])], 3)  # fmt: skip
    photos = f"`{s['data']}`" if s["data"] else "flips and rotations of the photo"
    section("evaluation", "Evaluation throughput",
            f"What `experiments.evaluate` does per method at {EVAL_SIZE} px, in batches of {s['eval_batch']}: grey rendering, "
            f"`colorize_batch` and the pixel metrics (no model-based metrics); photos ({photos}) decoded beforehand, after one untimed batch (the network's per-shape set-up, which a whole evaluation pays once); "
            f"the median of {EVAL_PASSES} passes.",
            ["method", "device", "photos", "total (s)", "photos/s", "peak memory (MB)", "target", "result"],
            lambda r: [r["method"], _device(r), _f(r["n"]), _f(r["total_s"]), _f(r["per_s"], 1), _mb(r["peak_mem_mb"]),
                       *verdict(r)], 3)  # fmt: skip
    section("load", "Loading", "", ["method", "device", "load (s)", "memory (MB)", "checkpoint / weights"],
            lambda r: [r["method"], _device(r), _f(r["total_s"]), _mb(r["peak_mem_mb"]), _checkpoint(report, r)], 2)  # fmt: skip
    speed_sections(rows, section, verdict)
    missing = [r for r in rows if r["kind"] in ("unavailable", "failed")]
    if missing:
        lines += ["## Not measured", ""] + [f"- `{r['method']}` ({r['device']}): {r['status']}" for r in missing] + [""]
    lines += ["## Targets", ""]
    for t in TARGETS:
        checked = [r for r in rows if r.get("result") in ("PASS", "FAIL") and target_for(r) == t]
        outcome = ", ".join(f"{r['method']} {r['result']}" for r in checked) if checked else "not measured in this run"
        lines.append(f"- {t.what}: {t.text()} - {outcome}")
    lines += ["", "## What the memory column means", "",
              "- CUDA: `torch.cuda.max_memory_allocated` during that row, weights included; not the caching allocator's reserve "
              "nor the CUDA context (TensorFlow's GPU memory is not tracked).",
              "- CPU: how far the process's peak resident set (`ru_maxrss`) rose above its size just before the model was loaded "
              "(PyTorch already imported; the regression load imports TensorFlow, which counts), as a high-water mark up to "
              "and including that row (load, then sizes in ascending order, batch, evaluation): weights, allocator caches, "
              "thread pools and the photos. "
              + ("Each method ran in a fresh process." if s["isolated"] else
                 "All methods shared one process, so a method that stayed below an earlier one's peak shows `-`."),
              ""]  # fmt: skip
    return "\n".join(lines)


def machine_was_shared(loads: list[float | None], cores: int) -> bool:
    """The benchmarks' rule for a machine shared with other work: a 1-minute load average above
    three quarters of its cores (at the start or the end of a run)."""
    return max((x for x in loads if x is not None), default=0.0) > 0.75 * (cores or 1)


def _load_line(load: dict | None, cores: int) -> list[str]:
    """The machine's load average (1 min) at the start and end of the run: when it is above the
    core count, the machine was shared and wall times are inflated; the CPU-time ratios are not."""
    if not load or not load.get("start"):
        return []
    start, end = load["start"][0], (load.get("end") or [None])[0]
    shared = machine_was_shared([start, end], cores)
    note = ("; the machine was shared with other work (a training run, tests): wall times are inflated by the wait for a core, "
            "so the issue-15 rows are judged on CPU-time ratios, which the load changes far less") if shared else ""  # fmt: skip
    return [f"| machine load | load average {start:.1f} at the start, {end:.1f} at the end, {cores} cores{note} |"]


def _checkpoint(report: dict, r: dict) -> str:
    info = report["methods"].get(f"{r['method']} ({r['device']})", {})
    src = info.get("checkpoint") or info.get("weights")
    return f"`{Path(src).name}`" if src else "-"


def output_paths(out: str | Path, hardware: str) -> dict[str, Path]:
    stem = Path(out) / slug(hardware)
    return {"json": stem.with_suffix(".json"), "csv": stem.with_suffix(".csv"), "md": stem.with_suffix(".md")}


def write_outputs(report: dict, out: str | Path) -> dict[str, Path]:
    paths = output_paths(out, report["hardware"])
    paths["json"].parent.mkdir(parents=True, exist_ok=True)
    paths["json"].write_text(json.dumps(report, indent=2, default=str) + "\n")
    with paths["csv"].open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["hardware", *COLUMNS])
        w.writeheader()
        for r in report["rows"]:
            w.writerow({"hardware": report["hardware"], **{k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()}})
    paths["md"].write_text(to_markdown(report))
    return paths


# --- peak memory by photo size (issue: memory bounded by design) -------------------------------

MEMORY_MEGAPIXELS = (1, 10, 40)

_MEMORY_CHILD = """
import json, resource, sys, time
import numpy as np
from experiments import benchmark
name, device, ckpt, mp = sys.argv[1], sys.argv[2], sys.argv[3] or None, float(sys.argv[4])
benchmark.torch_first()
model = benchmark.open_method(name, device, __import__("pathlib").Path(ckpt) if ckpt else benchmark.CHECKPOINT_DIR)
loaded = benchmark.peak_rss_mb()
w = int(round((mp * 1e6 * 8 / 5) ** 0.5)); h = int(round(mp * 1e6 / w))
y = np.linspace(0, 1, h, dtype=np.float32)[:, None]; x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
grey = (127 + 60 * np.sin(x * 40) * np.cos(y * 25) + 60 * y).clip(0, 255).astype(np.uint8)
t0 = time.perf_counter(); out = model.colorize(grey); dt = time.perf_counter() - t0
assert out.shape == (h, w, 3)
print(json.dumps({"width": w, "height": h, "seconds": dt, "model_rss_mb": loaded, "peak_rss_mb": benchmark.peak_rss_mb()}))
"""


def memory_by_size(methods: list[str], megapixels=MEMORY_MEGAPIXELS, device: str = "cpu", checkpoints: Path | None = None,
                   threads: int = 2, timeout: float = 1800) -> list[dict]:  # fmt: skip
    """Peak resident memory of one colorization per method and photo size (a synthetic 8:5 grey
    photo of 1, 10 and 40 MP by default), each in a fresh process: ``peak_rss_mb`` is the child's
    ``ru_maxrss`` (model, photo and the whole flow), ``model_rss_mb`` the same right after loading."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **thread_env(threads)}
    rows = []
    for name in methods:
        for mp in megapixels:
            row = {"method": name, "device": device, "megapixels": mp}
            cmd = [sys.executable, "-c", _MEMORY_CHILD, name, device, str(checkpoints or ""), str(mp)]
            try:
                r = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
                if r.returncode == 0:
                    row.update(json.loads(r.stdout.strip().splitlines()[-1]))
                else:
                    row["error"] = (r.stderr.strip().splitlines() or ["failed"])[-1][:300]
            except subprocess.TimeoutExpired:
                row["error"] = f"no result within {timeout:.0f} s"
            rows.append(row)
    return rows


def memory_markdown(rows: list[dict], hardware: str) -> str:
    out = [f"# Peak memory by photo size - {hardware}", "",
           "One colorization of a synthetic grey photo in a fresh process (`python -m experiments.benchmark --memory`); "
           "peak resident memory of the whole process (ru_maxrss), and right after the model loaded.", "",
           "| method | megapixels | size | peak RSS (MB) | after loading (MB) | seconds |", "|---|---:|---|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        if "error" in r:
            out.append(f"| `{r['method']}` | {r['megapixels']:g} | - | - | - | {r['error']} |")
        else:
            out.append(f"| `{r['method']}` | {r['megapixels']:g} | {r['width']}x{r['height']} | {r['peak_rss_mb']:.0f} | "
                       f"{r['model_rss_mb']:.0f} | {r['seconds']:.1f} |")  # fmt: skip
    return "\n".join(out) + "\n"


# --- command line -------------------------------------------------------------------------------


def parse_methods(spec: str) -> list[str]:
    if spec.strip() == "all":
        return backends.names()
    names = list(dict.fromkeys(m.strip() for m in spec.split(",") if m.strip()))
    unknown = [m for m in names if m not in backends.METHODS]
    if unknown or not names:
        raise ValueError(
            f"--methods: unknown method(s) {', '.join(unknown) or '(none given)'}; known: all, {', '.join(backends.names())}"
        )
    return names


def parse_sizes(spec: str) -> list[int]:
    try:
        sizes = sorted({int(s) for s in spec.split(",") if s.strip()})
    except ValueError:
        raise ValueError(f"--sizes {spec!r}: expected comma-separated pixel sizes, e.g. 256,512,1024") from None
    if not sizes or sizes[0] < 32 or sizes[-1] > 8192:
        raise ValueError(f"--sizes {spec!r}: sizes must be between 32 and 8192 pixels")
    return sizes


def parse_devices(spec: str) -> list[str]:
    spec = spec.strip().lower()
    if spec == "all":
        import torch

        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if spec not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device {spec!r}: use auto, cpu, cuda or all")
    return [backends.resolve_device(spec)]  # ValueError when cuda is asked for and absent


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2 (not argparse's usage block)
        raise ValueError(message)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"] and len(argv) == 2:
        return worker_main(argv[1])
    if argv[:1] == ["--click-worker"] and len(argv) == 2:
        return click_worker(argv[1])
    if argv == ["--own-colorize-server"]:
        return own_colorize_server()
    p = _Parser(prog="python -m experiments.benchmark", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])  # fmt: skip
    p.add_argument("--methods", default="all", help="all, or a comma-separated list of method names")
    p.add_argument(
        "--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="photo sizes in pixels (square), default 256,512,1024"
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | all (CPU, and CUDA when present)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median and p90 are reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (at most 1 for neural_style)")
    p.add_argument("--batch", type=int, default=16, help=f"photos in the batched-throughput call ({BATCH_SIZE} px); 0 skips it")
    p.add_argument("--eval-photos", type=int, default=32, help="photos for the evaluation throughput; 0 skips it")
    p.add_argument("--eval-cli-photos", type=int, default=0,
                   help="photos of --data for the evaluate CLI against scikit-image (default 0: the whole folder, as the README evaluates it)")  # fmt: skip
    p.add_argument(
        "--photo", type=Path, help="the photo to time (default: first of ../shared/data/test, else skimage's astronaut)"
    )
    p.add_argument(
        "--data", type=Path, help="photo folder for the evaluation throughput (default ../shared/data/test when present)"
    )
    p.add_argument("--checkpoints", type=Path, help="folder of <method>.pt / .keras checkpoints (default results/checkpoints)")
    p.add_argument(
        "--cpu-threads", type=int, default=2, help="pin CPU runs to this many cores and threads (0: as the process is)"
    )
    p.add_argument("--skip-slow", action="store_true", help="neural_style at 256 px only")
    p.add_argument("--app", action="store_true", help="also time the dashboard's cold start to a ready home page (Chromium)")
    p.add_argument("--no-isolate", action="store_true", help="run every method in this process (CPU memory then less meaningful)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default results/benchmarks)")
    p.add_argument("--no-speed", action="store_true",
                   help="skip the CPU-ratio, busy-machine, training, Compare-click and evaluate-CLI rows")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table on stdout")
    p.add_argument("--memory", action="store_true",
                   help="only the peak memory of one photo of 1, 10 and 40 MP per method (fresh process each) -> memory-<hardware>.{json,md}")  # fmt: skip
    from experiments import video

    video.add_benchmark_options(p)
    try:
        args = p.parse_args(argv)
        if args.video:  # only the video rows (experiments.video): frames/s at 480p, memory over a 1-minute clip
            return video.benchmark_cli(args)
        methods = parse_methods(args.methods)
        sizes = parse_sizes(args.sizes)
        for opt, v, lo in (("--repeats", args.repeats, 1), ("--warmup", args.warmup, 0), ("--batch", args.batch, 0),
                           ("--eval-photos", args.eval_photos, 0), ("--cpu-threads", args.cpu_threads, 0)):  # fmt: skip
            if v < lo:
                raise ValueError(f"{opt} must be >= {lo}, got {v}")
        if args.photo is not None:
            load_photo(str(args.photo))
        if args.data is not None and not args.data.is_dir():
            raise ValueError(f"--data {args.data}: not a folder")
        if args.data is not None and args.eval_photos:
            from experiments.evaluate import scan_photos

            scan_photos(args.data)
        if args.checkpoints is not None and not args.checkpoints.is_dir():
            raise ValueError(f"--checkpoints {args.checkpoints}: not a folder")
        devices = parse_devices(args.device)
    except (ColorizationError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    checkpoints = args.checkpoints
    if checkpoints is None and os.environ.get("COLORIZE_RESULTS_DIR"):  # the dashboard's results folder
        checkpoints = Path(os.environ["COLORIZE_RESULTS_DIR"]).expanduser() / "checkpoints"
    if args.memory:
        methods = [m for m in methods if not (args.skip_slow and m == "neural_style")]
        rows = memory_by_size(methods, device=devices[0], checkpoints=checkpoints, threads=args.cpu_threads)
        stem = Path(args.out) / f"memory-{slug(hardware_name(devices[:1]))}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
        stem.with_suffix(".md").write_text(memory_markdown(rows, hardware_name(devices[:1])))
        if not args.quiet:
            print(memory_markdown(rows, hardware_name(devices[:1])))
        return 0
    report = run(methods, devices, sizes, repeats=args.repeats, warmup=args.warmup, batch=args.batch, eval_photos=args.eval_photos,
                 photo=str(args.photo) if args.photo else None, data=args.data, checkpoints=checkpoints,
                 cpu_threads=args.cpu_threads, skip_slow=args.skip_slow, isolate=not args.no_isolate,
                 progress=not args.quiet, command=" ".join(["python -m experiments.benchmark", *argv]), app=args.app,
                 speed=not args.no_speed, eval_cli_photos=args.eval_cli_photos)  # fmt: skip
    paths = write_outputs(report, args.out)
    if not args.quiet:
        print(to_markdown(report))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
