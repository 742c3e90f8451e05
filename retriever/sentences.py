"""Sentence boundaries with character offsets, for quotes and for checking answers.

The chunker splits more eagerly (at colons and semicolons too) because it only needs packing
units; a quote must be a whole sentence a reader recognises, so this splitter cuts only at
sentence punctuation followed by a capital or a digit, at blank lines and before list items,
and keeps abbreviations ("e.g.", "Fig.") and initials ("John M. Chambers") inside. In Markdown
(and HTML, whose headings the loader writes as Markdown) a heading line ends where its line does,
and a fenced code block is cut at every line: a line of code is a unit, and prose never runs on
into the code after it ("Cite them like [1]. model: path: ...").
"""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset(
    """
    e.g eg i.e ie etc cf vs fig figs eq eqs no nos vol vols p pp ch chap sec sect dr mr mrs ms prof st
    jr sr inc ltd co al approx resp ed eds ref refs min max viz esp dept univ corp jan feb mar apr jun
    jul aug sep sept oct nov dec
    """.split()  # noqa: SIM905
)
# Sentence punctuation (with closing quotes or brackets) + space + an opening capital or digit.
_END = re.compile(r"[.!?][\"'”’)\]]*(\s+)(?=[\"'“‘(\[]?[A-Z0-9])")
_BREAK = re.compile(r"\n[ \t]*\n\s*|\n(?=[ \t]*(?:[-*•◦▪]|\d{1,3}[.)])[ \t])")
MAX_SENTENCE_CHARS = 600  # longer runs (tables, code) are cut at line ends
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+\S[^\n]*", re.M)  # a Markdown heading line
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.M)  # a line opening or closing a fenced code block
_PROMPT_LINE = re.compile(r"^[ \t]*(?:>|\$|>>>)[ \t]+\S[^\n]*$(?=\n[ \t]*[A-Z])", re.M)
_BEFORE_PROMPT = re.compile(r"(?<=[.!?])\n(?=[ \t]*(?:>|\$|>>>)[ \t])")  # a finished sentence, then code
# "1.7 Getting help with functions", and a chapter's "9 Reading Excel spreadsheets": a line of its
# own, a capital after the number, no sentence punctuation
_SECTION_LINE = re.compile(r"^[ \t]*\d{1,2}(?:\.\d{1,2})*[ \t]+[A-Z][^\n.!?]{0,80}$(?<=\S)", re.M)
_LIST_NUMBER = re.compile(r"[ \t]*(?:\d{1,3}|[a-z])")  # all a line holds before a full stop: "1." "a."
LEADER = re.compile(r"(?:\.\s?){4,}")  # ". . . ." or "....." leaders of contents and index pages


