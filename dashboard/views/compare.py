"""Compare: one photo, the chosen methods side by side - each result shown as soon as it is done,
slow methods with per-iteration progress, an ETA and a Stop button; a parameter change reruns only
the method it concerns; per-image metrics, a slider between any two images, a labelled figure,
fusion's scene label and global-feature transfer."""

import time

import pandas as pd
import streamlit as st

from dashboard import common, options
from experiments import comparisons, jobs

st.title("Compare methods")
st.caption("A colour photo is turned grey first; its original becomes the ground-truth column.")
ws = common.workspace()

# --- re-opened from History ---------------------------------------------------------------------
reopened_now = "cmp_reopen" in st.session_state
if reopened_now:
    cid = st.session_state.pop("cmp_reopen")
    try:
        st.session_state["cmp_hist"] = (cid, *comparisons.stored_results(cid))
        st.session_state["cmp_source"] = "From History"
    except (OSError, ValueError, KeyError) as exc:
        st.error(f"Cannot re-open comparison {cid}: {exc}")

# --- the input photo ----------------------------------------------------------------------------
sources = ["Sample photo", "Test folder", "Upload"] + (["From History"] if "cmp_hist" in st.session_state else [])
source = st.radio("Photo", sources, horizontal=True, key="cmp_source")
image, label, seeded = None, None, []
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
elif source == "Upload":
    up = st.file_uploader(
        f"Upload a photo (colour or grey, up to {common.MAX_UPLOAD_MB} MB)", type=common.IMAGE_TYPES, key="cmp_upload"
    )
    if up is not None:
        try:
            image, label = common.read_upload(up.getvalue(), up.name), f"upload:{up.name}"
        except common.ImageError as exc:
            st.error(f"Cannot use this upload - {exc}")
else:
    hid, hgrey, htruth, seeded, hmeta = st.session_state["cmp_hist"]
    image, label = (htruth if htruth is not None else hgrey), hmeta.get("source", hid)
    st.caption(f"Re-opened from History: comparison `{hid}`.")

if image is None:
    st.info("Choose a photo to start.")
    st.stop()

try:  # above the dashboard's processing limit: shown downscaled, not colorized (bounded memory)
    jobs.check_processing_size(image, label)
except common.ImageError as exc:
    st.image(jobs.display_copy(image), caption=f"{label} - shown downscaled", width="stretch")
    st.error(f"Cannot colorize this photo here - {exc}")
    st.stop()
grey, truth = common.prepare_input(image)
h, w = grey.shape[:2]
st.caption(
    f"{label} - {w}x{h} px - "
    + ("colour photo: its original is the ground truth" if truth is not None else "grey photo: no ground truth")
)

# --- methods and options --------------------------------------------------------------------
names = common.backends.names()
# by default the methods that can run here and answer in about a second; slow ones are opt-in (warned about below)
ready = [s.name for s in (common.statuses_in_background() or [common.quick_status(n) for n in names]) if s.available]
default = [s.name for s in seeded if s.image is not None] or [n for n in ready if n not in common.SLOW_METHODS] or names
chosen = st.multiselect("Methods", names, default=[n for n in default if n in names], key="cmp_methods")
# each chosen method's declared options (backends.describe(name).options); changing one reruns only that method
with st.container():
    opts = {m: options.option_widgets(m, "cmp") for m in chosen}
uses_ref, _needs_ref = options.reference_users(chosen)
reference = None
if uses_ref:
    ref_up = st.file_uploader(
        f"{', '.join(uses_ref)} reference photo (leave empty to pick one automatically)",
        type=common.IMAGE_TYPES,
        key="cmp_reference",
    )
    if ref_up is not None:
        try:
            ref = common.read_upload(ref_up.getvalue(), ref_up.name)
            reference = ref if ref.ndim == 3 else None
            if reference is None:
                st.warning("The reference photo is grey; a colour reference is needed, so one is picked automatically.")
        except common.ImageError as exc:
            st.error(f"Cannot use this reference - {exc}")


def options_of(m: str) -> dict:
    return opts.get(m, {})


def ref_of(m: str):
    return reference if m in uses_ref else None


