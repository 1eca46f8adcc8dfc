"""Video: a short clip colorized by the chosen methods (and the temporal stabiliser), played side by
side in sync, with the per-frame flicker of each method and downloads. The work runs in
``experiments.video.VideoJob`` (a worker thread, in the server's heavy-job queue); this page only
starts it, shows its progress and stops it."""

import hashlib
import shutil
import tempfile
from pathlib import Path

import streamlit as st

from dashboard import common
from experiments import video as V

st.title("Video")
st.caption(
    f"Clips up to {V.PAGE_MAX_MB} MB ({', '.join(V.UPLOAD_TYPES)}); the first {V.PAGE_MAX_SECONDS:g} s are colorized, "
    f"frames scaled to at most {V.PAGE_MAX_SIDE} px on the longer side. A colour clip is turned grey first and its "
    "original becomes the ground truth. Longer or larger clips: `python -m experiments.colorize --input clip.mp4 ...` "
    "(streams, any length)."
)


def session_dir() -> Path:
    """This session's scratch folder (generated name; removed when a new clip replaces it)."""
    d = st.session_state.get("vid_dir")
    if not d or not Path(d).is_dir():
        d = tempfile.mkdtemp(prefix="colorize-video-")
        st.session_state["vid_dir"] = d
    return Path(d)


# --- the clip -------------------------------------------------------------------------------------
source = st.radio("Clip", ["Sample clip", "Upload"], horizontal=True, key="vid_source")
clip, label = None, None
if source == "Sample clip":
    photos = {"coffee": "coffee", "cat (chelsea)": "chelsea", "astronaut": "astronaut"}
    pick = st.selectbox(
        "Sample clip: a camera panning and zooming over a scikit-image photo (2 s, 320 x 240)", list(photos), key="vid_sample"
    )
    clip = Path(tempfile.gettempdir()) / "colorize-video-samples" / f"sample-{photos[pick]}.mp4"  # made once per server
    if not clip.exists():
        V.sample_clip(clip, common.sample_photo(photos[pick]), seconds=2.0)
    label = f"sample: {pick}"
else:
    up = st.file_uploader(f"Upload a clip (up to {V.PAGE_MAX_MB} MB)", type=V.UPLOAD_TYPES, key="vid_upload")
    if up is not None:
        data = up.getvalue()
        suffix = Path(up.name).suffix.lower()
        if len(data) > V.PAGE_MAX_MB * 2**20:
            st.error(
                f"Cannot use this upload - {Path(up.name).name}: file too large ({len(data) / 2**20:.1f} MB; limit {V.PAGE_MAX_MB} MB)"
            )
        elif suffix.lstrip(".") not in V.UPLOAD_TYPES:
            st.error(f"Cannot use this upload - {Path(up.name).name}: not one of {', '.join(V.UPLOAD_TYPES)}")
        else:
            clip = (
                session_dir() / f"upload-{hashlib.sha1(data).hexdigest()[:12]}{suffix}"
            )  # a generated name; only the type is kept
            if not clip.exists():
                clip.write_bytes(data)
            label = f"upload: {Path(up.name).name}"

info = None
if clip is not None:
    try:
        info = V.probe(clip)
    except common.ColorizationError as exc:
        st.error(f"Cannot use this clip - {str(exc).replace(str(clip), label or clip.name)}")
if info is None:
    st.info("Choose the sample clip or upload one to start.")
    st.stop()

used = min(info.duration, V.PAGE_MAX_SECONDS)
w, h = V.even_size(info.width, info.height, V.PAGE_MAX_SIDE)
st.caption(
    f"{label} - {info.describe()}"
    + (f" - colorized: the first {used:.1f} s" if info.duration > V.PAGE_MAX_SECONDS else "")
    + (f", at {w}x{h}" if (w, h) != (info.width, info.height) else "")
)

# --- methods and the stabiliser ---------------------------------------------------------------------
names = common.backends.names()
ready = [n for n in names if common.static_status(n).available]
fast = [n for n in ready if n != "neural_style"]
chosen = st.multiselect("Methods", ready, default=fast[:3], key="vid_methods",
                        help="neural_style optimises every frame (seconds a frame): pick it only for very short clips")  # fmt: skip
stab = st.radio(
    "Temporal stabiliser (flow-guided blending of each frame's colour with the previous frame; resets at scene cuts)",
    ["off", "on", "both (compare)"],
    index=2,
    horizontal=True,
    key="vid_stab",
)

