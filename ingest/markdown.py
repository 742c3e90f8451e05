"""Markdown as a rendered page shows it: comments and comment lines out, raw HTML as a browser shows it.

A CommonMark renderer passes raw HTML through to the browser, so `<span style="display:none">` in
a Markdown file hides its text on the rendered page: each raw HTML element outside code is judged
by `ingest.html.html_to_text` (rendered in Chromium where one is at hand) with the file's own
`<style>` blocks in force, and replaced by the text it shows. `<style>` and `<script>` blocks show
nothing. Code (fenced blocks, backtick spans) is shown as written, whatever it holds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

COMMENTS = [
    (re.compile(r"<!--.*?(?:-->|\Z)", re.S), "HTML comment"),
    # link reference definitions nothing links to, the usual Markdown comment: [//]: # (text)
    (re.compile(r"^ {0,3}\[(?://|comment|_)\]: *(?:#|<>) *(?:\(.*?\)|\".*?\"|'.*?')? *$", re.M | re.I), "comment line"),
]
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^ {0,3}\1[ \t]*$|\Z)", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_SHOWS_NOTHING = re.compile(r"<(style|script)\b[^>]*>.*?(?:</\1\s*>|\Z)", re.S | re.I)
# an element and what it holds, up to its first closing tag within 10,000 characters (inner elements
# of the same name are not matched: the usual one-level markup); void elements (<br>, <img>) hold
# nothing and are never looked for (20,000 <br> took 33 s when each was searched to the end)
_ELEMENT = re.compile(
    r"<(?!(?:br|img|hr|input|meta|link|wbr|area|base|col|embed|source|track|param)\b)"
    r"([a-zA-Z][\w-]*)\b([^<>]*)>(.{0,10000}?)</\1\s*>",
    re.S | re.I,
)
_MAY_HIDE = re.compile(r"\b(style|class|id|hidden|popover)\b", re.I)
_HIDING_TAGS = {"details", "dialog", "template", "noscript"}


def code_spans(text: str) -> list[tuple[int, int]]:
    """Where `text` holds code (fenced blocks, backtick spans), which a rendered page shows as written."""
    spans = [m.span() for m in _FENCE.finditer(text)]
    spans += [m.span() for m in _CODE_SPAN.finditer(text) if not any(a <= m.start() < b for a, b in spans)]
    return spans


def visible_markdown(text: str, drop: bool) -> tuple[str, Counter[str]]:
    """The Markdown a rendered page shows, and the hidden characters per kind (left in when not `drop`)."""
    hidden: Counter[str] = Counter()
    code = code_spans(text)
    blocks = [m for m in _SHOWS_NOTHING.finditer(text) if not any(a <= m.start() < b for a, b in code)]
    styles = "".join(m.group(0) for m in blocks if m.group(1).lower() == "style")
    for pattern, kind in [*COMMENTS, (_SHOWS_NOTHING, "style or script block")]:
        text = _cut(text, pattern, kind, hidden, drop, lambda m: "")
    shown = _shown(text, styles, hidden)
    text = _cut(text, _ELEMENT, "", hidden, drop, lambda m: shown.get(m.start()))
    if hidden and drop:  # where something was cut out, no run of blank lines is left behind
        text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text)
    return text, hidden


def _cut(
    text: str,
    pattern: re.Pattern[str],
    kind: str,
    hidden: Counter[str],
    drop: bool,
    shown: Callable[[re.Match[str]], str | None],
) -> str:
    """`text` with each match outside code replaced by what `shown` says a reader sees of it."""
    code = code_spans(text)
    out, last = [], 0
    for m in pattern.finditer(text):
        if any(a <= m.start() < b for a, b in code):
            continue
        visible = shown(m)
        if visible is None:
            continue
        if kind:
            hidden[kind] += len(m.group(0).strip())
        out.append(text[last : m.start()] + (visible if drop else m.group(0)))
        last = m.end()
    return "".join(out) + text[last:]


def _shown(text: str, styles: str, hidden: Counter[str]) -> dict[int, str]:
    """What a browser shows of each raw HTML element outside code that could hide text, by where
    it starts in `text`; elements shown whole are left out (they stay as written). All of them are
    judged in one page (one render), each after a numbered marker line."""
    import lxml.html

    from ingest.html import html_to_text

    code = code_spans(text)
    found = [
        m
        for m in _ELEMENT.finditer(text)
        if not any(a <= m.start() < b for a, b in code)
        and (m.group(1).lower() in _HIDING_TAGS or _MAY_HIDE.search(m.group(2)) or styles)
    ]
    if not found:
        return {}
    body = "".join(f"<p>{_MARK}{i}{_MARK}</p><div>{m.group(0)}</div>" for i, m in enumerate(found))
    visible, kinds = html_to_text(f"<html><head>{styles}</head><body>{body}<p>{_MARK}end{_MARK}</p></body></html>")
    kinds.pop("inside a comment", None)
    parts = re.split(rf"{_MARK}(\d+|end){_MARK}", visible)[1:]
    shown = {int(key): part.strip() for key, part in zip(parts[::2], parts[1::2], strict=True) if key != "end"}
    out = {}
    for i, m in enumerate(found):
        whole = lxml.html.fragment_fromstring(m.group(0), create_parent="div").text_content()
        if _words(shown.get(i, "")) != _words(whole):
            out[m.start()] = shown.get(i, "")
    if out:
        hidden.update(kinds)
    return out


_MARK = "@@archivist-fragment@@"


def _words(text: str) -> list[str]:
    return re.sub(r"(?m)^#+ ", "", text).split()
