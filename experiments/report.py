"""A report to hand a reviewer: ``python -m experiments.report --out DIR``.

Writes ``DIR/report.html`` - self-contained: every figure is embedded as a ``data:`` URI, there
are no scripts, fonts or styles from the network, so it opens offline - and ``DIR/report.pdf``
with the same content (matplotlib's PdfPages: pure Python, no browser needed), plus the figures
as PNG files under ``DIR/figures/``.

Content, from what the results folder holds (``COLORIZE_RESULTS_DIR``, default ``results/``):
the methods and their model cards (``checkpoints/<method>.json``: variant, data, images seen,
hardware); each evaluation (``metrics/<name>.csv``) as a table of mean [95% CI] with the best in
bold and a paired difference-from-grey column, dot-and-whisker charts, and paired comparisons
between methods (Wilcoxon signed-rank on per-photo differences, Holm-corrected, with paired
bootstrap intervals); the sample grid with labelled rows and columns; learning curves and the
validation curves of all runs; study results when a study exists (fool rates with intervals,
Bradley-Terry ratings with intervals); the benchmark table; the commit and date.

Exit status 2 (one line on stderr) when the output folder cannot be written.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import charts, evaluate, provenance, runlogs, tables
from experiments.paths import PROJECT_ROOT, benchmarks_dir, results_dir

#: metrics drawn as dot-and-whisker charts for each evaluation (those present; headline first)
CHART_METRICS = ("auc_rebal", "psnr", "ciede2000", "colorfulness_diff")
PAPERS = {
    "regression": "CNN regressing ab directly, L2 loss (baseline of the source reports)",
    "classification": "Zhang, Isola & Efros, Colorful Image Colorization, ECCV 2016",
    "fusion": "Iizuka, Simo-Serra & Ishikawa, Let there be Color!, SIGGRAPH 2016",
    "gan": "Isola et al., pix2pix, CVPR 2017",
    "neural_style": "Gatys et al., style transfer (colour from a reference photo)",
}


@dataclass
class Report:
    """The report as an ordered list of blocks, rendered to HTML and to PDF."""

    title: str
    blocks: list[tuple] = field(default_factory=list)
    figures: list[tuple[str, bytes]] = field(default_factory=list)  # (name, png)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", level, text))

    def text(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, df: pd.DataFrame, caption: str = "", html_text: str | None = None) -> None:
        self.blocks.append(("table", df, caption, html_text))

    def figure(self, name: str, fig, caption: str) -> None:
        if fig is None:
            return
        png = charts.to_bytes(fig, "png", dpi=130)
        self.figures.append((name, png))
        self.blocks.append(("fig", name, png, caption, fig))

    def image(self, name: str, data: bytes, mime: str, caption: str, array: np.ndarray | None = None) -> None:
        self.figures.append((name, data))
        self.blocks.append(("img", name, data, mime, caption, array))


# --- gathering ---------------------------------------------------------------------------------------


def git_commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()  # fmt: skip
        return (sha + ("+dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def method_names() -> list[str]:
    import backends

    return backends.names()


def cards_section(rep: Report, methods: list[str]) -> None:
    """Every method's model card - the README's (:mod:`experiments.modelcard`), with the paper."""
    rep.heading("Methods and model cards")
    import backends

    rows = []
    for row in runlogs.model_card_rows(methods):
        info = backends.describe(row["method"])
        paper = PAPERS.get(row["method"]) or info.paper or info.description
        rows.append({"method": row.pop("method"), "paper": paper, **row})
    rep.table(
        pd.DataFrame(rows),
        "Model cards from results/checkpoints/<method>.json (provenance written when each model was shipped); val and test: "
        "rebalanced AuC, mean [95% interval], and its gain over grey, from the evaluations below.",
    )


def goal_section(rep: Report, names: list[str]) -> None:
    """The training issue's done-when against the val and test evaluations (``experiments.readme``),
    when the report has both."""
    from experiments import readme

    if not set(readme.EVALUATIONS) <= set(names):
        return
    try:
        head, *rows = readme.goal_rows(results_dir() / "metrics", results_dir() / "checkpoints")
    except (OSError, ValueError, KeyError):
        return  # an evaluation without the reference rows the goal is measured against
    rep.heading("Against the project's goal")
    rep.table(
        pd.DataFrame(rows, columns=head),
        "The training issue's done-when, criterion by criterion, from the shipped models' cards and the val and test "
        "evaluations above: images seen (equal budgets), rebalanced AuC over grey (mean per-photo difference, "
        "unrounded) for every learned model, the best model's, and colourfulness over the truth's for classification "
        "and gan.",
    )


def evaluation_section(rep: Report, name: str, n_boot: int, progress) -> None:
    ev = tables.read_evaluation(name)
    summary, per_image, meta = ev["summary"], ev["per_image"], ev["meta"]
    metrics = tables.metric_columns(summary)
    if not metrics:
        return
    head = tables.HEADLINE if tables.HEADLINE in metrics else metrics[0]
    rep.heading(f"Evaluation: {name}")
    limits = ", ".join(f"{k} on the first {v}" for k, v in (meta.get("method_limits") or {}).items())
    rep.text(
        f"{meta.get('photos', '?')} photos of {meta.get('data', '?')} at {meta.get('size', '?')} px ({evaluate.protocol_phrase(meta)})"
        + (f" ({limits})" if limits else "")
        + f"; evaluated {tables.when_made(meta) or '?'}. Mean and 95% bootstrap interval over photos"
        + ("" if ev["has_ci"] else " (no summary file: means only)")
        + f". Best non-reference value of each metric in bold; grey (ab = 0) and truth are the floor and ceiling. "
        f"Last column: paired difference from grey in {tables.metric_label(head)} (mean per-photo difference on the photos both have, "
        "with its paired-bootstrap interval)."
    )
    progress(f"{name}: table")
    table = tables.compact_table(ev, metrics, head, n_boot=n_boot)
    rep.table(
        table,
        f"{name}: all metrics (higher is better except CIEDE2000; colourfulness has no better direction).",
        tables.to_html(table),
    )
    for unavailable, why in (meta.get("unavailable") or {}).items():
        rep.text(f"{unavailable}: not measured - {why.split('. Fix')[0]}")
    rep.text(provenance.describe(meta.get("made_from"))[0])
    for metric in [m for m in CHART_METRICS if m in metrics]:
        progress(f"{name}: chart {metric}")
        rep.figure(f"{name}_{metric}", charts.dot_whisker(summary, metric, f"{name}: {tables.metric_label(metric)} (95% CI)"),
                   f"{name}: {tables.axis_title(metric)}; dots are means, whiskers 95% bootstrap intervals, dashed line grey, ★ best.")  # fmt: skip
    progress(f"{name}: paired comparisons")
    pairs = tables.paired_comparisons(per_image, head, n_boot=n_boot)
    if len(pairs):
        shown = tables.pairs_table(tables.pairs_display(pairs, head))
        rep.table(shown, f"{name}: paired comparisons on {tables.metric_label(head)} - mean per-photo difference (a - b) with its "
                         f"paired-bootstrap 95% interval, two-sided Wilcoxon signed-rank p, Holm-adjusted over the {len(pairs)} pairs.")  # fmt: skip
        rep.figure(f"{name}_pairs", charts.pairs_chart(pairs, head, f"{name}: paired differences in {tables.metric_label(head)}"),
                   f"{name}: paired differences (a - b) of {tables.metric_label(head)}; filled and red: significant after Holm correction.")  # fmt: skip
    progress(f"{name}: by subject")
    subjects = tables.by_label(per_image, head, n_boot=n_boot)
    if not subjects.empty:
        what = tables.by_label_what(subjects)
        rep.table(tables.by_label_display(subjects), f"{name}: {tables.metric_label(head)} by subject ({what} on each label's photos), "
                                                     "hardest first; ±: the typical half-width of a cell's paired-bootstrap 95% interval.")  # fmt: skip
        rep.figure(f"{name}_by_subject", charts.by_label_heatmap(subjects, f"{name}: {tables.metric_label(head)} by subject, {what}"),
                   f"{name}: {what} per subject (photos in brackets); blue better than grey, red worse.")  # fmt: skip


def grid_rows(path: Path) -> list[str] | None:
    """Row labels of a sample grid (class/file of each photo), from the sidecar ``experiments.grid``
    writes beside it (``sample_grid.json``); None when it has none or cannot be read."""
    from experiments.grid import sidecar

    try:
        photos = json.loads(sidecar(path).read_text())["photos"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(photos, list) or not photos:
        return None
    return [f"{Path(str(p)).parent.name}/{Path(str(p)).stem}" for p in photos]


def labelled_grid(path: Path) -> np.ndarray:
    """The sample grid (its columns already titled by experiments.grid) with each row labelled by
    its photo (the grid's sidecar names them in order); unlabelled when the sidecar is missing or does
    not fit the image."""
    from PIL import Image, ImageDraw

    from experiments.grid import HEAD

    im = Image.open(path).convert("RGB")
    w, h = im.size
    labels = grid_rows(path)
    if not labels or (h - HEAD) % len(labels):
        return np.asarray(im)
    tile = (h - HEAD) // len(labels)
    left = 150
    out = Image.new("RGB", (w + left, h), "white")
    out.paste(im, (left, 0))
    d = ImageDraw.Draw(out)
    font = runlogs._font(13)
    for i, lab in enumerate(labels):
        y = HEAD + i * tile + tile // 2
        for k, part in enumerate(lab.split("/", 1)):
            d.text((6, y - 16 + 16 * k), part[:20], fill="black", font=font)
    return np.asarray(out)


def png_of(rgb: np.ndarray) -> bytes:
    from experiments.comparisons import png_bytes

    return png_bytes(rgb)


def grid_section(rep: Report) -> None:
    path = results_dir() / "sample_grid.jpg"
    if not path.exists():
        return
    rep.heading("Sample grid")
    arr = labelled_grid(path)
    rep.image("sample_grid", png_of(arr), "image/png",
              "Validation photos (rows: class/file) - grey input, each method, ground truth (columns); "
              "python -m experiments.grid --out results/sample_grid.jpg.", arr)  # fmt: skip


def training_section(rep: Report, progress) -> None:
    runs = runlogs.list_runs()
    if not runs:
        return
    rep.heading("Training")
    logs = {r: runlogs.read_run_csv(r) for r in runs}
    shipped, until = runlogs.shipped_lineage()
    rows = []
    for r, df in logs.items():
        if df.empty:
            continue
        last = df.iloc[-1]
        rows.append({"run": r, "method": str(last["method"]), "shipped as": shipped.get(r, ""), "steps": f"{int(last['step']):,}",
                     "images seen": f"{int(last['images_seen']):,}" if "images_seen" in df and pd.notna(last.get("images_seen")) else "-",
                     "wall (h)": f"{last['wall_s'] / 3600:.2f}" if "wall_s" in df else "-"})  # fmt: skip
    rep.table(pd.DataFrame(rows), "Runs in results/runs/ (last logged step); 'shipped as': the runs the shipped models came from.")
    # the figures follow the shipped models' runs (every run when none shipped); the experiments
    # are in the table above and, method by method, in the last validation figure
    focus = [r for r in runs if r in shipped] or runs
    which = "the shipped models' runs" if focus != runs else "every run"
    progress("learning curves")
    rep.figure("learning_curves", charts.learning_curves({r: logs[r] for r in focus}),
               f"Training losses of {which} against images seen (EMA 0.6); log scale where a run's loss terms differ in size by "
               "more than 20x; the GAN's discriminator outputs D(real) and D(fake) in their own panel (0.5: cannot tell).")  # fmt: skip
    frame, metric, left_out = runlogs.validation_curves(focus)
    if not frame.empty:
        rep.figure("validation_curves", charts.validation_curves(frame, metric, shipped=shipped, references=runlogs.val_references(focus), which=which,
                                                                 until=until),  # fmt: skip
                   f"Validation ({metric}) of {which} against images seen, on each run's fixed validation photos (dotted: grey on "
                   "the same photos; a model continued from another run draws both, the other faint and dotted past the point "
                   "it went on from)"
                   + (f"; without {metric}: {', '.join(left_out)}" if left_out else "") + ".")  # fmt: skip
    if focus != runs:
        every, metric, _ = runlogs.validation_curves(runs)
        if not every.empty:
            rep.figure("validation_by_method", charts.validation_by_method(every, metric, shipped=shipped, references=runlogs.val_references(runs)),
                       f"Validation ({metric}) of every run, one panel per method: the shipped model's runs solid, the method's "
                       "experiments (other configs, continuations past the budget) dashed or dotted; dotted grey: grey on the same photos.")  # fmt: skip
    for r in focus:
        steps = runlogs.sample_steps(r)
        if steps:
            last = max(steps)
            arr = runlogs.labelled_sample_grid(steps[last], f"{r} at step {last:,}")
            rep.image(f"samples_{r}", png_of(arr), "image/png", f"{r}: sample grid of its last checkpoint (step {last:,}).", arr)


def study_section(rep: Report, n_boot: int) -> None:
    """Study results when a study database exists (never creates one)."""
    import os

    from experiments.study import storage

    url = os.environ.get("COLORIZE_STUDY_DB")
    if not url:
        db = results_dir() / "studies" / "studies.sqlite"
        if not db.exists():
            return
        url = f"sqlite:///{db.resolve()}"
    try:
        from experiments.study import stats

        store = storage.StudyStore(url)
        found = store.studies()
    except Exception as exc:  # noqa: BLE001 - a broken database must not stop the report
        rep.heading("User studies")
        rep.text(f"Study results could not be read: {type(exc).__name__}: {exc}")
        return
    if not found:
        return
    rep.heading("User studies")
    for s in found:
        votes = store.votes_frame(s.name)
        if votes.empty:
            rep.text(f"{s.name} ({s.kind}): no votes yet.")
            continue
        design = s.design
        if s.kind == "turing":
            res = stats.fool_rates(votes, design.vigilance_max_fail, 0.95, n_boot, seed=design.seed)
            shown = res[
                [
                    "method",
                    "participants",
                    "trials",
                    "fooled",
                    "fool_rate",
                    "wilson_lo",
                    "wilson_hi",
                    "boot_lo",
                    "boot_hi",
                    "p_vs_50",
                ]
            ].copy()
            rep.table(
                shown.round(3),
                f"{s.name}: Turing test fool rates (Wilson and participant-bootstrap 95% intervals; p: binomial test vs 50%).",
            )
            rep.figure(f"study_{s.name}", charts.interval_chart(res, "fool_rate", "wilson_lo", "wilson_hi", "fool rate (share of trials fooled; 0.5 = chance)",
                                                                f"{s.name}: fool rate (Wilson 95%)", 0.5),
                       f"{s.name}: fool rate per method with its Wilson interval; dashed: 50% (indistinguishable from real).")  # fmt: skip
        else:
            res = stats.bradley_terry(votes, list(design.methods), 0.95, min(n_boot, 1000), seed=design.seed)
            rep.table(
                res.round(2), f"{s.name}: arena, Bradley-Terry log-strengths (centred at 0; participant-bootstrap 95% intervals)."
            )
            rep.figure(f"study_{s.name}", charts.interval_chart(res, "strength", "lo", "hi", "Bradley-Terry log-strength (centred at 0)",
                                                                f"{s.name}: Bradley-Terry strength (95%)"),
                       f"{s.name}: ratings with participant-bootstrap intervals.")  # fmt: skip


def benchmark_section(rep: Report) -> None:
    files = sorted(benchmarks_dir().glob("*.md")) if benchmarks_dir().is_dir() else []
    if not files:
        return
    rep.heading("Benchmark")
    for f in files:
        rep.blocks.append(("md", f.read_text(), f.name))


# --- rendering -----------------------------------------------------------------------------------------

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:0} h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:4px} h3{margin-top:1.4rem}
.meta{color:#666;font-size:.9rem} figure{margin:14px 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.85rem} .scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.82rem;margin:8px 0} caption{caption-side:bottom;text-align:left;color:#555;font-size:.8rem;padding-top:4px}
th,td{border-bottom:1px solid #e3e3e3;padding:3px 8px;text-align:left;vertical-align:top} th{background:#f6f6f6}
code{background:#f3f3f3;padding:0 3px}
@media print{body{max-width:none} h2{page-break-before:auto} figure{page-break-inside:avoid}}
"""


def _inline(text: str) -> str:
    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)


