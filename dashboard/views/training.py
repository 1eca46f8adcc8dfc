"""Training: loss curves of the runs in results/runs/, GAN losses, validation, sample grids."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import common

st.title("Training runs")
runs = common.list_runs()
if not runs:
    st.info(
        f"No training runs yet in `{common.runs_dir()}`. Start one with "
        "`python -m experiments.train --config experiments/configs/<method>.toml`; it appears here while it trains."
    )
    st.stop()

labels = {r: f"{r} ({common.run_method_name(r)})" for r in runs}
chosen = st.multiselect("Runs", runs, default=runs, format_func=labels.get, key="trn_runs")
c1, c2, c3 = st.columns(3)
with c1:
    xaxis = st.radio("x axis", ["step", "wall_s", "images_seen"], horizontal=True, key="trn_x",
                     format_func={"step": "steps", "wall_s": "wall time (s)", "images_seen": "images seen"}.get)
with c2:
    smooth = st.slider("EMA smoothing", 0.0, 0.99, 0.6, 0.01, key="trn_ema")
with c3:
    logy = st.checkbox("log scale", key="trn_log")
    follow = st.toggle("follow live runs", value=any(common.run_is_live(r) for r in chosen), key="trn_follow")


def figure(df: pd.DataFrame, columns: list[str], title: str) -> go.Figure:
    fig = go.Figure()
    for run, g in df.groupby("run", sort=False):
        g = g.sort_values("step")
        for c in columns:
            if c not in g or g[c].isna().all():
                continue
            fig.add_trace(go.Scatter(x=g[xaxis], y=common.ema(g[c].to_numpy(), smooth), mode="lines", name=f"{run} · {c}"))
    fig.update_layout(title=title, height=380, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title=xaxis)
    if logy:
        fig.update_yaxes(type="log")
    return fig


def curves():
    logs = [common.read_run_csv(r) for r in chosen]
    logs = [d for d in logs if not d.empty]
    if not logs:
        st.warning("The chosen runs have no logged steps yet.")
        return
    df = pd.concat(logs, ignore_index=True)
    losses = sorted({c for d in logs for c in common.loss_columns(d)})
    default = [c for c in ("loss",) if c in losses] or losses[:1]
    picked = st.multiselect("Loss columns", losses, default=default, key="trn_losses")
    st.plotly_chart(figure(df, picked, "Training loss"), key="trn_loss_chart")
    latest = df.sort_values("step").groupby("run").tail(1)[["run", "method", "step", "epoch", "wall_s", "images_seen"]]
    st.dataframe(latest, hide_index=True, key="trn_latest")

    gan = df[df["run"].isin([r for r, d in zip(chosen, logs) if {"loss_g", "loss_d"} <= set(d.columns)])] if "loss_g" in df else df.iloc[:0]
    if not gan.empty:
        st.subheader("GAN: generator and discriminator")
        cols = [c for c in ("loss_g", "loss_d", "loss_l1", "loss_d_real", "loss_d_fake") if c in gan]
        st.plotly_chart(figure(gan, cols, "Generator vs discriminator"), key="trn_gan_chart")

    vals = [common.read_run_csv(r, "val.csv") for r in chosen]
    vals = [d for d in vals if not d.empty]
    if vals:
        vdf = pd.concat(vals, ignore_index=True)
        st.plotly_chart(figure(vdf, common.loss_columns(vdf), "Validation (fixed batch)"), key="trn_val_chart")

    st.download_button("Export the logs (CSV)", df.to_csv(index=False).encode(), file_name="training_logs.csv", mime="text/csv", key="trn_csv")


st.fragment(run_every=5 if follow else None)(curves)()

st.subheader("Sample grids")
st.caption("Rows: grey input, prediction, ground truth - one column per validation photo.")
with_samples = [r for r in chosen if common.sample_steps(r)]
if not with_samples:
    st.info("No sample grids yet (a run writes one at every checkpoint).")
else:
    srun = st.selectbox("Run", with_samples, format_func=labels.get, key="trn_sample_run")
    steps = common.sample_steps(srun)
    keys = sorted(steps)
    step = keys[0] if len(keys) == 1 else st.select_slider("Checkpoint step", keys, value=keys[-1], key="trn_sample_step")
    st.image(str(steps[step]), caption=f"{srun} at step {step}", width="stretch")
