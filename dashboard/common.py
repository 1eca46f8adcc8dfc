"""What the dashboard pages share that is about Streamlit: the model cache, the method status
shown on Home, per-session workspaces, the admin check, widgets (the before/after slider, the
progress reporter) and page CSS.

The work itself lives in importable modules that the CLI and ``experiments.report`` use too:
``experiments.paths`` (where results are), ``experiments.comparisons`` (input preparation,
per-image metrics, the comparison store, exports), ``experiments.runlogs`` (training logs, sample
grids, model cards), ``experiments.tables`` (evaluation tables, paired tests) and
``experiments.charts`` (figures). Their names are re-exported here for the pages' convenience.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

import streamlit as st  # noqa: E402

import backends  # noqa: E402
from backends.errors import ColorizationError, ImageError  # noqa: E402, F401 - pages catch these
from backends.imageio import load_image  # noqa: E402, F401
from dashboard.options import MethodBlurbs, SlowMethods  # noqa: E402
from experiments import comparisons  # noqa: E402
from experiments.comparisons import (  # noqa: E402, F401 - re-exported for the pages
    IMAGE_TYPES,
    MAX_UPLOAD_MB,
    SAMPLE_PHOTOS,
    MethodResult,
    comparison_images,
    comparison_zip,
    folder_images,
    image_metrics,
    is_colour,
    list_comparisons,
    png_bytes,
    read_upload,
    save_comparison,
    to_grey,
)
from experiments.paths import checkpoints_dir, comparisons_dir, metrics_dir, results_dir, runs_dir, test_folder  # noqa: E402, F401
from experiments.runlogs import ema, list_runs, loss_columns, read_run_csv, run_is_live, run_method_name, sample_steps  # noqa: E402, F401
from experiments.tables import ci_columns, list_evaluations, metric_columns, metric_direction, metric_label  # noqa: E402, F401


def _classification_classes() -> int | None:
    """Q, the number of ab classes of the shipped gamut (read from the asset, no PyTorch)."""
    try:
        return int(np.load(PROJECT_ROOT / "backends" / "assets" / "ab_gamut.npz")["bins"].shape[0])
    except (OSError, KeyError, ValueError):
        return None


class _Blurbs(MethodBlurbs):
    """Each method's declared description; the classification one names its real class count Q
    (read from the shipped gamut asset, not a constant from the paper)."""

    def __getitem__(self, name: str) -> str:
        text = super().__getitem__(name)
        q = _classification_classes() if name == "classification" else None
        return text.replace("ab as classes", f"ab as {q} classes") if q else text


#: name -> one-line description, from each method's declaration (built-in or from outside)
METHOD_BLURB = _Blurbs()
#: methods that take long enough (tens of seconds on a CPU) to warn before starting them (declared speed "slow")
SLOW_METHODS = SlowMethods()


def keep_keras_session() -> None:
    """Stop Streamlit from clearing the Keras session after every script run.

    Streamlit's script runner calls ``keras.backend.clear_session()`` at the end of every rerun once
    Keras is imported (``_clean_problem_modules``), meant for apps that rebuild models per run.
    The regression model here is cached across reruns (``get_model``), so that only costs a full
    garbage collection of the server's heap - about 0.35 CPU-s on every click of every page, a
    quarter of a warm Compare click - and resets Keras' global state under the cached model.
    matplotlib figures are still closed as Streamlit does. A no-op if Streamlit changes the hook."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return
    original = getattr(script_runner, "_clean_problem_modules", None)
    if original is None or getattr(original, "_keeps_keras", False):
        return

    def clean_without_keras() -> None:
        if "matplotlib.pyplot" in sys.modules:
            try:
                sys.modules["matplotlib.pyplot"].close("all")
            except Exception:  # noqa: BLE001, S110 - as Streamlit: never fail a run over this
                pass

    clean_without_keras._keeps_keras = True
    clean_without_keras._streamlit_original = original
    script_runner._clean_problem_modules = clean_without_keras


