"""Text a reader cannot see (indirect prompt injection) is found at ingest and kept out of the chunks.

- PDF: see `ingest.pdf` (judged from PDFium's page objects by the rules a renderer applies).
- HTML: see `ingest.html` (display:none, visibility:hidden, the hidden attribute, zero font size,
  comments).
- Any format: invisible Unicode (tag characters U+E0000-E007F, zero-width characters, bidi controls).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

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


def hidden_warnings(what: str, hidden: Mapping[str, int], dropped: bool) -> list[str]:
    """One warning per kind of hidden text: 'WHAT removed (KIND, N characters)' ('found' when kept)."""
    verb = "removed" if dropped else "found"
    return [f"{what} {verb} ({kind}, {n} characters)" for kind, n in hidden.items()]
