"""Metrics: the evaluation tables (experiments.evaluate) with confidence intervals, charts,
best/worst photos per method and metric, an evaluation run from the page, exports."""

import plotly.graph_objects as go
import streamlit as st

from dashboard import common

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
    if st.button("Start evaluation", key="met_new_run", disabled=not ev_methods):
        bar = st.progress(0.0, text="starting")
        try:
            paths = common.run_evaluation(
                ev_name, ev_folder, ev_methods, int(ev_limit), model_metrics=ev_models,
                progress=lambda f, text: bar.progress(min(max(float(f), 0.0), 1.0), text=text),
            )
            st.success(f"Wrote {paths['csv']} and its summary, Markdown and LaTeX tables.")
            st.session_state["met_eval"] = paths["csv"].stem
        except (common.ColorizationError, ValueError, FileNotFoundError) as exc:
            st.error(str(exc))

evals = common.list_evaluations()
if not evals:
    st.info(f"No evaluation tables yet in `{common.metrics_dir()}`. Start one above, or run "
            "`python -m experiments.evaluate --data ../shared/data/test --methods all --out results/metrics/test.csv`.")
    st.stop()

name = st.selectbox("Evaluation", evals, key="met_eval")
try:
    ev = common.read_evaluation(name)
except Exception as exc:  # noqa: BLE001 - a damaged file must not take the page down
    st.error(f"Cannot read {name}.csv: {exc}")
    st.stop()
per_image, summary, meta = ev["per_image"], ev["summary"], ev["meta"]
if summary is None:
    st.warning(f"No {name}.summary.csv next to {name}.csv: showing means without confidence intervals.")
    summary = per_image.groupby("method", sort=False)[common.metric_columns(per_image)].mean().reset_index()
metrics = common.metric_columns(summary)
if not metrics:
    st.warning(f"{name} holds no metric columns.")
    st.stop()
if meta:
    st.caption(f"{meta.get('photos', '?')} photos from `{meta.get('data', '?')}` at {meta.get('size', '?')} px; "
               f"{meta.get('created', '')}. Intervals: 95% bootstrap over photos.")
for col, why in (meta.get("unavailable") or {}).items():
    st.caption(f"{col}: unavailable - {why}")

# --- summary table --------------------------------------------------------------------------------
st.subheader("Summary")
st.caption("Click a column header to sort; `_lo` / `_hi` are the interval bounds; `gray` and `truth` are the floor and ceiling.")
st.dataframe(summary, hide_index=True, key="met_summary", column_config={c: st.column_config.NumberColumn(format="%.3f") for c in summary.columns if c in metrics or c.endswith(("_lo", "_hi"))})

# --- bar chart per metric -------------------------------------------------------------------------
metric = st.selectbox("Metric", metrics, format_func=lambda m: f"{m} - {common.metric_label(m)}", key="met_metric")
direction = common.metric_direction(metric)
better = {1: "higher is better", -1: "lower is better"}.get(direction, "no better direction")
chart = summary.dropna(subset=[metric])
ci = common.ci_columns(chart, metric)
err = None
if ci:
    err = dict(type="data", symmetric=False, array=(chart[ci[1]] - chart[metric]).tolist(), arrayminus=(chart[metric] - chart[ci[0]]).tolist())
colours = ["#9aa0a6" if m in ("gray", "truth") else "#4c78a8" for m in chart["method"].astype(str)]
fig = go.Figure(go.Bar(x=chart["method"].astype(str), y=chart[metric], error_y=err, marker_color=colours))
fig.update_layout(title=f"{metric} ({better})", height=360, margin=dict(l=10, r=10, t=40, b=10))
st.plotly_chart(fig, key="met_chart", config={"toImageButtonOptions": {"format": "png", "filename": f"{name}_{metric}"}})

# --- exports ---------------------------------------------------------------------------------------
c1, c2, c3 = st.columns(3)
with c1:
    st.download_button("CSV", summary.to_csv(index=False).encode(), file_name=f"{name}.summary.csv", mime="text/csv", key="met_csv")
with c2:
    tex = common.metrics_dir() / f"{name}.tex"
    latex = tex.read_text() if tex.exists() else summary.to_latex(index=False, float_format="%.3f")
    st.download_button("LaTeX", latex.encode(), file_name=f"{name}.tex", mime="text/x-tex", key="met_tex")
with c3:
    st.download_button("PNG chart", common.bar_chart_png(chart, metric, f"{name}: {metric} ({better})"),
                       file_name=f"{name}_{metric}.png", mime="image/png", key="met_png")

# --- best and worst photos -----------------------------------------------------------------------
st.subheader("Best and worst photos")
methods = [m for m in summary["method"].astype(str) if m in set(per_image["method"].astype(str))]
if metric not in per_image or not methods:
    st.info(f"{metric} is a set metric (one value per method): no per-photo ranking.")
    st.stop()
g1, g2 = st.columns(2)
with g1:
    gmethod = st.selectbox("Method", methods, key="met_gal_method")
with g2:
    k = st.slider("Photos each", 1, 6, 3, key="met_gal_k")
rows = per_image[per_image["method"].astype(str) == gmethod].dropna(subset=[metric])
rows = rows.sort_values(metric, ascending=direction < 0)
st.caption(f"Ranked by {metric} ({better}); photos as the evaluation saw them, colorized by {gmethod} now (cached).")
for title, part in (("Best", rows.head(k)), ("Worst", rows.tail(k).iloc[::-1])):
    st.markdown(f"**{title} {min(k, len(part))}**")
    cols = st.columns(k)
    for col, (_, row) in zip(cols, part.iterrows()):
        with col:
            img = common.gallery_image(meta, str(row["image"]), gmethod)
            cap = f"{row['image']} - {metric} {row[metric]:.3f}"
            if img is None:
                st.caption(f"{cap} (photo or model not available here)")
            else:
                st.image(img, caption=cap, width="stretch")