def participant_mode() -> str | None:
    """Study id when the app runs for study participants only (``?study=ID`` or ``COLORIZE_STUDY``)."""
    try:
        qp = st.query_params.get("study")
    except Exception:  # noqa: BLE001 - outside a Streamlit run
        qp = None
    return qp or os.environ.get("COLORIZE_STUDY") or None


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    """``a`` read-only (a copy when it views another array): shared by every rerun and session,
    nobody may change it in place - and its digests are computed once (experiments.encoded)."""
    if a is not None:
        if a.base is not None:
            a = a.copy()
        a.flags.writeable = False
    return a


# cache_resource, not cache_data: the same read-only arrays on every rerun, where cache_data
# unpickled a fresh copy of each photo (and its grey input and truth) on every rerun of the page
@st.cache_resource(show_spinner=False, max_entries=32)
def sample_photo(key: str) -> np.ndarray:
    return _frozen(comparisons.sample_photo(key))


@st.cache_resource(show_spinner=False, max_entries=8)
def prepare_input(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey input, ground truth or None) of a photo, kept across reruns: choosing the photo makes
    them, so the Colorize click (and every later rerun of the page) does not convert it again."""
    grey, truth = comparisons.prepare_input(image)
    return _frozen(grey), _frozen(truth)


# --- workspace and admin ------------------------------------------------------------------------


def workspace() -> str:
    """This browser session's workspace: History shows only the comparisons it made. Kept in the
    URL (``?ws=``) so a reload keeps it; a new visitor gets a fresh random one."""
    ws = st.session_state.get("_workspace")
    if not comparisons.valid_workspace(ws):
        try:
            given = st.query_params.get("ws")
        except Exception:  # noqa: BLE001
            given = None
        ws = given if comparisons.valid_workspace(given) else comparisons.new_workspace()
        st.session_state["_workspace"] = ws
    try:
        if st.query_params.get("ws") != ws:
            st.query_params["ws"] = ws
    except Exception:  # noqa: BLE001 - outside a Streamlit run
        pass
    return ws


def is_admin() -> bool:
    """This session holds the admin token (``COLORIZE_STUDY_ADMIN_TOKEN``; the study pages' gate)."""
    from experiments.study import ui

    return ui.is_admin()


def admin_login(key: str) -> bool:
    from experiments.study import ui

    if ui.configured_token() is None:
        st.caption("Admin actions are off: no admin token configured (`COLORIZE_STUDY_ADMIN_TOKEN`).")
        return False
    return ui.admin_login(st, key=key)


# --- methods and the model cache ------------------------------------------------------------


@dataclass
class MethodStatus:
    name: str
    available: bool
    reason: str
    checkpoint: str | None = None
    loaded: bool = False
    device: str | None = None
    checked: bool = True


def checkpoint_for(name: str) -> Path | None:
    """A checkpoint for ``name`` in the configured results folder (``<name>.pt`` / ``.keras``)."""
    for ext in (".pt", ".keras"):
        p = checkpoints_dir() / f"{name}{ext}"
        if p.exists():
            return p
    return None


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


def quick_status(name: str) -> MethodStatus:
    """What the files say before any method module is imported (no PyTorch, no TensorFlow):
    the checkpoint in the results folder, or the shipped one. Replaced by :func:`static_status`
    as soon as the background check is done."""
    ckpt = checkpoint_for(name)
    if ckpt is None:
        for ext in (".pt", ".keras"):
            p = PROJECT_ROOT / "results" / "checkpoints" / f"{name}{ext}"
            if p.exists() and not os.environ.get("COLORIZE_RESULTS_DIR"):
                ckpt = p
    if ckpt is None:  # a second model of a method, registered as its checkpoint file
        entry = backends.registry.discover().get(name)
        if entry is not None and backends.registry.is_checkpoint_target(entry.target):
            p = backends.registry.checkpoint_path(entry.target)
            ckpt = p if p.is_file() else None
    reason = f"checkpoint {ckpt.name} found; checking that the method can run..." if ckpt else "checking..."
    return MethodStatus(name, bool(ckpt), reason, str(ckpt) if ckpt else None, checked=False)


def method_status(name: str) -> MethodStatus:
    s = static_status(name)
    key = (name, s.checkpoint)
    loaded = _loaded()
    s.loaded, s.device = key in loaded, loaded.get(key)
    return s


@st.cache_resource(show_spinner=False)
def _status_box(root: str) -> dict:
    return {"lock": threading.Lock(), "statuses": None, "time": 0.0, "thread": None}


def statuses_in_background(max_age: float = 30.0) -> list[MethodStatus] | None:
    """Every method's status, computed in a worker thread so a page never waits for the method
    modules' imports (PyTorch, TensorFlow); None until the first check has finished. Older than
    ``max_age`` seconds -> refreshed in the background (the last known answer is returned)."""
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
        MethodStatus(
            s.name, s.available, s.reason, s.checkpoint, (s.name, s.checkpoint) in loaded, loaded.get((s.name, s.checkpoint))
        )
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


def auto_reference(model, grey: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """The reference photo a reference-based method picks for ``grey`` (its own ``pick_reference``,
    on L at the method's working size - what it would pick inside ``colorize``)."""
    from backends import color
    from backends.base import resize_plane

    pick = getattr(model, "pick_reference", None)
    if pick is None:
        return None, None
    L = color.rgb_to_lab(grey)[..., 0]
    ref = pick(resize_plane(L, model.working_shape(*L.shape)))
    if isinstance(ref, dict):
        score = ref.get("score")
        rule = f" by {ref['rule']} similarity" if ref.get("rule") else ""  # semantic (SqueezeNet) or greyscale (fallback)
        src = f"picked automatically{rule}: {ref.get('name')}" + (
            f" (similarity {score:.3f})" if isinstance(score, float) else ""
        )
        return np.asarray(ref["rgb"], dtype=np.uint8), src
    return np.asarray(ref, dtype=np.uint8), "picked automatically"


_RUN_LOCKS: dict[int, threading.Lock] = {}


def _run_lock(model) -> threading.Lock:
    return _RUN_LOCKS.setdefault(id(model), threading.Lock())


def result_key(name: str, grey: np.ndarray, options: dict | None, reference: np.ndarray | None, device: str = "auto") -> tuple:
    ckpt = checkpoint_for(name)
    return (name, tuple(sorted((options or {}).items())), device, str(ckpt), ckpt.stat().st_mtime if ckpt else 0,
            comparisons.image_hash(grey), comparisons.image_hash(reference))  # fmt: skip


def colorize_one(name: str, grey: np.ndarray, options: dict | None = None, reference: np.ndarray | None = None, device: str = "auto",
                 progress=None) -> MethodResult:  # fmt: skip
    """Load (cached) and run one method; a user-facing failure becomes ``result.error``.

    A result computed before for the same method, options, checkpoint and photo (by any session)
    is reused and marked ``cached``. ``progress(done, total)`` is called by iterative methods
    (neural_style: per L-BFGS evaluation); a Streamlit rerun (the Stop button) raised from it
    stops the run."""
    res = MethodResult(name, options=dict(options or {}))
    key = result_key(name, grey, options, reference, device)
    hit = comparisons.RESULTS.get(key)
    if hit is not None:
        res.image, res.seconds, res.device, res.reference, res.reference_source, res.when, res.extras = hit
        res.cached = f"cached (computed {time.strftime('%H:%M:%S', time.localtime(res.when))}, took {res.seconds:.1f} s)"
        return res
    try:
        model = load_method(name, options, device)
        res.device = str(getattr(model, "device", device))
        if getattr(model, "uses_reference", False):
            if reference is None:
                reference, res.reference_source = auto_reference(model, grey)
            else:
                res.reference_source = "uploaded"
            res.reference = reference
        with _run_lock(model):
            had = hasattr(model, "progress")
            if had and progress is not None:
                model.progress = progress
            try:
                t0 = time.perf_counter()
                res.image = _frozen(model.colorize(grey, reference=reference))  # shared by sessions: read-only
                res.seconds = time.perf_counter() - t0
                if name == "fusion" and hasattr(model, "last_scene"):  # from that same pass (under the lock)
                    res.extras["scene"] = comparisons.readable_scene(model.last_scene()[0])
            finally:
                if had:
                    model.progress = None
        comparisons.RESULTS.put(
            key, (res.image, res.seconds, res.device, res.reference, res.reference_source, res.when, res.extras)
        )
    except ColorizationError as exc:
        res.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken method must not stop the others
        if type(exc).__module__.startswith("streamlit"):
            raise  # a rerun / stop request: let Streamlit handle it
        res.error = f"{name} failed: {type(exc).__name__}: {str(exc)[:300]}"
    return res


def fusion_scene(model, grey: np.ndarray, top: int = 3) -> list[tuple[str, float]]:
    return comparisons.fusion_scene(model, grey, top)


def fusion_global_transfer(grey: np.ndarray, style: np.ndarray):
    """Colour ``grey`` with the global features of ``style`` (the dashboard's cached fusion model)."""
    return comparisons.fusion_global_transfer(load_method("fusion"), grey, style)


def method_options(name: str, temperature: float | None) -> dict:
    return {"temperature": float(temperature)} if name == "classification" and temperature is not None else {}


# --- progress -----------------------------------------------------------------------------------


class Progress:
    """``st.progress`` with elapsed time and an ETA, for ``callback(done, total)`` style reporters."""

    def __init__(self, label: str, where=None, lazy: bool = False):
        """``lazy``: the bar appears at the first report (in the container current then), so a
        method that reports nothing (a feed-forward one, done in a fraction of a second) adds no
        element to the page."""
        self.label, self.t0 = label, time.perf_counter()
        self.bar = None if lazy else (where or st).progress(0.0, text=f"{label}: starting")
        self.where = where

    def _show(self, frac: float, text: str) -> None:
        if self.bar is None:
            self.bar = (self.where or st).progress(frac, text=text)
        else:
            self.bar.progress(frac, text=text)

    def __call__(self, done: float, total: float, note: str = "") -> None:
        frac = min(max(done / total if total else 0.0, 0.0), 1.0)
        el = time.perf_counter() - self.t0
        eta = f", about {el / frac - el:.0f} s left" if 0.02 < frac < 1 else ""
        self._show(frac, f"{self.label}: {done:g}/{total:g}{note} - {el:.0f} s{eta}")

    def done(self, text: str) -> None:
        self._show(1.0, text)


# --- evaluations from the page ------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def run_evaluation(name: str, data: str | Path, methods: list[str], limit: int | None = None, size: int = 256,
                   model_metrics: bool = False, progress=None, use_cache: bool = True, replace: bool = False,
                   keep_aspect: bool = False) -> dict[str, Path]:  # fmt: skip
    """Run ``experiments.evaluate.evaluate`` on the dashboard's (cached) models and write
    ``metrics/<name>.*`` like the CLI. ``progress(fraction, text)`` is called as photos are done:
    with the evaluation's per-photo cache, each method runs in slices of its photo sample (the
    cached rows make the final full call cheap); without it, one call per method. ``keep_aspect``:
    each photo at its own shape, as ``--keep-aspect``."""
    from experiments import evaluate

    if not _NAME_RE.match(name or ""):
        raise ValueError(f"evaluation name {name!r}: use letters, digits, '-', '_' or '.' (at most 40)")
    from experiments import access

    data = access.check_data_folder(data)  # only under the configured data roots
    access.check_evaluation_name(metrics_dir(), name, replace)  # never replaces a table unasked
    photos = evaluate.scan_photos(data, limit or None)
    progress = progress or (lambda f, text: None)
    models: dict[str, object] = {}
    for m in methods:
        try:
            progress(0.0, f"loading {m}")
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
                              use_cache=use_cache, progress=False, keep_aspect=keep_aspect)  # fmt: skip
            done, prev = done + k - prev, k
    progress(0.99, "summary and confidence intervals")
    res = evaluate.evaluate(data, models, size=size, limit=limit or None, model_metrics=mm, use_cache=use_cache, progress=False,
                            keep_aspect=keep_aspect)  # fmt: skip
    paths = evaluate.write_outputs(res, metrics_dir() / f"{name}.csv")
    progress(1.0, "done")
    return paths


