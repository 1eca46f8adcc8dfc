"""Charts of evaluations, training runs and studies - matplotlib (report, PNG/PDF exports) and
Plotly (the dashboard's interactive versions) drawn from the same data preparation.

Every chart titles its axes with units, zooms to the data (dot-and-whisker, never bars from 0:
0.795 against 0.817 must look different) and marks the grey / truth reference rows. Figures are
made with ``matplotlib.figure.Figure`` (no pyplot state: safe in Streamlit's threads).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from experiments import runlogs, tables

REF_COLOUR = "#9aa0a6"
COLOURS = {"regression": "#4c78a8", "classification": "#f58518", "fusion": "#54a24b", "koalarization": "#72b7b2", "gan": "#e45756",
           "neural_style": "#b279a2",
           "gray": REF_COLOUR, "truth": "#444444"}  # fmt: skip
_CYCLE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#b279a2", "#72b7b2", "#eeca3b", "#ff9da6", "#9d755d"]


def colour(name: str, i: int = 0) -> str:
    return COLOURS.get(name, _CYCLE[i % len(_CYCLE)])


def figure(width: float = 6.4, height: float = 3.2):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=120, layout="constrained")


def to_bytes(fig, fmt: str = "png", dpi: int = 150) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()


# --- dot and whisker (evaluation) ------------------------------------------------------------------


def whisker_data(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """method, mean, lo, hi, reference? - one row per method that has the metric, table order."""
    ci = tables.ci_columns(summary, metric)
    rows = summary.dropna(subset=[metric])
    out = pd.DataFrame({"method": rows["method"].astype(str).to_numpy(), "mean": rows[metric].to_numpy(float)})
    out["lo"] = rows[ci[0]].to_numpy(float) if ci else out["mean"]
    out["hi"] = rows[ci[1]].to_numpy(float) if ci else out["mean"]
    out["reference"] = out["method"].isin(tables.REFERENCE_ROWS)
    return out


def zoomed_range(lo, hi, pad: float = 0.08) -> tuple[float, float]:
    lo, hi = float(np.nanmin(lo)), float(np.nanmax(hi))
    span = hi - lo or max(abs(hi), 1.0) * 0.1
    return lo - pad * span, hi + pad * span


def dot_whisker(summary: pd.DataFrame, metric: str, title: str = "", drop_truth: bool = True):
    """Mean and 95% interval per method (horizontal), the grey baseline as a dashed line, the axis
    zoomed to the data. ``truth`` is left out by default (it sits at the ceiling and squashes the rest)."""
    d = whisker_data(summary, metric)
    if drop_truth:
        d = d[d["method"] != "truth"]
    fig = figure(6.4, 0.45 * len(d) + 1.3)
    ax = fig.add_subplot()
    y = np.arange(len(d))[::-1]
    for yi, r in zip(y, d.itertuples()):
        c = colour(r.method)
        ax.plot([r.lo, r.hi], [yi, yi], color=c, lw=2.2, solid_capstyle="butt")
        ax.plot([r.mean], [yi], "o", color=c, ms=7, mec="white" if not r.reference else c, mfc=c)
    grey = d.loc[d["method"] == "gray", "mean"]
    if len(grey):
        ax.axvline(float(grey.iloc[0]), color=REF_COLOUR, ls="--", lw=1, label="grey (ab = 0)")
    best = tables.best_methods(summary, metric)
    ax.set_yticks(y, [f"{m} ★" if m in best else m for m in d["method"]])
    ax.set_xlim(*zoomed_range(d["lo"], d["hi"]))
    ax.set_xlabel(tables.axis_title(metric))
    ax.set_title(title or tables.metric_label(metric), loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def dot_whisker_plotly(summary: pd.DataFrame, metric: str, title: str = "", drop_truth: bool = True):
    import plotly.graph_objects as go

    d = whisker_data(summary, metric)
    if drop_truth:
        d = d[d["method"] != "truth"]
    best = tables.best_methods(summary, metric)
    labels = [f"{m} ★" if m in best else m for m in d["method"]]
    fig = go.Figure(
        go.Scatter(
            x=d["mean"],
            y=labels,
            mode="markers",
            marker=dict(size=11, color=[colour(m) for m in d["method"]]),
            error_x=dict(
                type="data", symmetric=False, array=d["hi"] - d["mean"], arrayminus=d["mean"] - d["lo"], thickness=2.5, width=0
            ),
            hovertemplate="%{y}: %{x:.4f}<extra></extra>",
        )  # fmt: skip
    )
    grey = d.loc[d["method"] == "gray", "mean"]
    if len(grey):
        fig.add_vline(
            x=float(grey.iloc[0]), line_dash="dash", line_color=REF_COLOUR, annotation_text="grey", annotation_position="top"
        )
    fig.update_layout(
        title=title or tables.metric_label(metric), height=70 + 42 * len(d), margin=dict(l=10, r=10, t=40, b=10), showlegend=False
    )
    fig.update_xaxes(title=tables.axis_title(metric), range=list(zoomed_range(d["lo"], d["hi"])), zeroline=False)
    fig.update_yaxes(autorange="reversed")
    return fig


def pairs_chart(pairs: pd.DataFrame, metric: str, title: str = ""):
    """Paired differences (a - b) with their intervals; filled dots are significant after Holm."""
    fig = figure(6.4, 0.32 * len(pairs) + 1.3)
    ax = fig.add_subplot()
    y = np.arange(len(pairs))[::-1]
    for yi, r in zip(y, pairs.itertuples()):
        c = "#e45756" if r.significant else "#4c78a8"
        ax.plot([r.lo, r.hi], [yi, yi], color=c, lw=2)
        ax.plot([r.diff], [yi], "o", color=c, mfc=c if r.significant else "white", ms=6)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{r.a} - {r.b}" for r in pairs.itertuples()], fontsize=8)
    unit = tables.metric_unit(metric)
    ax.set_xlabel(
        f"mean per-photo difference in {tables.metric_label(metric)}"
        + (f" ({unit})" if unit and unit not in tables.metric_label(metric) else "")
    )
    ax.set_title(title or f"Paired differences, {tables.metric_label(metric)} (filled: Holm p < 0.05)", loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def by_label_heatmap(table: pd.DataFrame, title: str = ""):
    """:func:`experiments.tables.by_label` as a subject x method heat map: each cell's difference
    from grey (diverging around 0: blue better, red worse, in the metric's direction; the colour
    bar reads the shade, the cells their signed difference), written in the cell ("not run" where the
    method scored none of the label's photos); None when empty."""
    if table.empty:
        return None
    methods, metric = table.attrs["methods"], table.attrs["metric"]
    vals = table[methods].to_numpy(float)
    shade, lim = tables.by_label_shade(table)  # blue: better than grey in the metric's direction
    fig = figure(1.1 * len(methods) + 2.4, 0.3 * len(table) + 1.4)
    ax = fig.add_subplot()
    if table.attrs["relative"]:
        im = ax.imshow(shade, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    else:
        im = ax.imshow(vals, cmap="viridis", aspect="auto")
    d = tables.digits(metric)
    lo, hi = im.get_clim()
    for (i, j), v in np.ndenumerate(vals):
        if np.isfinite(v):
            c = shade[i, j] if table.attrs["relative"] else v
            dark = abs(2 * (c - lo) / ((hi - lo) or 1) - 1) > 0.6  # the colour map's dark ends: white text
            ax.text(j, i, f"{v:+.{d}f}" if table.attrs["relative"] else f"{v:.{d}f}", ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")  # fmt: skip
        else:
            ax.text(j, i, "not run", ha="center", va="center", fontsize=6, color="0.5")
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(table)), [f"{lab} ({n})" for lab, n in zip(table["label"], table["n"])], fontsize=8)
    what = tables.by_label_what(table)
    flipped = table.attrs["relative"] and tables.metric_direction(metric) < 0
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02).set_label(
        f"{tables.metric_label(metric)}, {what}" + (" (sign flipped: lower is better)" if flipped else ""), fontsize=8
    )
    ax.set_title(title or f"{tables.metric_label(metric)} by subject (photos), hardest first", loc="left", fontsize=10)
    return fig


