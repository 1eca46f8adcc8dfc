"""Metrics: who wins, by how much, and is it more than chance - the evaluation tables of
results/metrics/ (experiments.evaluate) as a compact table per metric, dot-and-whisker charts,
paired tests between methods, the best and worst photos, exports; an evaluation run from the page."""

import streamlit as st

from dashboard import common
from experiments import access, charts, evaluate, provenance, tables

st.title("Evaluation metrics")

# --- run an evaluation from the page -------------------------------------------------------------
with st.expander("Run an evaluation", expanded=not common.list_evaluations()):
    folder = common.test_folder()
    names = common.backends.names()
    c1, c2 = st.columns(2)
    with c1:
        ev_name = st.text_input("Name (metrics/<name>.csv)", value="dashboard", key="met_new_name", max_chars=40)
        ev_folder = st.text_input("Photo folder", value=str(folder) if folder else "", key="met_new_folder")
    with c2:
        ev_methods = st.multiselect("Methods", names, default=[n for n in names if n != "neural_style"], key="met_new_methods")
        ev_limit = st.number_input("Random sample of this many photos (0: all)", 0, 100000, 20, key="met_new_limit")
    ev_models = st.checkbox("Model-based metrics too (LPIPS, FID, classifiers; slower, need their weights)", key="met_new_models")
    ev_aspect = st.checkbox("Keep each photo's shape (longer side 256 px; default: squashed to 256 x 256, the tables' protocol)",
                            key="met_new_aspect")  # fmt: skip
    if "neural_style" in ev_methods:
        st.warning("neural_style optimises every photo (tens of seconds each on a CPU): keep the sample small.")
    # writes under results/metrics/: admin token; an existing (or shipped) table only when confirmed
    ev_replace = bool(access.existing_outputs(common.metrics_dir(), ev_name)) and st.checkbox(
        f"Replace the existing table `{ev_name}`" + (" (shipped with the project)" if access.is_shipped(ev_name) else ""),
        key="met_new_replace",
    )
    ev_admin = common.admin_login("met_admin_token")
    if not ev_admin:
        st.caption("An evaluation writes under `results/metrics/`: enter the admin token to start one.")
    if st.button("Start evaluation", key="met_new_run", disabled=not ev_methods or not ev_admin) and common.is_admin():
        bar = st.progress(0.0, text="starting")
        try:
            paths = common.run_evaluation(
                ev_name,
                ev_folder,
                ev_methods,
                int(ev_limit),
                replace=ev_replace,
                model_metrics=ev_models,
                keep_aspect=ev_aspect,
                progress=lambda f, text: bar.progress(min(max(float(f), 0.0), 1.0), text=text),
            )
            st.success(f"Wrote {paths['csv']} and its summary, Markdown and LaTeX tables.")
            st.session_state["met_eval"] = paths["csv"].stem
        except (common.ColorizationError, ValueError, FileNotFoundError) as exc:
            st.error(str(exc))

evals = common.list_evaluations()
if not evals:
    st.info(
        f"No evaluation tables yet in `{common.metrics_dir()}`. Start one above, or run "
        "`python -m experiments.evaluate --data ../shared/data/test --methods all --out results/metrics/test.csv`."
    )
    st.stop()


@st.cache_data(show_spinner=False, max_entries=8)
def load(name: str, stamp: float) -> dict:
    return tables.read_evaluation(name)


@st.cache_data(show_spinner=False, max_entries=32)
def compact(name: str, stamp: float, metric: str):
    return tables.compact_table(load(name, stamp), [metric], metric)


@st.cache_data(show_spinner=False, max_entries=32)
def pairs(name: str, stamp: float, metric: str):
    return tables.paired_comparisons(load(name, stamp)["per_image"], metric)


@st.cache_data(show_spinner=False, max_entries=32)
def subjects(name: str, stamp: float, metric: str):
    return tables.by_label(load(name, stamp)["per_image"], metric)


@st.cache_data(show_spinner=False, max_entries=8)
def made_from(name: str, stamp: float, checkpoints: tuple) -> tuple[str, bool]:
    """Which checkpoints made the table, and whether one has been replaced since (hashed once per change)."""
    return provenance.describe(load(name, stamp)["meta"].get("made_from"))


c1, c2 = st.columns([1, 2])
with c1:
    name = st.selectbox("Evaluation", evals, key="met_eval")
stamp = (common.metrics_dir() / f"{name}.csv").stat().st_mtime
try:
    with st.spinner(f"Reading {name}..."):
        ev = load(name, stamp)
except Exception as exc:  # noqa: BLE001 - a damaged file must not take the page down
    st.error(f"Cannot read {name}.csv: {exc}")
    st.stop()