def eval_photo(meta: dict, image: str) -> Path | None:
    """The photo of a per-image row (``image`` is relative to the evaluation's ``data`` folder)."""
    from experiments import access

    root = Path(meta.get("data", ""))
    p = (root / image).resolve()
    allowed = any(p.is_relative_to(r) for r in access.data_roots())  # a table naming /etc shows nothing
    if meta.get("data") and allowed and p.is_relative_to(root.resolve()) and p.is_file():
        return p
    return None


def gallery_image(meta: dict, image: str, method: str, progress=None) -> np.ndarray | None:
    """What ``method`` makes of an evaluated photo, as the evaluation saw it (squashed to its size, or
    at its own shape for a ``--keep-aspect`` evaluation; grey first); the truth and grey rows show
    the photo itself. Cached per photo and model."""
    from experiments import evaluate

    truth = gallery_truth(meta, image)
    if truth is None:
        return None
    if method == "truth":
        return truth
    grey = evaluate.gray_of(truth)
    if method == "gray":
        return grey
    if method in meta.get("predictions", {}):  # colorizations made elsewhere: the file itself
        from experiments.predictions import PredictionFolder

        pf = PredictionFolder(method, meta["predictions"][method])
        return pf.read(image, truth.shape[:2]) if pf.file_for(image) else None
    return colorize_one(method, grey, progress=progress).image


