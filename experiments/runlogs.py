"""Reading what training wrote: run logs, validation logs, sample grids and model cards.

Used by the dashboard's Training page, ``experiments.report`` and anything else that wants the
runs of ``results/runs/<run>/`` (``config.toml``, ``log.csv``, ``val.csv``, ``samples/step_*.png``)
and the provenance of ``results/checkpoints/<method>.json``. No Streamlit here.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tomllib

from experiments.paths import checkpoints_dir, runs_dir

#: Columns of a loss log that index a row rather than measure a loss.
LOG_INDEX = ("run", "method", "step", "epoch", "wall_s", "images_seen")
#: x-axis choices: column -> axis title (with unit)
X_AXES = {"images_seen": "images seen (training photos)", "step": "optimizer steps", "wall_h": "wall time (hours)"}
#: GAN discriminator outputs (mean probability it gives real / generated photos)
D_OUTPUTS = ("d_real", "d_fake")
#: What each logged quantity measures (the y-axis title).
LOSS_UNITS = {
    "loss": "total loss (method's own units)",
    "loss_cls": "cross-entropy (nats)",
    "loss_mse": "MSE of normalised ab",
    "loss_l2": "MSE of normalised ab",
    "loss_l1": "L1 of ab, weighted (lambda_l1)",
    "loss_g": "generator GAN loss (nats)",
    "loss_d": "discriminator loss (nats)",
    "d_real": "D(real) (probability)",
    "d_fake": "D(fake) (probability)",
    "val_ab_rmse": "ab RMSE (CIELAB units)",
    "val_chroma_ratio": "chroma / truth chroma",
    "val_auc_rebal": "AuC rebalanced (0-1)",
}


# --- runs -------------------------------------------------------------------------------------


def list_runs() -> list[str]:
    root = runs_dir()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if d.is_dir() and (d / "log.csv").exists())


def continued_from_run(meta: dict) -> tuple[str, int | None]:
    """``(run, images_seen)`` of the run a checkpoint went on from (``--init-from``), or ``("", None)``."""
    cont = meta.get("continued_from") if isinstance(meta, dict) else None
    if not isinstance(cont, dict) or not cont.get("run"):
        return "", None
    n = cont.get("images_seen")
    return Path(str(cont["run"])).name, int(n) if isinstance(n, (int, float)) else None


def ancestry(meta: dict) -> list[tuple[str, int | None]]:
    """The runs a checkpoint went on from (``--init-from``), nearest first, each with the images it
    had seen then - followed through each run's ``resume.json`` while the run is in ``results/runs``."""
    out: list[tuple[str, int | None]] = []
    seen: set[str] = set()
    parent, upto = continued_from_run(meta)
    while parent and parent not in seen:
        seen.add(parent)
        out.append((parent, upto))
        try:
            parent, upto = continued_from_run(json.loads((runs_dir() / parent / "resume.json").read_text()))
        except (OSError, ValueError):
            break
    return out


def _shipped_chain() -> dict[str, tuple[str, int | None]]:
    """Run -> ``(label, images)``: the runs the shipped models came from, named for the model, and
    the runs those continued from (``--init-from``), up the chain, named for the part of the model
    they trained ("koalarization (its first 300,000 images)") with the images seen up to which they
    did (None: the whole run is the shipped model's)."""
    out: dict[str, tuple[str, int | None]] = {}
    root = checkpoints_dir()
    for p in sorted(root.glob("*.json")) if root.is_dir() else []:
        try:
            meta = json.loads(p.read_text())
            src = meta.get("shipped_from")
        except (OSError, ValueError, AttributeError):
            continue
        run = Path(str(src)).name if src else ""
        if not (run and (runs_dir() / run / "log.csv").exists()):
            continue
        out.setdefault(run, (p.stem, None))
        for parent, upto in ancestry(meta):
            if parent == run or not (runs_dir() / parent / "log.csv").exists():
                break
            out.setdefault(parent, (f"{p.stem} (its first {upto:,} images)" if upto else f"{p.stem} (its start)", upto))
    return out


def shipped_runs() -> dict[str, str]:
    """Run -> the shipped model that came from it (``shipped_from`` in ``checkpoints/<model>.json``),
    for runs still in ``results/runs/``; a shipped run that continued from another (``--init-from``)
    brings that run too, named for the part of the model it trained ("koalarization (its first
    300,000 images)"), and so on up the chain, so the shipped model's learning curve is whole."""
    return shipped_lineage()[0]


def shipped_lineage() -> tuple[dict[str, str], dict[str, int]]:
    """:func:`shipped_runs` and, from the same reading of the cards, run -> the images seen up to
    which it trained a shipped model, for the runs a shipped one continued from: past that point
    their curves are another model's (the charts draw it dotted)."""
    chain = _shipped_chain()
    return {run: label for run, (label, _) in chain.items()}, {run: upto for run, (_, upto) in chain.items() if upto}


