"""Chat: pick an assistant, ask, watch the answer stream, check its sources."""

from __future__ import annotations

import streamlit as st

from app.ui.common import (
    answering,
    chose_in_sidebar,
    close_sidebar_if_chosen,
    code_blocks,
    highlight,
    plain,
    quotes_open,
    run_buttons,
    safe_markdown,
    services,
    show_answer,
    show_tools,
    slug,
    stream_markdown,
    wait_for_answer,
    without_code,
)
from app.ui.evidence import show_citations, show_quotes
from assistants.system2 import judged_first
from runtime.errors import ArchivistError

svc = services()
entries, errors = svc.library.entries()
for err in errors:
    st.warning(plain(str(err)))
if not entries:
    st.error("No assistants yet: create one on the Assistants page.")
    st.stop()
names = [e.assistant.name for e in entries]
default = names.index("archivist-guide") if "archivist-guide" in names else 0
# the assistant and the conversation are in the URL, so a reload or a shared link opens them again
linked = st.query_params.get("assistant")
if linked in names and "chat-assistant" not in st.session_state:
    st.session_state["chat-assistant"] = linked
name = st.sidebar.selectbox("Assistant", names, index=default, key="chat-assistant", on_change=chose_in_sidebar)
st.query_params["assistant"] = name
assistant = next(e.assistant for e in entries if e.assistant.name == name)
wait_for_answer(st.session_state.get(f"conversation:{name}"))  # one stopped by the click that started this run

# conversations of this assistant, newest first, or those a search finds
found = st.sidebar.text_input("Search conversations", key="conv-search", placeholder="words in a title or message")
convs = svc.conversations.search(name, found) if found.strip() else svc.conversations.all(name)
conv_key = f"conversation:{name}"
if conv_key not in st.session_state:
    linked_conv = st.query_params.get("conversation", "")
    known = {c.id for c in svc.conversations.all(name)}
    st.session_state[conv_key] = int(linked_conv) if linked_conv.isdigit() and int(linked_conv) in known else None
if st.sidebar.button("New conversation", width="stretch"):
    st.session_state[conv_key] = None
    chose_in_sidebar()
ids = [None, *[c.id for c in convs]]
titles: dict[int | None, str] = {None: "(new)", **{c.id: c.title for c in convs}}
current = st.session_state[conv_key] if st.session_state[conv_key] in ids else None
picked = st.sidebar.radio(
    "Conversations", ids, index=ids.index(current), format_func=lambda i: plain(titles[i]), on_change=chose_in_sidebar
)  # radio labels are Markdown
st.session_state[conv_key] = picked
if picked is not None:
    st.query_params["conversation"] = str(picked)
elif "conversation" in st.query_params:
    del st.query_params["conversation"]
if found.strip() and not convs:
    st.sidebar.caption(f"No conversation of {name} mentions {found.strip()!r}.")
close_sidebar_if_chosen()
if picked is not None:
    with st.sidebar.expander("Manage this conversation"):
        title = st.text_input("Title", titles[picked], key=f"title-{picked}")
        if st.button("Rename", key=f"rename-{picked}") and title.strip():
            svc.conversations.rename(picked, title.strip())
            st.rerun()
        st.download_button(
            "Export Markdown",
            svc.conversations.export_markdown(picked),
            file_name=f"{slug(titles[picked]) or 'conversation'}-{picked}.md",
            key=f"export-{picked}",
        )
        sure = st.checkbox("Yes, delete this conversation", key=f"sure-{picked}")
        if st.button("Delete", key=f"delete-{picked}", type="primary", disabled=not sure):
            svc.conversations.delete(picked)
            st.session_state[conv_key] = None
            st.rerun()


def listen(text: str, key: str) -> None:
    """A Listen button under an answer: the answer spoken (citation marks left out), offline."""
    from runtime.speech import aloud, engines, say

    if not engines():
        return
    if st.button("Listen", key=key, icon=":material/volume_up:", help="read this answer aloud"):
        try:
            speech = say(aloud(text)[:4000])
        except ArchivistError as exc:
            st.error(str(exc))
            return
        st.audio(speech.wav, format="audio/wav", autoplay=True)


