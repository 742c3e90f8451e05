"""HTML to text: the text a reader sees (no scripts, styles, navigation boilerplate), headings kept as Markdown.

What a reader cannot see is judged from the page's own CSS, applied as a browser would (the
cascade in `ingest.css`; inheritance of color, font-size, visibility and custom properties here).
Hidden, and kept out of the text with a warning per kind: `display:none`, `visibility:hidden` (a child may show again),
the `hidden` attribute, `opacity:0`, `color:transparent`, text the colour of its background,
zero or sub-pixel font sizes, off-screen positioning and `text-indent`, zero-size clipping,
zero height or width with `overflow:hidden`, `transform:scale(0)`, a closed `<dialog>`, and
comments. `<template>` and `<noscript>` (never shown to a reader with scripts on) are dropped with a
warning too. `aria-hidden` text is visible, so it is kept. External style sheets are not fetched.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from ingest.css import cascade as _cascade
from ingest.css import length as _length
from ingest.css import number as _number
from ingest.html_pixels import VERDICT_TAGS

_SKIP = {"script", "style", "nav", "header", "footer", "aside", "svg", "head", "form", "title", "meta", "link"}
_WARNED = {"template": "template element", "noscript": "noscript element"}
_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "li",
    "tr",
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
    "dialog",
    "details",
    "figure",
    "figcaption",
}
_WIDE = {"p", "div", "section", "article", "pre", "table"}  # a blank line around these
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_OFFSCREEN_PX = 1000.0  # a position or text-indent this far left or up puts text off the screen
_SAME_COLOUR = 0.1  # largest channel difference (0-1) still read as "the same colour"

RGBA = tuple[float, float, float, float]
_WHITE: RGBA = (1.0, 1.0, 1.0, 1.0)
_BLACK: RGBA = (0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class _Inherited:
    """What a child takes from its parent (the effective background is carried the same way; None
    when it is an image or a gradient, whose colour under the text is unknown), and the custom
    properties (`--name`) in force, which `var()` reads."""

    color: RGBA = _BLACK
    background: RGBA | None = _WHITE
    font_px: float = 16.0
    visibility_hidden: bool = False
    custom: tuple[tuple[str, str], ...] = ()
    verdict: str | None = None  # the renderer's: "" seen, a kind hidden, None not judged (the rules judge)


_VAR = re.compile(r"var\(\s*(--[\w-]+)\s*(?:,\s*([^()]*(?:\([^()]*\))?[^()]*))?\)")


def _resolved(props: dict[str, str], parent: _Inherited) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """The element's properties with `var(--x)` replaced from the custom properties in force (its own
    over its parent's), and those custom properties, for its children."""
    custom = dict(parent.custom)
    custom.update({k: v for k, v in props.items() if k.startswith("--")})
    out = {}
    for name, value in props.items():
        if name.startswith("--"):
            continue
        for _ in range(5):  # a variable may name another
            if "var(" not in value:
                break
            value = _VAR.sub(lambda m: custom.get(m.group(1), (m.group(2) or "").strip()), value)
        out[name] = value.strip()
    return out, tuple(custom.items())


def html_to_text(
    html: str, drop_hidden: bool = True, render: bool = True, notes: list[str] | None = None
) -> tuple[str, Counter[str]]:
    """The visible text of an HTML page, with '#' headings and blank lines between blocks, and the
    number of hidden characters per kind (kept out of the text unless drop_hidden is False).

    What a reader sees is judged by rendering the page (`ingest.html_render`, where a Chromium is
    at hand and `render`), the rule set below naming the kind and judging what was not rendered."""
    import lxml.html
    from lxml import etree

    from ingest.html_render import rendered

    hidden: Counter[str] = Counter()
    if not html.strip():
        return "", hidden
    html = re.sub(r"^\s*<\?xml[^>]*\?>", "", html)  # lxml refuses str with an encoding declaration
    page = rendered(html, notes) if render else None
    try:
        root = lxml.html.document_fromstring(page or html)
    except (etree.ParserError, ValueError):
        return "", hidden
    styles = _cascade(root, hidden)
    out: list[str] = []
    _walk(root, styles, drop_hidden, out, hidden, page is not None)
    lines = [" ".join(line.split()) for line in "".join(out).split("\n")]
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return "\n".join(kept).strip(), +hidden


