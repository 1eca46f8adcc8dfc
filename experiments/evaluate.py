"""Evaluate colorization methods on a photo folder: ``python -m experiments.evaluate``.

    python -m experiments.evaluate --data ../shared/data/val --methods all --out results/metrics/val.csv
    python -m experiments.evaluate --data DIR --methods classification,gan --out results/metrics/x.csv --size 256 --limit 200
    python -m experiments.evaluate ... --limit-method neural_style=20     # ~20 s a photo on CPU
    python -m experiments.evaluate --data DIR --predictions ddcolor=out/ddcolor --out results/metrics/x.csv  # made elsewhere

Protocol. Every photo is read as RGB and resized (squashed, bicubic; the aspect ratio is not kept,
as in ``experiments.data``'s evaluation mode) to ``size x size``: that is the ground truth. With
``--keep-aspect`` it keeps its aspect ratio instead, its longer side at ``size`` (what a user's
photo looks like; the squash distorts every non-square photo before any method sees it). Each
method colorizes its grey version (the truth's L with a = b = 0, rendered as a grey sRGB image),
so no method can see colour; metrics compare the result with the truth at the truth's size. Two
reference rows are always computed: ``gray`` (the grey input itself, ab = 0) and ``truth`` (the
colour original; the ceiling of every metric).

``--limit N`` evaluates a fixed random sample of N photos (seed 0, the same for every method);
``--limit-method NAME=K`` evaluates method NAME on the first K photos of that sample only (for
``neural_style``, which optimises each photo); its summary row shows its own n.

Outputs: ``NAME.csv`` (one row per method and photo: ``method, image, label`` and one column per
per-image metric), ``NAME.summary.csv`` (mean and 95% percentile-bootstrap interval per metric, 1000
resamples over photos, seed 0), ``NAME.md`` and ``NAME.tex`` (the same table for READMEs and
papers) and ``NAME.json`` (settings, metric sources, skipped methods, and under ``made_from`` the
path and SHA-256 of the checkpoint behind each method's rows: ``experiments.provenance``).
Model-based metrics whose weights are missing appear as unavailable, with the fix. Per-photo
results are cached in ``results/metrics/.cache`` keyed by method, checkpoint (path, size, mtime),
photo (path, size, mtime), evaluation size and metric set, so reruns and the dashboard do not recompute.

``--update`` re-evaluates only ``--methods`` and keeps every other method's rows from the existing
``--out`` files (after shipping one new checkpoint, the other methods' committed rows still hold:
``python -m experiments.readme --refresh --methods gan`` uses it). The protocol (data folder, size,
sample, per-method limits) and the metric columns must be those of the existing files, and the grey
reference rows are recomputed and must name the same photos; otherwise nothing is written. The
files equal a full run's, but for the summary's 6th significant digit (the kept rows are read back
from the CSV's 6 digits). It trusts the kept rows: after a change to a backend's code rather than
its checkpoint, evaluate all.

Exit status: 0 on success, 2 for a bad ``--data`` folder, an unknown method or a bad option (one
line on stderr). A method that cannot run here is reported and skipped; the others still run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

import backends
from backends import color
from backends.base import PROJECT_ROOT, aspect_kept_shape
from backends.errors import ColorizationError, ImageError, WeightsUnavailable
from backends.imageio import load_image
from experiments import provenance


class _LazyMetrics:
    """``experiments.metrics`` (which imports PyTorch), imported on first use: ``--help``, a bad
    option or a bad folder answer at once, and the first photos decode while PyTorch loads."""

    def __getattr__(self, name):
        from . import metrics

        return getattr(metrics, name)


M = _LazyMetrics()

REFERENCE_ROWS = ("gray", "truth")
CACHE_DIR = PROJECT_ROOT / "results" / "metrics" / ".cache"
PRIOR_FILE = PROJECT_ROOT / "backends" / "assets" / "ab_gamut.npz"
METRICS_VERSION = 4  # 2: gray_of gives exactly R = G = B; 3: float32 SSIM / Lab / CIEDE2000; 4: artefact columns (older cached rows are not reused)
DEFAULT_CLASS_TRAIN = PROJECT_ROOT.parent / "shared" / "data" / "train"


# --- photos -------------------------------------------------------------------------------------


@dataclass
class Photo:
    path: Path
    name: str  # relative to the data folder (the CSV's ``image`` column)
    label: str  # first folder level ("" for photos in the root)

    @property
    def key(self) -> str:
        st = self.path.stat()
        return f"{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def truth_shape(h: int, w: int, size: int, keep_aspect: bool = False) -> tuple[int, int]:
    """The evaluated shape of an ``h x w`` photo: ``size x size``, or its longer side at ``size``."""
    return aspect_kept_shape(h, w, size, 1) if keep_aspect else (size, size)


KEEP_ASPECT = "longer side to size, aspect ratio kept, bicubic"
SQUASH = "squash to size x size, bicubic"


def keeps_aspect(meta: dict) -> bool:
    """Whether an evaluation (its JSON ``meta``) was made with ``--keep-aspect``."""
    return meta.get("resize") == KEEP_ASPECT


def protocol_phrase(meta: dict) -> str:
    """How an evaluation's photos were sized, for the page and the report: after "at 256 px"."""
    return "each at its own shape, longer side" if keeps_aspect(meta) else "squashed to a square"


