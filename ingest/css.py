"""A page's own style sheets applied as a browser applies them, for `ingest.html`: the `<style>`
sheets parsed by a real CSS parser (tinycss2), their selectors matched by cssselect through lxml,
and the cascade (specificity, order, `!important`, inline `style=` over sheets) computed per
element; `@media` blocks read for a desktop screen, `@supports` and `@layer` blocks applied. Also
CSS lengths and numbers."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

MAX_SELECTORS = 2000  # a page's style sheets are applied up to this many selectors


def cascade(root: Any, notes: Counter[str]) -> dict[Any, dict[str, str]]:
    """Each styled element's declared properties after the cascade (name -> lower-cased value)."""
    import tinycss2
    from cssselect import HTMLTranslator, SelectorError
    from cssselect import parse as parse_selectors
    from lxml import etree

    found: dict[Any, list[tuple[tuple[int, ...], str, str]]] = {}
    order = 0
    selectors = 0
    translator = HTMLTranslator()
    for style in root.iter("style"):
        if not on_a_desktop_screen((style.get("media") or "all").lower()):
            continue  # <style media="print">: its rules never reach a screen
        for rule in _rules(tinycss2.parse_stylesheet(style.text_content() or "", True, True)):
            try:
                parsed = parse_selectors(tinycss2.serialize(rule.prelude))
            except SelectorError:
                continue  # a selector this parser does not know (e.g. :hover) never matches a reader's view
            decls = _declarations(rule.content)
            for sel in parsed:
                if sel.pseudo_element is not None:
                    continue
                selectors += 1
                if selectors > MAX_SELECTORS:
                    notes["style rules beyond the first 2,000 not applied"] += 0
                    break
                try:
                    matched = etree.XPath(translator.selector_to_xpath(sel))(root)
                except (SelectorError, etree.XPathError, ValueError):
                    continue
                a, b, c = sel.specificity()
                for el in matched:
                    for name, value, important in decls:
                        order += 1
                        found.setdefault(el, []).append(((important, 0, a, b, c, order), name, value))
    for el in root.iter():
        inline = el.get("style") if isinstance(el.tag, str) else None
        if inline:
            for prop, val, important in _declarations(inline):
                order += 1
                found.setdefault(el, []).append(((important, 1, 0, 0, 0, order), prop, val))
    styles: dict[Any, dict[str, str]] = {}
    for el, declared in found.items():
        props: dict[str, str] = {}
        for _, prop, val in sorted(declared, key=lambda d: d[0]):
            props[prop] = val
        styles[el] = props
    return styles


def _rules(rules: list[Any]) -> Iterator[Any]:
    """Qualified rules, including those inside @media blocks for every screen (not print-only ones,
    nor those for some screen sizes only, which would hide what a desktop reader sees)."""
    import tinycss2

    for rule in rules:
        if rule.type == "qualified-rule":
            yield rule
        elif rule.type == "at-rule" and rule.lower_at_keyword in ("media", "supports", "layer") and rule.content:
            media = tinycss2.serialize(rule.prelude).lower()
            if rule.lower_at_keyword == "media" and not on_a_desktop_screen(media):
                continue  # print-only, or not on a desktop screen: a reader there may see what it hides
            yield from _rules(tinycss2.parse_rule_list(rule.content, True, True))


_FEATURE = re.compile(r"\(\s*(min|max)-(width|height)\s*:\s*([^)]+?)\s*\)")
_SCREEN = {"width": 1280.0, "height": 800.0}  # the desktop screen media queries are read for


def on_a_desktop_screen(media: str) -> bool:
    """Does a media query hold on a desktop screen (1280x800)? Only `all`/`screen` and min/max width
    and height joined by `and` are read; anything else (print, `not`, other features) does not hold."""
    if "print" in media and "screen" not in media:
        return False
    rest = _FEATURE.sub("", media)
    if re.search(r"[(,]|\bnot\b|\bor\b|\bonly\b", rest) or set(re.findall(r"[a-z-]+", rest)) - {"and", "screen", "all"}:
        return False
    for bound, dim, value in _FEATURE.findall(media):
        px = length(value, 16.0)
        if px is None or (bound == "min" and _SCREEN[dim] < px) or (bound == "max" and _SCREEN[dim] > px):
            return False
    return True


def _declarations(content: Any) -> list[tuple[str, str, int]]:
    import tinycss2

    out = []
    for d in tinycss2.parse_declaration_list(content, skip_comments=True, skip_whitespace=True):
        if d.type == "declaration":
            out.append((d.lower_name, tinycss2.serialize(d.value).strip().lower(), int(d.important)))
    return out


_LENGTH = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(px|pt|em|rem|%|vw|vh|in|cm|mm|ex|ch)?$")
_UNIT_PX = {"px": 1.0, "pt": 4 / 3, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4, "rem": 16.0, "vw": 12.8, "vh": 9.0}


def length(value: str, font_px: float) -> float | None:
    """A CSS length in pixels (em and % against the font size), or None when it is not one."""
    m = _LENGTH.match(value.replace("!important", "").strip())
    if not m:
        return None
    number, unit = float(m.group(1)), m.group(2)
    if unit is None:
        return number if number == 0 else None
    if unit in ("em", "ex", "ch"):
        return number * font_px * (0.5 if unit != "em" else 1.0)
    if unit == "%":
        return number / 100 * font_px
    return number * _UNIT_PX[unit]


def number(value: str) -> float | None:
    m = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+))(%?)", value.strip())
    if not m:
        return None
    return float(m.group(1)) / (100 if m.group(2) else 1)
