"""One photo, several methods: the results, their per-image metrics, the comparison store, exports.

The dashboard's Compare and History pages and the report use this module; none of it needs
Streamlit.

Store layout: ``results/comparisons/<id>/`` - ``input.png`` (the grey input the methods saw),
``truth.png`` (when the photo was in colour), ``<method>.png``, ``<method>.reference.png`` and
``meta.json``. The id is generated (time + random hex); nothing a user uploads ever chooses a path.

- **Workspaces**: every comparison records the workspace (a random token per browser session) that
  made it; :func:`list_comparisons` with a workspace lists only that workspace's, so anonymous
  visitors never see each other's uploads. Without a workspace (admin) it lists all.
- **Deduplication**: saving the same input with the same options in the same workspace again
  updates the earlier comparison (its methods merged) instead of adding a copy.
- **Retention**: comparisons older than ``COLORIZE_COMPARISONS_KEEP_DAYS`` days (default 30; 0 keeps
  them forever) are removed when a new one is saved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments import jobs
from experiments.paths import comparisons_dir

_ID_RE = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
_WS_RE = re.compile(r"^[0-9a-f]{16,64}$")
#: metric -> (short header with unit and direction) for per-image tables
PER_IMAGE_HEADERS = {
    "psnr": "PSNR (dB) ↑",
    "ssim": "SSIM (0-1) ↑",
    "ciede2000": "CIEDE2000 (ΔE00) ↓",
    "colorfulness": "colourfulness M3",
    "colorfulness_diff": "M3 - M3(truth) (→0)",
    "auc": "AuC (0-1) ↑",
    "auc_rebal": "AuC rebal. (0-1) ↑",
}


@dataclass
class MethodResult:
    name: str
    image: np.ndarray | None = None
    seconds: float | None = None
    device: str | None = None
    error: str | None = None
    metrics: dict = field(default_factory=dict)
    reference: np.ndarray | None = None
    reference_source: str | None = None
    options: dict = field(default_factory=dict)
    #: None: computed now; else where the result came from ("cache" / "history <id>")
    cached: str | None = None
    extras: dict = field(default_factory=dict)
    #: when it was computed (epoch seconds)
    when: float = field(default_factory=time.time)


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encoded once per image and reused by the history, the zip and the slider (experiments.encoded)."""
    from experiments import encoded

    return encoded.png_bytes(rgb)


def image_hash(*arrays) -> str:
    if len(arrays) == 1 and arrays[0] is not None:  # a read-only photo or result: hashed once (experiments.encoded)
        from experiments import encoded

        return encoded.remembered(arrays[0], "image_hash", _image_hash)
    return _image_hash(*arrays)


def _image_hash(*arrays) -> str:
    h = hashlib.sha256()  # hardware-accelerated (SHA-NI) on current x86 and ARM cores
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype)).encode())
        h.update(a.reshape(-1).view(np.uint8))  # no copy
    return h.hexdigest()


# --- the input photo --------------------------------------------------------------------------

#: Largest upload accepted (MB); the pixel limit of backends.imageio applies on top.
MAX_UPLOAD_MB = int(os.environ.get("COLORIZE_MAX_UPLOAD_MB", "25"))
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"]
#: Colour photos that ship inside scikit-image (no download needed).
SAMPLE_PHOTOS = {
    "astronaut": "astronaut",
    "cat (chelsea)": "chelsea",
    "coffee": "coffee",
    "rocket": "rocket",
    "motorcycle": "motorcycle_left",
}


def sample_photo(key: str) -> np.ndarray:
    import skimage.data

    from backends.imageio import load_image

    if key not in SAMPLE_PHOTOS.values():
        raise ValueError(f"unknown sample photo {key!r}; known: {', '.join(SAMPLE_PHOTOS.values())}")
    if key == "motorcycle_left":
        return np.asarray(load_image(Path(skimage.data.data_dir) / "motorcycle_left.png", mode="rgb"))
    return np.ascontiguousarray(getattr(skimage.data, key)()[..., :3])


def folder_images(folder: Path, limit: int = 500) -> list[Path]:
    from backends.imageio import is_image_file

    return sorted(p for p in folder.rglob("*") if is_image_file(p))[:limit]


def read_upload(data: bytes, name: str, max_mb: float | None = None) -> np.ndarray:
    """Bytes of an upload -> uint8 grey or RGB; :class:`ImageError` with a one-line reason otherwise."""
    from backends.errors import ImageError
    from backends.imageio import load_image

    name = Path(name or "upload").name
    max_mb = MAX_UPLOAD_MB if max_mb is None else max_mb
    if len(data) > max_mb * 1024 * 1024:
        raise ImageError(name, f"file too large ({len(data) / 2**20:.1f} MB; limit {max_mb:g} MB)")
    return load_image(data, name=name)