def load_truth(path: str | Path, size: int, keep_aspect: bool = False) -> np.ndarray:
    """The photo as RGB uint8, squashed to ``size x size`` (bicubic), or with ``keep_aspect`` its
    longer side at ``size``."""
    rgb = load_image(path, mode="rgb")
    h, w = truth_shape(*rgb.shape[:2], size, keep_aspect)
    if rgb.shape[:2] == (h, w):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((w, h), Image.BICUBIC))


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """The grey rendering of a photo: its L with a = b = 0 (sRGB uint8, R = G = B)."""
    # a = b = 0 is neutral, but float error can round R, G and B of one pixel to different levels:
    # round their mean once, so the input really is grey (and an ab = 0 colorizer returns it unchanged).
    # uint8 input: the same numbers bit for bit (every 8-bit colour checked), by tables.
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8 and rgb.shape[-1:] == (3,):
        g = color.neutral_levels(color.lightness_exact(rgb))
    else:
        lab = color.rgb_to_lab(rgb)
        lab[..., 1:] = 0
        g = np.round(color.lab_to_rgb(lab).mean(-1) * 255.0).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def scan_photos(data: str | Path, limit: int | None = None, seed: int = 0) -> list[Photo]:
    from experiments.data import scan_folder

    root = Path(data)
    samples, classes = scan_folder(root)  # FileNotFoundError for a missing or empty folder
    photos = [Photo(s.path, s.path.relative_to(root).as_posix(), classes[s.label] if s.label >= 0 else "") for s in samples]
    if limit and limit < len(photos):
        photos = random.Random(seed).sample(photos, limit)
    return photos


# --- model-based metrics ------------------------------------------------------------------------


@dataclass
class ModelMetrics:
    """The perceptual / set / semantic metrics that could be loaded, and why others could not."""

    perceptual: object | None = None
    fid: object | None = None
    classifiers: list = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # column -> reason and fix
    sources: dict[str, str] = field(default_factory=dict)  # column -> weights used

    @classmethod
    def load(cls, device: str, size: int, class_train: Path | None, per_class: int = 50, progress: bool = False,
             enabled: bool = True) -> ModelMetrics:  # fmt: skip
        mm = cls()
        if not enabled:
            mm.unavailable = {c: "not computed (--no-models)" for c in ("lpips", "fid", "top1_resnet50", "ncm_squeeze")}
            return mm
        from .metrics.classify import NearestClassMean, ResNet50Top1
        from .metrics.fid import FIDFeatures
        from .metrics.perceptual import load_perceptual

        def attempt(column, make):
            try:
                obj = make()
            except ImportError as exc:
                package = {"lpips": "lpips", "pytorch_fid": "pytorch-fid"}.get(exc.name or "", exc.name)
                mm.unavailable[column] = f"needs the Python package {package!r} ({exc}); fix: pip install {package}"
                return None
            except (WeightsUnavailable, ValueError, FileNotFoundError) as exc:
                mm.unavailable[column] = str(exc)
                return None
            mm.sources[getattr(obj, "column", column)] = obj.source
            return obj

        mm.perceptual = attempt("lpips", lambda: load_perceptual(device))
        mm.fid = attempt("fid", lambda: FIDFeatures(device))
        for column, make in (
            ("top1_resnet50", lambda: ResNet50Top1(device)),
            (
                "ncm_squeeze",
                lambda: NearestClassMean.fit(class_train or DEFAULT_CLASS_TRAIN, size, per_class, device, CACHE_DIR, progress),
            ),
        ):
            obj = attempt(column, make)
            if obj is not None:
                mm.classifiers.append(obj)
        return mm

    def columns(self) -> list[str]:
        cols = [self.perceptual.column] if self.perceptual else []
        return cols + [c.column for c in self.classifiers]

    def signature(self) -> str:
        return json.dumps(sorted(self.sources.items()))


# --- caching ---------------------------------------------------------------------------------------


def _file_id(path: Path | str | None) -> str | None:
    if not path:
        return None
    p = Path(path)
    if not p.exists():
        return None
    st = p.stat()
    return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"


class Cache:
    """Per-photo metric rows of one (method, checkpoint, size, metric set), as one JSON file."""

    def __init__(self, method: str, identity: str | None, size: int, signature: str, enabled: bool = True):
        self.enabled = enabled and identity is not None
        # the rebalanced AuC weighs pixels by the training prior: a recomputed prior is a new key
        key = hashlib.sha1(f"{METRICS_VERSION}|{method}|{identity}|{size}|{signature}|{_file_id(PRIOR_FILE)}".encode()).hexdigest()[:16]
        self.path = CACHE_DIR / f"{method}-{key}.json"
        self.rows: dict[str, dict] = {}
        self.sets: dict[str, float] = {}
        if self.enabled and self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                self.rows, self.sets = data.get("rows", {}), data.get("sets", {})
            except (OSError, ValueError):
                pass

    def save(self) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rows": self.rows, "sets": self.sets}))
        os.replace(tmp, self.path)