def asked_aloud(key: str) -> str | None:
    """The microphone: a recorded question, transcribed here, shown for editing, sent with Send."""
    import hashlib

    recording = st.audio_input("Or ask aloud", key=key, help="recorded and transcribed on this machine")
    if recording is None:
        return None
    data = recording.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    heard = st.session_state.setdefault("heard", {})
    if digest not in heard:
        from ingest.audio import transcribe
        from ingest.errors import IngestError

        with st.spinner("Listening..."):
            try:
                heard[digest] = " ".join(s.text for s in transcribe(data, "question.wav"))
            except IngestError as exc:
                st.error(str(exc))
                return None
    if not heard[digest]:
        st.caption("No speech was heard in the recording.")
        return None
    text = st.text_input("Heard (edit it, then send)", value=heard[digest], key=f"{key}-text-{digest[:8]}")
    if st.button("Send", key=f"{key}-send-{digest[:8]}", icon=":material/send:"):
        return text.strip() or None
    return None


st.title(assistant.display_name or assistant.name)
if assistant.description:
    st.caption(safe_markdown(assistant.description))

messages = svc.conversations.messages(picked) if picked is not None else []
for m in messages:
    with st.chat_message(m.role):
        if m.role == "assistant":
            show_tools(m.details.get("tools", []))
            show_answer(m.text, m.details)
            run_buttons(m.text, f"a{m.id}", assistant, trusted=False, show_code=False)
            quotes = m.details.get("quotes", [])
            show_quotes(quotes, key=f"q{m.id}", expanded=quotes_open(m.details), citations=m.citations)
            show_citations(m.citations, key=f"m{m.id}", quotes=quotes)
            listen(m.text, key=f"listen-{m.id}")
            vote = st.feedback("thumbs", key=f"fb-{m.id}")  # on the answer it rates
            if vote is not None and (1 if vote == 1 else -1) != m.feedback:
                svc.conversations.feedback(m.id, 1 if vote == 1 else -1)
        else:
            runnable = assistant.tools.code is not None and bool(code_blocks(m.text))
            st.markdown(highlight(without_code(m.text) if runnable else m.text))
            run_buttons(m.text, f"u{m.id}", assistant, trusted=True, show_code=True)

question = st.chat_input("Ask a question about the documents")
question = question or asked_aloud(f"mic-{picked}")
if not messages and assistant.starters:
    cols = st.columns(len(assistant.starters))
    for col, starter in zip(cols, assistant.starters, strict=True):
        if col.button(plain(starter), key=f"starter:{starter}"):  # button labels are Markdown
            question = starter
if messages and messages[-1].role == "assistant" and st.button("Regenerate last answer"):
    last_q = messages[-2].text
    svc.conversations.delete_last_turn(picked)  # type: ignore[arg-type]
    question = last_q
    messages = messages[:-2]

if question:
    created = picked is None
    if picked is None:
        picked = svc.conversations.create(name).id
        st.session_state[conv_key] = picked
    with st.chat_message("user"):
        st.markdown(highlight(question))
    with st.chat_message("assistant"), answering(picked):
        try:
            with st.spinner("Searching the documents (the first question also loads the model)..."):
                stream = svc.conversation.ask(assistant, picked, question)
            show_tools([t.to_json() for t in stream.tools])
            # any click ends this run; Stop is the one meant for it (what was written is kept, marked)
            st.button("Stop writing", key="stop-answer", icon=":material/stop_circle:", help="stop writing this answer")
            answer_area = st.container()
            # closed while the answer is written: the view follows the answer, not the quotes under it
            show_quotes([q.to_json(context=True) for q in stream.quotes], key="live")
            with answer_area:
                judged = judged_first(assistant.thinking, assistant.fallback, assistant.grounding)
                if judged and assistant.answer_mode == "generate":
                    # the draft shows as it is written; the checked answer replaces it
                    with st.spinner("Writing the answer and checking it against the documents..."):
                        stream_markdown(stream, on_stop=stream.stop)
                else:
                    stream_markdown(stream, on_stop=stream.stop)
            answer = stream.result()
        except ArchivistError as exc:
            if created and not svc.conversations.messages(picked):
                svc.conversations.delete(picked)  # a failed first question leaves no empty conversation
                st.session_state[conv_key] = None
            st.error(str(exc))
            st.stop()
        show_citations([c.to_json() for c in answer.citations], key="live")
        t = answer.stats.time_to_first_token
        st.caption(
            f"first token {t or 0:.2f}s · {answer.stats.completion_tokens} tokens · "
            f"{answer.stats.evaluated_tokens}/{answer.stats.prompt_tokens} prompt tokens evaluated"
        )
    st.rerun()
