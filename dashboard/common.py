"""What every dashboard page shares: paths, the model cache, the comparison flow and its storage.

Pages stay thin: they lay out widgets and call these functions, which call the same library
functions as the CLI (``backends.load`` / ``Colorizer.colorize``, ``experiments.metrics``,
``experiments.evaluate``). Nothing here depends on a page; the plain functions (no ``st.``) are
usable and tested without Streamlit.

Results root: ``COLORIZE_RESULTS_DIR`` (default ``results/``) holds ``checkpoints/``, ``runs/``,
``metrics/`` and ``comparisons/``. A checkpoint found there is used instead of the shipped one,
so tests and users can point the dashboard at another set of models.

Comparisons are stored as ``comparisons/<id>/`` - ``input.png`` (the grey input the methods saw),
``truth.png`` (when the photo was in colour), ``<method>.png`` and ``meta.json``. The id is
generated (time + random hex); nothing a user uploads ever chooses a path.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import re
import secrets
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

import streamlit as st  # noqa: E402

import backends  # noqa: E402
from backends import color  # noqa: E402
from backends.errors import ColorizationError, ImageError  # noqa: E402
from backends.imageio import is_image_file, load_image  # noqa: E402

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

METHOD_BLURB = {
    "regression": "CNN regressing ab directly (L2) - the baseline of the source reports (Keras)",
    "classification": "Zhang, Isola & Efros 2016: ab as 313 classes, class rebalancing, annealed mean",
    "fusion": "Iizuka et al. 2016: local + global features fused, with a scene-classification head",
    "gan": "pix2pix (Isola et al. 2017): U-Net generator with a 70x70 PatchGAN",
    "neural_style": "Gatys et al. style transfer: colour from a reference photo (optimisation)",
}


# --- paths ----------------------------------------------------------------------------------


def results_dir() -> Path:
    env = os.environ.get("COLORIZE_RESULTS_DIR")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / "results"


def checkpoints_dir() -> Path:
    return results_dir() / "checkpoints"


def runs_dir() -> Path:
    return results_dir() / "runs"


def metrics_dir() -> Path:
    return results_dir() / "metrics"


def comparisons_dir() -> Path:
    return results_dir() / "comparisons"


def test_folder() -> Path | None:
    """The photo folder offered on Compare (``COLORIZE_TEST_DIR``, else ../shared/data/test)."""
    env = os.environ.get("COLORIZE_TEST_DIR")
    p = Path(env).expanduser() if env else PROJECT_ROOT.parent / "shared" / "data" / "test"
    return p if p.is_dir() else None


def participant_mode() -> str | None:
    """Study id when the app runs for study participants only (``?study=ID`` or ``COLORIZE_STUDY``)."""
    try:
        qp = st.query_params.get("study")
    except Exception:  # noqa: BLE001 - outside a Streamlit run
        qp = None
    return qp or os.environ.get("COLORIZE_STUDY") or None


# --- images ---------------------------------------------------------------------------------


@st.cache_data(show_spinner=False)
def sample_photo(key: str) -> np.ndarray:
    import skimage.data

    if key == "motorcycle_left":
        return np.asarray(load_image(Path(skimage.data.data_dir) / "motorcycle_left.png", mode="rgb"))
    return np.ascontiguousarray(getattr(skimage.data, key)()[..., :3])


def folder_images(folder: Path, limit: int = 500) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if is_image_file(p))[:limit]


def read_upload(data: bytes, name: str) -> np.ndarray:
    """Bytes of an upload -> uint8 grey or RGB; :class:`ImageError` with a one-line reason otherwise."""
    name = Path(name or "upload").name
    if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
        raise ImageError(name, f"file too large ({len(data) / 2**20:.1f} MB; limit {MAX_UPLOAD_MB} MB)")
    return load_image(data, name=name)


def is_colour(image: np.ndarray, threshold: float = 2.0) -> bool:
    """True when the photo has real colour (mean CIELAB chroma above ``threshold``)."""
    if image.ndim == 2:
        return False
    lab = color.rgb_to_lab(image[..., :3])
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


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def thumbnail(rgb: np.ndarray, size: int = 256) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(rgb)
    im.thumbnail((size, size))
    return np.asarray(im)


# --- methods and the model cache ------------------------------------------------------------


@dataclass
class MethodStatus:
    name: str
    available: bool
    reason: str
    checkpoint: str | None = None
    loaded: bool = False
    device: str | None = None


def checkpoint_for(name: str) -> Path | None:
    """A checkpoint for ``name`` in the configured results folder (``<name>.pt`` / ``.keras``)."""
    for ext in (".pt", ".keras"):
        p = checkpoints_dir() / f"{name}{ext}"
        if p.exists():
            return p
    return None


def provenance(name: str) -> dict:
    p = checkpoints_dir() / f"{name}.json"
    try:
        return json.loads(p.read_text()) if p.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}


@st.cache_resource(show_spinner=False)
def _loaded() -> dict[tuple[str, str | None], str]:
    """Process-wide record of loaded models: (name, checkpoint) -> device (for the home page).
    Keyed by checkpoint too, so a model loaded from one results folder is not reported as
    loaded for another (where it may have no checkpoint at all)."""
    return {}


def static_status(name: str) -> MethodStatus:
    """``backends.status`` (imports the method's module, not its model), with the configured
    results folder's checkpoint taken into account. No Streamlit calls: safe in a worker thread."""
    ckpt = checkpoint_for(name)
    st_ = backends.status(name)
    if ckpt is not None and not st_.available and "checkpoint" in st_.reason:
        st_ = backends.Status(name, True, f"checkpoint {ckpt.name}", str(ckpt))
    elif ckpt is not None and st_.available:
        st_.checkpoint = str(ckpt)
    return MethodStatus(name, st_.available, st_.reason, st_.checkpoint)


def method_status(name: str) -> MethodStatus:
    s = static_status(name)
    key = (name, s.checkpoint)
    loaded = _loaded()
    s.loaded, s.device = key in loaded, loaded.get(key)
    return s


@st.cache_resource(show_spinner=False)
def _status_box(root: str) -> dict:
    import threading

    return {"lock": threading.Lock(), "statuses": None, "time": 0.0, "thread": None}


def statuses_in_background(max_age: float = 30.0) -> list[MethodStatus] | None:
    """Every method's status, computed in a worker thread so a page never waits for the method
    modules' imports (PyTorch, TensorFlow); None until the first check has finished. Older than
    ``max_age`` seconds -> refreshed in the background (the last known answer is returned)."""
    import threading

    box = _status_box(str(results_dir()))
    with box["lock"]:
        stale = box["statuses"] is None or time.time() - box["time"] > max_age
        busy = box["thread"] is not None and box["thread"].is_alive()
        if stale and not busy:

            def work():
                found = [static_status(n) for n in backends.names()]
                with box["lock"]:
                    box["statuses"], box["time"] = found, time.time()

            box["thread"] = threading.Thread(target=work, name="method-status", daemon=True)
            box["thread"].start()
        found = box["statuses"]
    if found is None:
        return None
    loaded = _loaded()
    return [
        MethodStatus(s.name, s.available, s.reason, s.checkpoint, (s.name, s.checkpoint) in loaded, loaded.get((s.name, s.checkpoint)))
        for s in found
    ]


def torch_before_tensorflow() -> None:
    """Import PyTorch (with torch._dynamo) before TensorFlow can be: the other order aborts the
    process (both bundle LLVM: "Option 'bitcode-mdindex-threshold' registered more than once")."""
    if "tensorflow" in sys.modules:
        return
    try:
        import torch  # noqa: F401
        import torch._dynamo  # noqa: F401
    except ImportError:
        pass


@st.cache_resource(show_spinner=False, max_entries=16)
def get_model(name: str, options: tuple = (), device: str = "auto", checkpoint: str | None = None, _stamp: float = 0.0):
    """``backends.load`` once per (method, options, device, checkpoint file version), shared by all sessions."""
    torch_before_tensorflow()
    model = backends.load(name, device=device, checkpoint=checkpoint, **dict(options))
    _loaded()[(name, checkpoint)] = getattr(model, "device", device)
    return model


def load_method(name: str, options: dict | None = None, device: str = "auto"):
    ckpt = checkpoint_for(name)
    stamp = ckpt.stat().st_mtime if ckpt else 0.0
    return get_model(name, tuple(sorted((options or {}).items())), device, str(ckpt) if ckpt else None, stamp)


@st.cache_data(show_spinner=False, max_entries=64)
def _colorize_cached(_model, name: str, options: tuple, image: np.ndarray, reference: np.ndarray | None) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = _model.colorize(image, reference=reference)
    return out, time.perf_counter() - t0


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


def auto_reference(model, grey: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """The reference photo a reference-based method picks for ``grey`` (its own ``pick_reference``,
    on L at the method's working size - what it would pick inside ``colorize``)."""
    from backends.base import resize_plane

    pick = getattr(model, "pick_reference", None)
    if pick is None:
        return None, None
    L = color.rgb_to_lab(grey)[..., 0]
    ref = pick(resize_plane(L, model.working_shape(*L.shape)))
    if isinstance(ref, dict):
        score = ref.get("score")
        rule = f" by {ref['rule']} similarity" if ref.get("rule") else ""  # semantic (SqueezeNet) or greyscale (fallback)
        src = f"picked automatically{rule}: {ref.get('name')}" + (f" (similarity {score:.3f})" if isinstance(score, float) else "")
        return np.asarray(ref["rgb"], dtype=np.uint8), src
    return np.asarray(ref, dtype=np.uint8), "picked automatically"


def colorize_one(name: str, grey: np.ndarray, options: dict | None = None, reference: np.ndarray | None = None, device: str = "auto") -> MethodResult:
    """Load (cached) and run one method; a user-facing failure becomes ``result.error``."""
    res = MethodResult(name)
    try:
        model = load_method(name, options, device)
        res.device = str(getattr(model, "device", device))
        if getattr(model, "uses_reference", False):
            if reference is None:
                reference, res.reference_source = auto_reference(model, grey)
            else:
                res.reference_source = "uploaded"
            res.reference = reference
        ckpt = checkpoint_for(name)
        # the model object is not hashed: the key names it (method, options, device, checkpoint version)
        key = tuple(sorted((options or {}).items())) + (("device", res.device), ("checkpoint", str(ckpt), ckpt.stat().st_mtime if ckpt else 0))
        res.image, res.seconds = _colorize_cached(model, name, key, grey, reference)
    except ColorizationError as exc:
        res.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken method must not stop the others
        res.error = f"{name} failed: {type(exc).__name__}: {str(exc)[:300]}"
    return res


def method_options(name: str, temperature: float | None) -> dict:
    return {"temperature": float(temperature)} if name == "classification" and temperature is not None else {}


# --- metrics ----------------------------------------------------------------------------------


def image_metrics(pred: np.ndarray, truth: np.ndarray | None) -> dict[str, float]:
    """The evaluation's per-image metrics (``experiments.metrics.pixel_metrics``, as in
    ``experiments.evaluate``) of one prediction; only colourfulness when there is no ground truth."""
    import torch

    from experiments import metrics as M

    def tensor(a):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64).permute(2, 0, 1)[None]

    x = tensor(pred)
    if truth is None:
        return {"colorfulness": float(M.colorfulness(x, data_range=255.0)[0])}
    return {k: float(v[0]) for k, v in M.pixel_metrics(x, tensor(truth), data_range=255.0).items()}


# --- comparisons on disk ----------------------------------------------------------------------


def new_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


_ID_RE = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")


def save_comparison(grey: np.ndarray, truth: np.ndarray | None, results: list[MethodResult], source: str, options: dict) -> str:
    cid = new_id()
    d = comparisons_dir() / cid
    d.mkdir(parents=True, exist_ok=False)
    (d / "input.png").write_bytes(png_bytes(grey))
    if truth is not None:
        (d / "truth.png").write_bytes(png_bytes(truth))
    methods = {}
    for r in results:
        if r.image is not None:
            (d / f"{r.name}.png").write_bytes(png_bytes(r.image))
        if r.reference is not None:
            (d / f"{r.name}.reference.png").write_bytes(png_bytes(np.asarray(r.reference)))
        methods[r.name] = {"seconds": r.seconds, "device": r.device, "error": r.error, "metrics": r.metrics, "reference": r.reference_source}
    meta = {
        "id": cid,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "source": source[:200],
        "size": list(grey.shape[:2]),
        "has_truth": truth is not None,
        "options": options,
        "methods": methods,
    }
    (d / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    return cid


def list_comparisons() -> list[dict]:
    root = comparisons_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir(), reverse=True):
        if d.is_dir() and _ID_RE.match(d.name) and (d / "meta.json").exists():
            try:
                out.append(json.loads((d / "meta.json").read_text()))
            except (OSError, json.JSONDecodeError):
                continue
    return out


def comparison_images(cid: str) -> dict[str, np.ndarray]:
    """``input``, ``truth`` and one entry per method that produced an image."""
    if not _ID_RE.match(cid):
        raise ValueError(f"not a comparison id: {cid!r}")
    d = comparisons_dir() / cid
    return {p.stem: load_image(p, mode="rgb") for p in sorted(d.glob("*.png"))}


def comparison_zip(grey: np.ndarray, truth: np.ndarray | None, results: list[MethodResult], meta: dict) -> bytes:
    """Everything of one comparison in a zip: input, truth, each method's result, metrics, meta."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("input_grey.png", png_bytes(grey))
        if truth is not None:
            z.writestr("ground_truth.png", png_bytes(truth))
        rows = ["method,seconds,device,error," + ",".join(sorted({k for r in results for k in r.metrics}))]
        keys = sorted({k for r in results for k in r.metrics})
        for r in results:
            if r.image is not None:
                z.writestr(f"{r.name}.png", png_bytes(r.image))
            if r.reference is not None:
                z.writestr(f"{r.name}_reference.png", png_bytes(np.asarray(r.reference)))
            err = (r.error or "").replace('"', "'")
            rows.append(
                f"{r.name},{'' if r.seconds is None else f'{r.seconds:.4f}'},{r.device or ''},\"{err}\","
                + ",".join("" if k not in r.metrics else f"{r.metrics[k]:.6g}" for k in keys)
            )
        z.writestr("metrics.csv", "\n".join(rows) + "\n")
        z.writestr("meta.json", json.dumps(meta, indent=2, default=str))
    return buf.getvalue()


# --- small widgets --------------------------------------------------------------------------


def before_after_html(before: np.ndarray, after: np.ndarray, max_height: int = 480, key: str = "ba") -> str:
    """A self-contained before/after slider (no external scripts: works offline)."""
    b64b = base64.b64encode(png_bytes(before)).decode()
    b64a = base64.b64encode(png_bytes(after)).decode()
    k = re.sub(r"[^A-Za-z0-9_]", "_", key)
    return f"""
<div style="font-family:sans-serif;text-align:center">
 <div id="box_{k}" style="position:relative;display:inline-block;max-width:100%;line-height:0">
  <img src="data:image/png;base64,{b64a}" style="max-width:100%;max-height:{max_height}px;display:block" alt="after">
  <img id="top_{k}" src="data:image/png;base64,{b64b}" alt="before"
       style="position:absolute;top:0;left:0;width:100%;height:100%;clip-path:inset(0 50% 0 0)">
  <div id="bar_{k}" style="position:absolute;top:0;bottom:0;left:50%;width:2px;background:#fff;box-shadow:0 0 3px #000"></div>
 </div>
 <input id="rng_{k}" type="range" min="0" max="100" value="50" aria-label="before/after"
        style="width:100%;max-width:600px;display:block;margin:6px auto">
 <div style="font-size:12px;color:#888">left: grey input &nbsp;|&nbsp; right: colorized</div>
</div>
<script>
 const r_{k} = document.getElementById("rng_{k}");
 r_{k}.addEventListener("input", () => {{
   document.getElementById("top_{k}").style.clipPath = "inset(0 " + (100 - r_{k}.value) + "% 0 0)";
   document.getElementById("bar_{k}").style.left = r_{k}.value + "%";
 }});
</script>"""


MOBILE_CSS = """
<style>
@media (max-width: 640px) {
  .block-container { padding-left: 0.6rem !important; padding-right: 0.6rem !important; padding-top: 2.5rem !important; }
  h1 { font-size: 1.6rem !important; }
}
</style>"""


def page_setup() -> None:
    """CSS that keeps pages usable on a phone-sized screen."""
    st.html(MOBILE_CSS)


def status_rows(statuses: list[MethodStatus] | None = None) -> list[dict]:
    rows = []
    for s in statuses if statuses is not None else [method_status(n) for n in backends.names()]:
        state = f"loaded on {s.device}" if s.loaded else ("ready (loads on first use)" if s.available else "unavailable")
        rows.append(
            {
                "method": s.name,
                "status": state,
                "checkpoint": Path(s.checkpoint).name if s.checkpoint else "",
                "details": s.reason,
                "what": METHOD_BLURB.get(s.name, ""),
            }
        )
    return rows




# --- training runs ----------------------------------------------------------------------------


def list_runs() -> list[str]:
    root = runs_dir()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if d.is_dir() and (d / "log.csv").exists())


def run_method_name(run: str) -> str:
    """The method a run trains (``method`` in its config.toml; the run name otherwise)."""
    import tomllib

    p = runs_dir() / run / "config.toml"
    try:
        return str(tomllib.loads(p.read_text()).get("method", run))
    except (OSError, tomllib.TOMLDecodeError):
        return run


def read_run_csv(run: str, name: str = "log.csv"):
    """A run's log (or val.csv) as a DataFrame with ``run`` and ``method`` columns; empty if missing.

    Tolerates a half-written last line (the run may be writing it right now)."""
    import pandas as pd

    p = runs_dir() / run / name
    if not p.exists() or p.stat().st_size == 0:
        return pd.DataFrame()
    try:
        df = pd.read_csv(p, on_bad_lines="skip")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
        return pd.DataFrame()
    df = df.apply(pd.to_numeric, errors="coerce").dropna(subset=["step"]) if "step" in df else df
    df.insert(0, "method", run_method_name(run))
    df.insert(0, "run", run)
    return df


LOG_INDEX = ("run", "method", "step", "epoch", "wall_s", "images_seen")


def loss_columns(df) -> list[str]:
    """Every numeric column of a loss log that is not an index column."""
    import pandas as pd

    return [c for c in df.columns if c not in LOG_INDEX and pd.api.types.is_numeric_dtype(df[c])]


def ema(values, weight: float):
    """Exponential moving average (TensorBoard-style smoothing; 0 = raw), ignoring NaNs."""
    import pandas as pd

    s = pd.Series(values, dtype="float64")
    if weight <= 0:
        return s
    return s.ewm(alpha=1.0 - weight, ignore_na=True).mean()


def sample_steps(run: str) -> dict[int, Path]:
    """Step -> sample grid (``samples/step_XXXXXXX.png``) of a run."""
    out = {}
    for p in sorted((runs_dir() / run / "samples").glob("step_*.png")):
        try:
            out[int(p.stem.split("_", 1)[1])] = p
        except ValueError:
            continue
    return out


def run_is_live(run: str, seconds: float = 120.0) -> bool:
    """True when the run's log was written in the last ``seconds`` (it is probably still training)."""
    p = runs_dir() / run / "log.csv"
    return p.exists() and (time.time() - p.stat().st_mtime) < seconds


# --- evaluation tables (experiments.evaluate) ------------------------------------------------------


def list_evaluations() -> list[str]:
    root = metrics_dir()
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.csv") if not p.name.endswith(".summary.csv"))


def read_evaluation(name: str) -> dict:
    """``experiments.evaluate.load_results``: per_image, summary (or None), meta, markdown."""
    from experiments import evaluate

    return evaluate.load_results(metrics_dir() / f"{name}.csv")


def metric_columns(df) -> list[str]:
    """Metric columns of an evaluation table (its CI columns ``<m>_lo`` / ``<m>_hi`` excluded)."""
    import pandas as pd

    cols = [c for c in df.columns if c not in ("method", "image", "label", "status", "n") and pd.api.types.is_numeric_dtype(df[c])]
    return [c for c in cols if not ((c.endswith("_lo") or c.endswith("_hi")) and c[:-3] in cols)]


def ci_columns(summary, metric: str) -> tuple[str, str] | None:
    lo, hi = f"{metric}_lo", f"{metric}_hi"
    return (lo, hi) if lo in summary and hi in summary else None


def metric_direction(metric: str) -> int:
    """+1 higher is better, -1 lower is better, 0 neither (``experiments.metrics.METRIC_INFO``)."""
    from experiments import metrics as M

    return M.METRIC_INFO.get(metric, (metric, 0))[1]


def metric_label(metric: str) -> str:
    from experiments import metrics as M

    return M.METRIC_INFO.get(metric, (metric, 0))[0]


def eval_photo(meta: dict, image: str) -> Path | None:
    """The photo of a per-image row (``image`` is relative to the evaluation's ``data`` folder)."""
    root = Path(meta.get("data", ""))
    p = (root / image).resolve()
    if meta.get("data") and p.is_relative_to(root.resolve()) and p.is_file():
        return p
    return None


def gallery_image(meta: dict, image: str, method: str) -> np.ndarray | None:
    """What ``method`` makes of an evaluated photo, as the evaluation saw it (squashed to its size,
    grey first); the truth and grey rows show the photo itself. Cached per photo and model."""
    from experiments import evaluate

    p = eval_photo(meta, image)
    if p is None:
        return None
    truth = evaluate.load_truth(p, int(meta.get("size", 256)))
    if method == "truth":
        return truth
    grey = evaluate.gray_of(truth)
    if method == "gray":
        return grey
    res = colorize_one(method, grey)
    return res.image


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def run_evaluation(name: str, data: str | Path, methods: list[str], limit: int | None = None, size: int = 256,
                   model_metrics: bool = False, progress=None, use_cache: bool = True) -> dict[str, Path]:  # fmt: skip
    """Run ``experiments.evaluate.evaluate`` on the dashboard's (cached) models and write
    ``metrics/<name>.*`` like the CLI. ``progress(fraction, text)`` is called as photos are done:
    with the evaluation's per-photo cache, each method runs in slices of its photo sample (the
    cached rows make the final full call cheap); without it, one call per method."""
    from experiments import evaluate

    if not _NAME_RE.match(name or ""):
        raise ValueError(f"evaluation name {name!r}: use letters, digits, '-', '_' or '.' (at most 40)")
    data = Path(data).expanduser()
    if not data.is_dir():
        raise ValueError(f"{data}: not a folder of photos")
    photos = evaluate.scan_photos(data, limit or None)
    progress = progress or (lambda f, text: None)
    models: dict[str, object] = {}
    for m in methods:
        try:
            models[m] = load_method(m)
        except ColorizationError as exc:
            progress(0.0, f"skipping {m}: {exc}")
    if not models:
        raise ColorizationError("none of the chosen methods can run here (see the home page for why)")
    progress(0.0, "loading the metrics")
    mm = evaluate.ModelMetrics.load(backends.resolve_device("auto"), size, None, enabled=model_metrics)
    n = len(photos)
    step = max(1, n // 5) if use_cache else n
    done, total = 0, n * len(models)
    for m, model in models.items():
        prev = 0
        for k in [*range(step, n, step), n]:
            progress(done / total, f"{m}: photos {prev + 1}-{k} of {n}")
            evaluate.evaluate(data, {m: model}, size=size, limit=limit or None, method_limits={m: k}, model_metrics=mm,
                              use_cache=use_cache, progress=False)  # fmt: skip
            done, prev = done + k - prev, k
    progress(0.99, "summary and confidence intervals")
    res = evaluate.evaluate(data, models, size=size, limit=limit or None, model_metrics=mm, use_cache=use_cache, progress=False)
    paths = evaluate.write_outputs(res, metrics_dir() / f"{name}.csv")
    progress(1.0, "done")
    return paths


def bar_chart_png(summary, metric: str, title: str = "") -> bytes:
    """A PNG bar chart of one metric per method with its confidence interval (matplotlib, offline)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = summary["method"].astype(str).tolist()
    means = summary[metric].to_numpy(dtype=float)
    ci = ci_columns(summary, metric)
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(methods) + 1.5), 3.2), dpi=150)
    if ci:
        lo, hi = summary[ci[0]].to_numpy(dtype=float), summary[ci[1]].to_numpy(dtype=float)
        ax.bar(methods, means, yerr=[means - lo, hi - means], capsize=4, color="#4c78a8")
    else:
        ax.bar(methods, means, color="#4c78a8")
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
