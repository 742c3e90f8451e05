"""Error rates the benches report and the tests hold to: edit distance over characters (CER, OCR)
and over words (WER, speech)."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence

import numpy as np

_NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
_NUMBERS += "seventeen eighteen nineteen twenty"
NUMBER_WORDS = {str(i): w for i, w in enumerate(_NUMBERS.split())}


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance between two sequences (characters, words), a row at a time with numpy
    (the insertion chain by a running minimum)."""
    codes: dict[Hashable, int] = {}
    bb = np.array([codes.setdefault(x, len(codes)) for x in b], dtype=np.int64)
    idx = np.arange(len(bb) + 1)
    prev = idx.astype(np.int64)
    for x in a:
        sub = prev[:-1] + (bb != codes.get(x, -1))
        cur = np.empty_like(prev)
        cur[0] = prev[0] + 1
        cur[1:] = np.minimum(prev[1:] + 1, sub)
        prev = np.minimum.accumulate(cur - idx) + idx
    return int(prev[-1])


def cer(found: str, truth: str) -> float:
    """Character error rate: edit distance over the truth's length, whitespace runs as one space."""
    a, b = " ".join(found.split()), " ".join(truth.split())
    if not b:
        return float(bool(a))
    return edit_distance(a, b) / len(b)


def words(text: str) -> list[str]:
    """Words as compared: lower case, no punctuation, numbers 0-20 as words, British spelling of the
    two words the recogniser writes the American way."""
    text = text.lower().replace("harbor", "harbour").replace("color", "colour")
    return [NUMBER_WORDS.get(w, w) for w in re.findall(r"[a-z0-9']+", text)]


def wer(heard: str, said: str) -> float:
    """Word error rate: word edit distance over the words said."""
    a, b = words(heard), words(said)
    return edit_distance(a, b) / max(1, len(b))