def split_sentences(text: str, *, in_code: bool = False) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, whitespace trimmed, in order; `in_code`: the text
    starts inside a fenced code block (a piece of a page)."""
    cuts: list[tuple[int, int]] = []  # (end of sentence, start of the next)
    for m in _BREAK.finditer(text):
        cuts.append((m.start(), m.end()))
    cuts.extend(_markdown_cuts(text, in_code))
    # a line typed at a prompt ("> help(solve)", "$ make", ">>> f(x)") ends the sentence that leads
    # into it ("... the command is > help(solve)") when prose follows; and a numbered section heading
    # ("1.7 Getting help with functions") ends where its line does. The manuals write no full stop
    # after either, and prose ran on past them as one long "sentence"
    cuts += [(m.end(), m.end()) for m in _PROMPT_LINE.finditer(text)]
    cuts += [(m.start(), m.end()) for m in _BEFORE_PROMPT.finditer(text)]
    cuts += [(m.end(), m.end()) for m in _SECTION_LINE.finditer(text)]
    for m in _END.finditer(text):
        word = re.search(r"([\w.]+)[.!?][\"'”’)\]]*$", text[max(0, m.start() - 20) : m.start(1)])
        w = word.group(1) if word else ""
        if w.lower() in _ABBREVIATIONS or (len(w) == 1 and w.isupper()):
            continue  # "e.g. The", "John M. Chambers"
        if _LIST_NUMBER.fullmatch(text[text.rfind("\n", 0, m.start()) + 1 : m.start()]):
            continue  # "1. Create a key": a list item's number starts its sentence, it ends none
        cuts.append((m.start(1), m.end(1)))
    cuts.sort()
    spans: list[tuple[int, int]] = []
    pos = 0
    for end, nxt in cuts:
        if end >= pos:
            spans.append((pos, end))
            pos = nxt
    spans.append((pos, len(text)))
    out: list[tuple[int, int]] = []
    for a, b in spans:
        a, b = _trim(text, a, b)
        if b > a:
            out.extend(_cut_long(text, a, b))
    return out


def _markdown_cuts(text: str, inside: bool) -> list[tuple[int, int]]:
    """Cuts after each heading line, around each fence line and at each line end inside a fenced block."""
    cuts = [(m.end(), m.end()) for m in _HEADING.finditer(text)]
    if not inside and "```" not in text and "~~~" not in text:
        return cuts
    pos = 0
    for line in text.splitlines(keepends=True):
        end = pos + len(line.rstrip("\r\n"))
        if _FENCE.match(line):
            cuts += [(pos, pos), (end, end)]
            inside = not inside
        elif inside:
            cuts.append((end, end))
        pos += len(line)
    return cuts


def in_fence(text: str, pos: int) -> bool:
    """Does `pos` lie inside a fenced code block of `text` (an odd number of fence lines before it)?"""
    return sum(1 for _ in _FENCE.finditer(text, 0, pos)) % 2 == 1


def is_heading(text: str) -> bool:
    """Is this sentence a heading: a Markdown heading line ("## Running on the GPU") or a manual's
    numbered section line ("1.9 Recall and correction of previous commands")?"""
    return bool(_HEADING.match(text) or _SECTION_LINE.fullmatch(text.strip()))


def letters(text: str) -> str:
    """Its letters and digits only, lower-cased: a text recognised whatever its spacing and punctuation."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _cut_long(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """A run longer than MAX_SENTENCE_CHARS is cut at line ends (then spaces) into pieces under it."""
    if b - a <= MAX_SENTENCE_CHARS:
        return [(a, b)]
    out: list[tuple[int, int]] = []
    while b - a > MAX_SENTENCE_CHARS:
        window = text[a : a + MAX_SENTENCE_CHARS]
        cut = window.rfind("\n", MAX_SENTENCE_CHARS // 3)
        if cut < 0:
            cut = window.rfind(" ", MAX_SENTENCE_CHARS // 3)
        cut = a + (cut if cut > 0 else MAX_SENTENCE_CHARS)
        s, e = _trim(text, a, cut)
        if e > s:
            out.append((s, e))
        a = cut
        a, b = _trim(text, a, b)
    if b > a:
        out.append((a, b))
    return out


def collapse(text: str) -> str:
    """Runs of whitespace as one space, ends stripped (how quotes and evidence are compared)."""
    return " ".join(text.split())


# a sentence that ends in a question inside quotes or brackets (an example request in code), or
# quotes a question people ask ("... seems to be 'how do I read an Excel spreadsheet'")
_ASKING = re.compile(r"\?[\"'\u201d\u2019)\]}>,;.\s]*$")
_QUOTED_QUESTION = re.compile(  # an opening quote (after a space or a bracket), a question word, ...
    r"(?:^|(?<=[\s(\[]))[\u2018\u201c\"'`](?:how|what|why|which|can|do|does|is|are)\s+\w[^\u2019\u201d\"'`]{3,120}"
    r"[\u2019\u201d\"'`](?!\w)",
    re.I,
)


def asks_another(text: str) -> bool:
    """Does the sentence ask a question of its own, or report one: no answer to the reader's."""
    return bool(_ASKING.search(text.rstrip()) or _QUOTED_QUESTION.search(text))