per_image, summary, meta = ev["per_image"], ev["summary"], ev["meta"]
if not ev["has_ci"]:
    st.warning(f"No {name}.summary.csv next to {name}.csv: showing means without confidence intervals.")
metrics = tables.metric_columns(summary)
if not metrics:
    st.warning(f"{name} holds no metric columns.")
    st.stop()
with c2:
    metric = st.selectbox(
        "Metric", metrics, format_func=lambda m: f"{tables.metric_label(m)} - {tables.better_text(m)}", key="met_metric"
    )
if meta:
    limits = ", ".join(f"{k}: first {v} photos" for k, v in (meta.get("method_limits") or {}).items())
    st.caption(
        f"{meta.get('photos', '?')} photos from `{meta.get('data', '?')}` at {meta.get('size', '?')} px"
        + f" ({evaluate.protocol_phrase(meta)})"
        + (f" ({limits})" if limits else "")
        + f"; {tables.when_made(meta)}. Intervals: 95% bootstrap over photos."
    )
for col, why in (meta.get("unavailable") or {}).items():
    st.caption(f"{col}: unavailable - {why.split('. Fix')[0]}")
ckpts = tuple(
    (p.name, p.stat().st_mtime_ns)
    for p in sorted(common.checkpoints_dir().glob("*"))
    if p.suffix in provenance.CHECKPOINT_SUFFIXES
)
made_text, replaced = made_from(name, stamp, ckpts)
(st.warning if replaced else st.caption)(made_text)

# --- the compact table -------------------------------------------------------------------------------
st.subheader(f"{tables.metric_label(metric)}: who wins")
with st.spinner("Paired differences from grey..."):
    table = compact(name, stamp, metric)
best = table.attrs["best"].get(metric, set())
shown = table.rename(columns=tables.headers(table))
shown.attrs = {}  # (sets of best methods: not for the browser)
metric_head = tables.headers(table)[metric]


def bold_best(row):
    on = row["method"] in best
    return ["font-weight: bold; background-color: rgba(84,162,75,0.18)" if on else "" for _ in row]


st.dataframe(shown.style.apply(bold_best, axis=1), hide_index=True, key="met_summary", width="stretch")
st.caption(
    f"Mean [95% CI] over photos; best in bold ({tables.better_text(metric)}); grey (ab = 0) and truth are the floor and ceiling. "
    "Δ vs grey: mean per-photo difference from the grey baseline on the photos both have, with its paired-bootstrap interval."
)
with st.expander("All metrics at once"):
    with st.spinner("Building the full table..."):
        full = tables.compact_table(ev, metrics, metrics[0])
    full_shown = full.rename(columns=tables.headers(full))
    full_shown.attrs = {}
    st.dataframe(full_shown, hide_index=True, key="met_full", width="stretch")

# --- dot and whisker ---------------------------------------------------------------------------------
show_truth = st.toggle("Show the truth row on the chart", value=False, key="met_truth")
fig = charts.dot_whisker_plotly(summary, metric, f"{name}: {tables.metric_label(metric)} (95% CI)", drop_truth=not show_truth)
st.plotly_chart(fig, key="met_chart", config={"toImageButtonOptions": {"format": "png", "filename": f"{name}_{metric}"}})

# --- paired comparisons ---------------------------------------------------------------------------------
st.subheader("Paired comparisons")
if metric not in per_image:
    st.info(f"{tables.metric_label(metric)} is a set metric (one value per method): no per-photo pairs to test.")
    pair_df = None
else:
    with st.spinner("Paired bootstrap and Wilcoxon tests over every pair..."):
        pair_df = pairs(name, stamp, metric)
    st.caption(
        "Every pair on the photos both methods scored: mean per-photo difference (a - b) with a paired-bootstrap 95% interval, "
        f"two-sided Wilcoxon signed-rank p, and p adjusted for the {len(pair_df)} comparisons (Holm). "
        f"'better' follows the metric's direction ({tables.better_text(metric)})."
    )
    st.dataframe(tables.pairs_display(pair_df, metric), hide_index=True, key="met_pairs", width="stretch")

# --- by subject ----------------------------------------------------------------------------------------
with st.spinner("Differences by subject..."):
    by_subject = subjects(name, stamp, metric)
if not by_subject.empty:
    st.subheader("By subject")
    st.caption(
        f"{tables.by_label_what(by_subject).capitalize()} in {tables.metric_label(metric)} on each label's photos "
        "(a class folder of the photo set, or its source), hardest subjects first. '±': the typical half-width of a cell's "
        "paired-bootstrap 95% interval - two cells closer than that are not told apart by these photos."
    )
    st.dataframe(tables.by_label_styled(by_subject), hide_index=True, key="met_subjects", width="stretch")

