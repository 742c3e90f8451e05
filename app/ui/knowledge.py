"""Knowledge: upload documents with a progress bar per file, see what is stored, test retrieval."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.ui.common import UPLOAD_LIMIT_MB, highlight, services
from ingest import IngestError, IngestLimits, ingest_bytes
from ingest.store import check_collection_name
from retriever import search

svc = services()
st.title("Knowledge")
collections = sorted(svc.store.collection_names())
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

limits = IngestLimits(max_file_bytes=UPLOAD_LIMIT_MB * 2**20)
files = st.file_uploader(
    "Add documents (PDF, DOCX, HTML, Markdown, CSV, JSON, text)", accept_multiple_files=True, key="kn-files"
)
if files and st.button(f"Ingest {len(files)} file(s) into {name}", type="primary", key="kn-ingest"):
    for f in files:
        bar = st.progress(0.0, text=f"{f.name}: reading")
        data = f.getvalue()  # the size limit is checked by ingest_bytes, like every other way in

        def notify(stage: str, chunks: int = 0, pages: int = 0, *, bar=bar, f=f) -> None:  # type: ignore[no-untyped-def]
            done = f", {chunks:,} chunks" + (f" from {pages:,} pages" if pages else "") if chunks else ""
            bar.progress({"reading": 0.1, "embedding": 0.5}.get(stage, 1.0), text=f"{f.name}: {stage}{done}")

        try:
            with svc.store.writer():
                r = ingest_bytes(data, f.name, name, svc.store, svc.embedder, limits=limits, notify=notify)
            bar.progress(1.0, text=f"{f.name}: {r.status}, {r.chunks} chunks")
            for w in r.warnings:
                st.warning(f"{f.name}: {w}")
        except IngestError as exc:
            bar.empty()
            st.error(str(exc))

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
    sure = c3.checkbox(f"Yes, delete {victim}", key="kn-sure")
    if c3.button("Delete document", disabled=not sure, key="kn-delete"):
        svc.store.delete_document(name, victim)
        st.rerun()
    if c4.button("Re-index collection", key="kn-reindex"):
        n = svc.store.reindex(name)
        c4.success(f"Index rebuilt with {n:,} vectors")

    st.subheader("What does a question retrieve?")
    q = st.text_input("Query", key="kn-query")
    mode = st.radio("Mode", ["hybrid", "dense", "keyword"], horizontal=True, key="kn-mode")
    if q.strip():
        for i, h in enumerate(search(svc.store, svc.embedder, [name], q, 5, mode=mode), start=1):  # type: ignore[arg-type]
            page = f", page {h.page}" if h.page else ""
            with st.expander(f"[{i}] {h.document}{page} · score {h.score:.3f} · similarity {h.similarity:.2f}"):
                st.markdown(highlight(h.text))
