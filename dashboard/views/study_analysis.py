"""Study analysis (admin only).

Turing test: fool rate per method (share of scored trials where the real photo was picked as
fake; 50 % = indistinguishable) with Wilson and Clopper-Pearson intervals, a bootstrap over
participants and a binomial test against 50 %, after vigilance exclusions; the photos that
fooled most; CSV export. Arena: Bradley-Terry leaderboard with bootstrap intervals.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from experiments.study import stats, ui  # noqa: E402

st.header("Study analysis")
ui.admin_gate()
store = ui.store()

all_studies = store.studies()
if not all_studies:
    st.info("No studies yet. Create one on the Study designer page.")
    st.stop()
name = st.selectbox("Study", [s.name for s in all_studies], index=len(all_studies) - 1, key="analysis_pick")
s = store.study(name)
design = s.design
votes = store.votes_frame(name)
parts = store.participants_frame(name)
conf = st.select_slider("Confidence level", [0.8, 0.9, 0.95, 0.99], value=0.95, key="analysis_conf")
n_boot = st.number_input("Bootstrap resamples", 100, 20_000, 2000, step=100, key="analysis_boot")

c = st.columns(4)
c[0].metric("Participants", len(parts))
c[1].metric("Finished", int(parts["finished_at"].notna().sum()) if len(parts) else 0)
c[2].metric("Votes", len(votes))
c[3].metric("Status", s.status)


def csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def interval_chart(df: pd.DataFrame, x: str, y: str, lo: str, hi: str, ref: float | None, title: str) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=df[x],
            y=df[y],
            marker_color="#4c78a8",
            error_y=dict(type="data", symmetric=False, array=df[hi] - df[y], arrayminus=df[y] - df[lo]),
        )
    )
    if ref is not None:
        fig.add_hline(y=ref, line_dash="dash", annotation_text="chance (perfect colorizer)")
    fig.update_layout(title=title, height=360, margin=dict(l=10, r=10, t=40, b=10))
    return fig


if votes.empty:
    st.info("No votes yet.")
    st.stop()

sources = store.photo_sources(name)
raw = votes.assign(photo_file=votes["photo"].map(sources))

if s.kind == "turing":
    table = stats.turing_table(votes)
    vig = stats.vigilance(table, design.vigilance_max_fail)
    results = stats.fool_rates(votes, design.vigilance_max_fail, conf, int(n_boot), seed=design.seed)
    st.subheader("Fool rate per method")
    st.caption(
        f"Scored trials of participants who passed vigilance (at most {design.vigilance_max_fail} failed). "
        f"Intervals: Wilson, Clopper-Pearson (exact) and a percentile bootstrap over participants ({conf:.0%}); "
        "p: two-sided binomial test against 50 %."
    )
    st.dataframe(
        results,
        hide_index=True,
        key="analysis_results",
        column_config={
            k: st.column_config.NumberColumn(format="%.3f") for k in results.columns if k.endswith(("_lo", "_hi", "rate"))
        }
        | {"p_vs_50": st.column_config.NumberColumn(format="%.2g")},
    )
    if len(results):
        st.plotly_chart(
            interval_chart(results, "method", "fool_rate", "wilson_lo", "wilson_hi", 0.5, "Fool rate (Wilson interval)"),
            key="analysis_chart",
        )

    st.subheader("Vigilance")
    excl = vig[vig["excluded"]]
    st.write(f"{len(excl)} of {len(vig)} participants excluded for failing vigilance trials.")
    st.dataframe(vig, hide_index=True, key="analysis_vigilance")

    st.subheader("Photos that fooled most")
    photos = stats.photo_fool_rates(votes, design.vigilance_max_fail)
    photos.insert(0, "file", photos["photo"].map(lambda p: Path(sources.get(p, p)).name))
    st.dataframe(photos.drop(columns="photo"), hide_index=True, key="analysis_photos")
    for row in photos.head(3).itertuples():
        cols = st.columns([1, 1, 2])
        cols[0].image(store.image_png(name, row.photo, "real"), caption=f"real: {row.file}")
        cols[1].image(store.image_png(name, row.photo, row.method), caption=f"{row.method}")
        cols[2].write(f"fooled {row.fooled} of {row.trials} ({row.fool_rate:.0%})")

    main = table[table["phase"] == "main"]
    if main["rt_ms"].notna().any():
        st.subheader("Response times (scored trials)")
        rt = go.Figure([go.Box(y=g["rt_ms"] / 1000, name=m) for m, g in main.groupby("method")])
        rt.update_layout(yaxis_title="seconds", height=300, margin=dict(l=10, r=10, t=10, b=10))
        st.plotly_chart(rt, key="analysis_rt")
    raw = raw.merge(vig[["participant", "excluded"]], on="participant", how="left")
else:
    results = stats.bradley_terry(votes, design.methods, conf, int(min(n_boot, 5000)), seed=design.seed)
    st.subheader("Leaderboard (Bradley-Terry)")
    st.caption(
        f"Ratings on an Elo-like scale (400 points = 10:1 odds), ties as half wins; {conf:.0%} intervals from a "
        "bootstrap over participants."
    )
    st.dataframe(
        results,
        hide_index=True,
        key="analysis_leaderboard",
        column_config={k: st.column_config.NumberColumn(format="%.0f") for k in ("rating", "lo", "hi")},
    )
    st.plotly_chart(
        interval_chart(results, "method", "rating", "lo", "hi", None, "Bradley-Terry rating"), key="analysis_bt_chart"
    )
    st.subheader("Predicted win probability (row beats column)")
    order = list(results["method"])
    prob = stats.bt_win_probability(results["rating"].to_numpy())
    np.fill_diagonal(prob, np.nan)
    st.dataframe(pd.DataFrame(prob, index=order, columns=order).style.format("{:.2f}", na_rep=""), key="analysis_winprob")

st.subheader("Export")
c1, c2 = st.columns(2)
c1.download_button("Raw votes (CSV)", csv(raw), f"{name}-votes.csv", "text/csv", key="analysis_dl_votes")
c2.download_button("Results (CSV)", csv(results), f"{name}-results.csv", "text/csv", key="analysis_dl_results")