def markdown_html(md: str) -> str:
    """The Markdown the project writes (headings, pipe tables, paragraphs, lists) as HTML."""
    out, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{min(level + 2, 6)}>{_inline(line.lstrip('#').strip())}</h{min(level + 2, 6)}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                    rows.append(cells)
                i += 1
            if rows:
                head, body = rows[0], rows[1:]
                out.append('<div class="scroll"><table><thead><tr>' + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>"
                           + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body) + "</tbody></table></div>")  # fmt: skip
            continue
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out)


def df_html(df: pd.DataFrame, caption: str = "") -> str:
    t = tables.pairs_table(df) if not df.attrs else df
    return tables.to_html(t, caption)


def to_html(rep: Report, meta_line: str) -> str:
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width,initial-scale=1'>"
             f"<title>{html.escape(rep.title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(rep.title)}</h1><p class='meta'>{html.escape(meta_line)}</p>"]  # fmt: skip
    for b in rep.blocks:
        kind = b[0]
        if kind == "h":
            parts.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "table":
            _, df, caption, html_text = b
            parts.append(f'<div class="scroll">{html_text or df_html(df, caption)}</div>')
            if html_text and caption:
                parts.append(f"<p class='meta'>{html.escape(caption)}</p>")
        elif kind in ("fig", "img"):
            name, data = b[1], b[2]
            mime = "image/png" if kind == "fig" else b[3]
            caption = b[3] if kind == "fig" else b[4]
            src = f"data:{mime};base64,{base64.b64encode(data).decode()}"
            parts.append(
                f'<figure id="{html.escape(name)}"><img src="{src}" alt="{html.escape(caption[:120])}"><figcaption>{html.escape(caption)}</figcaption></figure>'
            )
        elif kind == "md":
            parts.append(f"<h3>{html.escape(b[2])}</h3>" + markdown_html(b[1]))
    parts.append(
        f"<p class='meta'>Generated by <code>python -m experiments.report</code>. {html.escape(meta_line)}</p></body></html>"
    )
    return "\n".join(parts)


