"""Compare: one photo, the chosen methods side by side, with times, devices and per-image metrics."""

import hashlib

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from dashboard import common

st.title("Compare methods")
st.caption("A colour photo is turned grey first; its original becomes the ground-truth column.")

# --- the input photo ----------------------------------------------------------------------------
sources = ["Sample photo", "Test folder", "Upload"]
source = st.radio("Photo", sources, horizontal=True, key="cmp_source")
image, label = None, None
if source == "Sample photo":
    pick = st.selectbox("Sample photo (ships with scikit-image)", list(common.SAMPLE_PHOTOS), key="cmp_sample")
    image, label = common.sample_photo(common.SAMPLE_PHOTOS[pick]), f"sample:{pick}"
elif source == "Test folder":
    folder = common.test_folder()
    files = common.folder_images(folder) if folder else []
    if not files:
        st.warning("No test folder found (set COLORIZE_TEST_DIR, or put photos in ../shared/data/test).")
    else:
        rel = [str(p.relative_to(folder)) for p in files]
        pick = st.selectbox(f"Photo in {folder}", rel, key="cmp_folder_file")
        try:
            image, label = common.load_image(folder / pick), f"folder:{pick}"
        except common.ColorizationError as exc:
            st.error(str(exc))
else:
    up = st.file_uploader(
        f"Upload a photo (colour or grey, up to {common.MAX_UPLOAD_MB} MB)",
        type=common.IMAGE_TYPES,
        key="cmp_upload",
    )
    if up is not None:
        try:
            image, label = common.read_upload(up.getvalue(), up.name), f"upload:{up.name}"
        except common.ImageError as exc:
            st.error(f"Cannot use this upload - {exc}")

if image is None:
    st.info("Choose a photo to start.")
    st.stop()

grey, truth = common.prepare_input(image)
h, w = grey.shape[:2]
st.caption(f"{label} - {w}x{h} px - " + ("colour photo: its original is the ground truth" if truth is not None else "grey photo: no ground truth"))

# --- methods and options --------------------------------------------------------------------
names = common.backends.names()
chosen = st.multiselect("Methods", names, default=names, key="cmp_methods")
temperature = None
if "classification" in chosen:
    temperature = st.slider(
        "Classification temperature (annealed mean; 0.38 in the paper, lower = more vivid)",
        0.01, 1.0, 0.38, 0.01, key="cmp_temperature",
    )
reference = None
if "neural_style" in chosen:
    ref_up = st.file_uploader("neural_style reference photo (leave empty to pick one automatically)", type=common.IMAGE_TYPES, key="cmp_reference")
    if ref_up is not None:
        try:
            ref = common.read_upload(ref_up.getvalue(), ref_up.name)
            reference = ref if ref.ndim == 3 else None
            if reference is None:
                st.warning("The reference photo is grey; a colour reference is needed, so one is picked automatically.")
        except common.ImageError as exc:
            st.error(f"Cannot use this reference - {exc}")

signature = hashlib.sha1(grey.tobytes() + str((grey.shape, chosen, temperature)).encode()).hexdigest()
if reference is not None:
    signature += hashlib.sha1(reference.tobytes()).hexdigest()[:8]

run = st.button("Colorize", type="primary", key="cmp_run", disabled=not chosen)
if run:
    results = []
    bar = st.progress(0.0, text="starting")
    for i, name in enumerate(chosen):
        bar.progress(i / len(chosen), text=f"{name} ({i + 1}/{len(chosen)})")
        res = common.colorize_one(name, grey, common.method_options(name, temperature), reference)
        if res.image is not None:
            res.metrics = common.image_metrics(res.image, truth)
        results.append(res)
    bar.progress(1.0, text="done")
    options = {"temperature": temperature, "reference": "uploaded" if reference is not None else "auto"}
    cid = common.save_comparison(grey, truth, results, label, options)
    st.session_state["cmp_last"] = {"signature": signature, "results": results, "id": cid, "options": options}

last = st.session_state.get("cmp_last")
if not last or last["signature"] != signature:
    st.info("Press **Colorize** to run the chosen methods on this photo.")
    st.image(grey, caption="grey input", width=min(w, 512))
    st.stop()

results = last["results"]
st.success(f"Saved as comparison `{last['id']}` (see History).")

# --- side by side ---------------------------------------------------------------------------
tiles = [("grey input", grey, "what every method sees")]
for r in results:
    if r.image is not None:
        tiles.append((r.name, r.image, f"{r.seconds:.2f} s on {r.device}"))
if truth is not None:
    tiles.append(("ground truth", truth, "the original colour photo"))
per_row = 3
for start in range(0, len(tiles), per_row):
    cols = st.columns(per_row)
    for col, (title, img, cap) in zip(cols, tiles[start : start + per_row]):
        with col:
            st.image(img, caption=f"{title} - {cap}", width="stretch")

for r in results:
    if r.error:
        st.error(f"**{r.name}** did not run: {r.error}")
    if r.reference is not None:
        st.image(r.reference, caption=f"{r.name} reference ({r.reference_source})", width=200)

# --- metrics ------------------------------------------------------------------------------------
rows = [{"method": r.name, "seconds": r.seconds, "device": r.device, **r.metrics} for r in results if r.image is not None]
if rows:
    st.subheader("Per-image metrics" if truth is not None else "Per-image measures (no ground truth)")
    st.dataframe(pd.DataFrame(rows).round(4), hide_index=True, key="cmp_metrics_table")

# --- before / after -----------------------------------------------------------------------------
done = [r for r in results if r.image is not None]
if done:
    st.subheader("Before / after")
    which = st.selectbox("Method", [r.name for r in done], key="cmp_ba_method")
    after = next(r.image for r in done if r.name == which)
    components.html(common.before_after_html(grey, after, 460, which), height=540)

# --- download ---------------------------------------------------------------------------------
meta = {"id": last["id"], "source": label, "options": last["options"]}
st.download_button(
    "Download everything (zip)",
    common.comparison_zip(grey, truth, results, meta),
    file_name=f"comparison_{last['id']}.zip",
    mime="application/zip",
    key="cmp_zip",
)
