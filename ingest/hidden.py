"""Text a reader cannot see (indirect prompt injection) is found at ingest and kept out of the chunks.

- PDF: the invisible render mode (3, or 7 clip-only), white or near-white fill, an effective
  font size under 1 pt, text placed outside the page box.
- HTML: see `ingest.html` (display:none, visibility:hidden, the hidden attribute, zero font size,
  comments).
- Any format: invisible Unicode (tag characters U+E0000-E007F, zero-width characters, bidi controls).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

_INVISIBLE = {
    "tag characters": re.compile("[\U000e0000-\U000e007f]"),
    "zero-width characters": re.compile("[\u200b\u200c\u200d\u2060\ufeff\u180e]"),
    "bidi controls": re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]"),
}


def strip_invisible_unicode(text: str) -> tuple[str, Counter[str]]:
    """Text without invisible code points, and how many of each kind were removed."""
    found: Counter[str] = Counter()
    for kind, pattern in _INVISIBLE.items():
        text, n = pattern.subn("", text)
        if n:
            found[kind] += n
    return text, found


def _mul(a: list[float], b: list[float]) -> list[float]:
    return [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    ]


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


def pdf_page_text(page: Any, drop_hidden: bool = True) -> tuple[str, Counter[str]]:
    """The page's text as pypdf extracts it, minus the pieces a reader cannot see.

    Returns the text and the number of hidden characters per kind."""
    state: dict[str, Any] = {"tr": 0, "fill": 0.0}  # fill as luminance: 0 black .. 1 white
    stack: list[dict[str, Any]] = []
    box = page.mediabox
    x0, y0, x1, y1 = float(box.left), float(box.bottom), float(box.right), float(box.top)
    out: list[str] = []
    hidden: Counter[str] = Counter()

    def before(op: bytes, args: list[Any], _cm: Any, _tm: Any) -> None:
        if op == b"Tr" and args:
            state["tr"] = int(_num(args[0]))
        elif op == b"q":
            stack.append(dict(state))
        elif op == b"Q" and stack:
            state.update(stack.pop())
        elif op in (b"g", b"rg", b"k", b"sc", b"scn"):
            vals = [_num(a) for a in args if not hasattr(a, "get_object") or isinstance(a, (int, float))]
            vals = [v for v in vals if isinstance(v, float)]
            if len(vals) == 1:
                state["fill"] = vals[0]
            elif len(vals) == 3:
                state["fill"] = 0.2126 * vals[0] + 0.7152 * vals[1] + 0.0722 * vals[2]
            elif len(vals) == 4:
                c, m, yy, k = vals
                r, g, b = (1 - c) * (1 - k), (1 - m) * (1 - k), (1 - yy) * (1 - k)
                state["fill"] = 0.2126 * r + 0.7152 * g + 0.0722 * b

    def visit(text: str, cm: Any, tm: Any, _font: Any, size: float) -> None:
        if not text.strip():
            out.append(text)
            return
        m = _mul([_num(v) for v in tm], [_num(v) for v in cm])
        scale = math.sqrt(abs(m[0] * m[3] - m[1] * m[2]))
        kind = None
        if state["tr"] in (3, 7):
            kind = "invisible render mode"
        elif state["fill"] >= 0.95 and state["tr"] in (0, 2, 4, 6):
            kind = "white or near-white text"
        elif 0 < _num(size) * scale < 1.0:
            kind = "text under 1 pt"
        elif not (x0 - 2 <= m[4] <= x1 + 2 and y0 - 2 <= m[5] <= y1 + 2):
            kind = "text outside the page"
        if kind is None or not drop_hidden:
            out.append(text)
        else:
            out.append("\n" * text.count("\n"))
        if kind is not None:
            hidden[kind] += len(text.strip())

    page.extract_text(visitor_operand_before=before, visitor_text=visit)
    return "".join(out), hidden
