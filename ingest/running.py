"""Running headers and footers of PDF pages: the line a page repeats at its top or bottom ("Chapter 4:
Ordered and unordered factors 19", a bare page number, a document title) is no part of what the
page says, and it lands inside passages and quotes ("... factors 19 and unordered factors is ...")
when a sentence runs over the page break. Such lines are taken out of the page text.

A first or last line is running when, with its digits (and a lone roman numeral) set aside, the
same line stands first or last on at least `MIN_REPEATS` other pages among the `RADIUS` pages on
either side; or when it carries a page number (at its end, or alone) that another page of that
window carries in a line of the same first word, counted on by the pages between ("Chapter 3:
Objects 15" on one page, "Chapter 4: Factors 19" four pages on). Pages are read as a stream, so
only a window of them is held. The PDF's own page labels are read from the file, not from these
lines, and stay as they are.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TypeVar

RADIUS = 4  # pages on either side a running line is looked for
MIN_REPEATS = 2  # other pages in that window that must carry it
MAX_LINE_CHARS = 120  # a longer line is text, whatever repeats
EDGE_LINES = 2  # lines at the top and at the bottom looked at
_ROMAN = re.compile(r"^[ivxlcdm]+$|^[IVXLCDM]+$")

P = TypeVar("P")


def shape(line: str) -> str:
    """The line with numbers set aside: 'Chapter 4: Factors 19' and 'Chapter 4: Factors 20' agree."""
    s = " ".join(line.split())
    if _ROMAN.match(s):
        return "#"
    return re.sub(r"\d+", "#", s)


_NUMBERED = re.compile(r"^(?:(\d{1,5})|([A-Za-z]+)\b.*?\s(\d{1,5}))$")


def _edge_lines(text: str) -> list[str]:
    """A page's first and last lines, EDGE_LINES each (one each on a page of few lines; none on a
    page of one line), short enough to be running."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    k = EDGE_LINES if len(lines) > 2 * EDGE_LINES else 1 if len(lines) > 1 else 0
    picked = lines[:k] + lines[len(lines) - k :] if k else []
    return [ln for ln in picked if len(ln.strip()) <= MAX_LINE_CHARS]


def edges(text: str) -> set[str]:
    """The shapes of a page's edge lines."""
    return {shape(ln) for ln in _edge_lines(text)}


def numbered(text: str) -> dict[str, tuple[str, int]]:
    """Edge lines that carry a page number: shape -> (first word, or '' for a bare number; the number)."""
    out = {}
    for ln in _edge_lines(text):
        m = _NUMBERED.match(" ".join(ln.split()))
        if m:
            out[shape(ln)] = ("", int(m.group(1))) if m.group(1) else (m.group(2), int(m.group(3)))
    return out


def _running_at_edge(lines: list[str], order: range, running: set[str]) -> int:
    """How many lines, walking `order` from one edge, go: blank ones, and up to EDGE_LINES running ones."""
    gone = seen = 0
    for i in order:
        if seen == EDGE_LINES:
            break
        if lines[i].strip():
            if shape(lines[i]) not in running:
                break
            seen += 1
        gone += 1
    return gone


def strip_running(text: str, running: set[str]) -> str:
    """`text` without its top and bottom lines whose shape is in `running` (inner lines are kept)."""
    lines = text.splitlines(keepends=True)
    top = _running_at_edge(lines, range(len(lines)), running)
    bottom = len(lines) - _running_at_edge(lines, range(len(lines) - 1, top - 1, -1), running)
    kept = "".join(lines[top:bottom])
    return kept if kept.strip() else text  # a page is never emptied: all of it repeating is its text


def without_running(pages: Iterable[tuple[P, str]]) -> Iterator[tuple[P, str]]:
    """(key, text) pages in order, each without its running lines; at most 2 * RADIUS + 1 are held."""
    window: deque[tuple[P, str, set[str], dict[str, tuple[str, int]]]] = deque()
    it = iter(pages)
    done = False
    index = 0  # position in `window` of the next page to give out
    while True:
        while not done and len(window) - index <= RADIUS:
            try:
                key, text = next(it)
            except StopIteration:
                done = True
                break
            window.append((key, text, edges(text), numbered(text)))
        if index >= len(window):
            return
        key, text, mine, numbers = window[index]
        running = {s for s in mine if sum(s in w[2] for i, w in enumerate(window) if i != index) >= MIN_REPEATS}
        for s, (word, n) in numbers.items():
            for i, w in enumerate(window):  # a bare number matches a numbered line of any first word
                if i != index and any(v[1] == n + i - index and word in ("", v[0]) for v in w[3].values()):
                    running.add(s)
                    break
        yield key, strip_running(text, running) if running else text
        index += 1
        if index > RADIUS:
            window.popleft()
            index -= 1
