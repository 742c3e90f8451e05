"""HTML to text: visible text only (no scripts, styles, navigation boilerplate), headings kept as Markdown."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser

_SKIP = {"script", "style", "noscript", "template", "nav", "header", "footer", "aside", "svg", "head", "form"}
_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "li",
    "tr",
    "br",
    "pre",
    "table",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "main",
    "body",
    "hr",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


class _Extractor(HTMLParser):
    def __init__(self, drop_hidden: bool = True) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_hidden = drop_hidden
        self.out: list[str] = []
        self.skip_depth = 0
        self.hidden_kind: str | None = None  # why the current skipped subtree is skipped, if hidden
        self.hidden: Counter[str] = Counter()
        self.stack: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _VOID:
            if tag in ("br", "hr"):
                self.out.append("\n")
            return
        self.stack.append(tag)
        kind = None if self.skip_depth else _hidden_kind(attrs)
        if kind and not self.drop_hidden:
            self.hidden[kind] += 0  # noted; its text is counted below and kept
            self.hidden_kind = kind
        elif self.skip_depth or tag in _SKIP or _role_is_boilerplate(attrs) or kind:
            if self.skip_depth == 0:
                self.hidden_kind = kind
            self.skip_depth += 1
            return
        if tag in _HEADINGS:
            self.out.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCK:
            self.out.append("\n\n" if tag in ("p", "div", "section", "article", "pre", "table") else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _VOID or tag not in self.stack:
            return
        while self.stack:  # tolerate unclosed inner tags
            top = self.stack.pop()
            if self.skip_depth:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.hidden_kind = None
            if top == tag:
                break
        if not self.skip_depth and (tag in _HEADINGS or tag in _BLOCK):
            self.out.append("\n\n" if tag in _HEADINGS else "\n")

    def handle_comment(self, data: str) -> None:
        if data.strip():
            self.hidden["inside a comment"] += len(data.strip())

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self.hidden_kind and data.strip():
            self.hidden[self.hidden_kind] += len(data.strip())
        if not self.skip_depth:
            self.out.append(data if self.stack and self.stack[-1] == "pre" else " ".join(data.split(" ")))


_STYLE_HIDDEN = [
    (re.compile(r"display\s*:\s*none", re.I), "display:none"),
    (re.compile(r"visibility\s*:\s*hidden", re.I), "visibility:hidden"),
    (re.compile(r"font-size\s*:\s*0(?![.\d]*[1-9])", re.I), "zero font size"),
]


def _hidden_kind(attrs: list[tuple[str, str | None]]) -> str | None:
    """Why an element is invisible to a reader, or None."""
    a = dict(attrs)
    if "hidden" in a:
        return "hidden attribute"
    style = a.get("style") or ""
    for pattern, kind in _STYLE_HIDDEN:
        if pattern.search(style):
            return kind
    return None


def _role_is_boilerplate(attrs: list[tuple[str, str | None]]) -> bool:
    a = dict(attrs)
    return a.get("role") in ("navigation", "banner", "contentinfo", "search") or a.get("aria-hidden") == "true"


def html_to_text(html: str, drop_hidden: bool = True) -> tuple[str, Counter[str]]:
    """The visible text of an HTML page, with '#' headings and blank lines between blocks, and the
    number of hidden characters per kind (kept out of the text unless drop_hidden is False)."""
    p = _Extractor(drop_hidden)
    p.feed(html)
    p.close()
    text = "".join(p.out)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip(), +p.hidden
