"""The builder's fields, grouped as a newcomer reads them: the essentials first (name, description,
instructions, knowledge with an inline uploader, starters), then the model, then how answers are
found and checked, then tools. Every field has help; a field's messages sit under it. The fields are
live (no form): the preview beside them always answers with what is on screen."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.ui.builder_common import field_errors, new_draw, show_problems
from app.ui.builder_sections import answer_fields, model_fields, tool_fields
from app.ui.common import plain
from assistants import Assistant

__all__ = ["draft_of", "show_problems"]


def essentials(d: dict[str, Any], collections: list[str], svc: Any) -> dict[str, Any]:
    """Name, description, instructions, knowledge (with an uploader), starters, refusal."""
    out: dict[str, Any] = {}
    out["name"] = st.text_input(
        "Name",
        d["name"],
        key="f-name",
        help="How the assistant is called in the app, the API (model name) and the command line: letters, digits, "
        "'-', '_' and '.'.",
    ).strip()
    field_errors("name")
    out["display_name"] = st.text_input(
        "Display name",
        d.get("display_name", ""),
        key="f-display-name",
        placeholder="Lighthouse Guide",
        help="The name people see in the app's chat and gallery; spaces allowed. Empty: the name above.",
    ).strip()
    field_errors("display_name")
    out["description"] = st.text_input(
        "Description", d.get("description", ""), key="f-description", help="One line, shown in the gallery and chat."
    )
    field_errors("description")
    out["instructions"] = st.text_area(
        "Instructions",
        d.get("instructions", ""),
        height=160,
        key="f-instructions",
        help="What the assistant should do and how: its tone, what to answer and what not. It always answers "
        "from the knowledge below and cites it.",
    )
    field_errors("instructions")
    chosen = st.multiselect(
        "Knowledge",
        sorted(set(collections) | set(d["knowledge"]["collections"])),
        d["knowledge"]["collections"],
        key="f-collections",
        help="The document collections it answers from. Add documents below or on the Knowledge page.",
    )
    field_errors("knowledge")
    out["knowledge"] = {**d["knowledge"], "collections": chosen}
    add_documents(chosen, out["name"], svc)
    out["starters"] = [
        s.strip()
        for s in st.text_area(
            "Conversation starters",
            "\n".join(d.get("starters", [])),
            key="f-starters",
            help="Questions offered as buttons in a new chat, one per line (8 at most).",
        ).splitlines()
        if s.strip()
    ]
    field_errors("starters")
    out["refusal"] = st.text_input(
        "Reply when the documents don't answer",
        d.get("refusal", "The documents I have don't answer that."),
        key="f-refusal",
        help="Said instead of an answer when nothing relevant is found, rather than a guess.",
    )
    field_errors("refusal")
    return out


def add_documents(chosen: list[str], name: str, svc: Any) -> None:
    """Upload documents into the assistant's first collection (or a new one named after it)."""
    target = chosen[0] if chosen else (name or "")
    with st.expander("Add documents", icon=":material/upload_file:"):
        if not target:
            st.caption("Name the assistant or pick a collection first.")
            return
        files = st.file_uploader(
            f"Documents for {plain(target)}",
            accept_multiple_files=True,
            key="f-upload",
            help="PDF, DOCX, HTML, Markdown, CSV, JSON, text, scans and photos (PNG, JPEG, TIFF, WebP, BMP, "
            "read by OCR) and recordings (WAV, MP3, OGG, FLAC, M4A, WebM, transcribed). They are ingested in the "
            "background.",
        )
        if files and st.button(f"Add {len(files)} file(s) to {plain(target)}", key="f-upload-go"):
            try:
                svc.ingest_jobs.submit(target, [(f.name, f.getvalue()) for f in files])
                if target not in chosen:
                    st.session_state["f-collections"] = [*chosen, target]
                st.session_state["f-upload-note"] = target
                st.rerun()
            except Exception as exc:  # a bad collection name: said here, nothing queued
                st.error(str(exc))
        if st.session_state.get("f-upload-note") == target:
            running = svc.ingest_jobs.running(target)
            st.caption(
                "Ingesting in the background; progress is on the Knowledge page."
                if running
                else f"Documents added to {plain(target)}."
            )


def draft_of(d: dict[str, Any], collections: list[str], problems: dict[str, list[str]], svc: Any) -> dict[str, Any]:
    """Every field, grouped; returns the assistant as it stands on screen. Settings the form has no
    field for (the answer opening, tool limits, coverage) are kept as they were."""
    defaults = Assistant(name="defaults", knowledge={"collections": ["-"]})  # type: ignore[arg-type]
    new_draw()
    draft = dict(d)
    with st.container(border=True):
        st.markdown("**Essentials**")
        draft.update(essentials(d, collections, svc))
    with st.expander("Model", icon=":material/memory:", expanded="model" in str(problems)):
        draft["model"] = model_fields(d, svc)
    with st.expander("Finding passages and checking answers", icon=":material/tune:"):
        draft.update(answer_fields(d, defaults))
    with st.expander("Tools", icon=":material/build:", expanded="tools" in str(problems)):
        draft["tools"] = tool_fields(d, draft["model"]["path"], svc)
    return draft
