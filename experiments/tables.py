"""Evaluation tables for people: who wins, by how much, and is it more than chance.

Reads what ``experiments.evaluate`` wrote (``results/metrics/<name>.csv`` and its summary) and
turns it into:

- :func:`compact_table` - one row per method, ``mean [95% CI]`` per metric, the best
  (non-reference) value of each metric flagged, and a difference-from-grey column (paired: the
  mean per-photo difference against the ``gray`` row on the photos both have, with its bootstrap
  interval);
- :func:`paired_comparisons` - every pair of methods on one metric: mean per-photo difference,
  paired-bootstrap 95% interval, two-sided Wilcoxon signed-rank p and Holm-adjusted p over the
  family of pairs (the README's overlapping intervals are not a test; this is);
- :func:`by_label` - the same difference from grey per subject (the photo's label), hardest
  subjects first, with the typical interval half-width beside it;
- LaTeX / Markdown / HTML / CSV renderings with the best in bold.

Used by the Metrics page, ``experiments.report`` and any script. No Streamlit here.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.paths import metrics_dir

REFERENCE_ROWS = ("gray", "truth")
HEADLINE = "auc_rebal"
#: unit (or range) of each metric, for axis titles and table headers
UNITS = {
    "psnr": "dB",
    "ssim": "0-1",
    "ciede2000": "ΔE00",
    "colorfulness": "M3",
    "colorfulness_diff": "M3",
    "auc": "0-1",
    "auc_rebal": "0-1",
    "lpips_alex": "distance",
    "lpips_squeeze": "distance",
    "featdist_squeeze": "distance",
    "fid": "FID",
    "top1_resnet50": "accuracy 0-1",
    "ncm_squeeze": "accuracy 0-1",
}


# --- reading ------------------------------------------------------------------------------------


def when_made(meta: dict) -> str:
    """When an evaluation's rows were made: its date, or after ``--update`` each date with its methods
    (newest first) - for the README, the Metrics page and the report."""
    rows_made = meta.get("rows_made")
    if isinstance(rows_made, dict) and len(set(rows_made.values())) > 1:
        by_date: dict[str, list[str]] = {}
        for method, date in rows_made.items():
            by_date.setdefault(str(date), []).append(method)
        return "; ".join(f"{date} ({', '.join(ms)})" for date, ms in sorted(by_date.items(), reverse=True))
    return str(meta.get("created") or "")


def list_evaluations() -> list[str]:
    root = metrics_dir()
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.csv") if not p.name.endswith(".summary.csv"))


def read_evaluation(name: str | Path) -> dict:
    """``experiments.evaluate.load_results`` of ``metrics/<name>.csv`` (or a path): per_image,
    summary (computed from per_image without intervals when the summary file is missing), meta."""
    from experiments import evaluate

    path = Path(name) if isinstance(name, Path) or str(name).endswith(".csv") else metrics_dir() / f"{name}.csv"
    ev = evaluate.load_results(path)
    if ev["summary"] is None:
        per = ev["per_image"]
        ev["summary"] = per.groupby("method", sort=False)[metric_columns(per)].mean().reset_index()
        ev["summary"].insert(1, "n", per.groupby("method", sort=False).size().to_numpy())
        ev["has_ci"] = False
    else:
        ev["has_ci"] = True
    return ev


def metric_info() -> dict[str, tuple[str, int]]:
    """column -> (label, direction): ``experiments.metrics.METRIC_INFO`` (imported when first needed)."""
    from experiments.metrics import METRIC_INFO

    return METRIC_INFO


def metric_columns(df: pd.DataFrame) -> list[str]:
    """Metric columns of an evaluation table (its CI columns ``<m>_lo`` / ``<m>_hi`` excluded),
    the headline metric (class-rebalanced AuC) first, then in the evaluation's order."""
    cols = [
        c for c in df.columns if c not in ("method", "image", "label", "status", "n") and pd.api.types.is_numeric_dtype(df[c])
    ]
    cols = [c for c in cols if not ((c.endswith("_lo") or c.endswith("_hi")) and c[:-3] in cols)]
    return sorted(cols, key=lambda c: c != HEADLINE)


def ci_columns(summary: pd.DataFrame, metric: str) -> tuple[str, str] | None:
    lo, hi = f"{metric}_lo", f"{metric}_hi"
    return (lo, hi) if lo in summary and hi in summary else None