# --- training ------------------------------------------------------------------------------------------


def needs_log(frame: pd.DataFrame, columns: list[str], ratio: float = 20.0) -> bool:
    """True when the columns' typical sizes differ by more than ``ratio`` (one linear axis would
    flatten the small ones) and every value is positive."""
    vals = [frame[c].dropna() for c in columns if c in frame]
    vals = [v for v in vals if len(v)]
    if len(vals) < 2 or any((v <= 0).any() for v in vals):
        return False
    med = [float(v.median()) for v in vals]
    return max(med) / max(min(med), 1e-12) > ratio


def loss_panels(logs: dict[str, pd.DataFrame]) -> list[dict]:
    """One panel per run: the run's loss columns (D(real)/D(fake) in a panel of their own)."""
    panels = []
    for run, df in logs.items():
        if df.empty:
            continue
        cols = [c for c in runlogs.loss_columns(df) if c not in runlogs.D_OUTPUTS]
        method = str(df["method"].iloc[0])
        if cols:
            panels.append({"run": run, "method": method, "columns": cols, "log": needs_log(df, cols), "title": f"{run} ({method}): training loss",
                           "ylabel": "loss (log scale)" if needs_log(df, cols) else "loss"})  # fmt: skip
        d = [c for c in runlogs.D_OUTPUTS if c in df and df[c].notna().any()]
        if d:
            panels.append({"run": run, "method": method, "columns": d, "log": False, "title": f"{run} ({method}): discriminator outputs",
                           "ylabel": "D output (probability it is real)"})  # fmt: skip
    return panels


