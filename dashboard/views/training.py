"""Training: one panel per run (and per loss scale) of results/runs/, the GAN's D(real)/D(fake),
the validation curves of all methods together, labelled sample grids that follow the chosen run."""

import pandas as pd
import streamlit as st

from dashboard import common
from experiments import charts, runlogs

st.title("Training runs")
runs = runlogs.list_runs()
if not runs:
    st.info(
        f"No training runs yet in `{common.runs_dir()}`. Start one with "
        "`python -m experiments.train --config experiments/configs/<method>.toml`; it appears here while it trains."
    )
    st.stop()

shipped, until = runlogs.shipped_lineage()  # until: a run a shipped model continued from is dotted past that point
live = {r for r in runs if runlogs.run_is_live(r)}
labels = {r: f"{r} ({runlogs.run_method_name(r)})" + (f" - shipped as {shipped[r]}" if r in shipped else "")
          + (" - training now" if r in live else "") for r in runs}  # fmt: skip
chosen = st.multiselect("Runs", runs, default=runlogs.default_runs(runs, shipped), format_func=labels.get, key="trn_runs",
                        help="First shown: the runs the shipped models came from and any run training now; "
                             "add experiments and earlier runs here.")  # fmt: skip
c1, c2, c3 = st.columns(3)
with c1:
    xaxis = st.radio("x axis", list(runlogs.X_AXES), horizontal=True, key="trn_x", format_func=runlogs.X_AXES.get)
with c2:
    smooth = st.slider("EMA smoothing", 0.0, 0.99, 0.6, 0.01, key="trn_ema", help="0 = raw values")
with c3:
    scale = st.radio("y scale", ["auto", "linear", "log"], horizontal=True, key="trn_scale",
                     help="auto: log where a run's loss terms differ in size by more than 20x")  # fmt: skip
    follow = st.toggle("follow live runs", value=any(r in live for r in chosen), key="trn_follow")


def curves():
    logs = {r: runlogs.read_run_csv(r) for r in chosen}
    logs = {r: d for r, d in logs.items() if not d.empty}
    if not logs:
        st.warning("The chosen runs have no logged steps yet.")
        return
    st.subheader("Validation, every run together")
    st.caption("Each run scores its checkpoints with the full colorize flow on its fixed validation photos (200 by default, "
               "grey input); the dotted line is grey (ab = 0) on the same photos. The shipped model's run is solid, other runs "
               "of the same method dashed or dotted; a run the shipped model continued from is solid up to where it left it, "
               "faint and dotted after (against images seen).")  # fmt: skip
    frame, metric, left_out = runlogs.validation_curves(list(logs))
    if frame.empty:
        st.info("No validation logs (val.csv) yet.")
    else:
        st.plotly_chart(charts.validation_curves_plotly(frame, metric, xaxis, shipped, runlogs.val_references(list(logs)), until=until),
                        key="trn_val_chart")  # fmt: skip
        if left_out:
            st.caption(f"Not shown (their val.csv has no {metric} yet): {', '.join(left_out)}.")
    st.subheader("Training loss, one panel per run")
    st.caption("Each run's own loss terms on its own axis (their scales differ by orders of magnitude between methods); "
               "the GAN's discriminator outputs D(real) and D(fake) - its mean probability that a photo is real - in a panel of "
               "their own (0.5: it cannot tell).")  # fmt: skip
    override = {"auto": None, "linear": False, "log": True}[scale]
    figs = charts.learning_curves_plotly(logs, xaxis, smooth, override)
    for start in range(0, len(figs), 2):  # two panels a row on a wide screen; stacked on a phone
        for col, (i, fig) in zip(st.columns(2), enumerate(figs[start : start + 2], start)):
            with col:
                st.plotly_chart(fig, key=f"trn_loss_chart_{i}")
    latest = pd.concat([d.tail(1) for d in logs.values()], ignore_index=True)
    keep = [c for c in ("run", "method", "step", "images_seen", "wall_h") if c in latest]
    st.dataframe(latest[keep].rename(columns={"images_seen": "images seen", "wall_h": "wall time (h)"}).round(2), hide_index=True,
                 key="trn_latest")  # fmt: skip

    all_logs = pd.concat(logs.values(), ignore_index=True)
    st.download_button("Export the logs (CSV)", all_logs.to_csv(index=False).encode(), file_name="training_logs.csv", mime="text/csv",
                       key="trn_csv")  # fmt: skip


st.fragment(run_every=5 if follow else None)(curves)()

st.subheader("Sample grids")
with_samples = [r for r in chosen if runlogs.sample_steps(r)]
if not with_samples:
    st.info("No sample grids yet (a run writes one at every checkpoint).")
else:
    srun = st.selectbox("Run", with_samples, format_func=labels.get, key="trn_sample_run")
    steps = runlogs.sample_steps(srun)
    keys = sorted(steps)
    # the step slider belongs to the run: a new run starts at its own last checkpoint
    step = keys[0] if len(keys) == 1 else st.select_slider("Checkpoint step", keys, value=keys[-1], key=f"trn_sample_step_{srun}",
                                                           format_func=lambda s: f"{s:,}")  # fmt: skip
    st.image(runlogs.labelled_sample_grid(steps[step], f"{srun} at step {step:,}"), width="stretch",
             caption="Rows: grey input, prediction, ground truth; columns: the run's fixed validation photos.")  # fmt: skip