def _pdf_table(pdf, df: pd.DataFrame, caption: str, bold: dict | None = None) -> None:
    """One table as PDF page(s) (A4 landscape), long cell text wrapped."""
    import textwrap

    from matplotlib.figure import Figure

    cols = list(df.columns)
    head = tables.headers(df) if df.attrs.get("metrics") else {}
    width = max(10, min(34, 150 // max(len(cols), 1)))
    per_page = 22
    for start in range(0, max(len(df), 1), per_page):
        part = df.iloc[start : start + per_page]
        fig = Figure(figsize=(11.69, 8.27))
        ax = fig.add_axes([0.03, 0.08, 0.94, 0.86])
        ax.axis("off")
        cells = [
            ["\n".join(textwrap.wrap(str("" if v is None else v), width)) or "" for v in row]
            for row in part.itertuples(index=False)
        ]
        labels = ["\n".join(textwrap.wrap(head.get(c, str(c)), width)) for c in cols]
        if cells:
            t = ax.table(cellText=cells, colLabels=labels, loc="upper center", cellLoc="left")
            t.auto_set_font_size(False)
            t.set_fontsize(6.5 if len(cols) > 8 else 7.5)
            lines = max([c.count("\n") + 1 for row in cells for c in row] + [1])
            t.scale(1, 1.1 + 0.55 * lines)
            for (r, c), cell in t.get_celld().items():
                if r == 0:
                    cell.set_facecolor("#eeeeee")
                elif bold and part.iloc[r - 1].get("method") in bold.get(cols[c], ()):
                    cell.get_text().set_fontweight("bold")
        fig.text(0.03, 0.03, "\n".join(textwrap.wrap(caption, 180)), fontsize=7.5, va="bottom")
        pdf.savefig(fig)


def to_pdf(rep: Report, path: Path, meta_line: str) -> None:
    import textwrap

    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    with PdfPages(path, metadata={"Title": rep.title, "Creator": "experiments.report"}) as pdf:
        lines: list[tuple[str, float, str]] = [(rep.title, 18, "bold"), (meta_line, 9, "normal"), ("", 9, "normal")]

        def flush():
            nonlocal lines
            if not lines:
                return
            fig = Figure(figsize=(8.27, 11.69))
            y = 0.95
            for text, size, weight in lines:
                for chunk in textwrap.wrap(text, int(1500 / size)) or [""]:
                    fig.text(0.07, y, chunk, fontsize=size, fontweight=weight, va="top")
                    y -= size / 11.69 / 72 * 1.5
            pdf.savefig(fig)
            lines = []

        for b in rep.blocks:
            kind = b[0]
            if kind == "h":
                flush()
                lines.append((b[2], 15 if b[1] <= 2 else 12, "bold"))
            elif kind == "p":
                lines.append((re.sub(r"[`*]", "", b[1]), 9, "normal"))
            elif kind == "table":
                flush()
                _pdf_table(pdf, b[1], b[2], b[1].attrs.get("best"))
            elif kind == "fig":
                flush()
                fig = b[4]
                fig.suptitle(textwrap.fill(b[3], 120), fontsize=7, y=0.0, va="bottom")
                pdf.savefig(fig)
            elif kind == "img":
                flush()
                arr = b[5]
                if arr is not None:
                    h, w = arr.shape[:2]
                    fig = Figure(figsize=(11.69, 8.27))
                    ax = fig.add_axes([0.02, 0.08, 0.96, 0.88])
                    ax.imshow(arr)
                    ax.axis("off")
                    fig.text(0.03, 0.03, textwrap.fill(b[4], 180), fontsize=8)
                    pdf.savefig(fig)
            elif kind == "md":
                flush()
                md_tables(pdf, b[1], b[2])
        flush()


def md_tables(pdf, md: str, name: str) -> None:
    """The pipe tables of a Markdown file as PDF table pages (headings as captions)."""
    title, rows, tables_found = name, [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip().replace("`", "").replace("**", "") for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                rows.append(cells)
        else:
            if rows:
                tables_found.append((title, rows))
                rows = []
            if line.startswith("#"):
                title = f"{name}: {line.lstrip('#').strip()}"
    for title, rows in tables_found:
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        head = [h or " " for h in rows[0]]
        if len(set(head)) < len(head):
            head = [f"{h}{'' if i == 0 else ' ' * i}" for i, h in enumerate(head)]
        _pdf_table(pdf, pd.DataFrame(rows[1:], columns=head), title)


# --- the whole thing -------------------------------------------------------------------------------------


def build(
    out: str | Path, evaluations: list[str] | None = None, n_boot: int = 2000, pdf: bool = True, progress=None
) -> dict[str, Path]:
    """Write ``out/report.html``, ``out/report.pdf`` and ``out/figures/*.png``; their paths.
    ``progress(text)`` is called before each step."""
    progress = progress or (lambda text: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    date = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    meta_line = f"commit {commit} - generated {date} - results folder {results_dir()}"
    rep = Report("Colorization workbench: report")
    methods = method_names()
    rep.text(
        "Five automatic colorization methods compared on the same photos with the same metrics. Per-pixel measures "
        "(PSNR, SSIM, CIEDE2000) favour the grey (ab = 0) baseline; the class-rebalanced AuC (Zhang et al. 2016) is the "
        "headline metric. Differences between methods are tested pairwise on per-photo values (Wilcoxon signed-rank, "
        "Holm-corrected), not read off overlapping intervals."
    )
    progress("model cards")
    cards_section(rep, methods)
    names = evaluations if evaluations is not None else tables.list_evaluations()
    for name in names:
        progress(f"evaluation {name}")
        evaluation_section(rep, name, n_boot, progress)
    goal_section(rep, names)
    progress("sample grid")
    grid_section(rep)
    progress("training curves")
    training_section(rep, progress)
    progress("user studies")
    study_section(rep, n_boot)
    benchmark_section(rep)
    rep.heading("Provenance")
    rep.text(meta_line + ". Python " + sys.version.split()[0] + ".")
    progress("writing HTML")
    paths = {"html": out / "report.html"}
    paths["html"].write_text(to_html(rep, meta_line), encoding="utf-8")
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    written = set()
    for name, data in rep.figures:
        target = figs / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
        target.write_bytes(data)
        written.add(target.name)
    for stale in figs.glob("*.png"):  # an earlier build's figures that this report no longer has
        if stale.name not in written:
            stale.unlink()
    paths["figures"] = figs
    if pdf:
        progress("writing PDF")
        paths["pdf"] = out / "report.pdf"
        to_pdf(rep, paths["pdf"], meta_line)
    progress("done")
    return paths


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m experiments.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (report.html, report.pdf, figures/)")
    p.add_argument("--evaluations", default=None, help="comma-separated evaluation names of results/metrics (default: all)")
    p.add_argument("--boot", type=int, default=2000, help="bootstrap resamples for the paired intervals (default 2000)")
    p.add_argument("--no-pdf", action="store_true", help="write the HTML only")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    evals = [e.strip() for e in args.evaluations.split(",") if e.strip()] if args.evaluations else None
    if evals:
        missing = [e for e in evals if e not in tables.list_evaluations()]
        if missing:
            print(f"experiments.report: no evaluation {', '.join(missing)} in {tables.metrics_dir()}", file=sys.stderr)
            return 2
    try:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise OSError(f"{out}: exists and is not a folder")
        paths = build(
            out,
            evals,
            max(0, args.boot),
            not args.no_pdf,
            None if args.quiet else lambda t: print(f"report: {t}", file=sys.stderr),
        )
    except OSError as exc:
        print(f"experiments.report: cannot write the report: {exc}", file=sys.stderr)
        return 2
    print(paths["html"])
    if "pdf" in paths:
        print(paths["pdf"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