def method_identity(name: str, model) -> str | None:
    """What the cached numbers of a method depend on besides the photos; None: do not cache."""
    if name in REFERENCE_ROWS:
        return "reference"
    ckpt = _file_id(getattr(model, "checkpoint", None))
    if ckpt is None:
        return None
    opts = getattr(model, "config", None)
    return f"{ckpt}|{opts!r}"


# --- evaluation ------------------------------------------------------------------------------------


@dataclass
class EvalResult:
    per_image: object  # pandas DataFrame: method, image, label, metric columns
    summary: object  # pandas DataFrame: method, status, n, <metric>, <metric>_lo, <metric>_hi, fid
    columns: list[str]  # per-image metric columns, in table order
    unavailable: dict[str, str]
    skipped: dict[str, str]
    meta: dict


def _to_tensor(images: list[np.ndarray], device: str):
    import torch

    # uint8 as the photos are (every metric converts to the precision it computes in; 8x less memory than float64)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(device=device)


def _score_batch(preds, truths, labels, mm: ModelMetrics, device: str, is_truth: bool = False):
    """Every metric of a batch; photos of different shapes (``--keep-aspect``) are scored by shape."""
    shapes = [t.shape for t in truths]
    if len(set(shapes)) > 1:
        groups: dict[tuple, list[int]] = {}
        for i, sh in enumerate(shapes):
            groups.setdefault(sh, []).append(i)
        cols: dict[str, np.ndarray] = {}
        feats = None
        order = [i for idx in groups.values() for i in idx]
        parts = [_score_batch([preds[i] for i in idx] if not is_truth else [], [truths[i] for i in idx], [labels[i] for i in idx], mm, device, is_truth)
                 for idx in groups.values()]  # fmt: skip
        back = np.argsort(order)  # rows back in the batch's order
        for k in parts[0][0]:
            cols[k] = np.concatenate([np.asarray(c[k]) for c, _ in parts])[back]
        if parts[0][1] is not None:
            feats = np.concatenate([np.asarray(f) for _, f in parts])[back]
        return cols, feats
    return _score_same_shape(preds, truths, labels, mm, device, is_truth)


def _score_same_shape(preds, truths, labels, mm: ModelMetrics, device: str, is_truth: bool = False):
    import torch

    y = _to_tensor(truths, device)
    x = y if is_truth else _to_tensor(preds, device)
    # the truth row: the identities (SSIM 1, AuC 1, ...) are not computed, only what describes the photo
    cols = {k: v.numpy() for k, v in (M.truth_metrics(y, 255.0) if is_truth else M.pixel_metrics(x, y, 255.0)).items()}
    with torch.no_grad():
        if mm.perceptual is not None:
            cols[mm.perceptual.column] = mm.perceptual(x, y, 255.0).numpy()
        for clf in mm.classifiers:
            cols[clf.column] = clf(x, labels, 255.0)
    feats = mm.fid(x, 255.0) if mm.fid is not None else None
    return cols, feats