def default_runs(runs: list[str] | None = None, shipped: dict[str, str] | None = None) -> list[str]:
    """What the Training page shows first: the runs the shipped models came from (``shipped``, as
    :func:`shipped_runs` gives them) and any run training now (experiments and older runs stay a
    click away); every run when none shipped."""
    runs = list_runs() if runs is None else runs
    shipped = shipped_runs() if shipped is None else shipped
    pick = [r for r in runs if r in shipped or run_is_live(r)]
    return pick or list(runs)


def val_references(runs: list[str]) -> dict[str, float]:
    """Run -> grey's rebalanced AuC on the run's own fixed validation photos (``val_reference.json``,
    written when the run starts), for the runs that have one."""
    out = {}
    for r in runs:
        try:
            v = json.loads((runs_dir() / r / "val_reference.json").read_text())["grey"]["val_auc_rebal"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(v, (int, float)):
            out[r] = float(v)
    return out


def run_config(run: str) -> dict:
    p = runs_dir() / run / "config.toml"
    try:
        return tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def run_method_name(run: str) -> str:
    """The method a run trains (``method`` in its config.toml; the run name otherwise)."""
    return str(run_config(run).get("method", run))


def read_run_csv(run: str, name: str = "log.csv") -> pd.DataFrame:
    """A run's log (or val.csv) as a DataFrame with ``run`` and ``method`` columns; empty if missing.

    Tolerates a half-written last line (the run may be writing it right now). Adds ``wall_h``."""
    p = runs_dir() / run / name
    if not p.exists() or p.stat().st_size == 0:
        return pd.DataFrame()
    try:
        df = pd.read_csv(p, on_bad_lines="skip")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
        return pd.DataFrame()
    df = df.apply(pd.to_numeric, errors="coerce")
    if "step" in df:
        df = df.dropna(subset=["step"]).sort_values("step", kind="stable").reset_index(drop=True)
    if "wall_s" in df:
        df["wall_h"] = df["wall_s"] / 3600.0
    df.insert(0, "method", run_method_name(run))
    df.insert(0, "run", run)
    return df


def loss_columns(df: pd.DataFrame) -> list[str]:
    """Every numeric column of a loss log that is not an index column."""
    return [
        c for c in df.columns if c not in (*LOG_INDEX, "wall_h") and pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any()
    ]


def ema(values, weight: float) -> pd.Series:
    """Exponential moving average (TensorBoard-style smoothing; 0 = raw), ignoring NaNs."""
    s = pd.Series(values, dtype="float64")
    if weight <= 0:
        return s
    return s.ewm(alpha=1.0 - weight, ignore_na=True).mean()


def run_is_live(run: str, seconds: float = 120.0) -> bool:
    """True when the run's log was written in the last ``seconds``, or in the last three of its own
    logging intervals when it logs more slowly (a 2-core machine writes a row every two minutes or
    so, and a checkpoint's validation pauses the log for minutes): it is probably still training."""
    p = runs_dir() / run / "log.csv"
    try:
        age = time.time() - p.stat().st_mtime
    except OSError:
        return False
    return age < seconds or age < 3 * log_interval(p)


def log_interval(path: Path, rows: int = 8) -> float:
    """The median wall-clock seconds between the last ``rows`` rows of a loss log (its ``wall_s``
    column; only the file's head and tail are read), 0 when it cannot tell."""
    try:
        with open(path, "rb") as f:
            header = f.readline().decode("utf-8", "replace").strip().split(",")
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode("utf-8", "replace").splitlines()[1:]  # the first may be cut
    except OSError:
        return 0.0
    if "wall_s" not in header:
        return 0.0
    col = header.index("wall_s")
    walls = []
    for line in tail[-rows:]:
        cells = line.split(",")
        try:
            walls.append(float(cells[col]))
        except (IndexError, ValueError):
            continue
    gaps = np.diff(walls)
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if gaps.size else 0.0


def with_images_seen(val: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """``val`` with an ``images_seen`` column: its own when the run wrote one, else interpolated
    from the loss log's step -> images seen (both logs come from the same run)."""
    if val.empty or ("images_seen" in val and val["images_seen"].notna().all()):
        return val
    if log.empty or "images_seen" not in log or "step" not in val:
        return val
    known = log.dropna(subset=["step", "images_seen"])
    if known.empty:
        return val
    val = val.copy()
    guess = np.interp(val["step"], known["step"], known["images_seen"], left=np.nan, right=np.nan)
    per_step = float((known["images_seen"] / known["step"]).median())
    guess = np.where(np.isnan(guess), val["step"] * per_step, guess)
    val["images_seen"] = val["images_seen"].fillna(pd.Series(guess, index=val.index)) if "images_seen" in val else guess
    return val


def validation_curves(runs: list[str] | None = None, metric: str = "val_auc_rebal") -> tuple[pd.DataFrame, str, list[str]]:
    """The validation learning curves of every run, for one plot: ``(frame, metric, runs left out)``.

    ``frame`` has ``run``, ``method``, ``step``, ``images_seen`` and the metric. Runs whose
    ``val.csv`` lacks ``metric`` are left out (named in the third item); when NO run has it the
    curves fall back to ``val_ab_rmse``, which every run logs."""
    runs = list_runs() if runs is None else runs
    frames = {r: with_images_seen(read_run_csv(r, "val.csv"), read_run_csv(r)) for r in runs}
    frames = {r: f for r, f in frames.items() if not f.empty}
    have = [r for r, f in frames.items() if metric in f and f[metric].notna().any()]
    if not have and metric != "val_ab_rmse":
        return validation_curves(list(frames), "val_ab_rmse")
    out = [frames[r].dropna(subset=[metric]) for r in have]
    cols = [c for c in ("run", "method", "step", "images_seen", "wall_h", metric) if out and c in out[0]]
    frame = pd.concat([f[[c for c in cols if c in f]] for f in out], ignore_index=True) if out else pd.DataFrame(columns=cols)
    return frame, metric, [r for r in frames if r not in have]


# --- sample grids -----------------------------------------------------------------------------


def sample_steps(run: str) -> dict[int, Path]:
    """Step -> sample grid (``samples/step_XXXXXXX.png``) of a run."""
    out = {}
    for p in sorted((runs_dir() / run / "samples").glob("step_*.png")):
        try:
            out[int(p.stem.split("_", 1)[1])] = p
        except ValueError:
            continue
    return out


SAMPLE_ROWS = ("grey input", "prediction", "ground truth")


def labelled_sample_grid(path: Path | str, title: str = "") -> np.ndarray:
    """A run's sample grid (rows: grey input, prediction, ground truth; one column per validation
    photo) with its rows and columns labelled and an optional title, as RGB uint8."""
    from PIL import Image, ImageDraw

    im = Image.open(path).convert("RGB")
    w, h = im.size
    tile = h // len(SAMPLE_ROWS) if h % len(SAMPLE_ROWS) == 0 else h
    cols = max(1, w // tile) if tile else 1
    font = _font(max(11, tile // 9))
    left, top = max(90, tile // 2 + 40), (28 if not title else 52)
    out = Image.new("RGB", (w + left, h + top), "white")
    out.paste(im, (left, top))
    d = ImageDraw.Draw(out)
    if title:
        d.text((6, 4), title, fill="black", font=_font(max(13, tile // 8)))
    for j in range(cols):
        d.text((left + j * tile + 4, top - 20), f"val {j + 1}", fill="black", font=font)
    if tile != h:
        for i, name in enumerate(SAMPLE_ROWS):
            y = top + i * tile + tile // 2 - 8
            for k, word in enumerate(name.split(" ")):
                d.text((6, y + k * 16 - 8), word, fill="black", font=font)
    return np.asarray(out)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


# --- model cards ----------------------------------------------------------------------------


def provenance(method: str) -> dict:
    """``checkpoints/<method>.json`` (empty when missing or unreadable)."""
    p = checkpoints_dir() / f"{method}.json"
    try:
        return json.loads(p.read_text()) if p.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def model_card(method: str) -> dict:
    """The card of one shipped model (:func:`experiments.modelcard.make_card`, from
    ``checkpoints/<method>.json`` and the evaluation summaries of this results folder: variant, data,
    images seen, crop schedule, wall time, hardware, val and test numbers), plus the date it was
    saved; empty when the method has no provenance file (neural_style: no training; released or
    outside weights)."""
    from experiments import modelcard
    from experiments.paths import metrics_dir

    prov = provenance(method)
    if not prov:
        return {}
    return {**modelcard.make_card(method, prov, metrics_dir()), "saved_at": prov.get("saved_at", "")}


def model_card_rows(methods: list[str]) -> list[dict]:
    """One row per method of its model card as the README, the report and the Home page show it:
    variant, data, images seen, crop schedule, wall time, hardware, commit and date, and the val and
    test rebalanced AuC with intervals and gain over grey. A method without a card (neural_style, a
    released or outside model) gets its row with what it is instead of a variant."""
    from experiments.modelcard import auc_cell

    rows = []
    for m in methods:
        c = model_card(m)
        untrained = "no training: VGG19 features, reference photo" if m == "neural_style" else "no model card in results/checkpoints (released or outside weights)"
        rows.append({
            "method": m,
            "variant": c.get("variant") or untrained,
            "data": " + ".join(map(str, c.get("data") or [])) or "-",
            "images seen": f"{c['images_seen']:,}" if isinstance(c.get("images_seen"), (int, float)) else "-",
            "crops": "; ".join(c.get("crops") or []) or "-",
            "wall (h)": f"{c['wall_hours']:.2f}" if c else "-",
            "hardware": c.get("hardware") or "-",
            "commit / saved": f"{c.get('commit') or ''} {c.get('saved_at', '')[:10]}".strip() or "-",
            "val AuC rebal. (vs grey)": auc_cell(c.get("val")) if c else "-",
            "test AuC rebal. (vs grey)": auc_cell(c.get("test")) if c else "-",
        })  # fmt: skip
    return rows