def metric_direction(metric: str) -> int:
    """+1 higher is better, -1 lower is better, 0 neither."""
    return metric_info().get(metric, (metric, 0))[1]


def metric_label(metric: str) -> str:
    return metric_info().get(metric, (metric, 0))[0]


def metric_unit(metric: str) -> str:
    return UNITS.get(metric, "")


def axis_title(metric: str) -> str:
    """``AuC rebal. (0-1), higher is better`` - for chart axes and table headers."""
    label, unit = metric_label(metric), metric_unit(metric)
    unit = "" if not unit or unit in label else f" ({unit})"
    return f"{label}{unit}, {better_text(metric)}"


def better_text(metric: str) -> str:
    return {1: "higher is better", -1: "lower is better"}.get(metric_direction(metric), "no better direction")


def digits(metric: str) -> int:
    return 2 if metric in ("psnr", "ciede2000", "colorfulness", "colorfulness_diff", "fid") else 3


def fmt(value, metric: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits(metric)}f}"


# --- paired statistics ---------------------------------------------------------------------------


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down; monotone; capped at 1); NaN stays NaN."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def paired_frame(per_image: pd.DataFrame, metric: str) -> pd.DataFrame:
    """photo x method table of one metric (NaN where a method did not score a photo)."""
    df = per_image.dropna(subset=[metric])
    return df.pivot_table(index="image", columns="method", values=metric, aggfunc="mean")


def paired_difference(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0, conf: float = 0.95) -> dict:
    """Mean of ``a - b`` over photos, its percentile paired-bootstrap interval, the two-sided
    Wilcoxon signed-rank p (exact for small n without ties; normal approximation otherwise)."""
    from scipy import stats as sps

    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    if n == 0:
        return {"n": 0, "diff": np.nan, "lo": np.nan, "hi": np.nan, "p": np.nan}
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, n, size=(n_boot, n))].mean(1) if n_boot else np.array([d.mean()])
    alpha = (1 - conf) / 2
    if np.allclose(d, 0):
        p = 1.0
    elif n < 2:
        p = np.nan
    else:
        p = float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return {
        "n": n,
        "diff": float(d.mean()),
        "lo": float(np.quantile(boots, alpha)),
        "hi": float(np.quantile(boots, 1 - alpha)),
        "p": p,
    }


def paired_comparisons(per_image: pd.DataFrame, metric: str, methods: list[str] | None = None, n_boot: int = 2000, seed: int = 0,
                       conf: float = 0.95) -> pd.DataFrame:  # fmt: skip
    """Every pair (a, b) of ``methods`` (default: all but ``truth``) on the photos both scored:
    ``diff`` = mean(a - b) with its paired-bootstrap interval, Wilcoxon p, Holm-adjusted p over
    all the pairs, and which of the two is better when the difference is significant at 5 %."""
    cols = ["a", "b", "n", "diff", "lo", "hi", "p", "p_holm", "better", "significant"]
    if metric not in per_image:
        return pd.DataFrame(columns=cols)
    table = paired_frame(per_image, metric)
    if methods is None:
        methods = [m for m in pd.unique(per_image["method"].astype(str)) if m != "truth"]
    methods = [m for m in methods if m in table]
    rows = []
    for i, a in enumerate(methods):
        for b in methods[i + 1 :]:
            both = table[[a, b]].dropna()
            r = paired_difference(both[a].to_numpy(), both[b].to_numpy(), n_boot, seed, conf)
            rows.append({"a": a, "b": b, **r})
    out = pd.DataFrame(rows, columns=cols[:7])
    out["p_holm"] = holm(out["p"]) if len(out) else []
    sign = metric_direction(metric)

    def better(r):
        if not (r.p_holm < 0.05) or sign == 0 or r.diff == 0:
            return ""
        return r.a if r.diff * sign > 0 else r.b

    out["better"] = [better(r) for r in out.itertuples()] if len(out) else []
    out["significant"] = out["p_holm"] < 0.05
    return out