def evaluate(
    data: str | Path,
    methods: list[str] | dict[str, object],
    size: int = 256,
    limit: int | None = None,
    method_limits: dict[str, int] | None = None,
    device: str = "auto",
    batch_size: int = 16,
    reference: np.ndarray | None = None,
    class_train: str | Path | None = None,
    model_metrics: ModelMetrics | bool = True,
    use_cache: bool = True,
    progress: bool = True,
    keep_aspect: bool = False,
) -> EvalResult:
    """Score ``methods`` (names for ``backends.load``, or name -> colorizer object) on ``data``
    (``keep_aspect``: each photo at its own aspect ratio, its longer side at ``size``).

    Returns per-photo rows and the summary; writes nothing but the cache (see :func:`write_outputs`).
    """
    import pandas as pd
    from tqdm import tqdm

    if size < 32:
        raise ValueError(f"--size must be at least 32 pixels, got {size}")
    photos = scan_photos(data, limit)
    # photos decode one batch ahead in a thread (Pillow releases the GIL) - the first batch while
    # PyTorch and the metrics load; each photo's truth and grey rendering are made once, for all rows
    position = {p.name: i for i, p in enumerate(photos)}
    decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluate-decode")
    pending: dict[str, Future] = {}

    def read_ahead(batch) -> None:
        ahead = photos[position[batch[-1].name] + 1 : position[batch[-1].name] + 1 + batch_size] if batch else []
        for p in [*batch, *ahead]:
            if p.name not in pending:
                pending[p.name] = decoder.submit(load_truth, p.path, size, keep_aspect)

    read_ahead(photos[:batch_size])
    device = backends.resolve_device(device)
    method_limits = dict(method_limits or {})
    mm = model_metrics if isinstance(model_metrics, ModelMetrics) else ModelMetrics.load(
        device, size, Path(class_train) if class_train else None, progress=progress, enabled=bool(model_metrics))  # fmt: skip
    columns = list(M.PIXEL_COLUMNS) + mm.columns()

    if isinstance(methods, dict):
        todo = dict(methods)
    else:
        todo = {}
        for name in methods:
            if name not in REFERENCE_ROWS:
                todo[name] = None
    rows: list[dict] = []
    skipped: dict[str, str] = {}
    missing: dict[str, list[str]] = {}  # outside predictions: photos without a file
    fid_values: dict[str, float] = {}
    made_from: dict[str, dict] = {}  # method -> the checkpoint (path, sha256) its rows come from
    truth_feats: dict[str, np.ndarray] = {}
    truth_cache: dict[str, np.ndarray] = {}
    grey_cache: dict[str, np.ndarray] = {}

    def greys_of(batch, truths):
        for p, t in zip(batch, truths):
            if p.name not in grey_cache:
                grey_cache[p.name] = gray_of(t)
        return [grey_cache[p.name] for p in batch]

    def truths_of(batch):
        out = []
        read_ahead(batch)
        for p in batch:
            if p.name not in truth_cache:
                try:
                    truth_cache[p.name] = pending[p.name].result()
                except ImageError as exc:  # a bad photo is a --data problem, not the method's: stop
                    raise ValueError(f"--data {data}: {exc}; remove or replace that file") from None
            out.append(truth_cache[p.name])
        return out

    order = ["truth", "gray", *todo]
    for name in order:
        model = todo.get(name)
        if name not in REFERENCE_ROWS and model is None:
            try:
                model = backends.load(name, device=device)
            except (ColorizationError, ValueError, ImportError) as exc:
                skipped[name] = str(exc)
                print(f"skipped {name}: {exc}", file=sys.stderr)
                continue
        subset = photos[: method_limits[name]] if name in method_limits else photos
        if name not in REFERENCE_ROWS and not hasattr(model, "predict_photos"):
            made_from[name] = provenance.checkpoint_record(model)
        if hasattr(model, "predict_photos"):  # colorizations made elsewhere (experiments.predictions)
            subset, gone = [p for p in subset if model.file_for(p.name)], model.missing([p.name for p in subset])
            if gone:
                missing[name] = gone
                print(f"{name}: no prediction in {model.folder} for {len(gone)} photo(s): {', '.join(gone[:10])}"
                      + (" ..." if len(gone) > 10 else ""), file=sys.stderr)  # fmt: skip
            if not subset:
                skipped[name] = f"no prediction in {model.folder} matches a photo of {data} (matched by file name)"
                print(f"skipped {name}: {skipped[name]}", file=sys.stderr)
                continue
        cache = Cache(name, method_identity(name, model), f"{size}-aspect" if keep_aspect else size, mm.signature(), enabled=use_cache)
        set_key = hashlib.sha1("\n".join(sorted(p.key for p in subset)).encode()).hexdigest()[:16]
        need_fid = mm.fid is not None and (name == "truth" or set_key not in cache.sets)
        feats: dict[str, np.ndarray] = {}
        t0 = time.perf_counter()
        bar = tqdm(total=len(subset), desc=f"evaluate {name}", unit="img", file=sys.stderr, disable=not progress)
        try:
            for i in range(0, len(subset), batch_size):
                batch = subset[i : i + batch_size]
                keys = [p.key for p in batch]
                if not need_fid and all(k in cache.rows for k in keys):
                    rows += [{"method": name, "image": p.name, "label": p.label, **cache.rows[k]} for p, k in zip(batch, keys)]
                    bar.update(len(batch))
                    continue
                truths = truths_of(batch)
                greys = greys_of(batch, truths) if name != "truth" else []
                if name == "truth":
                    preds = truths
                elif name == "gray":
                    preds = greys
                elif hasattr(model, "predict_photos"):
                    preds = model.predict_photos(batch, truths)  # re-aligned to the truth's size
                else:
                    preds = (
                        model.colorize_batch(greys, reference=reference) if reference is not None else model.colorize_batch(greys)
                    )
                    for p, pred, t in zip(batch, preds, truths):
                        if np.asarray(pred).shape != t.shape or np.asarray(pred).dtype != np.uint8:
                            raise ColorizationError(
                                f"{name}: returned {np.asarray(pred).shape} {np.asarray(pred).dtype} for {p.name}, expected {t.shape} uint8"
                            )
                cols, f = _score_batch(preds, truths, [p.label for p in batch], mm, device, is_truth=name == "truth")
                for j, (p, k) in enumerate(zip(batch, keys)):
                    row = {c: float(cols[c][j]) for c in cols}
                    cache.rows[k] = row
                    rows.append({"method": name, "image": p.name, "label": p.label, **row})
                    if f is not None:
                        feats[p.name] = f[j]
                cache.save()
                bar.update(len(batch))
        except ValueError:
            bar.close()
            raise
        except ColorizationError as exc:
            bar.close()
            skipped[name] = str(exc)
            rows = [r for r in rows if r["method"] != name]
            print(f"skipped {name}: {exc}", file=sys.stderr)
            continue
        bar.close()
        if name == "truth":
            truth_feats = feats
        if mm.fid is not None:
            if set_key in cache.sets and not feats:
                fid_values[name] = cache.sets[set_key]
            elif len(subset) >= 2:
                names = [p.name for p in subset]
                fid_values[name] = M.frechet_distance(
                    np.stack([feats[n] for n in names]), np.stack([truth_feats[n] for n in names])
                )
                cache.sets[set_key] = fid_values[name]
                cache.save()
        if progress:
            dt = time.perf_counter() - t0
            print(f"{name}: {len(subset)} photos in {dt:.1f} s ({len(subset) / max(dt, 1e-9):.1f} photos/s)", file=sys.stderr)

    decoder.shutdown(wait=False, cancel_futures=True)
    row_order = ["gray", *[m for m in todo if m not in skipped], "truth"]
    per_image = pd.DataFrame(rows, columns=["method", "image", "label", *columns])
    per_image["method"] = pd.Categorical(per_image["method"], categories=row_order, ordered=True)
    per_image = per_image.sort_values(["method", "image"], kind="stable").reset_index(drop=True)
    per_image["method"] = per_image["method"].astype(str)
    unavailable = dict(mm.unavailable)
    if mm.fid is None and "fid" not in unavailable:
        unavailable["fid"] = "not loaded"
    summary = summarise(per_image, columns, row_order, fid_values if mm.fid is not None else None, skipped)
    meta = {
        "data": str(Path(data).resolve()),
        "photos": len(photos),
        "size": size,
        "resize": KEEP_ASPECT if keep_aspect else SQUASH,
        "limit": limit,
        "method_limits": method_limits,
        "device": device,
        "columns": columns,
        "metric_sources": mm.sources,
        "unavailable": unavailable,
        "skipped": skipped,
        "made_from": {n: r for n, r in made_from.items() if n not in skipped},
        "predictions": {n: str(m.folder) for n, m in todo.items() if hasattr(m, "predict_photos")},
        "missing_predictions": missing,
        "bootstrap": {"resamples": M.bootstrap.N_RESAMPLES, "confidence": M.bootstrap.CONFIDENCE, "seed": M.bootstrap.SEED},
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "metrics_version": METRICS_VERSION,
    }
    return EvalResult(per_image, summary, columns, unavailable, skipped, meta)


