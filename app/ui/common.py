"""What every page shares: the process-wide services, and how citations are shown."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from app.services import Services, ensure_example_knowledge
from assistants.system2 import shown_label

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@st.cache_resource(show_spinner="Loading the embedder and indexing Archivist's docs (first start only)...")
def services() -> Services:
    """One set of services (models, indexes) per process, shared by every session."""
    from app.logs import configure

    svc = Services.create()
    configure(svc.home)
    ensure_example_knowledge(svc)
    svc.follow_folders(threading.Event())  # collections switched on to follow their folders (sync --follow)
    return svc


_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")
_AUTOLINK = re.compile(r"<(https?://[^>]+)>")


def safe_markdown(text: str) -> str:
    """Untrusted text (answers, descriptions, questions) as Markdown without what could leak a
    conversation. Images are fetched on render: every Markdown image, inline or reference-style,
    nested brackets or not, begins with "![", so escaping that bracket leaves no image to parse,
    whatever the parser makes of the rest. Inline links (clicked by mistake) become plain text.
    Raw HTML is never rendered (Streamlit escapes it)."""
    text = _IMAGE.sub(lambda m: f"[image: {m.group(1)}]", text)  # readable; the escape below is the guard
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    text = _AUTOLINK.sub(lambda m: m.group(1).replace("://", "\u200b://"), text)
    return text.replace("![", "!\\[")


# Answers being written, by conversation, for the whole app process: a click during an answer starts
# the next run in a new thread at once (Streamlit's fast reruns) while the old one is still stopping
# and storing what was written, so the new run waits for that before it reads the conversation.
_ANSWERING: dict[int, threading.Event] = {}
_ANSWERING_LOCK = threading.Lock()


@contextmanager
def answering(conversation_id: int) -> Iterator[None]:
    """Mark an answer of this conversation as being written until the block ends, however it ends."""
    done = threading.Event()
    with _ANSWERING_LOCK:
        _ANSWERING[conversation_id] = done
    try:
        yield
    finally:
        done.set()
        with _ANSWERING_LOCK:
            if _ANSWERING.get(conversation_id) is done:
                del _ANSWERING[conversation_id]


def wait_for_answer(conversation_id: int | None, timeout: float = 10.0) -> None:
    """Wait (at most `timeout` seconds) until an answer being written in this conversation is stored."""
    if conversation_id is None:
        return
    with _ANSWERING_LOCK:
        done = _ANSWERING.get(conversation_id)
    if done is not None:
        done.wait(timeout)


def stream_markdown(pieces: Iterable[str], on_stop: Callable[[], object] | None = None) -> str:
    """Show a streamed answer as it grows, made safe at every step; returns the whole text.

    Each piece (an empty one is a heartbeat between tokens while candidates are written) is a point
    where Streamlit ends this run when the user clicks anything, Stop included: `on_stop` then
    stops the generation and keeps what was written, before the next run shows it. While an answer
    is written to be judged before it is shown, its draft (the stream's `draft()`) is shown as it is
    written, marked as a draft, and the judged answer replaces it."""
    from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

    box = st.empty()
    text = shown_draft = ""
    draft = getattr(pieces, "draft", None)
    try:
        for piece in pieces:
            text += piece
            if not text and draft is not None:
                now = draft()
                if now.strip() and now != shown_draft:
                    shown_draft = now
                    with box.container():
                        st.caption(":material/edit_note: Draft, being checked against the documents:")
                        st.markdown(safe_markdown(now) + " ▌")
                continue
            box.markdown(safe_markdown(text) + " ▌")
    except ScriptControlException:
        if on_stop is not None:
            on_stop()
        raise
    box.markdown(safe_markdown(text))
    return text


def plain(s: str) -> str:
    """A name inside a label, shown as-is: no Markdown in it is interpreted (a file called
    "![x](http://...)" stays text, never an image; widget labels render images too). Only the
    characters that open Markdown or Streamlit syntax are escaped, so "models.md" reads the same."""
    for ch in "\\`*_{}[]<>()!|~$:#":
        s = s.replace(ch, "\\" + ch)
    return " ".join(s.split())


def esc_markdown(s: str) -> str:
    """Plain text as Markdown that shows it as written (every character Markdown reads escaped)."""
    for ch in "\\`*_{}[]<>()#+-.!|~$:":
        s = s.replace(ch, "\\" + ch)
    return s.replace("\n", "  \n")


def highlight(text: str, start: int | None = None, end: int | None = None) -> str:
    """Passage text as Markdown (never raw HTML), optionally with a span highlighted."""
    if start is None or end is None or not (0 <= start < end <= len(text)):
        return esc_markdown(text)
    marked = " ".join(text[start:end].split())
    return (
        esc_markdown(text[:start]) + ":orange-background[**" + esc_markdown(marked) + "**]" + esc_markdown(text[end:])
    )


MARKDOWN_SOURCES = (".md", ".markdown", ".mdown", ".mkd", ".html", ".htm", ".xhtml")


def _esc_lines(s: str) -> str:
    """Plain text as Markdown that reads the same: escaped, line breaks kept, indentation kept."""
    lines = []
    for line in s.split("\n"):
        body = line.lstrip(" ")
        lines.append("\u00a0" * (len(line) - len(body)) + esc_markdown(body))
    return "  \n".join(lines)


def passage_markdown(text: str, document: str = "", spans: Iterable[tuple[int, int]] = ()) -> str:
    """A passage as formatted text: Markdown and HTML sources keep their headings, lists and code
    (made safe: no images, no live links); other text reads as written, line breaks and code
    indentation kept. Pilcrows of HTML headings are dropped, `spans` (offsets) are highlighted, and
    each sentence that gives a model orders is marked, so a user sees what was kept from the prompt."""
    from retriever.context import rewrite_injections

    markdown = document.lower().endswith(MARKDOWN_SOURCES)
    keep = (lambda t: t) if markdown else _esc_lines

    def flag(sentence: str, kind: str) -> str:
        return f":red-background[⚠ {kind}, never given to the model: {esc_markdown(' '.join(sentence.split()))}]"

    def part(t: str) -> str:
        return rewrite_injections(t, flag, keep)

    out, last = [], 0
    for a, b in sorted(spans):
        if a < last or not (0 <= a < b <= len(text)):
            continue
        out.append(part(text[last:a]) + ":orange-background[**" + esc_markdown(" ".join(text[a:b].split())) + "**]")
        last = b
    out.append(part(text[last:]))
    done = "".join(out).replace("\u00b6", "")
    return safe_markdown(done) if markdown else done


def show_answer(text: str, details: dict[str, Any]) -> None:
    """The answer, each sentence the documents do not support marked, and a note listing them."""
    unsupported = [s for s in details.get("sentences", []) if not s.get("supported", True)]
    st.markdown(safe_markdown(mark_unsupported(text, [s["text"] for s in unsupported])))
    if details.get("shown"):
        label = shown_label(details["shown"], int(details.get("candidates") or 0), details.get("refusal_reason", ""))
        st.caption(f"Answer: {label}")
    if details.get("stopped"):
        st.caption(":material/stop_circle: Stopped: the answer as it stood when you pressed Stop.")
    left_out = details.get("left_out") or []
    if left_out:
        with st.expander(f"Left out: {len(left_out)} sentence(s) the documents do not support"):
            st.markdown("\n".join(f"- {esc_markdown(s)}" for s in left_out))
    action = (details.get("grounding") or {}).get("action")
    if action == "retried":
        st.caption("Most sentences of the first answer lacked support; this is the second, stricter answer.")
    elif action == "extractive-fallback":
        st.caption("Two written answers lacked support; these are the documents' own words instead.")
    timings = details.get("timings") or {}
    if timings:
        spent = f"quotes {1000 * float(timings.get('quotes', 0)):.0f} ms"
        if details.get("grounding") is not None:
            g = details["grounding"]
            spent += f" · grounding check {1000 * float(timings.get('grounding', 0)):.0f} ms"
            spent += f" · {g.get('supported_share', 1):.0%} of sentences supported"
        if float(timings.get("judging") or 0) > 0:
            spent += f" · writing and judging {float(timings['judging']):.1f} s"
        st.caption(spent)
    if unsupported:
        claims = sum(1 for s in details.get("sentences", []) if s.get("claim", True))
        lines = []
        for s in unsupported:
            why = f" (not in the passages: {', '.join(s['missing'])})" if s.get("missing") else ""
            lines.append(f"- {esc_markdown(' '.join(s['text'].split()))}{esc_markdown(why)}")
        st.warning(
            f"\u26a0\ufe0f Not supported by the documents ({len(unsupported)} of {max(claims, len(unsupported))} "
            "sentences): check them against the quotes below.\n\n" + "\n".join(lines)
        )


_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
MARK = " \u26a0\ufe0f"


def mark_unsupported(text: str, sentences: list[str]) -> str:
    """`text` with a warning mark after each unsupported sentence; a sentence inside a fenced code
    block gets its mark after the block (a mark inside would read as code)."""
    blocks = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    marks: dict[int, str] = {}  # insert position -> mark
    at = 0
    for sentence in sentences:
        i = text.find(sentence, at)
        if i < 0:
            i = text.find(sentence)
        if i < 0:
            continue
        end = i + len(sentence)
        inside = next(((a, b) for a, b in blocks if a <= i < b), None)
        if inside:  # on its own line: text after a closing fence would keep the block open
            marks[inside[1]] = "\n\n\u26a0\ufe0f the code above is not in the documents\n"
        else:
            marks[end] = MARK
        at = end
    out, last = [], 0
    for pos in sorted(marks):
        out.append(text[last:pos] + marks[pos])
        last = pos
    return "".join(out) + text[last:]


def quotes_open(details: dict[str, Any]) -> bool:
    """The quotes are shown open when the answer has a sentence the documents do not support."""
    return any(not s.get("supported", True) for s in details.get("sentences", []))


_TOOL_LABELS = {
    "calculator": ("Calculator", ":material/calculate:"),
    "web": ("Web page", ":material/language:"),
    "code": ("Code", ":material/terminal:"),
    "search_documents": ("Search", ":material/search:"),
}


def show_tools(steps: list[dict[str, Any]]) -> None:
    """A card per tool step: what the calculator computed, the page read, the model's calls."""
    for s in steps:
        label, icon = _TOOL_LABELS.get(str(s.get("tool")), (str(s.get("tool")), ":material/build:"))
        who = " (called by the model)" if s.get("by") == "model" else ""
        text = f"**{label}**{who}: {esc_markdown(str(s.get('card') or s.get('output', '')))}"
        (st.info if s.get("ok", True) else st.warning)(text, icon=icon)


_CODE_BLOCK = re.compile(r"```[ \t]*(python|py|python3)?[ \t]*\n(.*?)```", re.S | re.I)


def without_code(text: str) -> str:
    """The message with its runnable code blocks taken out (they are shown with a Run button)."""
    return _CODE_BLOCK.sub("", text).strip()


def code_blocks(text: str) -> list[str]:
    """The Python (or unlabelled) fenced code blocks of a message."""
    return [m.group(2) for m in _CODE_BLOCK.finditer(text) if m.group(2).strip()]


def run_buttons(text: str, key: str, assistant: Any, *, trusted: bool, show_code: bool) -> None:
    """A Run button per code block when the assistant has the code tool; its output below it.
    `trusted`: the user wrote the code (a model's code runs only in the sandbox)."""
    if assistant.tools.code is None:
        return
    from assistants.tools.sandbox import SandboxMissing, run_code
    from assistants.tools.use import code_limits

    for i, code in enumerate(code_blocks(text)):
        k = f"run-{key}-{i}"
        if show_code:
            st.code(code, language="python")
        if st.button("Run", key=k, icon=":material/play_arrow:", help="runs in the sandbox (no files, no network)"):
            with st.spinner("Running (the sandbox starts in a few seconds)..."):
                try:
                    step = run_code(code, trusted=trusted, limits=code_limits(assistant))
                    st.session_state[k + "-out"] = step.to_json()
                except SandboxMissing as exc:
                    st.session_state[k + "-out"] = {"ok": False, "output": "", "card": str(exc)}
        out = st.session_state.get(k + "-out")
        if out is not None:
            st.code(out["output"] or "(no output)", language="text")
            (st.caption if out["ok"] else st.warning)(f"Output: {out['card']}")


def slug(title: str) -> str:
    """A file name from a title: 'How do I add PDFs?' -> 'how-do-i-add-pdfs'."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60]


# Streamlit's own breakpoint: below it the sidebar is an overlay over the page. It has no API to close
# the sidebar, so after a choice made in it a script clicks its collapse button, on a phone only.
_CLOSE_SIDEBAR_JS = """<script>
(() => {
  if (window.innerWidth >= 768) return;
  const sidebar = window.parent.document.querySelector('section[data-testid="stSidebar"]') ||
    document.querySelector('section[data-testid="stSidebar"]');
  if (!sidebar || sidebar.getAttribute("data-collapsed") === "true") return;
  const button = sidebar.querySelector('[data-testid="stSidebarCollapseButton"] button');
  if (button) button.click();
})();
</script><!-- %d -->"""


def chose_in_sidebar() -> None:
    """on_change of a sidebar widget: the sidebar is closed on a phone once this run is drawn."""
    st.session_state["close-sidebar"] = st.session_state.get("close-sidebar-n", 0) + 1


def close_sidebar_if_chosen() -> None:
    """After a choice in the sidebar, close it on a phone (it covers the page there); nothing on a
    wider screen, nothing when no choice was made this run."""
    n = st.session_state.pop("close-sidebar", None)
    if n is not None:
        st.session_state["close-sidebar-n"] = n  # each time new content, so the script runs again
        st.sidebar.html(_CLOSE_SIDEBAR_JS % n, unsafe_allow_javascript=True)