def gallery_truth(meta: dict, image: str) -> np.ndarray | None:
    """An evaluated photo as the evaluation saw it (its truth: squashed, or at its own shape)."""
    from experiments import evaluate

    p = eval_photo(meta, image)
    return None if p is None else evaluate.load_truth(p, int(meta.get("size", 256)), evaluate.keeps_aspect(meta))


# --- widgets ----------------------------------------------------------------------------------


def image_src(rgb: np.ndarray, coordinates: str) -> str:
    """Where a page's HTML (the slider's iframe) loads ``rgb`` from: the app's own media endpoint,
    the very PNG bytes an ``st.image`` of it is served as - a result already shown on the page
    comes from the browser's cache, and no image travels inside the page's messages (base64 in
    the HTML was 1.3x the PNG, sent and parsed again on every rerun). Without a Streamlit server
    (AppTest, a script) a ``data:`` URI. ``coordinates``: a name for this use, unique on the page."""
    data = png_bytes(rgb)
    try:
        from streamlit import runtime

        if runtime.exists():
            url = runtime.get_instance().media_file_mgr.add(data, "image/png", coordinates)
            base = str(st.get_option("server.baseUrlPath") or "").strip("/")
            return f"/{base}{url}" if base else url
    except Exception:  # noqa: BLE001 - no script context (a thread of its own): inline the image
        pass
    return "data:image/png;base64," + base64.b64encode(data).decode()