def summarise(per_image, columns: list[str], row_order: list[str], fid_values: dict[str, float] | None, skipped: dict[str, str]):
    """Mean and percentile-bootstrap 95% interval of every column, one row per method."""
    import pandas as pd

    out = []
    for name in row_order:
        sub = per_image[per_image["method"] == name]
        row: dict = {"method": name, "status": "reference" if name in REFERENCE_ROWS else "ok", "n": len(sub)}
        for c in columns:
            mean, lo, hi, _ = M.bootstrap_ci(sub[c].to_numpy(dtype=float))
            row[c], row[f"{c}_lo"], row[f"{c}_hi"] = mean, lo, hi
        if fid_values is not None:
            row["fid"] = fid_values.get(name, float("nan"))
        out.append(row)
    for name, why in skipped.items():
        out.append({"method": name, "status": f"unavailable: {why}", "n": 0})
    return pd.DataFrame(out)


# --- output files ---------------------------------------------------------------------------------------


def _label(col: str) -> str:
    return M.METRIC_INFO.get(col, (col, 0))[0]


def _best(summary, col: str) -> str | None:
    direction = M.METRIC_INFO.get(col, ("", 0))[1]
    cand = summary[(summary["status"] == "ok") & summary[col].notna()] if col in summary else None
    if not direction or cand is None or cand.empty:
        return None
    return str(cand.loc[cand[col].idxmax() if direction > 0 else cand[col].idxmin(), "method"])


def _fmt(v: float, col: str) -> str:
    if v is None or not np.isfinite(v):
        return "inf" if v is not None and np.isinf(v) else "-"
    digits = 2 if col in ("psnr", "ciede2000", "colorfulness", "colorfulness_diff", "fid") else 3
    return f"{v:.{digits}f}"


def _cell(row, col: str) -> tuple[str, str]:
    v = row.get(col)
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-", ""
    lo, hi = row.get(f"{col}_lo"), row.get(f"{col}_hi")
    ci = f"[{_fmt(lo, col)}, {_fmt(hi, col)}]" if lo is not None and np.isfinite(lo) and np.isfinite(hi) else ""
    return _fmt(v, col), ci


