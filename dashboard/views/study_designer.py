"""Study designer (admin only): define a Turing test or an arena, pre-generate its images, open it,
invite participants, close it.

Defaults follow Zhang et al. (ECCV 2016): one method per participant (balanced, random), 40
scored trials, 10 practice trials with feedback, 10 % vigilance trials, 256-px images. The same
steps are scriptable: ``python -m experiments.study create|prepare|open|status|close|export``.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

import backends  # noqa: E402
from backends.errors import ColorizationError  # noqa: E402
from experiments.study import prepare, ui  # noqa: E402
from experiments.study.errors import StudyError  # noqa: E402
from experiments.study.links import invite_url  # noqa: E402
from experiments.study.protocol import StudyDesign  # noqa: E402

st.header("Study designer")
ui.admin_gate()
store = ui.store()
for level, text in st.session_state.pop("designer_flash", []):
    getattr(st, level)(text)
# A study created on the previous run becomes the selected one (set before the selectbox exists).
if "designer_pick_next" in st.session_state:
    st.session_state["designer_pick"] = st.session_state.pop("designer_pick_next")
    st.session_state["designer_name"] = ""  # ready for the next study

# Fields of the other study kind are not on the page while one kind is chosen; re-assigning them
# keeps what was typed there (Streamlit forgets the state of widgets that are not rendered).
for _k in (
    "designer_trials",
    "designer_practice",
    "designer_vigilance",
    "designer_photos",
    "designer_maxfail",
    "designer_arena_trials",
    "designer_arena_photos",
    "designer_tie",
):
    if _k in st.session_state:
        st.session_state[_k] = st.session_state[_k]

DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "test" / "kodak24"

try:
    base = ui.invite_base()
except ValueError as exc:
    st.error(str(exc))
    base = None
base = st.text_input(
    "Participant app URL",
    base or "",
    key="designer_base",
    help="Where participants reach `streamlit run dashboard/participant_app.py`; set COLORIZE_STUDY_BASE_URL "
    "(or the study_base_url secret) to change the default.",
)

# -- existing studies --------------------------------------------------------------------------
all_studies = store.studies()
rows = []
for s in all_studies:
    parts = store.participants_frame(s.name)
    try:
        link = invite_url(s.name, base)
    except ValueError:
        link = ""
    rows.append(
        {
            "study": s.name,
            "kind": s.kind,
            "status": s.status,
            "methods": ", ".join(s.design.methods),
            "photos ready": f"{len(store.ready_photos(s.name))} / {len(s.design.photos)}",
            "participants": len(parts),
            "finished": int(parts["finished_at"].notna().sum()) if len(parts) else 0,
            "invite link": link,
        }
    )
if rows:
    st.subheader("Studies")
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="designer_table",
        width="stretch",
        column_config={"invite link": st.column_config.LinkColumn(width="large")},
    )
    names = [r["study"] for r in rows]
    if st.session_state.get("designer_pick") not in names:
        st.session_state["designer_pick"] = names[-1]
    name = st.selectbox("Study", names, key="designer_pick")
    s = store.require(name)
    ready = len(store.ready_photos(name))
    need = s.design.photos_needed
    n_parts = len(store.participants_frame(name))
    est = prepare.format_duration(prepare.estimate_seconds(s.design.methods, len(s.design.photos) - ready, s.design.size))
    st.write(
        f"**{name}** is **{s.status}** - {ready} of {len(s.design.photos)} photos prepared (needs {need}), "
        f"{n_parts} participant(s)."
    )
    if s.status == "open":
        try:
            link = invite_url(name, base or None)
        except ValueError as exc:
            st.error(f"{exc} (the Participant app URL box above)")
        else:
            st.markdown("Invite link (send it to participants; the copy button is at its right):")
            st.code(link, language=None)
    c1, c2, c3 = st.columns(3)
    if c1.button(
        "Prepare images",
        key="designer_prepare",
        disabled=n_parts > 0 or ready == len(s.design.photos),
        help=f"Colorize every photo with every method now, so trials load instantly (about {est} left on a 2-core CPU). "
        "Resumable; impossible once participants have joined.",
    ):
        bar = st.progress(0.0, text="Preparing...")
        try:
            report = prepare.prepare(store, name, progress=lambda i, n, msg: bar.progress(i / max(n, 1), text=f"{i}/{n} {msg}"))
        except (ColorizationError, StudyError, ValueError) as exc:
            st.error(str(exc))
        else:
            st.success(f"{report.ready} photos ready ({report.generated} images generated).")
            for line in report.skipped:
                st.warning(f"skipped {line}")
            ready = report.ready
    if s.status != "open":
        short = ready < need
        if c2.button(
            "Open for participants",
            key="designer_open",
            disabled=short,
            help=f"needs {need} prepared photos (each photo at most once per participant)" if short else "",
        ):
            store.set_status(name, "open")
            st.rerun()
    elif c2.button("Close", key="designer_close", help="No new participants; answers sent after this are refused"):
        store.set_status(name, "closed")
        st.rerun()
    with c3.popover("Delete"):
        st.write(f"Delete **{name}** with all its images and votes?")
        if st.button("Delete for good", key="designer_delete", type="primary"):
            store.delete_study(name)
            st.session_state.pop("designer_pick", None)
            st.rerun()
    with st.expander("Design"):
        st.json(s.design.to_dict() | {"photos": s.design.photos[:5] + (["..."] if len(s.design.photos) > 5 else [])})

# -- new study ---------------------------------------------------------------------------------
st.subheader("New study")


@st.cache_data(ttl=60, show_spinner=False)
def method_statuses() -> dict:
    """Which methods can run (checked at most once a minute, not on every click)."""
    return {n: backends.status(n) for n in backends.names()}


status = method_statuses()
names = list(status)
missing = [n for n in names if not status[n].available]
st.caption(
    "Methods ready: "
    + ", ".join(f"`{n}`" for n in names if status[n].available)
    + (f"; not available: {', '.join(missing)}" if missing else "")
)
if missing:
    with st.expander("Why some methods are not available"):
        for n in missing:
            st.caption(f"`{n}`: {status[n].reason}")
st.session_state.setdefault("designer_seed", secrets.randbelow(2**31))
kind = st.radio(
    "Kind",
    ["turing", "arena"],
    horizontal=True,
    key="designer_kind",
    format_func={"turing": "Turing test (real vs colorized)", "arena": "Arena (method vs method)"}.get,
)
turing = kind == "turing"
study_name = st.text_input("Name (lowercase letters, digits, - and _)", key="designer_name")
fast = [n for n in names if status[n].available and n != "neural_style"]
methods = st.multiselect(
    "Methods",
    names,
    default=fast,
    key="designer_methods",
    help="Turing test: each participant sees ONE method (balanced). Arena: pairs of these. "
    "neural_style takes ~10 s per photo on a CPU.",
)
folder = st.text_input("Photo folder", str(DEFAULT_PHOTOS), key="designer_folder")
c1, c2, c3 = st.columns(3)
if turing:
    trials = c1.number_input("Scored trials per participant", 1, 1000, 40, key="designer_trials")
    practice = c2.number_input("Practice trials (with feedback)", 0, 100, 10, key="designer_practice")
    vig = c3.number_input("Vigilance trials (% of scored)", 0, 50, 10, key="designer_vigilance")
    need = int(trials) + int(practice) + int(round(int(trials) * vig / 100))
    n_photos = c1.number_input(
        "Photos (sampled)",
        1,
        10_000,
        max(60, need),
        key="designer_photos",
        help=f"at least {need}: no photo twice per participant",
    )
    max_fail = c2.number_input("Vigilance failures allowed", 0, 100, 0, key="designer_maxfail")
    tie = False
else:
    trials = c1.number_input("Comparisons per participant (0 = unlimited)", 0, 1000, 20, key="designer_arena_trials")
    n_photos = c2.number_input("Photos (sampled)", 1, 10_000, 30, key="designer_arena_photos")
    tie = c3.checkbox('Offer "can\'t tell" (tie)', True, key="designer_tie")
    practice, vig, max_fail = 0, 0, 0
c1, c2, c3 = st.columns(3)
size = c1.number_input("Image size (px)", 64, 1024, 256, step=32, key="designer_size")
display = c2.radio("Display time", ["unlimited", "1 s, then hidden"], key="designer_display")
seed = c3.number_input("Seed (recorded; reproduces every plan)", 0, 2**31 - 1, key="designer_seed")
estimate = prepare.estimate_seconds(list(methods), int(n_photos), int(size))
st.caption(
    f"Preparing will take about **{prepare.format_duration(estimate)}** on a 2-core CPU "
    f"({int(n_photos)} photos x {len(methods)} method(s); figures from results/benchmarks)."
)
if st.button("Create study", type="primary", key="designer_create"):
    try:
        photos = prepare.sample_photos(folder, int(n_photos), int(seed))
        design = StudyDesign(
            name=study_name.strip(),
            kind=kind,
            methods=list(methods),
            photos=photos,
            trials=int(trials),
            practice=int(practice),
            vigilance=vig / 100,
            vigilance_max_fail=int(max_fail),
            display_ms=1000 if display.startswith("1") else 0,
            size=int(size),
            seed=int(seed),
            allow_tie=bool(tie),
        )
        store.create_study(design)
    except (StudyError, ValueError, FileNotFoundError) as exc:
        st.error(str(exc))
    else:
        flash = [("success", f"Created **{design.name}** with {len(photos)} photos. Next: press *Prepare images* above.")]
        flash += [
            ("warning", f"{m}: {status[m].reason} - preparing will fail until it is available.")
            for m in methods
            if not status[m].available
        ]
        st.session_state["designer_flash"] = flash
        st.session_state["designer_pick_next"] = design.name
        st.rerun()
