"""HTML to text: visible text only (no scripts, styles, navigation boilerplate), headings kept as Markdown."""

from __future__ import annotations

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
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_depth = 0
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
        if self.skip_depth or tag in _SKIP or _role_is_boilerplate(attrs):
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
            if top == tag:
                break
        if not self.skip_depth and (tag in _HEADINGS or tag in _BLOCK):
            self.out.append("\n\n" if tag in _HEADINGS else "\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if not self.skip_depth:
            self.out.append(data if self.stack and self.stack[-1] == "pre" else " ".join(data.split(" ")))


def _role_is_boilerplate(attrs: list[tuple[str, str | None]]) -> bool:
    a = dict(attrs)
    return a.get("role") in ("navigation", "banner", "contentinfo", "search") or a.get("aria-hidden") == "true"


def html_to_text(html: str) -> str:
    """The visible text of an HTML page, with '#' headings and blank lines between blocks."""
    p = _Extractor()
    p.feed(html)
    p.close()
    text = "".join(p.out)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()