def to_markdown(res: EvalResult, title: str) -> str:
    s = res.summary
    cols = list(res.columns) + (["fid"] if "fid" in s else [])
    at = (f"their own shape, longer side {res.meta['size']} px" if keeps_aspect(res.meta)
          else f"{res.meta['size']} x {res.meta['size']} (squashed)")
    lines = [f"# {title}", "", f"{res.meta['photos']} photos of `{res.meta['data']}` at {at}; mean and 95% bootstrap interval over photos (1000 resamples, seed 0). "
             f"Reference rows: `gray` (ab = 0) and `truth` (the colour original).", ""]  # fmt: skip
    lines.append("| method | n | " + " | ".join(_label(c) for c in cols) + " |")
    lines.append("|---|---:|" + "---:|" * len(cols))
    best = {c: _best(s, c) for c in cols}
    for _, row in s.iterrows():
        if row["status"].startswith("unavailable"):
            continue
        cells = []
        for c in cols:
            v, ci = _cell(row, c)
            v = f"**{v}**" if best.get(c) == row["method"] else v
            cells.append(f"{v} {ci}".strip())
        lines.append(f"| {row['method']} | {row['n']} | " + " | ".join(cells) + " |")
    lines += ["", "Higher is better for PSNR, SSIM, AuC and accuracies; lower for CIEDE2000, distances and FID; "
              "colourfulness is best near the truth row. Bold: best method (reference rows excluded)."]  # fmt: skip
    if res.unavailable:
        lines += ["", "Unavailable metrics:"] + [f"- `{c}`: {why}" for c, why in res.unavailable.items()]
    if res.skipped:
        lines += ["", "Methods not evaluated:"] + [f"- `{m}`: {why}" for m, why in res.skipped.items()]
    for m, folder in res.meta.get("predictions", {}).items():
        gone = res.meta.get("missing_predictions", {}).get(m, [])
        lines += ["", f"`{m}`: colorizations made elsewhere, read from `{folder}`"
                  + (f"; no prediction for {len(gone)} photo(s): {', '.join(gone[:10])}{' ...' if len(gone) > 10 else ''}" if gone else "")]  # fmt: skip
    if res.meta.get("metric_sources"):
        lines += ["", "Weights used:"] + [f"- `{c}`: {src}" for c, src in res.meta["metric_sources"].items()]
    lines += _by_subject_markdown(res)
    return "\n".join(lines) + "\n"


def _by_subject_markdown(res: EvalResult) -> list[str]:
    """The headline metric by subject (``tables.by_label``), when the photos carry two labels or more."""
    from experiments import tables

    head = tables.HEADLINE if tables.HEADLINE in res.columns else (res.columns[0] if res.columns else None)
    sub = tables.by_label(res.per_image, head) if head else None
    if sub is None or sub.empty:
        return []
    shown = tables.by_label_display(sub)
    what = tables.by_label_what(sub)
    rows = ["| " + " | ".join(shown.columns) + " |", "|---|" + "---:|" * (len(shown.columns) - 2) + "---|"]
    rows += ["| " + " | ".join(str(v) for v in r) + " |" for r in shown.itertuples(index=False)]
    return ["", f"## By subject: {_label(head)}, {what}", "",
            "Each label's photos (a class folder, or a source), hardest first; ±: the typical half-width of a cell's "
            "paired-bootstrap 95% interval.", "", *rows]  # fmt: skip


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"), ("$", r"\$")):
        s = s.replace(a, b)
    return s


def to_latex(res: EvalResult, title: str) -> str:
    s = res.summary
    cols = list(res.columns) + (["fid"] if "fid" in s else [])
    arrows = {+1: r"$\uparrow$", -1: r"$\downarrow$", 0: ""}
    head = " & ".join(f"{_tex_escape(_label(c))} {arrows[M.METRIC_INFO.get(c, ('', 0))[1]]}".strip() for c in cols)
    out = [f"% {_tex_escape(title)}: generated by python -m experiments.evaluate; needs \\usepackage{{booktabs}}",
           r"\begin{tabular}{l r " + "c " * len(cols) + "}", r"\toprule", f"Method & $n$ & {head} \\\\", r"\midrule"]  # fmt: skip
    best = {c: _best(s, c) for c in cols}
    for _, row in s.iterrows():
        if row["status"].startswith("unavailable"):
            continue
        if row["method"] == "truth":
            out.append(r"\midrule")
        cells = []
        for c in cols:
            v, ci = _cell(row, c)
            v = f"\\textbf{{{v}}}" if best.get(c) == row["method"] else v
            cells.append(f"{v} {{\\scriptsize {ci}}}" if ci else v)
        out.append(f"{_tex_escape(row['method'])} & {row['n']} & " + " & ".join(cells) + r" \\")
        if row["method"] == "gray":
            out.append(r"\midrule")
    out += [r"\bottomrule", r"\end{tabular}"]
    for c, why in res.unavailable.items():
        out.append(f"% unavailable {c}: {why}")
    return "\n".join(out) + "\n"


def output_paths(out: str | Path) -> dict[str, Path]:
    out = Path(out)
    stem = out.with_suffix("") if out.suffix == ".csv" else out
    return {"csv": stem.with_suffix(".csv"), "summary": Path(f"{stem}.summary.csv"), "md": stem.with_suffix(".md"),
            "tex": stem.with_suffix(".tex"), "json": stem.with_suffix(".json")}  # fmt: skip