keys = {m: common.result_key(m, grey, options_of(m), ref_of(m)) for m in chosen}
results: dict = st.session_state.setdefault("cmp_results", {})
for r in seeded:  # a re-opened comparison: its stored results count as done
    if (
        r.name in keys
        and r.image is not None
        and r.options == options_of(r.name)
        and (r.name not in uses_ref or reference is None)
    ):
        if reopened_now:  # show them as History's (even when this session computed the same earlier)
            results[keys[r.name]] = r
        else:
            results.setdefault(keys[r.name], r)
while len(results) > 40:  # bounded per session
    results.pop(next(iter(results)))
missing = [m for m in chosen if keys[m] not in results]
queue: list = st.session_state.setdefault("cmp_queue", [])
queue[:] = [(m, k) for m, k in queue if m in keys and keys[m] == k]


def stop() -> None:
    stopped = [m for m, _ in st.session_state.get("cmp_queue", [])]
    st.session_state["cmp_queue"] = []
    st.session_state["cmp_stopped"] = stopped[:1]


slow = [m for m in missing if m in common.SLOW_METHODS]
if slow:
    st.warning(f"{', '.join(slow)} optimises the photo itself (L-BFGS): tens of seconds to minutes on a CPU, shown with per-iteration "
               "progress, an estimate of the time left and a Stop button. The other methods take about a second.")  # fmt: skip
label_run = "Colorize" if len(missing) == len(chosen) else (f"Colorize ({', '.join(missing)})" if missing else "Colorize")
if st.button(label_run, type="primary", key="cmp_run", disabled=not missing):
    queue[:] = [(m, keys[m]) for m in missing]
    st.session_state["cmp_clicked"] = time.time()
    st.session_state["cmp_stopped"] = []
if not missing and chosen:
    st.caption(
        "Every chosen method's result for this photo and these options is shown below (change a parameter to rerun that method)."
    )

# --- side by side: each result appears when it is done --------------------------------------------
tiles = [("grey input", None)] + [(m, m) for m in chosen] + ([("ground truth", None)] if truth is not None else [])
per_row = 3
slots = {}
for start in range(0, len(tiles), per_row):
    cols = st.columns(per_row)
    for col, (title, _m) in zip(cols, tiles[start : start + per_row]):
        slots[title] = col.empty()
slots["grey input"].image(comparisons.png_bytes(grey), caption="grey input - what every method sees", width="stretch", output_format="PNG")
if truth is not None:
    slots["ground truth"].image(comparisons.png_bytes(truth), caption="ground truth - the original colour photo", width="stretch", output_format="PNG")


def caption(r) -> str:
    if r.cached:
        how = r.cached
    elif r.when < st.session_state.get("cmp_clicked", 0):  # an earlier result of these options, not rerun
        how = r.cached = f"cached (computed {time.strftime('%H:%M:%S', time.localtime(r.when))}, took {r.seconds:.1f} s)"
    else:
        how = f"{r.seconds:.2f} s on {r.device}"
    scene = r.extras.get("scene") if r.extras else None
    extra = f" - scene: {scene[0][0]} ({scene[0][1]:.0%})" if scene else ""
    return f"{r.name} - {how}{extra}"


def show(m: str) -> None:
    """The method's tile, written into its slot in place (one element: the slot's last content is replaced)."""
    r = results.get(keys[m])
    slot = slots[m]
    if r is not None and r.image is not None:
        # encoded once (history, zip and slider reuse it) and shown as PNG: "auto" would decode it and
        # re-encode a JPEG on every rerun, whose 4:2:0 chroma subsampling also blurs the very colours compared
        slot.image(comparisons.png_bytes(r.image), caption=caption(r), width="stretch", output_format="PNG")
    elif r is not None:
        slot.error(f"{m} did not run: {r.error}")
    elif m in st.session_state.get("cmp_stopped", []):
        slot.info(f"{m}: stopped. Press Colorize to run it again.")
    elif any(q == m for q, _ in queue):
        slot.caption(f"{m}: waiting...")
    else:
        slot.caption(f"{m}: not run for this photo and options yet.")


for m in chosen:
    show(m)