job = st.session_state.get("vid_job")
running = job is not None and job.active
if st.button("Colorize clip", type="primary", key="vid_run", disabled=not chosen or running):
    models, failed = {}, []
    with st.spinner("loading the methods"):
        for name in chosen:
            try:
                models[name] = common.load_method(name)
            except common.ColorizationError as exc:
                failed.append(f"**{name}**: {exc}")
    for f in failed:
        st.error(f)
    if models:
        if job is not None and not job.active:
            shutil.rmtree(job.out_dir, ignore_errors=True)
        out = Path(tempfile.mkdtemp(prefix="out-", dir=session_dir()))
        job = V.VideoJob(clip, models, out, stabilize=stab.split(" ")[0], max_seconds=V.PAGE_MAX_SECONDS, max_side=V.PAGE_MAX_SIDE,
                         label=label).start()  # fmt: skip
        st.session_state["vid_job"] = job


# --- progress, with a way to stop ----------------------------------------------------------------------
def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "ETA -"
    return f"ETA {int(seconds // 60)}:{int(seconds % 60):02d}"


@st.fragment(run_every=2.0)
def progress() -> None:
    j = st.session_state.get("vid_job")
    if j is None:
        return
    if j.active:
        frac = j.done / j.total if j.total else 0.0
        if j.message:  # waiting for the server's heavy-job queue
            text = j.message
        elif not j.total:
            text = "starting: reading the clip"
        else:
            text = f"{j.done} / {j.total} frames - {j.fps:.2f} frames/s - {eta_text(j.eta)}"
        st.progress(min(frac, 1.0), text=text)
        if st.button("Stop", key="vid_stop"):
            j.stop()
            st.toast("Stopping after the current batch of frames")
    elif not st.session_state.get("vid_shown") == id(j):
        st.session_state["vid_shown"] = id(j)
        st.rerun()  # the whole page: the results below


progress()
job = st.session_state.get("vid_job")
if job is None or job.active:
    st.stop()

# --- results ------------------------------------------------------------------------------------------
if job.status == "failed":
    st.error(f"The clip could not be colorized - {job.message}")
    st.stop()
if job.status == "stopped":
    st.warning(f"Stopped after {job.done} of {job.total} frames: nothing was kept.")
    st.stop()
st.success(f"{job.done} frames of {job.label} in {job.finished - job.started:.1f} s ({job.fps:.2f} frames/s)")
for note in job.notes:
    st.caption(f"Note: {note}")

st.subheader("Side by side")
st.caption("One video, every result in sync: the grey input, each method" + (" (with and without the stabiliser)" if job.stabilize == "both" else "")
           + (", and the original" if job.colour else "") + ".")  # fmt: skip
if job.grid is not None:
    st.video(job.grid.read_bytes(), format="video/mp4", loop=True)

frames = job.frames
if frames is not None and len(frames):
    st.subheader("Flicker per frame")
    st.caption(
        "Warp error of each frame (Lai et al. 2018): the previous output moved along the optical flow of the grey input "
        "and compared with this frame's colour (mean ab difference over pixels visible in both); lower = steadier colour. "
        "Gaps: the first frame and scene cuts."
    )
    import plotly.express as px

    fig = px.line(frames, x="frame", y="warp_error", color="track", labels={"warp_error": "warp error (ab)", "track": "method"})
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"orientation": "h", "y": -0.25})
    st.plotly_chart(fig, key="vid_flicker", width="stretch")
    summary = job.summary()
    if summary is not None:
        st.subheader("Per method" + (" (against the original)" if job.colour else ""))
        st.dataframe(summary.round(3), hide_index=True, key="vid_table")

st.subheader("Downloads")
cols = st.columns(min(4, len(job.outputs) + 2))
items = [("grid (side by side)", job.grid)] + [(lbl, p) for lbl, p in job.outputs.items()]
for k, (lbl, p) in enumerate(items):
    if p is not None and p.exists():
        with cols[k % len(cols)]:
            st.download_button(
                f"{lbl} (.mp4)",
                p.read_bytes(),
                file_name=f"{V.safe_name(lbl)}.mp4",
                mime="video/mp4",
                key=f"vid_dl_{V.safe_name(lbl)}",
            )
if frames is not None and len(frames):
    with cols[len(items) % len(cols)]:
        st.download_button("per-frame numbers (.csv)", frames.to_csv(index=False).encode(), file_name="video_frames.csv",
                           mime="text/csv", key="vid_dl_csv")  # fmt: skip