def write_outputs(res: EvalResult, out: str | Path) -> dict[str, Path]:
    paths = output_paths(out)
    paths["csv"].parent.mkdir(parents=True, exist_ok=True)
    title = f"Colorization metrics: {paths['csv'].stem}"
    res.per_image.to_csv(paths["csv"], index=False, float_format="%.6g")
    res.summary.to_csv(paths["summary"], index=False, float_format="%.6g")
    paths["md"].write_text(to_markdown(res, title))
    paths["tex"].write_text(to_latex(res, title))
    paths["json"].write_text(json.dumps(res.meta, indent=2, default=str) + "\n")
    return paths


def load_results(out: str | Path) -> dict:
    """What the dashboard shows without recomputing: per-image and summary frames, settings."""
    import pandas as pd

    paths = output_paths(out)
    if not paths["csv"].exists():
        raise FileNotFoundError(f"{paths['csv']}: no evaluation results; run python -m experiments.evaluate --out {paths['csv']}")
    meta = json.loads(paths["json"].read_text()) if paths["json"].exists() else {}
    summary = pd.read_csv(paths["summary"]) if paths["summary"].exists() else None
    return {"per_image": pd.read_csv(paths["csv"]), "summary": summary, "meta": meta,
            "markdown": paths["md"].read_text() if paths["md"].exists() else ""}  # fmt: skip


def check_update_protocol(meta: dict, data: str | Path, size: int, limit: int | None, method_limits: dict[str, int],
                          keep_aspect: bool = False) -> None:
    """Raise ValueError unless an existing evaluation (its JSON ``meta``) was made with this protocol."""
    def where(path) -> str | None:  # the data folder as seen from the project (the same on every checkout beside ../shared)
        return os.path.relpath(Path(path).resolve(), PROJECT_ROOT) if path else None

    have = {"resize": SQUASH, **meta, "data": where(meta.get("data"))}
    want = {"data": where(data), "size": size, "limit": limit, "method_limits": method_limits,
            "resize": KEEP_ASPECT if keep_aspect else SQUASH}
    diff = [f"{k} {have.get(k)!r} there, {v!r} here" for k, v in want.items() if have.get(k) != v]
    if diff:
        raise ValueError(f"--update: the existing evaluation was made with another protocol ({'; '.join(diff)}); evaluate every method instead")


def merge_results(old: dict, new: EvalResult) -> EvalResult:
    """``new``'s methods (re-evaluated) with every other method's rows from ``old``
    (:func:`load_results` of the same protocol): one evaluation, summary and sidecar, as if all had
    been evaluated together. ValueError when they cannot be merged honestly."""
    import pandas as pd

    prev, meta_old = old["per_image"], old["meta"]
    if new.skipped:
        raise ValueError(f"--update: {', '.join(f'{k} ({v})' for k, v in new.skipped.items())} could not be evaluated; nothing was written")
    if meta_old.get("metrics_version", METRICS_VERSION) != METRICS_VERSION:  # recorded since version 4
        raise ValueError(f"--update: the existing rows were scored by metrics version {meta_old['metrics_version']}, "
                         f"this is {METRICS_VERSION}; evaluate every method instead")  # fmt: skip
    if list(meta_old.get("columns") or []) != list(new.columns):
        raise ValueError("--update: the existing rows have other metric columns (made by another version or "
                         "without the model metrics); evaluate every method instead")  # fmt: skip
    grey_new = sorted(new.per_image.loc[new.per_image["method"] == "gray", "image"])
    if sorted(prev.loc[prev["method"] == "gray", "image"].astype(str)) != grey_new:
        raise ValueError("--update: the existing rows are of other photos; evaluate every method instead")
    redone = [m for m in dict.fromkeys(new.per_image["method"]) if m not in REFERENCE_ROWS]
    old_order = [str(m) for m in old["summary"]["method"]] if old["summary"] is not None else list(dict.fromkeys(prev["method"]))
    kept = [m for m in old_order if m not in REFERENCE_ROWS and m not in redone and m in set(prev["method"])]
    row_order = ["gray", *[m for m in old_order if m in kept or m in redone], *[m for m in redone if m not in old_order], "truth"]
    per_image = pd.concat([prev[prev["method"].isin(kept)], new.per_image], ignore_index=True)[["method", "image", "label", *new.columns]]
    per_image["method"] = pd.Categorical(per_image["method"].astype(str), categories=row_order, ordered=True)
    per_image = per_image.sort_values(["method", "image"], kind="stable").reset_index(drop=True)
    per_image["method"] = per_image["method"].astype(str)
    fid = None
    if "fid" in new.summary:
        fid = dict(zip(new.summary["method"], new.summary["fid"]))
        if old["summary"] is not None and "fid" in old["summary"]:
            fid.update({m: v for m, v in zip(old["summary"]["method"], old["summary"]["fid"]) if m in kept})
    skipped = {k: v for k, v in (meta_old.get("skipped") or {}).items() if k not in redone}
    summary = summarise(per_image, new.columns, row_order, fid, skipped)
    made_old = meta_old.get("made_from") or {}
    meta = {**new.meta, "skipped": skipped,
            "made_from": {m: (new.meta["made_from"].get(m) if m in redone else made_old.get(m)) for m in row_order
                          if m in new.meta["made_from"] or (m in kept and m in made_old)},
            "updated": {"methods": redone, "kept": kept},
            # when each method's rows were made: the kept ones keep their dates through any number of updates
            "rows_made": {m: (new.meta["created"] if m in redone else (meta_old.get("rows_made") or {}).get(m, meta_old.get("created")))
                          for m in row_order if m not in REFERENCE_ROWS}}  # fmt: skip
    return EvalResult(per_image, summary, new.columns, new.unavailable, skipped, meta)