def is_colour(image: np.ndarray, threshold: float = 2.0) -> bool:
    """True when the photo has real colour (mean CIELAB chroma above ``threshold``), estimated on
    an even grid of at most about 256 x 256 of its pixels (a mean; the full photo costs a
    full-resolution Lab conversion on every Compare click)."""
    from backends import color

    if image.ndim == 2:
        return False
    step = max(1, int(np.sqrt(image.shape[0] * image.shape[1] / 65536.0)))
    lab = color.rgb_to_lab(np.ascontiguousarray(image[::step, ::step, :3]))
    return float(color.chroma(lab).mean()) > threshold


def to_grey(image: np.ndarray) -> np.ndarray:
    """The grey (L only, a = b = 0) RGB version of a photo: what every method sees - the
    evaluation's own ``gray_of``, so Compare and Metrics feed the methods the same input."""
    from experiments.evaluate import gray_of

    return gray_of(np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3])


def prepare_input(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey input, ground truth or None): a colour photo becomes its own ground truth."""
    truth = image[..., :3].copy() if is_colour(image) else None
    return to_grey(image), truth


# --- per-image metrics -------------------------------------------------------------------------


def image_metrics(pred: np.ndarray, truth: np.ndarray | None) -> dict[str, float]:
    """The evaluation's per-image metrics (``experiments.metrics.pixel_metrics``, as in
    ``experiments.evaluate``, at its 256 x 256 size: ``experiments.encoded``) of one prediction;
    only colourfulness when there is no ground truth."""
    from experiments import encoded

    return encoded.image_metrics(pred, truth)


def add_metrics(results: list[MethodResult], truth: np.ndarray | None) -> list[MethodResult]:
    """Fill in the per-image metrics of the results that lack them (in place), all methods of the
    photo in one batch (``experiments.encoded.image_metrics_many``); those filled in.

    Compare computes them on demand (a button, or with every click when asked): at about 0.05 CPU-s
    a method they cost as much as a third of the colorizing, which a click should not pay unasked."""
    from experiments import encoded

    todo = [r for r in results if r.image is not None and not r.metrics]
    by_shape: dict[tuple, list[MethodResult]] = {}
    for r in todo:  # one batch per output size (every method keeps the input's size)
        by_shape.setdefault(np.asarray(r.image).shape, []).append(r)
    for group in by_shape.values():
        for r, m in zip(group, encoded.image_metrics_many([np.asarray(r.image) for r in group], truth)):
            r.metrics = m
    return todo


def _write_meta(d: Path, meta: dict) -> None:
    """A comparison's meta.json, written atomically (a reader never sees half of it)."""
    tmp = d / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, default=str))
    tmp.replace(d / "meta.json")


def update_metrics(cid: str, results: list[MethodResult]) -> None:
    """Write the metrics of ``results`` into stored comparison ``cid`` (computed after it was saved)."""
    d = _check_id(cid)
    meta = json.loads((d / "meta.json").read_text())
    for r in results:
        if r.name in meta.get("methods", {}) and r.metrics:
            meta["methods"][r.name]["metrics"] = r.metrics
    _write_meta(d, meta)


def metrics_rows(results: list[MethodResult]) -> list[dict]:
    """Per-image table rows: method, seconds, device, where the result came from, metrics with units."""
    rows = []
    for r in results:
        if r.image is None:
            continue
        row = {"method": r.name, "seconds": None if r.seconds is None else round(r.seconds, 2), "device": r.device,
               "result": "computed now" if not r.cached else r.cached}  # fmt: skip
        row.update({PER_IMAGE_HEADERS.get(k, k): round(v, 4) for k, v in r.metrics.items()})
        rows.append(row)
    return rows


def caption_metrics(metrics: dict) -> str:
    keys = [k for k in ("psnr", "ciede2000", "auc_rebal", "colorfulness") if k in metrics]
    short = {"psnr": "PSNR {:.1f} dB", "ciede2000": "ΔE00 {:.1f}", "auc_rebal": "AuC-r {:.3f}", "colorfulness": "M3 {:.0f}"}
    return ", ".join(short[k].format(metrics[k]) for k in keys)


# --- fusion's two extras (Iizuka et al.) ---------------------------------------------------------