def slider_html(
    left: np.ndarray, right: np.ndarray, left_label: str, right_label: str, max_height: int = 480, key: str = "ba"
) -> str:
    """A self-contained before/after slider (no external scripts: works offline): ``left`` shows
    left of the split, ``right`` right of it; drag on the image or use the range control. The
    images come from the app's own media endpoint (:func:`image_src`)."""
    k = re.sub(r"[^A-Za-z0-9_]", "_", key)
    src_l, src_r = image_src(left, f"slider-{k}-left"), image_src(right, f"slider-{k}-right")
    esc = lambda s: str(s).replace("&", "&amp;").replace("<", "&lt;")  # noqa: E731
    return f"""
<div style="font-family:sans-serif;text-align:center">
 <div id="box_{k}" style="position:relative;display:inline-block;max-width:100%;line-height:0;cursor:ew-resize;touch-action:none;user-select:none">
  <img src="{src_r}" style="max-width:100%;max-height:{max_height}px;display:block" alt="{esc(right_label)}" draggable="false">
  <img id="top_{k}" src="{src_l}" alt="{esc(left_label)}" draggable="false"
       style="position:absolute;top:0;left:0;width:100%;height:100%;clip-path:inset(0 50% 0 0)">
  <div id="bar_{k}" style="position:absolute;top:0;bottom:0;left:50%;width:2px;background:#fff;box-shadow:0 0 3px #000"></div>
  <span style="position:absolute;top:4px;left:6px;background:rgba(0,0,0,.55);color:#fff;font-size:12px;line-height:1.3;padding:1px 5px">{esc(left_label)}</span>
  <span style="position:absolute;top:4px;right:6px;background:rgba(0,0,0,.55);color:#fff;font-size:12px;line-height:1.3;padding:1px 5px">{esc(right_label)}</span>
 </div>
 <input id="rng_{k}" type="range" min="0" max="100" value="50" aria-label="split between {esc(left_label)} and {esc(right_label)}"
        style="width:100%;max-width:600px;display:block;margin:6px auto">
 <div style="font-size:12px;color:#888">left: {esc(left_label)} &nbsp;|&nbsp; right: {esc(right_label)} - drag on the photo or the slider</div>
</div>
<script>
 (function() {{
  const box = document.getElementById("box_{k}"), r = document.getElementById("rng_{k}");
  function set(v) {{
    v = Math.max(0, Math.min(100, v));
    document.getElementById("top_{k}").style.clipPath = "inset(0 " + (100 - v) + "% 0 0)";
    document.getElementById("bar_{k}").style.left = v + "%";
    r.value = v;
  }}
  r.addEventListener("input", () => set(Number(r.value)));
  let down = false;
  function at(e) {{ const b = box.getBoundingClientRect(); set(100 * (e.clientX - b.left) / b.width); }}
  box.addEventListener("pointerdown", e => {{ down = true; box.setPointerCapture(e.pointerId); at(e); }});
  box.addEventListener("pointermove", e => {{ if (down) at(e); }});
  box.addEventListener("pointerup", () => {{ down = false; }});
 }})();
</script>"""