ran = False
while queue:
    m, k = queue[0]
    box = slots[m].container()  # while it runs: its spinner (and a slow method's progress and Stop button)
    with box:
        slow = m in common.SLOW_METHODS
        bar = common.Progress(f"{m}", lazy=not slow)  # a feed-forward method reports no progress: no bar
        if slow:
            st.button("Stop", key="cmp_stop", on_click=stop, icon=":material/stop_circle:")
        # at most COLORIZE_MAX_JOBS colorizations at once on the server; the rest queue, with a note
        # (drawn only then: every element costs the server and the browser on each click)
        waiting: list = []

        def wait_note(pos, running, box=box, waiting=waiting):
            if not waiting:
                waiting.append(box.empty())
            waiting[0].info(jobs.wait_message(pos, running))

        try:
            with jobs.heavy_jobs().slot(wait_note):
                if waiting:
                    waiting[0].empty()
                with st.spinner(f"{m}: loading and running..."):
                    res = common.colorize_one(
                        m, grey, options_of(m), ref_of(m), progress=lambda d, n, bar=bar: bar(d, n, " L-BFGS evaluations")
                    )
        except jobs.QueueFull as exc:
            queue.clear()
            st.error(f"Not started - {exc}")
            st.stop()
    results[k] = res
    queue.pop(0)
    ran = True
    show(m)  # replaces the running box

done = [results[keys[m]] for m in chosen if keys[m] in results]
# per-image metrics on demand (a button below), or with every click when asked: about 0.05 CPU-s a
# method, a third of the colorizing, which a click should not pay unasked
auto_metrics = st.session_state.get("cmp_auto_metrics", False)
if ran and auto_metrics:
    comparisons.add_metrics(done, truth)
if ran and done:
    saved_opts = {
        **{m: options_of(m) for m in chosen if options_of(m)},
        "reference": "uploaded" if reference is not None else "auto",
    }
    cid = comparisons.save_comparison(grey, truth, done, label, saved_opts, workspace=ws)
    st.session_state["cmp_last_id"] = cid
    st.success(f"Saved as comparison `{cid}` (see History; one entry per photo and options).")

shown = [r for r in done if r.image is not None]
if not shown:
    st.info("Press **Colorize** to run the chosen methods on this photo.")
    st.stop()

for r in done:
    if r.reference is not None:
        st.image(r.reference, caption=f"{r.name} reference ({r.reference_source})", width=200)

# --- metrics ------------------------------------------------------------------------------------
st.subheader("Per-image metrics" if truth is not None else "Per-image measures (no ground truth)")
m1, m2 = st.columns([1, 2])


def compute_metrics(results: list, truth) -> None:
    """The shown results' missing metrics (kept on them, and in this comparison's History entry)."""
    filled = comparisons.add_metrics(results, truth)
    if filled and st.session_state.get("cmp_last_id"):
        try:  # History keeps them too
            comparisons.update_metrics(st.session_state["cmp_last_id"], filled)
        except (OSError, ValueError) as exc:
            st.session_state["cmp_metrics_note"] = f"Metrics computed but not stored in History: {exc}"


if st.session_state.get("cmp_auto_metrics"):
    compute_metrics(shown, truth)
# a callback: computed before this part of the page is drawn again, so the button shows as done
m1.button("Compute metrics", key="cmp_metrics_go", disabled=all(r.metrics for r in shown), icon=":material/calculate:",
          on_click=compute_metrics, args=(shown, truth))  # fmt: skip
m2.toggle("Compute them with every click", key="cmp_auto_metrics",
          help="Per-image metrics cost about 0.05 CPU-s a method (at the evaluation's 256 x 256), a third of the colorizing.")  # fmt: skip
if note := st.session_state.pop("cmp_metrics_note", None):
    st.warning(note)
st.dataframe(pd.DataFrame(comparisons.metrics_rows(shown)), hide_index=True, key="cmp_metrics_table", width="stretch")
if not any(r.metrics for r in shown):
    st.caption("Metrics are computed on demand: press **Compute metrics** (or turn on computing them with every click).")
st.caption("↑ higher is better, ↓ lower is better; ΔE00: CIEDE2000 colour difference; M3: Hasler & Suesstrunk colourfulness; "
           "seconds: the method's own time (a cached result shows the time it took when computed).")  # fmt: skip

# --- slider between any two -----------------------------------------------------------------------
st.subheader("Slider")
views = {"grey input": grey, **{r.name: r.image for r in shown}}
if truth is not None:
    views["ground truth"] = truth
