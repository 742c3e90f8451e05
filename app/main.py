"""The Streamlit app: chat with an assistant, see the passages behind every answer.

Run with `streamlit run app/main.py` or `archivist ui`. Pages only call services.
"""

from __future__ import annotations

import os

import streamlit as st

from app.services import Services, ensure_example_knowledge
from runtime.errors import ArchivistError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@st.cache_resource(show_spinner="Loading the embedder and indexing Archivist's docs...")
def get_services() -> Services:
    services = Services.create()
    ensure_example_knowledge(services)
    return services


def citation_label(c: dict[str, object]) -> str:
    page = f", page {c['page']}" if c.get("page") else ""
    return f"[{c['n']}] {c['document']}{page} (score {float(c['score']):.2f})"  # type: ignore[arg-type]


def show_citations(citations: list[dict[str, object]]) -> None:
    for c in citations:
        with st.expander(citation_label(c)):
            st.markdown(str(c["text"]))


def main() -> None:
    st.set_page_config(page_title="Archivist", page_icon=":books:")
    services = get_services()
    entries, errors = services.library.entries()
    for err in errors:
        st.warning(str(err))
    if not entries:
        st.error("No assistants found. Add a YAML file to the workspace's assistants/ folder.")
        return
    names = [e.assistant.name for e in entries]
    name = st.sidebar.selectbox(
        "Assistant", names, index=names.index("archivist-guide") if "archivist-guide" in names else 0
    )
    assistant = next(e.assistant for e in entries if e.assistant.name == name)
    st.sidebar.caption(assistant.description)
    st.title(f":books: {assistant.name}")

    history: list[dict[str, object]] = st.session_state.setdefault(f"history:{name}", [])
    for msg in history:
        with st.chat_message(str(msg["role"])):
            st.markdown(str(msg["content"]))
            show_citations(msg.get("citations", []))  # type: ignore[arg-type]

    question = st.chat_input("Ask a question about the documents")
    if not history and assistant.starters:
        cols = st.columns(len(assistant.starters))
        for col, starter in zip(cols, assistant.starters, strict=True):
            if col.button(starter, key=f"starter:{starter}"):
                question = starter
    if not question:
        return
    history.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        try:
            stream = services.chat.ask(assistant, question)
            st.write_stream(stream)
            answer = stream.result()
        except ArchivistError as exc:
            st.error(str(exc))
            return
        cites = [c.to_json() for c in answer.citations]
        show_citations(cites)
    history.append({"role": "assistant", "content": answer.text, "citations": cites})


main()
