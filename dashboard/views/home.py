"""Home: what the product is, the five methods with their status, links to the pages, the report."""

import streamlit as st

from dashboard import common
from experiments import runlogs

st.title("Colorization workbench")
st.markdown(
    "Compare the classic automatic image colorization methods **fairly**: on the same photos, with the "
    "same metrics, and in front of human judges. Five methods, each faithful to its paper, run behind one "
    "interface - the same one the command line (`python -m experiments.colorize`) uses."
)

cols = st.columns(4)
links = [
    ("views/compare.py", "Compare", ":material/compare:", "Run the methods side by side on one photo."),
    ("views/metrics.py", "Metrics", ":material/bar_chart:", "Who wins, by how much, and is it more than chance."),
    ("views/training.py", "Training", ":material/show_chart:", "Loss and validation curves, sample grids."),
    ("views/history.py", "History", ":material/history:", "Your earlier comparisons."),
]
for col, (page, label, icon, text) in zip(cols, links):
    with col:
        st.page_link(page, label=label, icon=icon)
        st.caption(text)

st.subheader("Methods")


def methods_table():
    statuses = common.statuses_in_background()
    checking = statuses is None
    if checking:  # what the files say, at once; the full check (imports PyTorch) replaces it
        statuses = [common.quick_status(n) for n in common.backends.names()]
    elif st.session_state.get("home_waiting"):
        st.session_state["home_waiting"] = False
        st.rerun()  # drop the polling fragment once the answer is there
    rows = common.status_rows(statuses)
    st.dataframe(
        rows,
        hide_index=True,
        key="home_status",
        width="stretch",
        # columns sized to fit the page (long cells show in full on hover); the checkpoint is in the details
        column_order=["method", "status", "details", "what"],
        column_config={
            "method": st.column_config.TextColumn("method", width=130),
            "status": st.column_config.TextColumn("status", width=150),
            "details": st.column_config.TextColumn("details / why unavailable", width="medium"),
            "what": st.column_config.TextColumn("paper", width="medium"),
        },
    )
    if checking:
        st.caption("Checking that each method can run here (a few seconds after the app starts)...")
        return
    ready = sum(r["status"] != "unavailable" for r in rows)
    if ready < len(rows):
        st.info(
            f"{ready} of {len(rows)} methods can run here; the others say why above (a missing checkpoint is fixed by "
            "`python -m experiments.train --config experiments/configs/<method>.toml --ship`)."
        )


waiting = common.statuses_in_background() is None
st.session_state["home_waiting"] = waiting
st.fragment(run_every=0.25 if waiting else None)(methods_table)()
st.caption(
    "Models load on first use (on the GPU when there is one) and stay cached for every session. "
    f"Results folder: `{common.results_dir()}`."
)

st.subheader("Shipped models")
st.caption(
    "Each trained model's card (`results/checkpoints/<method>.json`, the README's table): the variant - its deviations "
    "from the paper included -, the data and crops it was trained on, images seen, wall time, hardware, and its rebalanced "
    "AuC on the validation and test evaluations, mean [95% interval] and the gain over grey (ab = 0)."
)
cards = runlogs.model_card_rows([n for n in common.backends.names() if runlogs.provenance(n)])
if cards:
    st.dataframe(cards, hide_index=True, key="home_cards", width="stretch",
                 column_order=["method", "val AuC rebal. (vs grey)", "test AuC rebal. (vs grey)", "images seen", "variant",
                               "crops", "wall (h)", "hardware", "data", "commit / saved"],
                 column_config={"variant": st.column_config.TextColumn("variant", width="large")})  # fmt: skip
else:
    st.info(f"No trained model has a model card in `{common.checkpoints_dir()}` yet.")

st.subheader("Report for reviewers")
st.caption(
    "One self-contained HTML file (every figure embedded, opens offline) and the same as PDF: model cards, evaluation "
    "tables with intervals, paired tests, charts, the sample grid, learning curves, study results, the benchmark. "
    "The same as `python -m experiments.report --out DIR`."
)
common.report_button("home")