# --- what a reader sees -------------------------------------------------------------------------------


def _walk(
    root: Any, styles: dict[Any, dict[str, str]], drop: bool, out: list[str], hidden: Counter[str], rendered: bool
) -> None:
    """Emit the text of the tree, depth first, without recursion (hostile pages nest deeply). On a
    rendered page the renderer's verdict decides for the text it judged; the rules name its kind."""
    from lxml import etree

    # stack items: ("open", element, inherited, hidden kind), ("text", str, inherited, hidden kind), ("close", tag)
    stack: list[tuple[Any, ...]] = [("open", root, _Inherited(), None)]
    while stack:
        item = stack.pop()
        if item[0] == "text":
            _, text, state, kind = item
            text_kind = kind or _text_hidden(state)
            if state.verdict is not None:
                text_kind = (text_kind or state.verdict) if state.verdict else None
            if text_kind and text.strip():
                hidden[text_kind] += len(text.strip())
            if text_kind is None or not drop:
                out.append(text)
            continue
        if item[0] == "close":
            tag = item[1]
            if tag in _HEADINGS:
                out.append("\n\n")
            elif tag in _BLOCK:
                out.append("\n\n" if tag in _WIDE else "\n")
            continue
        _, el, parent, parent_kind = item
        if isinstance(el, etree._Comment):
            text = (el.text or "").strip()
            if text:
                hidden["inside a comment"] += len(text)
            continue
        if not isinstance(el.tag, str):  # processing instructions, entities
            continue
        tag = el.tag.lower()
        if tag in _SKIP or el.get("role") in ("navigation", "banner", "contentinfo", "search"):
            continue  # boilerplate a reader skips, not hidden
        if tag == "a" and "headerlink" in (el.get("class") or "").split():
            continue  # a heading's permalink mark ("¶", shown on hover): no text of the page
        props, custom = _resolved(styles.get(el, {}), parent)
        state = replace(_inherit(parent, props), custom=custom)
        kind = parent_kind or _element_hidden(el, tag, props, state)
        if rendered and tag in VERDICT_TAGS:  # the renderer's wrappers (never a page's own markup)
            seen = tag == VERDICT_TAGS[0]
            state = replace(state, verdict="" if seen else (el.get("kind") or "invisible when rendered"))
        if tag in _WARNED and parent_kind is None:
            kind = _WARNED[tag]
        if kind and drop and (not rendered or kind in _WARNED.values()):
            text = el.text_content()
            if text.strip():
                hidden[kind] += len(" ".join(text.split()))
            continue
        if tag in ("br", "hr"):
            out.append("\n")
        elif tag in _HEADINGS:
            out.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCK:
            out.append("\n\n" if tag in _WIDE else "\n")
        stack.append(("close", tag))
        children = list(el)
        # a closed <details> shows its first <summary> only
        closed = tag == "details" and el.get("open") is None and kind is None
        summary = next((c for c in children if isinstance(c.tag, str) and c.tag.lower() == "summary"), None)
        inner = "closed details" if closed else kind
        for child in reversed(children):
            if child.tail:
                stack.append(("text", child.tail, state, inner))
            stack.append(("open", child, state, kind if closed and child is summary else inner))
        if el.text:
            stack.append(("text", el.text, state, inner))


def _inherit(parent: _Inherited, props: dict[str, str]) -> _Inherited:
    state = parent
    if "color" in props and (c := _colour(props["color"], parent.color)) is not None:
        state = replace(state, color=c)
    bg = props.get("background-color") or _background_colour(props.get("background", ""))
    if bg and (c := _colour(bg, state.color)) is not None and c[3] > 0.5:
        state = replace(state, background=c)
    image = props.get("background-image", "") + " " + props.get("background", "")
    if "url(" in image or "gradient" in image:
        state = replace(state, background=None)  # text on a picture or gradient: its colour cannot be judged
    if "font-size" in props and (px := _length(props["font-size"], parent.font_px)) is not None:
        state = replace(state, font_px=px)
    elif "font" in props and (px := _font_shorthand_px(props["font"], parent.font_px)) is not None:
        state = replace(state, font_px=px)  # "font: 0/0 a"
    if "visibility" in props:
        state = replace(state, visibility_hidden=props["visibility"].split()[0] in ("hidden", "collapse"))
    return state