def _working_L(model, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from backends import color
    from backends.base import resize_plane

    L = color.lightness(rgb)
    return L, resize_plane(L, model.working_shape(*L.shape))


def fusion_scene(model, image: np.ndarray, top: int = 3) -> list[tuple[str, float]]:
    """Fusion's predicted scene classes for a photo (its global branch's classifier head), most
    likely first, as (class name as a person reads it, probability)."""
    _, L = _working_L(model, to_grey(image))
    return readable_scene(model.predict_scene(L[None], top=top)[0])


def readable_scene(scene) -> list[tuple[str, float]]:
    """Fusion's (class, probability) pairs with the classes named as a person reads them
    (``experiments.data.display_label``)."""
    from experiments.data import display_label

    return [(display_label(str(n)), float(p)) for n, p in scene]


def fusion_global_transfer(model, grey: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Iizuka et al.'s global-feature transfer: colour ``grey`` with its own local features and the
    GLOBAL features (scene, time of day) of another photo ``style``; RGB at the input's full size
    and lightness. The fusion network's ``forward(L, L_global)`` takes the two inputs apart."""
    import torch

    from backends import color
    from backends.base import join_lab

    L_full, L = _working_L(model, grey)
    _, Ls = _working_L(model, to_grey(style))
    net = model.nets["net"]
    bare = model._bare(net)
    model.eval()
    with torch.no_grad():
        g = bare.global_input(model.to_tensor(np.asarray(Ls, np.float32))[None, None])
        x, (h, w) = model._pad8(model.to_tensor(np.asarray(L, np.float32))[None, None])
        with model.autocast():
            y, _ = net(x, g)
        y = y.float()[..., : (h + 1) // 2, : (w + 1) // 2]
        ab = ((y * 2 - 1) * color.AB_SCALE).cpu().numpy()[0]
    return join_lab(L_full, ab)


# --- a process-wide cache of results -------------------------------------------------------------


class ResultCache:
    """(method, options, checkpoint version, input) -> (image, seconds, when): a later run of the
    same method on the same photo with the same options is answered from here and says so."""

    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self._d: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key: tuple, value: tuple) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.max_entries:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


#: bounded by the bytes it holds (COLORIZE_CACHE_MB, default 256 MB; experiments.jobs), not by a
#: count of images of any size: a few 12-MP results would otherwise hold gigabytes
RESULTS = jobs.result_cache()


# --- the store -------------------------------------------------------------------------------------


def new_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def new_workspace() -> str:
    return secrets.token_hex(16)


def valid_workspace(ws: str | None) -> bool:
    return bool(ws) and bool(_WS_RE.match(ws))


def keep_days() -> float:
    try:
        return float(os.environ.get("COLORIZE_COMPARISONS_KEEP_DAYS", "30"))
    except ValueError:
        return 30.0


def signature(grey: np.ndarray, options: dict, workspace: str | None) -> str:
    return hashlib.sha1(
        (image_hash(grey) + json.dumps(options, sort_keys=True, default=str) + (workspace or "")).encode()
    ).hexdigest()


def _check_id(cid: str) -> Path:
    if not isinstance(cid, str) or not _ID_RE.match(cid):
        raise ValueError(f"not a comparison id: {cid!r}")
    return comparisons_dir() / cid


def save_comparison(grey: np.ndarray, truth: np.ndarray | None, results: list[MethodResult], source: str, options: dict,
                    workspace: str | None = None) -> str:  # fmt: skip
    """Store a comparison (or update the workspace's earlier one of the same input and options);
    its id. Prunes comparisons older than the retention period."""
    prune()
    sig = signature(grey, options, workspace)
    existing = next((m for m in list_comparisons(workspace) if m.get("signature") == sig), None) if workspace else None
    cid = existing["id"] if existing else new_id()
    d = comparisons_dir() / cid
    d.mkdir(parents=True, exist_ok=bool(existing))
    if not existing:
        (d / "input.png").write_bytes(png_bytes(grey))
        if truth is not None:
            (d / "truth.png").write_bytes(png_bytes(truth))
    methods = dict(existing.get("methods", {})) if existing else {}
    for r in results:
        if r.image is not None:
            (d / f"{r.name}.png").write_bytes(png_bytes(r.image))
        if r.reference is not None:
            (d / f"{r.name}.reference.png").write_bytes(png_bytes(np.asarray(r.reference)))
        methods[r.name] = {"seconds": r.seconds, "device": r.device, "error": r.error, "metrics": r.metrics, "reference": r.reference_source,
                           "options": r.options, "extras": r.extras}  # fmt: skip
    now = dt.datetime.now().isoformat(timespec="seconds")
    meta = {
        "id": cid,
        "created": existing.get("created", now) if existing else now,
        "updated": now,
        "updated_ns": time.time_ns(),  # orders two comparisons saved within the same second
        "source": source[:200],
        "size": list(grey.shape[:2]),
        "has_truth": truth is not None,
        "options": options,
        "methods": methods,
        "workspace": workspace,
        "signature": sig,
    }
    _write_meta(d, meta)
    return cid


def list_comparisons(workspace: str | None = None) -> list[dict]:
    """Newest first. With ``workspace``: only that workspace's; with None: all (admin)."""
    root = comparisons_dir()
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if d.is_dir() and _ID_RE.match(d.name) and (d / "meta.json").exists():
            try:
                meta = json.loads((d / "meta.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if workspace is None or meta.get("workspace") == workspace:
                out.append(meta)
    return sorted(out, key=lambda m: (m.get("updated") or m.get("created") or "", m.get("updated_ns") or 0, m["id"]), reverse=True)


def comparison_meta(cid: str) -> dict:
    return json.loads((_check_id(cid) / "meta.json").read_text())


def comparison_images(cid: str) -> dict[str, np.ndarray]:
    """``input``, ``truth`` and one entry per method (and ``<method>.reference``) that has an image."""
    from backends.imageio import load_image

    d = _check_id(cid)
    return {p.name[: -len(".png")]: load_image(p, mode="rgb") for p in sorted(d.glob("*.png"))}


def delete_comparison(cid: str) -> bool:
    d = _check_id(cid)
    if d.is_dir():
        shutil.rmtree(d)
        return True
    return False


def prune(days: float | None = None) -> int:
    """Remove comparisons older than ``days`` (default: the retention setting); how many."""
    days = keep_days() if days is None else days
    root = comparisons_dir()
    if days <= 0 or not root.is_dir():
        return 0
    cutoff = time.time() - days * 86400
    gone = 0
    for d in root.iterdir():
        meta = d / "meta.json"
        if d.is_dir() and _ID_RE.match(d.name) and meta.exists() and meta.stat().st_mtime < cutoff:
            shutil.rmtree(d, ignore_errors=True)
            gone += 1
    return gone


def stored_results(cid: str) -> tuple[np.ndarray, np.ndarray | None, list[MethodResult], dict]:
    """A stored comparison back as (grey, truth, results, meta) - for re-opening it in Compare."""
    meta = comparison_meta(cid)
    images = comparison_images(cid)
    results = []
    for name, info in meta.get("methods", {}).items():
        r = MethodResult(name, images.get(name), info.get("seconds"), info.get("device"), info.get("error"), info.get("metrics") or {},
                         images.get(f"{name}.reference"), info.get("reference"), info.get("options") or {}, f"from History {cid}",
                         info.get("extras") or {})  # fmt: skip
        results.append(r)
    return images["input"], images.get("truth"), results, meta


# --- exports -------------------------------------------------------------------------------------


def comparison_zip(
    grey: np.ndarray, truth: np.ndarray | None, results: list[MethodResult], meta: dict, figure_png: bytes | None = None
) -> bytes:
    """Everything of one comparison in a zip: input, truth, each method's result, metrics, meta."""
    buf = io.BytesIO()
    keys = sorted({k for r in results for k in r.metrics})
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("input_grey.png", png_bytes(grey))
        if truth is not None:
            z.writestr("ground_truth.png", png_bytes(truth))
        rows = ["method,seconds,device,error," + ",".join(keys)]
        for r in results:
            if r.image is not None:
                z.writestr(f"{r.name}.png", png_bytes(r.image))
            if r.reference is not None:
                z.writestr(f"{r.name}_reference.png", png_bytes(np.asarray(r.reference)))
            err = (r.error or "").replace('"', "'")
            rows.append(
                f'{r.name},{"" if r.seconds is None else f"{r.seconds:.4f}"},{r.device or ""},"{err}",'
                + ",".join("" if k not in r.metrics else f"{r.metrics[k]:.6g}" for k in keys)
            )
        z.writestr("metrics.csv", "\n".join(rows) + "\n")
        if figure_png:
            z.writestr("figure.png", figure_png)
        z.writestr("meta.json", json.dumps(meta, indent=2, default=str))
    return buf.getvalue()


def figure_panels(grey: np.ndarray, truth: np.ndarray | None, results: list[MethodResult]) -> list[tuple[str, np.ndarray, str]]:
    panels = [("input (grey)", grey, "what every method sees")]
    for r in results:
        if r.image is not None:
            panels.append((r.name, r.image, caption_metrics(r.metrics) or (f"{r.seconds:.2f} s" if r.seconds else "")))
    if truth is not None:
        panels.append(("ground truth", truth, "the original colour photo"))
    return panels


def comparison_figure(
    grey: np.ndarray, truth: np.ndarray | None, results: list[MethodResult], title: str = "", fmt: str = "png"
) -> bytes:
    """The labelled side-by-side grid with per-image metrics, as PNG or PDF bytes."""
    from experiments import charts

    panels = figure_panels(grey, truth, results)
    fig = charts.image_grid(panels, title=title, per_row=min(4, len(panels)))
    return charts.to_bytes(fig, fmt, dpi=200 if fmt == "png" else 150)
