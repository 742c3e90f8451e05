"""What every page shares: the process-wide services, and how citations are shown."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from app.services import Services, ensure_example_knowledge

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

UPLOAD_LIMIT_MB = 200


@st.cache_resource(show_spinner="Loading the embedder and indexing Archivist's docs (first start only)...")
def services() -> Services:
    """One set of services (models, indexes) per process, shared by every session."""
    svc = Services.create()
    ensure_example_knowledge(svc)
    return svc


def highlight(text: str, start: int | None = None, end: int | None = None) -> str:
    """Passage text as Markdown (never raw HTML), optionally with a span in bold."""

    def esc(s: str) -> str:
        for ch in "\\`*_{}[]<>()#+-.!|~$":
            s = s.replace(ch, "\\" + ch)
        return s.replace("\n", "  \n")

    if start is None or end is None or not (0 <= start < end <= len(text)):
        return esc(text)
    return esc(text[:start]) + "**" + esc(text[start:end]) + "**" + esc(text[end:])


def show_citations(citations: list[dict[str, Any]], key: str) -> None:
    """Each citation as an expander with its passage, document and page, and the original file."""
    svc = services()
    for c in citations:
        page = f", page {c['page']}" if c.get("page") else ""
        label = f"[{c['n']}] {c['document']}{page} · relevance {float(c.get('similarity', c['score'])):.2f}"
        with st.expander(label):
            st.markdown(highlight(str(c["text"])))
            doc = next((d for d in svc.store.documents(c["collection"]) if d.name == c["document"]), None)
            original = next((svc.home / "files").glob(f"{doc.sha256}*"), None) if doc else None
            if original is not None:
                st.download_button(
                    f"Open {c['document']}",
                    original.read_bytes(),
                    file_name=c["document"],
                    key=f"dl-{key}-{c['n']}",
                    help=f"the original file{page}",
                )