def _thousands(ax) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"))


def learning_curves(logs: dict[str, pd.DataFrame], x: str = "images_seen", smooth: float = 0.6, ncols: int = 2):
    """The loss panels of :func:`loss_panels` as one matplotlib figure."""
    panels = loss_panels(logs)
    if not panels:
        return None
    rows = -(-len(panels) // ncols)
    fig = figure(6.4 if ncols == 1 else 9.6, 2.6 * rows)
    axes = fig.subplots(rows, ncols, squeeze=False).ravel()
    for ax, p in zip(axes, panels):
        df = logs[p["run"]]
        xs = df[x] if x in df else df["step"]
        for i, c in enumerate(p["columns"]):
            ax.plot(xs, runlogs.ema(df[c].to_numpy(), smooth), lw=1.3, label=c, color=_CYCLE[i % len(_CYCLE)])
        if p["log"]:
            ax.set_yscale("log")
        if "d_real" in p["columns"]:
            ax.axhline(0.5, color=REF_COLOUR, ls="--", lw=0.8)
        ax.set_title(p["title"], fontsize=9, loc="left")
        ax.set_xlabel(runlogs.X_AXES.get(x if x in df else "step"), fontsize=8)
        _thousands(ax)
        ax.set_ylabel(p["ylabel"], fontsize=8)
        ax.legend(fontsize=7, framealpha=0.85)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return fig


def log_ticks(values) -> tuple[list[float], list[str]]:
    """Ticks for a log axis over ``values``: 1, 2 and 5 times each power of ten inside their range,
    each labelled in full ("0.005", not Plotly's bare "5" between decades)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return [], []
    lo, hi = float(v.min()), float(v.max())
    ticks = [m * 10.0**e for e in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1) for m in (1, 2, 5)]
    inside = [t for t in ticks if lo / 1.05 <= t <= hi * 1.05]
    if len(inside) < 2:  # a narrow range: the neighbours on either side too
        below = [t for t in ticks if t < lo][-1:]
        above = [t for t in ticks if t > hi][:1]
        inside = below + inside + above
    return inside, [f"{t:.6g}" for t in inside]


def learning_curves_plotly(
    logs: dict[str, pd.DataFrame], x: str = "images_seen", smooth: float = 0.6, log_override: bool | None = None
) -> list:
    """Plotly version: one figure per run and loss scale, each with its own legend below it (so a
    panel stays readable on a phone); ``[]`` when there is nothing to draw."""
    import plotly.graph_objects as go

    figs = []
    for p in loss_panels(logs):
        df = logs[p["run"]]
        xs = df[x] if x in df else df["step"]
        fig = go.Figure()
        drawn = []
        for i, c in enumerate(p["columns"]):
            ys = runlogs.ema(df[c].to_numpy(), smooth)
            drawn.append(np.asarray(ys, dtype=float))
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=c, line=dict(color=_CYCLE[i % len(_CYCLE)])))
        use_log = p["log"] if log_override is None else (log_override and "d_real" not in p["columns"])
        if use_log and drawn:
            tickvals, ticktext = log_ticks(np.concatenate(drawn))
            if tickvals:
                fig.update_yaxes(tickvals=tickvals, ticktext=ticktext)
        if "d_real" in p["columns"]:
            fig.add_hline(y=0.5, line_dash="dash", line_color=REF_COLOUR)
        fig.update_layout(title=p["title"], height=320, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3))
        fig.update_yaxes(
            title_text=p["ylabel"].replace(" (log scale)", "") + (" (log)" if use_log else ""),
            type="log" if use_log else "linear",
        )
        fig.update_xaxes(title_text=runlogs.X_AXES.get(x if x in df else "step"))
        figs.append(fig)
    return figs


DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
_MPL_DASHES = {"solid": "-", "dash": "--", "dot": ":", "dashdot": "-.", "longdash": (0, (8, 3)), "longdashdot": (0, (8, 3, 2, 3))}


def validation_styles(frame: pd.DataFrame, shipped: dict[str, str] | None = None) -> dict[str, dict]:
    """Run -> ``{"name", "colour", "dash"}``: one colour per method; within a method the run a shipped
    model came from (and any run it continued from) is solid and named so, the method's other runs
    dashed, dotted, ..."""
    shipped = shipped or {}
    out, seen = {}, {}
    runs = list(dict.fromkeys(frame["run"]))
    order = sorted(runs, key=lambda r: (r not in shipped, runs.index(r)))
    for i, run in enumerate(order):
        method = str(frame.loc[frame["run"] == run, "method"].iloc[0])
        if run in shipped:  # the shipped model's run, and the runs it continued from: one solid line
            dash = "solid"
        else:
            seen[method] = seen.get(method, 0) + 1
            dash = DASHES[seen[method] % len(DASHES)]
        base = f"{run} ({method})"
        out[run] = {"name": base + (f" - shipped as {shipped[run]}" if run in shipped else ""), "base": base, "colour": colour(method, i), "dash": dash}
    return out


def run_segments(frame: pd.DataFrame, x: str, until: dict[str, int] | None = None):
    """Each run's points to draw, as ``(run, xs, rows, past)``: a run a shipped model continued from
    (``until``: run -> images seen, :func:`experiments.runlogs.shipped_lineage`) in two parts on the
    images-seen axis - up to where the shipped model left it, then (``past``, joined at the last
    point of the first) what the run went on to train, which is another model's."""
    for run, g in frame.groupby("run", sort=False):
        xs = g[x] if x in g and g[x].notna().all() else g["step"]
        upto = (until or {}).get(run)
        inside = xs <= upto if upto is not None and x == "images_seen" else None
        if inside is None or inside.all() or not inside.any():
            yield run, xs, g, False
            continue
        yield run, xs[inside], g[inside], False
        tail = xs >= xs[inside].max()
        yield run, xs[tail], g[tail], True


def past_name(style: dict, upto: int) -> str:
    """The legend name of a run's part after the shipped model left it (``style``: :func:`validation_styles`')."""
    return f"{style['base']} after {upto:,} images (not the shipped model)"


def reference_lines(references: dict[str, float] | None, runs: list[str]) -> list[tuple[float, str]]:
    """Grey's score on the runs' validation photos: one line per distinct value, named for its runs."""
    by_value: dict[float, list[str]] = {}
    for r in runs:
        if references and r in references:
            by_value.setdefault(round(references[r], 4), []).append(r)
    if len(by_value) == 1:
        (v,) = by_value
        return [(v, f"grey (ab = 0) on the same photos: {v:.3f}")]
    return [(v, f"grey (ab = 0) on the photos of {', '.join(rs)}: {v:.3f}") for v, rs in sorted(by_value.items())]


def validation_curves(frame: pd.DataFrame, metric: str, x: str = "images_seen", shipped: dict[str, str] | None = None,
                      references: dict[str, float] | None = None, which: str = "every run", until: dict[str, int] | None = None):  # fmt: skip
    """The validation learning curves of all methods in one matplotlib chart (``which``: what the
    title says the runs are; ``until``: :func:`run_segments`)."""
    if frame.empty:
        return None
    styles = validation_styles(frame, shipped)
    refs = reference_lines(references, list(styles))
    labels = [st["name"] for st in styles.values()] + [label for _, label in refs] + [past_name(styles[r], n) for r, n in (until or {}).items() if r in styles]
    ncol = 2 if max(map(len, labels)) <= 52 else 1
    # the legend goes under the axes (over them it hid the curves): the figure grows with it
    fig = figure(6.4, 3.2 + 0.17 * -(-len(labels) // ncol))
    ax = fig.add_subplot()
    for run, xs, g, past in run_segments(frame, x, until):
        st = styles[run]
        if past:
            ax.plot(xs, g[metric], "o", ls=":", ms=2, lw=1.0, color=st["colour"], alpha=0.5, label=past_name(st, until[run]))
        else:
            ax.plot(xs, g[metric], "o", ls=_MPL_DASHES[st["dash"]], ms=3, lw=1.4, color=st["colour"], label=st["name"])
    if metric == "val_auc_rebal":
        for v, label in refs:
            ax.axhline(v, color=REF_COLOUR, lw=1.2, ls=":", label=label)
    ax.set_xlabel(runlogs.X_AXES.get(x, x))
    _thousands(ax)
    ax.set_ylabel(runlogs.LOSS_UNITS.get(metric, metric))
    ax.set_title(f"Validation: {runlogs.LOSS_UNITS.get(metric, metric)} of {which}", loc="left", fontsize=10)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=ncol, fontsize=7, frameon=False)
    ax.grid(alpha=0.3)
    return fig


def validation_by_method(frame: pd.DataFrame, metric: str, x: str = "images_seen", shipped: dict[str, str] | None = None,
                         references: dict[str, float] | None = None, ncols: int = 2):  # fmt: skip
    """Every run of each method in a panel of its own (the shipped model's runs solid in the method's
    colour, each of the method's experiments in a colour of its own, dashed) on a shared y axis: what
    each experiment bought against the shipped run, method by method."""
    if frame.empty:
        return None
    shipped = shipped or {}
    methods = list(dict.fromkeys(frame["method"].astype(str)))
    rows = -(-len(methods) // ncols)
    fig = figure(9.6, 2.9 * rows)
    axes = fig.subplots(rows, ncols, squeeze=False, sharey=True).ravel()
    for ax, method in zip(axes, methods):
        sub = frame[frame["method"].astype(str) == method]
        others = iter([c for c in _CYCLE if c != colour(method)] * 3)
        for run, g in sub.groupby("run", sort=False):
            xs = g[x] if x in g and g[x].notna().all() else g["step"]
            if run in shipped:
                ax.plot(xs, g[metric], "o", ls="-", ms=2.5, lw=1.6, color=colour(method), label=f"{run} (shipped)", zorder=3)
            else:
                ax.plot(xs, g[metric], "o", ls="--", ms=2, lw=1.0, color=next(others), label=run, alpha=0.9)
        if metric == "val_auc_rebal":
            for v, _ in reference_lines(references, list(dict.fromkeys(sub["run"]))):
                ax.axhline(v, color=REF_COLOUR, lw=1.0, ls=":")
        ax.set_title(method, fontsize=9, loc="left")
        ax.set_xlabel(runlogs.X_AXES.get(x, x), fontsize=8)
        _thousands(ax)
        ax.set_ylabel(runlogs.LOSS_UNITS.get(metric, metric), fontsize=8)
        ax.legend(fontsize=6.5, frameon=False, loc="lower right")
        ax.grid(alpha=0.3)
    for ax in axes[len(methods) :]:
        ax.set_visible(False)
    return fig


def validation_curves_plotly(frame: pd.DataFrame, metric: str, x: str = "images_seen", shipped: dict[str, str] | None = None,
                             references: dict[str, float] | None = None, until: dict[str, int] | None = None):  # fmt: skip
    import plotly.graph_objects as go

    fig = go.Figure()
    styles = validation_styles(frame, shipped)
    for run, xs, g, past in run_segments(frame, x, until):
        st = styles[run]
        if past:
            fig.add_trace(go.Scatter(x=xs, y=g[metric], mode="lines+markers", name=past_name(st, until[run]), opacity=0.5,
                                     line=dict(color=st["colour"], dash="dot"), marker=dict(size=4)))  # fmt: skip
        else:
            fig.add_trace(go.Scatter(x=xs, y=g[metric], mode="lines+markers", name=st["name"],
                                     line=dict(color=st["colour"], dash=st["dash"])))  # fmt: skip
    if metric == "val_auc_rebal":
        for v, label in reference_lines(references, list(styles)):
            fig.add_hline(y=v, line=dict(color=REF_COLOUR, dash="dot", width=1.5), annotation_text=label, annotation_position="bottom right")
    fig.update_layout(
        title=f"Validation: {runlogs.LOSS_UNITS.get(metric, metric)} of every run",
        height=420,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.3),
    )
    fig.update_xaxes(title=runlogs.X_AXES.get(x, x))
    fig.update_yaxes(title=runlogs.LOSS_UNITS.get(metric, metric))
    return fig


# --- studies -------------------------------------------------------------------------------------------


def interval_chart(df: pd.DataFrame, y: str, lo: str, hi: str, xlabel: str, title: str, ref: float | None = None):
    """Dot and whisker of a study result (fool rate, Bradley-Terry rating) per method."""
    fig = figure(6.4, 0.45 * len(df) + 1.3)
    ax = fig.add_subplot()
    yy = np.arange(len(df))[::-1]
    for yi, r in zip(yy, df.itertuples()):
        c = colour(r.method)
        ax.plot([getattr(r, lo), getattr(r, hi)], [yi, yi], color=c, lw=2.2)
        ax.plot([getattr(r, y)], [yi], "o", color=c, ms=7)
    if ref is not None:
        ax.axvline(ref, color=REF_COLOUR, ls="--", lw=1)
    ax.set_yticks(yy, list(df["method"]))
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


# --- image grids -----------------------------------------------------------------------------------------


def image_grid(columns: list[tuple[str, np.ndarray, str]], title: str = "", per_row: int = 4, tile_in: float = 2.2):
    """A labelled side-by-side figure: ``(title, image, caption)`` per panel (the caption holds
    per-image metrics); as a matplotlib figure for PNG / PDF export."""
    n = len(columns)
    per_row = max(1, min(per_row, n))
    rows = -(-n // per_row)
    fig = figure(tile_in * per_row, (tile_in + 0.75) * rows + (0.3 if title else 0))
    axes = fig.subplots(rows, per_row, squeeze=False).ravel()
    for ax, (name, img, cap) in zip(axes, columns):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ax.set_title(name, fontsize=9, fontweight="bold")
        ax.set_xlabel(cap, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
