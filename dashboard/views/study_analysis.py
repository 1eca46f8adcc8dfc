"""Study analysis (admin only), the same numbers as ``python -m experiments.study analyse|export``.

Turing test: fool rate per method (share of scored trials where the real photo was picked as
fake; 50 % = indistinguishable) with Wilson and Clopper-Pearson intervals, a bootstrap over
participants and a binomial test against 50 %, after vigilance exclusions (every method has a
row, with its exclusions); pairwise differences between methods with intervals; the photos that
fooled most. Arena: Bradley-Terry log-strengths (centred at 0) with bootstrap intervals and the
predicted win probabilities. Export: votes, results, LaTeX table and figure.
"""

from __future__ import annotations

import io
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from experiments.study import analysis, ui  # noqa: E402

st.header("Study analysis")
ui.admin_gate()
store = ui.store()

all_studies = store.studies()
if not all_studies:
    st.info("No studies yet. Create one on the Study designer page.")
    st.stop()
names = [s.name for s in all_studies]
if st.session_state.get("analysis_pick") not in names:
    st.session_state["analysis_pick"] = names[-1]
name = st.selectbox("Study", names, key="analysis_pick")
c1, c2 = st.columns(2)
conf = c1.select_slider("Confidence level", [0.8, 0.9, 0.95, 0.99], value=0.95, key="analysis_conf")
n_boot = c2.number_input("Bootstrap resamples", 100, 20_000, 2000, step=100, key="analysis_boot")
a = analysis.analyse(store, name, conf, int(n_boot))
s, design, votes, parts = a.study, a.study.design, a.votes, a.participants

c = st.columns(4)
c[0].metric("Participants", len(parts))
c[1].metric("Finished", int(parts["finished_at"].notna().sum()) if len(parts) else 0)
c[2].metric("Votes", len(votes))
c[3].metric("Status", s.status)
for w in a.warnings:
    st.warning(w)

PCT = st.column_config.NumberColumn(format="%.3f")
P = st.column_config.NumberColumn(format="%.2g")


def table(df: pd.DataFrame, key: str, config: dict | None = None) -> None:
    st.dataframe(df, hide_index=True, key=key, width="stretch", column_config=config or {})


if s.kind == "turing":
    st.subheader("Fool rate per method")
    st.caption(
        f"Scored trials of participants who passed vigilance (at most {design.vigilance_max_fail} failed); every method "
        f"has a row, with the participants it kept and excluded. Intervals ({conf:.0%}): Wilson and a percentile bootstrap "
        "over participants (blank when too few); p: two-sided binomial test against 50 %. Clopper-Pearson is in the export."
    )
    shown = a.results[analysis.TURING_SHOW + ["note"]]
    table(shown, "analysis_results", {k: PCT for k in shown.columns if k.endswith(("_lo", "_hi", "rate"))} | {"p_vs_50": P})
    ok = a.results[a.results["fool_rate"].notna()]
    if len(ok):
        fig = go.Figure(
            go.Bar(
                x=ok["method"],
                y=ok["fool_rate"],
                marker_color="#4c78a8",
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=ok["wilson_hi"] - ok["fool_rate"],
                    arrayminus=ok["fool_rate"] - ok["wilson_lo"],
                ),
            )
        )
        fig.add_hline(y=0.5, line_dash="dash", annotation_text="chance (indistinguishable)")
        fig.update_layout(
            title="Fool rate (Wilson interval)", height=340, margin=dict(l=10, r=10, t=40, b=10), yaxis_range=[0, 1]
        )
        st.plotly_chart(fig, key="analysis_chart")

    if a.differences is not None and len(a.differences):
        st.subheader("Differences between methods")
        st.caption(
            f"Fool rate of a minus b, {conf:.0%} interval from a bootstrap over participants within each method; p from a "
            "permutation test of participants' method labels, Holm-adjusted over all pairs."
        )
        d = a.differences[["a", "b", "difference", "lo", "hi", "p", "p_holm", "note"]]
        table(d, "analysis_differences", {k: PCT for k in ("difference", "lo", "hi")} | {"p": P, "p_holm": P})

    st.subheader("Vigilance")
    excl = a.vigilance[a.vigilance["excluded"]] if len(a.vigilance) else a.vigilance
    st.write(f"{len(excl)} of {len(a.vigilance)} participants excluded for failing vigilance trials.")
    table(a.vigilance, "analysis_vigilance")

    if a.photos is not None and len(a.photos):
        st.subheader("Photos that fooled most")
        table(a.photos.drop(columns="photo"), "analysis_photos", {"fool_rate": PCT})
        for row in a.photos.head(3).itertuples():
            cols = st.columns([1, 1, 2])
            cols[0].image(store.image_png(name, row.photo, "real"), caption=f"real: {row.file}")
            cols[1].image(store.image_png(name, row.photo, row.method), caption=f"{row.method}")
            cols[2].write(f"fooled {row.fooled} of {row.trials} ({row.fool_rate:.0%})")

    if len(votes):
        from experiments.study import stats

        main = stats.included_main(votes, design.vigilance_max_fail)
        if main["rt_ms"].notna().any():
            st.subheader("Response times (scored trials, included participants)")
            rt = go.Figure([go.Box(y=g["rt_ms"] / 1000, name=m) for m, g in main.groupby("method")])
            rt.update_layout(yaxis_title="seconds", height=300, margin=dict(l=10, r=10, t=10, b=10))
            st.plotly_chart(rt, key="analysis_rt")