names_v = list(views)
s1, s2 = st.columns(2)
left = s1.selectbox("Left", names_v, index=0, key="cmp_ba_left")
right = s2.selectbox(
    "Right", names_v, index=len(names_v) - 1 if truth is None else names_v.index(shown[0].name), key="cmp_ba_right"
)
st.iframe(common.slider_html(views[left], views[right], left, right, 460, f"{left}_{right}"), height=560)

# --- fusion's extras ---------------------------------------------------------------------------------
fusion = next((r for r in shown if r.name == "fusion"), None)
if fusion is not None:
    st.subheader("Fusion: scene and global features")
    scene = fusion.extras.get("scene") or []
    if scene:
        st.write("Scene classes its global branch predicts for this photo: " + ", ".join(f"**{n}** {p:.0%}" for n, p in scene))
    st.caption("Iizuka et al.'s network fuses local features of this photo with global features of a whole photo; giving it the global "
               "features of ANOTHER photo transfers that photo's look (scene, time of day) while the content stays.")  # fmt: skip
    g1, g2 = st.columns(2)
    other_name = g1.selectbox("Global features from", list(common.SAMPLE_PHOTOS), index=1, key="cmp_fus_other")
    other_up = g2.file_uploader("... or an uploaded photo", type=common.IMAGE_TYPES, key="cmp_fus_upload")
    other = common.sample_photo(common.SAMPLE_PHOTOS[other_name])
    if other_up is not None:
        try:
            other = common.read_upload(other_up.getvalue(), other_up.name)
        except common.ImageError as exc:
            st.error(f"Cannot use this photo - {exc}")
    if st.button("Colour with its global features", key="cmp_fus_go"):
        with st.spinner("fusion with the other photo's global features..."):
            try:
                out = common.fusion_global_transfer(grey, other)
                other_scene = common.fusion_scene(common.load_method("fusion"), other)
                st.session_state["cmp_fus"] = (comparisons.image_hash(grey, other), out, other_scene)
            except common.ColorizationError as exc:
                st.error(str(exc))
    saved = st.session_state.get("cmp_fus")
    if saved and saved[0] == comparisons.image_hash(grey, other):
        f1, f2, f3 = st.columns(3)
        f1.image(fusion.image, caption="fusion: own global features", width="stretch")
        f2.image(saved[1], caption="fusion: global features of the other photo", width="stretch")
        f3.image(other, caption="the other photo - scene: " + ", ".join(f"{n} {p:.0%}" for n, p in saved[2]), width="stretch")

# --- exports ------------------------------------------------------------------------------------------
st.subheader("Export")
meta = {"id": st.session_state.get("cmp_last_id"), "source": label, "options": {r.name: r.options for r in done}}
title = f"{label} ({w}x{h} px)"
e = st.columns(3)


@st.cache_data(show_spinner=False, max_entries=8)
def figure_file(sig: tuple, title: str, fmt: str, _grey, _truth, _shown) -> bytes:
    comparisons.add_metrics(_shown, _truth)  # each panel's caption shows its metrics
    return comparisons.comparison_figure(_grey, _truth, _shown, title, fmt)


sig = (comparisons.image_hash(grey, truth), tuple(keys[r.name] for r in shown))


# drawn on demand, when a download is clicked (drawing both figures on every click cost more CPU than the colorizing)
def fig_png(sig=sig, title=title, grey=grey, truth=truth, shown=shown):
    return figure_file(sig, title, "png", grey, truth, shown)


def fig_pdf(sig=sig, title=title, grey=grey, truth=truth, shown=shown):
    return figure_file(sig, title, "pdf", grey, truth, shown)


def zip_file(grey=grey, truth=truth, done=done, meta=meta):
    comparisons.add_metrics(done, truth)  # the zip's metrics.csv and the figure's captions have them all
    return comparisons.comparison_zip(grey, truth, done, meta, fig_png())


e[0].download_button("Figure (PNG)", fig_png, "comparison.png", "image/png", key="cmp_fig_png", icon=":material/image:")
e[1].download_button(
    "Figure (PDF)", fig_pdf, "comparison.pdf", "application/pdf", key="cmp_fig_pdf", icon=":material/picture_as_pdf:"
)
e[2].download_button("Everything (zip)", zip_file, "comparison.zip", "application/zip",
                     key="cmp_zip", icon=":material/folder_zip:")  # fmt: skip
st.caption("The figure: the labelled side-by-side grid with each result's per-image metrics.")
