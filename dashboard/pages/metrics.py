"""Metrics: the evaluation tables with confidence intervals, charts, best/worst photos, exports."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import common

st.title("Evaluation metrics")

# --- run an evaluation from the page -----------------------------------------------------------
with st.expander("Run an evaluation", expanded=not common.list_evaluations()):
    launcher = common.evaluation_launcher()
    if launcher is None:
        st.info("The evaluation runner (experiments/evaluate.py) is not available in this checkout.")
    else:
        folder = common.test_folder()
        names = common.backends.names()
        ev_name = st.text_input("Name", value="dashboard", key="met_new_name", max_chars=40)
        ev_folder = st.text_input("Photo folder", value=str(folder) if folder else "", key="met_new_folder")
        ev_methods = st.multiselect("Methods", names, default=[n for n in names if common.method_status(n).available], key="met_new_methods")
        ev_limit = st.number_input("At most this many photos (0: all)", 0, 100000, 20, key="met_new_limit")
        if st.button("Start evaluation", key="met_new_run", disabled=not ev_methods):
            bar = st.progress(0.0, text="starting")
            try:
                out = launcher(ev_name, ev_folder, ev_methods, int(ev_limit), lambda f, text: bar.progress(min(max(f, 0.0), 1.0), text=text))
                bar.progress(1.0, text="done")
                st.success(f"Wrote {out}")
            except (common.ColorizationError, ValueError, FileNotFoundError) as exc:
                st.error(str(exc))

evals = common.list_evaluations()
if not evals:
    st.info(f"No evaluation tables yet in `{common.metrics_dir()}`. Run `python -m experiments.evaluate` or start one above.")
    st.stop()

name = st.selectbox("Evaluation", evals, key="met_eval")
per_image, summary = common.read_evaluation(name)
metrics = common.metric_columns(summary if summary is not None else per_image)
if not metrics:
    st.warning(f"{name}.csv holds no numeric metric columns.")
    st.stop()

# --- summary table --------------------------------------------------------------------------------
st.subheader("Summary")
if summary is None:
    st.info(f"No {name}.summary.csv (means with confidence intervals); showing per-method means of {name}.csv without intervals.")
    table = per_image.groupby("method")[metrics].mean().reset_index()
else:
    table = summary
st.caption("Click a column header to sort. Intervals: the evaluation's confidence intervals.")
st.dataframe(table, hide_index=True, key="met_summary")

# --- bar charts -----------------------------------------------------------------------------------
metric = st.selectbox("Metric", metrics, key="met_metric", help="higher is better" if True else None)
better = "higher is better" if common.higher_is_better(metric) else "lower is better"
fig = go.Figure()
ci = common.ci_columns(table, metric)
err = None
if ci:
    err = dict(type="data", symmetric=False, array=(table[ci[1]] - table[metric]).tolist(), arrayminus=(table[metric] - table[ci[0]]).tolist())
fig.add_trace(go.Bar(x=table["method"].astype(str), y=table[metric], error_y=err, name=metric))
fig.update_layout(title=f"{metric} ({better})", height=360, margin=dict(l=10, r=10, t=40, b=10))
st.plotly_chart(fig, key="met_chart", config={"toImageButtonOptions": {"format": "png", "filename": f"{name}_{metric}"}})

# --- exports ---------------------------------------------------------------------------------------
c1, c2, c3 = st.columns(3)
with c1:
    st.download_button("CSV", table.to_csv(index=False).encode(), file_name=f"{name}.summary.csv", mime="text/csv", key="met_csv")
with c2:
    st.download_button("LaTeX", table.to_latex(index=False, float_format="%.3f").encode(), file_name=f"{name}.tex", mime="text/x-tex", key="met_tex")
with c3:
    st.download_button("PNG chart", common.bar_chart_png(table, metric, f"{name}: {metric} ({better})"), file_name=f"{name}_{metric}.png", mime="image/png", key="met_png")

# --- best and worst photos ------------------------------------------------------------------------
st.subheader("Best and worst photos")
img_col = common.image_column(per_image)
methods = [m for m in per_image["method"].astype(str).unique() if m not in ("gray", "grey", "truth")] if "method" in per_image else []
if img_col is None or not methods or metric not in per_image:
    st.info(f"{name}.csv has no per-image rows for {metric}.")
    st.stop()
g1, g2 = st.columns(2)
with g1:
    gmethod = st.selectbox("Method", methods, key="met_gal_method")
with g2:
    k = st.slider("Photos each", 1, 8, 3, key="met_gal_k")
rows = per_image[per_image["method"].astype(str) == gmethod].dropna(subset=[metric])
rows = rows.sort_values(metric, ascending=not common.higher_is_better(metric))
for title, part in (("Best", rows.head(k)), ("Worst", rows.tail(k).iloc[::-1])):
    st.markdown(f"**{title} {k} for {gmethod} by {metric}**")
    cols = st.columns(k)
    for col, (_, row) in zip(cols, part.iterrows()):
        with col:
            shown = common.gallery_image(row, img_col, gmethod)
            cap = f"{pd.Series([row[img_col]]).astype(str).iloc[0].split('/')[-1]} - {metric} {row[metric]:.3f}"
            if shown is None:
                st.caption(f"{cap} (photo not found)")
            else:
                st.image(shown, caption=cap, width="stretch")
