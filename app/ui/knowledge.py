"""Knowledge: upload documents with a progress bar per file, see what is stored, test retrieval."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from app.ingest_jobs import duration_text
from app.ui.common import passage_markdown, plain, services
from ingest import IngestError
from ingest.store import check_collection_name
from retriever import MODES

svc = services()
st.title("Knowledge")
# a collection being filled by a background ingest is listed before its first document is stored
collections = sorted(set(svc.store.collection_names()) | {j.collection for j in svc.ingest_jobs.jobs()})
wanted = st.session_state.pop("kn-go", None)  # after a rename or delete: the collection to show next
if wanted is not None:
    st.session_state["kn-collection"] = wanted
c1, c2 = st.columns([2, 1])
picked = c1.selectbox("Collection", [*collections, "(new collection)"], key="kn-collection")
name = c2.text_input("New collection name", key="kn-new") if picked == "(new collection)" else picked
if not name:
    st.info("Name the new collection to upload documents into it.")
    st.stop()
try:
    check_collection_name(name)  # at once, not after each file was parsed and embedded
except IngestError as exc:
    st.error(str(exc))
    st.stop()

files = st.file_uploader(
    "Add documents (PDF, DOCX, HTML, Markdown, CSV, JSON, text; scans and photos: PNG, JPEG, TIFF, WebP, BMP; "
    "recordings: WAV, MP3, OGG, FLAC, M4A, WebM)",
    accept_multiple_files=True,
    key="kn-files",
    help="Scanned pages and pictures are read by OCR on this machine (about 2 s a page); their citations say so. "
    "Recordings are transcribed on this machine; their citations play from the second the passage starts.",
)
if files and st.button(f"Ingest {len(files)} file(s) into {name}", type="primary", key="kn-ingest"):
    # the size limit is checked by ingest_bytes, like every other way in
    svc.ingest_jobs.submit(name, [(f.name, f.getvalue()) for f in files])
    st.session_state["kn-running"] = True


def manage(name: str) -> None:
    """Rename or delete the collection; the folders it follows, their last sync, and Sync now."""
    from ingest.store_sources import SourceSpec
    from ingest.sync import sync

    with st.expander(f"Manage {name}: folders, rename, delete"):
        sources = svc.store.sources(name)
        for src in sources:
            when = src.synced_at.strftime("%Y-%m-%d %H:%M") if src.synced_at else "never"
            r = src.result or {}
            done = ", ".join(f"{r[k]} {k}" for k in ("added", "changed", "renamed", "removed") if r.get(k))
            st.text(f"{src.spec.path} (last sync {when}{': ' + done if done else ''})")
        folder = st.text_input("Follow a folder (its files are added, changed, removed as it changes)", key="kn-source")
        specs = [SourceSpec(folder.strip())] if folder.strip() else [x.spec for x in sources]
        if specs and st.button("Sync now", key="kn-sync"):
            with st.spinner("Syncing..."):
                result = sync(svc.store, svc.embedder, name, specs)
            s = result.summary()
            (st.warning if s["problems"] or s["failed"] else st.success)(
                f"{s['added']} added, {s['changed']} changed, {s['renamed']} renamed, {s['removed']} removed, "
                f"{s['unchanged']} unchanged" + "".join(f"; {plain(p)}" for p in [*s["problems"], *s["failed"]])
            )
        new = st.text_input("New name", key="kn-rename-to")
        if st.button("Rename collection", disabled=not new.strip(), key="kn-rename"):
            try:
                stuck = svc.rename_collection(name, new.strip())
            except IngestError as exc:
                st.error(str(exc))
            else:
                for bot in stuck:
                    st.warning(f"The shipped assistant {bot} still searches {name}; duplicate it to change it.")
                st.session_state["kn-go"] = new.strip()
                st.rerun()
        users = svc.collection_users(name)
        count = len(svc.store.documents(name))
        sure = st.checkbox(f"Yes, delete {name} and its {count} document(s)", key="kn-coll-sure")
        if users:
            st.caption(f"Searched by: {', '.join(users)}")
        if st.button("Delete collection", disabled=not sure, key="kn-coll-delete"):
            svc.store.delete_collection(name)
            st.session_state["kn-go"] = "(new collection)"
            st.rerun()


@st.fragment(run_every=1.0)
def ingest_progress() -> None:
    """Every running ingest, whichever collection it fills (they go on while you are on other pages or
    reload, and show here again when you come back), then this collection's finished ones."""
    for job in [j for j in svc.ingest_jobs.jobs() if j.running]:
        with st.container(border=True, key=f"kn-job-{job.id}"):
            left = job.seconds_left()
            eta = f"; about {duration_text(left)} left" if left is not None else ""
            st.markdown(
                f"**Ingesting {len(job.files)} file(s) into {plain(job.collection)}**{eta}. You can leave this "
                "page; the work goes on."
            )
            for f in job.files:
                st.progress(f.fraction, text=plain(f.text()))
            if job.cancel.is_set():
                st.caption("Cancelling: stopping after the current step...")
            elif st.button("Cancel", key=f"kn-cancel-{job.id}", icon=":material/cancel:"):
                svc.ingest_jobs.cancel(job.id)
                st.rerun(scope="fragment")
    jobs = [j for j in svc.ingest_jobs.jobs(name) if not j.running][:3]
    for job in jobs:
        when = time.strftime("%H:%M:%S", time.localtime(job.finished or 0))
        with st.expander(f"Ingest of {len(job.files)} file(s), finished at {when}", expanded=job is jobs[0]):
            for f in job.files:
                (st.error if f.stage == "failed" else st.text)(f.text())  # names as written, not Markdown
                for w in f.warnings:
                    st.warning(f"{plain(f.name)}: {plain(w)}")
    running = svc.ingest_jobs.running(name)
    if st.session_state.get("kn-running") and not running:
        st.session_state["kn-running"] = False
        st.rerun()  # the whole page: the documents table has the new files
    st.session_state["kn-running"] = running


ingest_progress()
if name in svc.store.collection_names():
    manage(name)

svc.store.recover_if_idle()  # an ingest interrupted when the app stopped shows as failed, with why
docs = svc.store.documents(name)
if docs:
    st.subheader(f"Documents in {name}")
    table = pd.DataFrame(
        [
            {
                "document": d.name,
                "status": d.status,
                "pages": d.pages,
                "chunks": d.chunks,
                "warnings": "; ".join(d.warnings) or (d.error or ""),
                "size (KB)": round(d.size / 1024, 1),
                "added": d.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for d in docs
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    c3, c4 = st.columns(2)
    victim = c3.selectbox("Document", [d.name for d in docs], key="kn-victim")
    sure = c3.checkbox(f"Yes, delete {plain(victim)}", key="kn-sure")
    if c3.button("Delete document", disabled=not sure, key="kn-delete"):
        svc.store.delete_document(name, victim)
        st.rerun()
    if c4.button("Re-index collection", key="kn-reindex"):
        n = svc.store.reindex(name)
        c4.success(f"Index rebuilt with {n:,} vectors")

    st.subheader("What does a question retrieve?")
    q = st.text_input("Query", key="kn-query")
    mode = st.radio("Mode", sorted(MODES, key=lambda m: m != "hybrid"), horizontal=True, key="kn-mode")
    if q.strip():
        for i, h in enumerate(svc.search([name], q, 5, mode=mode), start=1):  # type: ignore[arg-type]
            page = f", page {h.page}" if h.page else ""
            with st.expander(f"[{i}] {plain(h.document)}{page} · score {h.score:.3f} · similarity {h.similarity:.2f}"):
                st.markdown(passage_markdown(h.text, h.document))