def differences_from(
    per_image: pd.DataFrame, metric: str, baseline: str = "gray", n_boot: int = 2000, seed: int = 0
) -> dict[str, dict]:
    """method -> paired difference from ``baseline`` (mean per-photo method - baseline, interval, p)."""
    if metric not in per_image:
        return {}
    table = paired_frame(per_image, metric)
    if baseline not in table:
        return {}
    out = {}
    for m in table.columns:
        if m in (baseline, "truth"):
            continue
        both = table[[m, baseline]].dropna()
        out[m] = paired_difference(both[m].to_numpy(), both[baseline].to_numpy(), n_boot, seed)
    return out


# --- by subject -----------------------------------------------------------------------------------


def by_label(per_image: pd.DataFrame, metric: str, baseline: str = "gray", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Who handles which subject: one row per label (the photo's first folder: a class of ``val``,
    a source of ``test``), first a row of all photos, then the labels from the hardest (the worst
    mean, in the metric's direction, over the methods that scored every label) to the easiest. Each method's cell is its mean per-photo difference from
    ``baseline`` on that label's photos both scored (paired, as :func:`differences_from`); without a
    ``baseline`` row, its plain mean. ``n``: the label's photos; ``half_width``: the median over the
    methods of half the paired-bootstrap 95% interval, so a reader sees how far apart two cells must
    be before the difference means anything (about 30 photos per label on the 500-photo sample).
    ``df.attrs``: ``methods`` (the cells' columns), ``relative`` (True: differences from the
    baseline), ``intervals`` (method -> label -> (lo, hi)). Empty when the photos carry fewer than
    two labels or the metric is not per photo."""
    cols = ["label", "n", "half_width"]
    if metric not in per_image or "label" not in per_image:
        return pd.DataFrame(columns=cols)
    df = per_image.dropna(subset=[metric]).copy()
    df["label"] = df["label"].fillna("").astype(str)
    labels = sorted(set(df["label"]) - {""})
    if len(labels) < 2:
        return pd.DataFrame(columns=cols)
    methods = [m for m in pd.unique(df["method"].astype(str)) if m not in REFERENCE_ROWS]
    relative = baseline in set(df["method"].astype(str))
    table = df.pivot_table(index="image", columns="method", values=metric, aggfunc="mean")
    label_of = df.drop_duplicates("image").set_index("image")["label"]
    groups = [("all photos", table)] + [(lab, table[label_of.reindex(table.index).to_numpy() == lab]) for lab in labels]
    rows, intervals = [], {m: {} for m in methods}
    for lab, part in groups:
        row, halves = {"label": lab, "n": int(len(part))}, []
        for m in methods:
            if relative:
                both = part[[m, baseline]].dropna()
                r = paired_difference(both[m].to_numpy(), both[baseline].to_numpy(), n_boot, seed)
            else:
                vals = part[m].dropna().to_numpy(float)
                r = paired_difference(vals, np.zeros_like(vals), n_boot, seed)
            row[m] = r["diff"]
            if r["n"]:
                intervals[m][lab] = (r["lo"], r["hi"])
                halves.append((r["hi"] - r["lo"]) / 2)
        row["half_width"] = float(np.median(halves)) if halves else np.nan
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols + methods)
    if len(out) > 1:  # the hardest subjects first, after the all-photos row
        complete = [m for m in methods if out[m].notna().all()] or methods  # (a method limited to a few photos: not the ranking)
        worst_first = out.iloc[1:][complete].mean(axis=1) * (metric_direction(metric) or 1)  # lower CIEDE2000 is better
        order = worst_first.sort_values(kind="stable").index
        out = pd.concat([out.iloc[:1], out.loc[order]], ignore_index=True)
    out.attrs = {"methods": methods, "relative": relative, "intervals": intervals, "metric": metric}
    return out


def by_label_what(table: pd.DataFrame) -> str:
    """What a :func:`by_label` cell holds, for captions and titles."""
    return "mean per-photo difference from grey" if table.attrs["relative"] else "mean"


def by_label_shade(table: pd.DataFrame) -> tuple[np.ndarray, float]:
    """The cells as shaded (page table and report heat map alike): signed so that better than grey
    is positive in the metric's direction (a lower CIEDE2000 too), and the largest magnitude."""
    vals = table[table.attrs["methods"]].to_numpy(float) * (metric_direction(table.attrs["metric"]) or 1)
    lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
    return vals, lim


def by_label_styled(table: pd.DataFrame):
    """:func:`by_label_display` with each method's cells shaded by value (the report's heat map:
    blue better than grey, red worse - in the metric's direction, so a lower CIEDE2000 is blue -
    white at 0, in pastel so the numbers stay readable; a plain mean shades from light to dark)."""
    shown = by_label_display(table)
    if shown.empty:
        return shown
    methods = table.attrs["methods"]
    vals, lim = by_label_shade(table)  # blue: better than grey
    if table.attrs["relative"]:
        kw = {"cmap": "RdBu", "vmin": -2 * lim, "vmax": 2 * lim}  # pastel: the numbers stay the thing read
    else:
        kw = {"cmap": "Blues", "low": 0, "high": 1}
    return shown.style.background_gradient(axis=None, subset=methods, gmap=vals, text_color_threshold=0.2, **kw)


def by_label_long(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`by_label` one row per (label, method) with the interval: label, n, method, value, lo, hi."""
    rows = []
    for _, r in table.iterrows():
        for m in table.attrs.get("methods", []):
            lo, hi = table.attrs["intervals"][m].get(r["label"], (np.nan, np.nan))
            rows.append({"label": r["label"], "n": r["n"], "method": m, "value": r[m], "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=["label", "n", "method", "value", "lo", "hi"])


def by_label_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`by_label` as text: signed differences (or means) at the metric's digits, ``±`` half
    width, the best method of each row named in a last column (``-`` where the metric has no better
    direction)."""
    if table.empty:
        return pd.DataFrame()
    metric, methods, relative = table.attrs["metric"], table.attrs["methods"], table.attrs["relative"]
    d, sign = digits(metric), metric_direction(metric)
    out = pd.DataFrame({"subject": table["label"], "photos": table["n"]})
    for m in methods:
        out[m] = [("-" if pd.isna(v) else (f"{v:+.{d}f}" if relative else f"{v:.{d}f}")) for v in table[m]]
    out["± (95%)"] = [("-" if pd.isna(v) else f"{v:.{d}f}") for v in table["half_width"]]
    best = []
    for _, r in table.iterrows():
        vals = r[methods].astype(float)
        best.append("-" if sign == 0 or vals.isna().all() else str((vals * sign).idxmax()))
    out["best"] = best
    return out


# --- the compact table ---------------------------------------------------------------------------


def best_methods(summary: pd.DataFrame, metric: str) -> set[str]:
    """Method(s) with the best mean of ``metric`` among the non-reference rows (empty for metrics
    with no better direction)."""
    sign = metric_direction(metric)
    rows = summary[~summary["method"].astype(str).isin(REFERENCE_ROWS)].dropna(subset=[metric])
    if sign == 0 or rows.empty:
        return set()
    vals = rows[metric].to_numpy(float) * sign
    top = vals.max()
    return set(rows["method"].astype(str)[np.isclose(vals, top, rtol=0, atol=10 ** -(digits(metric) + 1))])


def cell(row, metric: str, summary: pd.DataFrame) -> str:
    v = row.get(metric)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    ci = ci_columns(summary, metric)
    if ci and pd.notna(row.get(ci[0])) and pd.notna(row.get(ci[1])):
        return f"{fmt(v, metric)} [{fmt(row[ci[0]], metric)}, {fmt(row[ci[1]], metric)}]"
    return fmt(v, metric)


def compact_table(ev: dict, metrics: list[str] | None = None, diff_metric: str | None = None, n_boot: int = 2000) -> pd.DataFrame:
    """One row per method: ``n``, ``mean [lo, hi]`` per metric, and ``Δ vs grey`` of
    ``diff_metric`` (default the first metric: the headline) as ``+0.027 [+0.020, +0.034]``.
    ``df.attrs["best"]`` maps each metric to its best method(s); ``df.attrs["metrics"]`` the order."""
    summary, per_image = ev["summary"], ev["per_image"]
    metrics = metrics or metric_columns(summary)
    diff_metric = diff_metric or metrics[0]
    diffs = differences_from(per_image, diff_metric, n_boot=n_boot)
    rows = []
    for _, r in summary.iterrows():
        m = str(r["method"])
        row = {"method": m, "n": int(r["n"]) if "n" in r and pd.notna(r["n"]) else None}
        for metric in metrics:
            row[metric] = cell(r, metric, summary)
        d = diffs.get(m)
        if m == "gray":
            row["diff"] = "(baseline)"
        elif d and d["n"]:
            row["diff"] = (
                f"{d['diff']:+.{digits(diff_metric)}f} [{d['lo']:+.{digits(diff_metric)}f}, {d['hi']:+.{digits(diff_metric)}f}]"
            )
        else:
            row["diff"] = "-"
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["best"] = {metric: best_methods(summary, metric) for metric in metrics}
    out.attrs["metrics"] = metrics
    out.attrs["diff_metric"] = diff_metric
    return out


def headers(table: pd.DataFrame) -> dict[str, str]:
    """column -> header text for people."""
    out = {"method": "method", "n": "n (photos)"}
    for m in table.attrs.get("metrics", []):
        out[m] = f"{metric_label(m)}" + (
            f" ({metric_unit(m)})" if metric_unit(m) and metric_unit(m) not in metric_label(m) else ""
        )
    dm = table.attrs.get("diff_metric")
    if dm:
        out["diff"] = f"Δ {metric_label(dm)} vs grey (paired)"
    return out


def to_html(table: pd.DataFrame, caption: str = "") -> str:
    """An HTML table, best of each metric in bold."""
    head = headers(table)
    best = table.attrs.get("best", {})
    th = "".join(f"<th>{html.escape(head.get(c, c))}</th>" for c in table.columns)
    body = []
    for _, r in table.iterrows():
        tds = []
        for c in table.columns:
            text = html.escape("" if r[c] is None or (isinstance(r[c], float) and math.isnan(r[c])) else str(r[c]))
            tds.append(f"<td><b>{text}</b></td>" if r.get("method") in best.get(c, ()) else f"<td>{text}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="tbl">{cap}<thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _tex(s: str) -> str:
    s = str(s)
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("#", r"\#"),
        ("Δ", r"$\Delta$"),
        ("ΔE00", r"$\Delta E_{00}$"),
    ):
        s = s.replace(a, b)
    return s


def to_latex(table: pd.DataFrame, caption: str = "") -> str:
    """A booktabs LaTeX table, best of each metric in bold."""
    head = headers(table)
    best = table.attrs.get("best", {})
    cols = list(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}", r"\toprule",
             " & ".join(_tex(head.get(c, c)) for c in cols) + r" \\", r"\midrule"]  # fmt: skip
    for _, r in table.iterrows():
        cells = []
        for c in cols:
            v = "" if r[c] is None or (isinstance(r[c], float) and math.isnan(r[c])) else _tex(r[c])
            cells.append(rf"\textbf{{{v}}}" if r.get("method") in best.get(c, ()) else v)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{_tex(caption)}}}")
    lines += [r"\end{table}", ""]
    return "\n".join(lines)