def _font_shorthand_px(value: str, font_px: float) -> float | None:
    """The size in a `font:` shorthand: its first length (before a `/line-height`)."""
    for token in value.split():
        px = _length(token.split("/", 1)[0], font_px)
        if px is not None:
            return px
    return None


def _text_hidden(state: _Inherited) -> str | None:
    """Why text with these inherited properties cannot be seen, or None."""
    if state.visibility_hidden:
        return "visibility:hidden"
    if state.font_px <= 0:
        return "zero font size"
    if state.font_px < 1:
        return "sub-pixel font size"
    if state.color[3] <= 0.05:
        return "color:transparent"
    if state.background is not None and all(
        abs(a - b) <= _SAME_COLOUR for a, b in zip(state.color[:3], state.background[:3], strict=True)
    ):
        return "same colour as its background"
    return None


def _element_hidden(el: Any, tag: str, props: dict[str, str], state: _Inherited) -> str | None:
    """Why the element and all it holds cannot be seen, or None."""
    if el.get("hidden") is not None:
        return "hidden attribute"
    if el.get("popover") is not None:
        return "popover (shown only when opened)"
    if tag == "dialog" and el.get("open") is None:
        return "closed dialog"
    if props.get("display", "").split()[:1] == ["none"]:
        return "display:none"
    opacity = _number(props.get("opacity", ""))
    if opacity is not None and opacity <= 0.01:
        return "opacity:0"
    if re.search(r"opacity\(\s*0*\.?0+%?\s*\)", props.get("filter", "")):
        return "opacity:0"
    if props.get("content-visibility") == "hidden":
        return "content-visibility:hidden"
    transform = props.get("transform", "")
    if re.search(r"scale[xy]?\(\s*0*\.?0+\s*(?:[,)])", transform):
        return "transform:scale(0)"
    if props.get("position") in ("absolute", "fixed"):
        for side in ("left", "top", "right", "bottom"):
            px = _length(props.get(side, ""), state.font_px)
            if px is not None and ((side in ("left", "top") and px <= -_OFFSCREEN_PX) or px >= 10 * _OFFSCREEN_PX):
                return "positioned off-screen"
        clip = props.get("clip", "").replace(",", " ")
        if re.fullmatch(r"rect\(\s*(0(px)?\s+){3}0(px)?\s*\)", clip):
            return "clipped to zero size"
    clip_path = props.get("clip-path", "")
    if re.fullmatch(r"inset\(\s*50%\s*\)|circle\(\s*0(px|%)?\s*\)", clip_path):
        return "clipped to zero size"
    indent = _length(props.get("text-indent", ""), state.font_px)
    if indent is not None and indent <= -_OFFSCREEN_PX:
        return "text-indent off-screen"
    overflow = props.get("overflow", "") + " " + props.get("overflow-x", "") + " " + props.get("overflow-y", "")
    if "hidden" in overflow or "clip" in overflow:
        for dim in ("height", "max-height", "width", "max-width"):
            px = _length(props.get(dim, ""), state.font_px)
            if px is not None and px < 1:
                return "zero size with overflow:hidden"
    return None


def _background_colour(shorthand: str) -> str | None:
    """The colour inside a `background:` shorthand (its last colour-like part), if any."""
    if not shorthand or "url(" in shorthand or "gradient" in shorthand:
        return None  # an image under the text: its colour is unknown
    return shorthand


_SPACED = re.compile(r"^(rgba?|hsla?)\(\s*([^,()/\s]+)\s+([^,()/\s]+)\s+([^,()/\s]+)\s*(?:/\s*([^,()/\s]+)\s*)?\)$")


def _colour(value: str, current: RGBA) -> RGBA | None:
    from tinycss2.color3 import parse_color

    m = _SPACED.match(value.strip())
    if m:  # "rgb(0 0 0 / 0)", the space-separated syntax, as the comma one
        fn, a, b, c, alpha = m.groups()
        value = f"{fn.rstrip('a')}a({a}, {b}, {c}, {alpha or '1'})"
    parsed = parse_color(value)
    if parsed == "currentColor":
        return current
    if parsed is None:
        return None
    return (parsed.red, parsed.green, parsed.blue, parsed.alpha)