else:
    st.subheader("Leaderboard (Bradley-Terry)")
    st.caption(
        f"Log-strengths centred at 0 (a difference of 1 = odds of e:1; elo: the same on an Elo-like scale), ties as half "
        f"wins; {conf:.0%} intervals from a bootstrap over participants."
    )
    board = a.results
    num = st.column_config.NumberColumn(format="%+.2f")
    table(
        board,
        "analysis_leaderboard",
        {"strength": num, "lo": num, "hi": num, "elo": st.column_config.NumberColumn(format="%.0f"), "win_rate": PCT},
    )
    err = None
    if board["lo"].notna().all():
        err = dict(
            type="data", symmetric=False, array=board["hi"] - board["strength"], arrayminus=board["strength"] - board["lo"]
        )
    fig = go.Figure(
        go.Scatter(x=board["method"], y=board["strength"], mode="markers", marker=dict(size=11, color="#4c78a8"), error_y=err)
    )
    fig.add_hline(y=0, line_dash="dash", annotation_text="average method")
    fig.update_layout(
        title="Bradley-Terry log-strength", height=340, margin=dict(l=10, r=10, t=40, b=10), yaxis_title="log-strength"
    )
    st.plotly_chart(fig, key="analysis_bt_chart")
    st.subheader("Predicted win probability (row beats column)")
    st.dataframe(a.win_probability.style.format("{:.2f}"), key="analysis_winprob", width="stretch")

st.subheader("Export")
st.caption("The same files as `python -m experiments.study export NAME --out DIR`.")


@st.cache_data(max_entries=16, show_spinner="Writing the export...")
def export_files(url: str, name: str, n_votes: int, n_finished: int, status: str, conf: float, n_boot: int) -> dict[str, bytes]:
    """The export's files (cached until a vote, a finished participant or the status changes)."""
    from experiments.study.storage import StudyStore

    st_ = StudyStore(url)
    with tempfile.TemporaryDirectory() as tmp:
        files = analysis.export(st_, analysis.analyse(st_, name, conf, n_boot), tmp)
        blobs = {f.name: f.read_bytes() for f in files}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for fname, data in blobs.items():
            z.writestr(f"{name}/{fname}", data)
    return blobs | {"zip": buf.getvalue()}


n_finished = int(parts["finished_at"].notna().sum()) if len(parts) else 0
blobs = export_files(store.url, name, len(votes), n_finished, s.status, conf, int(n_boot))
c1, c2, c3, c4 = st.columns(4)
c1.download_button(
    "Everything (zip)", blobs["zip"], f"{name}-study.zip", "application/zip", key="analysis_dl_zip", type="primary"
)
c2.download_button("Votes (CSV)", blobs["votes.csv"], f"{name}-votes.csv", "text/csv", key="analysis_dl_votes")
c3.download_button("Results (CSV)", blobs["results.csv"], f"{name}-results.csv", "text/csv", key="analysis_dl_results")
c4.download_button("Table (LaTeX)", blobs["results.tex"], f"{name}-results.tex", "text/x-tex", key="analysis_dl_tex")