def to_markdown(table: pd.DataFrame) -> str:
    head = headers(table)
    best = table.attrs.get("best", {})
    cols = list(table.columns)
    out = [
        "| " + " | ".join(head.get(c, c) for c in cols) + " |",
        "|" + "|".join("---" if c == "method" else "---:" for c in cols) + "|",
    ]
    for _, r in table.iterrows():
        cells = [str("" if r[c] is None else r[c]) for c in cols]
        cells = [f"**{v}**" if r.get("method") in best.get(c, ()) else v for c, v in zip(cols, cells)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def to_csv(table: pd.DataFrame) -> str:
    return table.rename(columns=headers(table)).to_csv(index=False)


def pairs_display(pairs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The paired comparisons as people read them: ``a - b``, interval, p, Holm p, verdict."""
    d = digits(metric)
    rows = []
    for r in pairs.itertuples():
        verdict = f"{r.better} better" if r.better else ("differ" if r.significant else "no significant difference")
        rows.append({"pair": f"{r.a} - {r.b}", "photos": r.n, "mean difference [95% CI]": f"{r.diff:+.{d}f} [{r.lo:+.{d}f}, {r.hi:+.{d}f}]",
                     "Wilcoxon p": _p(r.p), "Holm p": _p(r.p_holm), "verdict (Holm p < 0.05)": verdict})  # fmt: skip
    return pd.DataFrame(rows)


def _p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "-"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def pairs_table(pairs_df: pd.DataFrame) -> pd.DataFrame:
    """:func:`pairs_display`'s frame with attrs for the renderers (no bold cells)."""
    out = pairs_df.copy()
    out.attrs = {"best": {}, "metrics": []}
    return out