# --- exports -------------------------------------------------------------------------------------------
st.subheader("Export what is shown")
e = st.columns(6)
e[0].download_button("Table (CSV)", tables.to_csv(table).encode(), f"{name}_{metric}.csv", "text/csv", key="met_csv")
e[1].download_button("Table (LaTeX)", tables.to_latex(table, f"{name}: {tables.metric_label(metric)}, mean [95\\% CI]").encode(),
                     f"{name}_{metric}.tex", "text/x-tex", key="met_tex")  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=16)
def chart_file(name: str, stamp: float, metric: str, fmt: str, truth: bool) -> bytes:
    ev = load(name, stamp)
    return charts.to_bytes(
        charts.dot_whisker(ev["summary"], metric, f"{name}: {tables.metric_label(metric)} (95% CI)", not truth), fmt
    )


e[2].download_button(
    "Chart (PNG)", chart_file(name, stamp, metric, "png", show_truth), f"{name}_{metric}.png", "image/png", key="met_png"
)
e[3].download_button(
    "Chart (PDF)", chart_file(name, stamp, metric, "pdf", show_truth), f"{name}_{metric}.pdf", "application/pdf", key="met_pdf"
)
if pair_df is not None:
    e[4].download_button(
        "Pairs (CSV)", pair_df.to_csv(index=False).encode(), f"{name}_{metric}_pairs.csv", "text/csv", key="met_pairs_csv"
    )
if not by_subject.empty:
    e[5].download_button("By subject (CSV)", tables.by_label_long(by_subject).to_csv(index=False).encode(),
                         f"{name}_{metric}_by_subject.csv", "text/csv", key="met_subjects_csv")  # fmt: skip

# --- best and worst photos -----------------------------------------------------------------------------
st.subheader("Best and worst photos")
methods = [m for m in summary["method"].astype(str) if m in set(per_image["method"].astype(str))]
if metric not in per_image or not methods:
    st.info(f"{tables.metric_label(metric)} is a set metric (one value per method): no per-photo ranking.")
    st.stop()
learned = [m for m in methods if m not in tables.REFERENCE_ROWS]
default = "classification" if "classification" in learned else (learned[0] if learned else methods[0])
g1, g2 = st.columns(2)
with g1:
    gmethod = st.selectbox("Method", methods, index=methods.index(default), key="met_gal_method")
with g2:
    k = st.slider("Photos each", 1, 6, 3, key="met_gal_k")
direction = tables.metric_direction(metric)
rows = per_image[per_image["method"].astype(str) == gmethod].dropna(subset=[metric])
rows = rows.sort_values(metric, ascending=direction < 0)
picked = [("Best", rows.head(k)), ("Worst", rows.tail(k).iloc[::-1])]
st.caption(f"Ranked by {tables.metric_label(metric)} ({tables.better_text(metric)}); photos as the evaluation saw them "
           f"({meta.get('size', 256)} px), colorized by {gmethod} now (cached for every later visit).")  # fmt: skip
todo = [str(r["image"]) for _, part in picked for _, r in part.iterrows()]
go_ahead = True
if gmethod in common.SLOW_METHODS:
    st.warning(f"{gmethod} optimises each photo (tens of seconds each on a CPU): {len(todo)} photos may take minutes.")
    go_ahead = st.button(f"Colorize the {len(todo)} photos with {gmethod}", key="met_gal_go")
if go_ahead:
    bar = common.Progress(f"{gmethod} on the gallery photos")
    images = {}
    for i, image in enumerate(todo):
        bar(i, len(todo), f" ({image})")
        inner = (
            (lambda d, n, i=i, image=image: bar(i + d / max(n, 1), len(todo), f" ({image}, iteration {d}/{n})"))
            if gmethod in common.SLOW_METHODS
            else None
        )
        images[image] = (common.gallery_image(meta, image, gmethod, progress=inner), common.gallery_truth(meta, image))
    bar.bar.empty()
    for title, part in picked:
        st.markdown(f"**{title} {min(k, len(part))}** - input, {gmethod}, truth")
        for _, row in part.iterrows():
            out, truth = images[str(row["image"])]
            if out is None or truth is None:
                st.caption(f"{row['image']}: photo or model not available here")
                continue
            cols = st.columns(3)
            cols[0].image(common.to_grey(truth), caption=f"input: {row['image']}", width="stretch")
            cols[1].image(out, caption=f"{gmethod}: {metric_head} {tables.fmt(row[metric], metric)}", width="stretch")
            cols[2].image(truth, caption="ground truth", width="stretch")
