"""Study designer (admin only): define a Turing test or an arena, pre-generate its images, open it.

Defaults follow Zhang et al. (ECCV 2016): one method per participant (balanced, random), 40
scored trials, 10 practice trials with feedback, 10 % vigilance trials, 256-px images.
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
from experiments.study.protocol import StudyDesign  # noqa: E402

st.header("Study designer")
ui.admin_gate()
store = ui.store()
for level, text in st.session_state.pop("designer_flash", []):
    getattr(st, level)(text)

DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "test" / "kodak24"

# -- existing studies --------------------------------------------------------------------------
rows = []
for s in store.studies():
    parts = store.participants_frame(s.name)
    rows.append(
        {
            "study": s.name,
            "kind": s.kind,
            "status": s.status,
            "methods": ", ".join(s.design.methods),
            "photos ready": f"{len(store.ready_photos(s.name))} / {len(s.design.photos)}",
            "participants": len(parts),
            "finished": int(parts["finished_at"].notna().sum()) if len(parts) else 0,
            "link": f"/?study={s.name}",
        }
    )
if rows:
    st.subheader("Studies")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="designer_table")
    st.caption(
        "Invite link: this app's address plus `/?study=<name>` (e.g. `http://host:8501/?study=pilot`). "
        "It opens only the participant page of that study (Turing test or arena); nothing else is reachable."
    )
    name = st.selectbox("Study", [r["study"] for r in rows], key="designer_pick")
    s = store.study(name)
    c1, c2, c3 = st.columns(3)
    if c1.button(
        "Prepare images", key="designer_prepare", help="Colorize every photo with every method now, so trials load instantly"
    ):
        bar = st.progress(0.0, text="Preparing...")
        try:
            report = prepare.prepare(store, name, progress=lambda i, n, msg: bar.progress(i / max(n, 1), text=f"{i}/{n} {msg}"))
        except (ColorizationError, ValueError) as exc:
            st.error(str(exc))
        else:
            st.success(f"{report.ready} photos ready ({report.generated} images generated).")
            for line in report.skipped:
                st.warning(f"skipped {line}")
    ready = len(store.ready_photos(name))
    if s.status != "open":
        if c2.button("Open for participants", key="designer_open", disabled=ready == 0, help="needs prepared images"):
            store.set_status(name, "open")
            st.rerun()
    elif c2.button("Close", key="designer_close"):
        store.set_status(name, "closed")
        st.rerun()
    with c3.popover("Delete"):
        st.write(f"Delete **{name}** with all its images and votes?")
        if st.button("Delete for good", key="designer_delete", type="primary"):
            store.delete_study(name)
            st.rerun()
    with st.expander("Design"):
        st.json(s.design.to_dict() | {"photos": s.design.photos[:5] + (["..."] if len(s.design.photos) > 5 else [])})

# -- new study ---------------------------------------------------------------------------------
st.subheader("New study")
names = backends.names()
status = {n: backends.status(n) for n in names}
st.caption(" · ".join(f"`{n}`: {'ready' if status[n].available else status[n].reason}" for n in names))
st.session_state.setdefault("designer_seed", secrets.randbelow(2**31))
with st.form("designer_form"):
    kind = st.radio(
        "Kind",
        ["turing", "arena"],
        horizontal=True,
        key="designer_kind",
        format_func={"turing": "Turing test (real vs colorized)", "arena": "Arena (method vs method)"}.get,
    )
    study_name = st.text_input("Name (lowercase letters, digits, - and _)", key="designer_name")
    methods = st.multiselect(
        "Methods",
        names,
        default=[n for n in names if status[n].available],
        key="designer_methods",
        help="Turing test: each participant sees ONE method (balanced). Arena: pairs of these.",
    )
    folder = st.text_input("Photo folder", str(DEFAULT_PHOTOS), key="designer_folder")
    c1, c2, c3 = st.columns(3)
    n_photos = c1.number_input("Photos (sampled)", 1, 10_000, 50, key="designer_photos")
    trials = c2.number_input("Trials per participant (arena: 0 = unlimited)", 0, 1000, 40, key="designer_trials")
    practice = c3.number_input("Practice trials (with feedback)", 0, 100, 10, key="designer_practice")
    c1, c2, c3 = st.columns(3)
    vig = c1.number_input("Vigilance trials (% of trials)", 0, 50, 10, key="designer_vigilance")
    max_fail = c2.number_input("Vigilance failures allowed", 0, 100, 0, key="designer_maxfail")
    size = c3.number_input("Image size (px)", 64, 1024, 256, step=32, key="designer_size")
    c1, c2 = st.columns(2)
    display = c1.radio("Display time", ["unlimited", "1 s, then hidden"], key="designer_display")
    seed = c2.number_input("Seed (recorded; reproduces every plan)", 0, 2**31 - 1, key="designer_seed")
    tie = st.checkbox('Arena: offer "can\'t tell" (tie)', True, key="designer_tie")
    create = st.form_submit_button("Create study", type="primary")

if create:
    try:
        photos = prepare.sample_photos(folder, int(n_photos), int(seed))
        design = StudyDesign(
            name=study_name.strip(),
            kind=kind,
            methods=list(methods),
            photos=photos,
            trials=int(trials),
            practice=int(practice) if kind == "turing" else 0,
            vigilance=vig / 100 if kind == "turing" else 0.0,
            vigilance_max_fail=int(max_fail),
            display_ms=1000 if display.startswith("1") else 0,
            size=int(size),
            seed=int(seed),
            allow_tie=bool(tie),
        )
        store.create_study(design)
    except (ValueError, FileNotFoundError) as exc:
        st.error(str(exc))
    else:
        flash = [
            ("success", f"Created **{design.name}** with {len(photos)} photos. Next: select it above and press *Prepare images*.")
        ]
        flash += [
            ("warning", f"{m}: {status[m].reason} - preparing will fail until it is available.")
            for m in methods
            if not status[m].available
        ]
        st.session_state["designer_flash"] = flash
        st.session_state["designer_pick"] = design.name
        st.rerun()