def before_after_html(before: np.ndarray, after: np.ndarray, max_height: int = 480, key: str = "ba") -> str:
    return slider_html(before, after, "grey input", "colorized", max_height, key)


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
        if not s.checked:
            state = "checking..."
        else:
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


def report_button(key: str) -> None:
    """Build the reviewers' report (``experiments.report``) with progress, then offer its HTML and PDF."""
    import tempfile

    from experiments import report

    if st.button("Build the report", key=f"{key}_report_build", icon=":material/description:"):
        steps = ["model cards", "evaluation", "sample grid", "training", "user studies", "writing HTML", "writing PDF", "done"]
        bar = st.progress(0.0, text="report: starting")
        seen = [0]

        def tick(text: str) -> None:
            seen[0] += 1
            frac = min(0.99, seen[0] / (len(steps) + 4 * len(list_evaluations()) + 6))
            bar.progress(frac, text=f"report: {text}")

        with tempfile.TemporaryDirectory() as tmp:
            try:
                paths = report.build(tmp, progress=tick)
            except Exception as exc:  # noqa: BLE001 - shown on the page, never a crash
                bar.empty()
                st.error(f"The report could not be built: {type(exc).__name__}: {exc}")
                return
            st.session_state["_report"] = {"html": paths["html"].read_bytes(), "pdf": paths["pdf"].read_bytes(),
                                           "when": time.strftime("%Y-%m-%d %H:%M")}  # fmt: skip
        bar.progress(1.0, text="report: done")
    built = st.session_state.get("_report")
    if built:
        c1, c2 = st.columns(2)
        c1.download_button("Report (HTML)", built["html"], f"report-{built['when'][:10]}.html", "text/html", key=f"{key}_report_html",
                           icon=":material/download:")  # fmt: skip
        c2.download_button("Report (PDF)", built["pdf"], f"report-{built['when'][:10]}.pdf", "application/pdf", key=f"{key}_report_pdf",
                           icon=":material/download:")  # fmt: skip
        st.caption(f"Built {built['when']}.")