# --- command line -----------------------------------------------------------------------------------------


def parse_methods(spec: str) -> list[str]:
    if spec.strip() == "all":
        return backends.names()
    if spec.strip() == "none":  # only outside predictions (and the reference rows)
        return []
    names = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in names if m not in backends.METHODS and m not in REFERENCE_ROWS]
    if unknown or not names:
        raise ValueError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; known: all, {', '.join(backends.names())}")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])  # fmt: skip
    p.add_argument("--data", type=Path, help="photo folder (class sub-folders optional); or --video")
    p.add_argument("--methods", default="all", help="all, none, or a comma-separated list of method names")
    p.add_argument("--predictions", action="append", default=[], metavar="NAME=DIR",
                   help="score colorizations made elsewhere: DIR holds one image per photo, matched by file name (any size)")  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="per-image CSV path, e.g. results/metrics/val.csv")
    p.add_argument("--size", type=int, default=256, help="evaluation resolution (photos squashed to size x size; with --keep-aspect, their longer side)")
    p.add_argument("--keep-aspect", action="store_true", help="keep each photo's aspect ratio, its longer side at --size (default: squash)")
    p.add_argument("--limit", type=int, help="evaluate a fixed random sample of N photos")
    p.add_argument(
        "--limit-method", action="append", default=[], metavar="NAME=K", help="evaluate NAME on the first K photos only"
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--reference", type=Path, help="colour reference photo for reference-based methods (default: their own pick)")
    p.add_argument("--class-train", type=Path, help=f"training photos for the NCM classifier (default {DEFAULT_CLASS_TRAIN})")
    p.add_argument("--no-models", action="store_true", help="pixel metrics only (skip LPIPS, FID and classifiers)")
    p.add_argument("--no-cache", action="store_true", help="recompute everything")
    p.add_argument("--update", action="store_true",
                   help="re-evaluate only --methods; keep the other methods' rows of the existing --out files (same protocol)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    from experiments import video

    video.add_evaluate_options(p)
    args = p.parse_args(argv)
    if args.video is not None:  # clips: one row per clip and method (experiments.video)
        return video.evaluate_cli(args)
    if args.data is None:
        print("error: give --data PHOTO_FOLDER (or --video CLIP_OR_FOLDER)", file=sys.stderr)
        return 2
    from backends import threads

    threads.keep_freed_memory()  # batches of large tensors: no page faults on every batch
    try:
        if not args.data.is_dir():
            raise ValueError(f"--data {args.data}: not a folder")
        methods = parse_methods(args.methods)
        limits = {}
        for item in args.limit_method:
            name, _, k = item.partition("=")
            if name not in backends.METHODS or not k.isdigit() or int(k) < 1:
                raise ValueError(f"--limit-method {item!r}: expected NAME=K with a known method and K >= 1")
            limits[name] = int(k)
        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {args.limit}")
        reference = load_image(args.reference, mode="rgb") if args.reference else None
        scan_photos(args.data)
        previous = None
        if args.update:
            if not output_paths(args.out)["json"].exists():
                raise ValueError(f"--update: {args.out} has no evaluation to update (no {output_paths(args.out)['json'].name}); run without --update")
            previous = load_results(args.out)
            check_update_protocol(previous["meta"], args.data, args.size, args.limit, limits, args.keep_aspect)
            if args.predictions or args.methods == "all" or not [m for m in methods if m not in REFERENCE_ROWS]:
                raise ValueError("--update: name the methods to re-evaluate with --methods (no --predictions)")
        if args.predictions:
            from experiments.predictions import parse_predictions

            methods = {**{m: None for m in methods}, **parse_predictions(args.predictions)}
        res = evaluate(args.data, methods, size=args.size, limit=args.limit, method_limits=limits, device=args.device,
                       batch_size=args.batch_size, reference=reference, class_train=args.class_train,
                       model_metrics=not args.no_models, use_cache=not args.no_cache, progress=not args.quiet,
                       keep_aspect=args.keep_aspect)  # fmt: skip
        if previous is not None:
            res = merge_results(previous, res)
    except (ColorizationError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = write_outputs(res, args.out)
    print(to_markdown(res, f"Colorization metrics: {paths['csv'].stem}"))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
