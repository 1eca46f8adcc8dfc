"""History: this browser session's earlier comparisons (one entry per photo and options), to look at
again, re-open in Compare, download, or delete (admin)."""

import pandas as pd
import streamlit as st

from dashboard import common
from experiments import comparisons

st.title("History")
ws = common.workspace()
admin = common.is_admin()
everyone = admin and st.toggle("All workspaces (admin)", value=False, key="hist_all")
items = comparisons.list_comparisons(None if everyone else ws)
days = comparisons.keep_days()
st.caption(
    "Comparisons made in this browser session (your workspace; other visitors cannot see them). The same photo with the same "
    "options is kept once. "
    + (f"Kept for {days:g} days (`COLORIZE_COMPARISONS_KEEP_DAYS`)." if days > 0 else "Kept until deleted.")
)
if not items:
    st.info("No comparisons yet in this workspace. Run one on the Compare page; it is kept here.")
    st.page_link("views/compare.py", label="Compare", icon=":material/compare:")
    st.stop()

rows = []
for m in items:
    ok = [k for k, v in m.get("methods", {}).items() if not v.get("error")]
    rows.append({"id": m["id"], "updated": m.get("updated") or m.get("created"), "photo": m.get("source"),
                 "size": "x".join(map(str, m.get("size", [])[::-1])), "methods": ", ".join(ok), "ground truth": bool(m.get("has_truth"))})  # fmt: skip
st.dataframe(pd.DataFrame(rows), hide_index=True, key="hist_table", width="stretch")

ids = [m["id"] for m in items]
cid = st.selectbox(
    "Open comparison", ids, format_func=lambda i: f"{i} - {next(m['source'] for m in items if m['id'] == i)}", key="hist_pick"
)
with st.spinner("Loading the comparison..."):
    grey, truth, results, meta = comparisons.stored_results(cid)
    comparisons.add_metrics(results, truth)  # those Compare did not compute (on demand there): shown, not stored

b = st.columns(3)
if b[0].button("Re-open in Compare", key="hist_reopen", icon=":material/compare:"):
    st.session_state["cmp_reopen"] = cid
    st.switch_page("views/compare.py")
b[1].download_button("Download (zip)", comparisons.comparison_zip(grey, truth, results, meta), f"comparison_{cid}.zip", "application/zip",
                     key="hist_zip", icon=":material/download:")  # fmt: skip
if admin:
    if b[2].button("Delete", key="hist_delete", icon=":material/delete:"):
        comparisons.delete_comparison(cid)
        st.toast(f"Deleted {cid}")
        st.rerun()
else:
    with b[2].popover("Delete (admin)"):
        common.admin_login("hist_admin")

panels = comparisons.figure_panels(grey, truth, results)
per_row = 3
for start in range(0, len(panels), per_row):
    cols = st.columns(per_row)
    for col, (title, img, cap) in zip(cols, panels[start : start + per_row]):
        with col:
            st.image(img, caption=f"{title} - {cap}" if cap else title, width="stretch")
metric_rows = comparisons.metrics_rows(results)
if metric_rows:
    st.dataframe(pd.DataFrame(metric_rows).drop(columns=["result"]), hide_index=True, key="hist_metrics", width="stretch")
for r in results:
    if r.error:
        st.warning(f"{r.name} did not run: {r.error}")
opts = {k: v.get("options") for k, v in meta.get("methods", {}).items() if v.get("options")}
st.caption(f"Options: {opts or meta.get('options')}")
