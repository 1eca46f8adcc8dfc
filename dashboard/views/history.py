"""History: earlier comparisons kept under results/comparisons/ (the reports' 'previous predictions')."""

import pandas as pd
import streamlit as st

from dashboard import common

st.title("History")
items = common.list_comparisons()
if not items:
    st.info(f"No comparisons yet in `{common.comparisons_dir()}`. Run one on the Compare page; it is kept here.")
    st.page_link("views/compare.py", label="Compare", icon=":material/compare:")
    st.stop()

rows = []
for m in items:
    ok = [k for k, v in m.get("methods", {}).items() if not v.get("error")]
    rows.append({"id": m["id"], "created": m.get("created"), "photo": m.get("source"), "size": "x".join(map(str, m.get("size", [])[::-1])),
                 "methods": ", ".join(ok), "ground truth": bool(m.get("has_truth"))})
st.dataframe(pd.DataFrame(rows), hide_index=True, key="hist_table")

cid = st.selectbox("Open comparison", [m["id"] for m in items], format_func=lambda i: f"{i} - {next(m['source'] for m in items if m['id'] == i)}", key="hist_pick")
meta = next(m for m in items if m["id"] == cid)
images = common.comparison_images(cid)
order = ["input"] + [k for k in meta.get("methods", {}) if k in images] + (["truth"] if "truth" in images else [])
per_row = 3
for start in range(0, len(order), per_row):
    cols = st.columns(per_row)
    for col, name in zip(cols, order[start : start + per_row]):
        info = meta.get("methods", {}).get(name, {})
        cap = {"input": "grey input", "truth": "ground truth"}.get(name, f"{name} - {info.get('seconds') or 0:.2f} s on {info.get('device')}")
        with col:
            st.image(images[name], caption=cap, width="stretch")
metric_rows = [{"method": k, **(v.get("metrics") or {})} for k, v in meta.get("methods", {}).items() if not v.get("error")]
if metric_rows:
    st.dataframe(pd.DataFrame(metric_rows).round(4), hide_index=True, key="hist_metrics")
for k, v in meta.get("methods", {}).items():
    if v.get("error"):
        st.warning(f"{k} did not run: {v['error']}")
st.caption(f"Options: {meta.get('options')}")
