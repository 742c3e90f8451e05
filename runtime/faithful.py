"""Faithful decoding: ordinary words are free, content words must come from the sources.

A small model invents numbers, function names, flags, file names and people. This logits
processor lets it write plain words as it likes, but a word that is *content* (it holds a
digit; it looks like code, a path or a flag; it has a capital inside, or starts with one in
the middle of a sentence) may only be written as some word of the sources (the passages, the
question, the instructions) is written. The check runs on the word being formed, so a token
that would start "4096" where the sources only say "4095" is never sampled.

Only the highest-scoring candidates are checked at each step (the sampler keeps its top 40
anyway); every other token is masked, so nothing outside the checked set can be sampled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

SCAN = 4096  # how far down the ranking to look when every top candidate is refused
CANDIDATES = 64  # checked per step; more than the sampler's top_k, so masking leaves it a choice
_LEAD = "\"'“‘([{<*`_"
_TRAIL = ".,;:!?\"'”’)]}>*`"
_SENTENCE_END = ".!?:"
_CLOSERS = "\"'”’)]}*`"
_CODE_MARK = re.compile(r"[_()$=/\\<>@#\[\]{}|~^&%+]|::|\w\.\w|^-\S")
# Sentence openers a capital may begin without the sources writing them (they are not names).
_OPENERS = frozenset(
    """
    a an the this that these those it its i you we they he she there here yes no not to in on at
    for from by with as if when where which what who why how use using run call type set see note
    also however but and or so then first second next finally each every all some any both either
    neither one two instead otherwise for example
    """.split()  # noqa: SIM905
)
_ABBREVIATIONS = "e.g. i.e. etc. cf. vs."  # dotted, so they look like code, but any answer may use them
_OPENER_PREFIXES = frozenset(w[:i] for w in _OPENERS for i in range(1, len(w) + 1))


def _core(word: str) -> str:
    """The word without the quotes, brackets and sentence punctuation around it."""
    return word.lstrip(_LEAD).rstrip(_TRAIL)


def is_content(core: str, sentence_start: bool) -> bool:
    """A number, an identifier or code, a path, a flag, or a capitalised name."""
    if not core:
        return False
    if any(c.isdigit() for c in core) or _CODE_MARK.search(core):
        return True
    if any(c.isupper() for c in core[1:]):
        return True
    return core[0].isupper() and not sentence_start


class SourceWords:
    """The sources' words, as prefixes, so a partly written word can be checked."""

    def __init__(self, sources: str) -> None:
        self.prefixes: set[str] = set()
        self.words: set[str] = set()  # whole words, and code up to an opening bracket ("read.table(")
        self.lower_prefixes: set[str] = set()
        for raw in re.split(r"\s+", sources + " " + _ABBREVIATIONS):
            for piece in {raw, *re.split(r"[()\[\]{}\"'`,;=]|<-", raw)}:
                core = _core(piece)
                self.words.add(core)
                self.words.update(core[: i + 1] for i, c in enumerate(core) if c in "([{")
                for i in range(1, len(core) + 1):
                    self.prefixes.add(core[:i])
                low = core.lower()
                for i in range(1, len(low) + 1):
                    self.lower_prefixes.add(low[:i])

    def allows_word(self, word: str, sentence_start: bool, finished: bool = False) -> bool:
        """Whether `word` may stand in the answer: as the start of a source word, or (`finished`) as one."""
        core = _core(word)
        if is_content(core, sentence_start):
            return core in (self.words if finished else self.prefixes)
        if sentence_start and core[:1].isupper():  # a capital that may open a sentence, or a name
            low = core.lower()
            return core in self.prefixes or low in self.lower_prefixes or low in _OPENER_PREFIXES
        return True


class FaithfulLogits:
    """A llama-cpp-python logits processor that keeps content words inside the sources.

    `feed(text)` must be called with each generated token's text, in order; the processor is
    then called for the next token with the model's logits (indexed by token id)."""

    def __init__(self, token_texts: Sequence[str], sources: str, always: Sequence[int] = ()) -> None:
        self.token_texts = token_texts
        self.words = SourceWords(sources)
        self.always = list(always)  # end-of-generation tokens: stopping is always allowed
        self.tail = ""  # the word being written (no whitespace)
        self.start = True  # whether that word begins a sentence
        self.masked = 0  # candidates refused so far (for tests and benches)

    def feed(self, text: str) -> None:
        self.tail, self.start = self._advance(self.tail, self.start, text)

    @staticmethod
    def _advance(tail: str, start: bool, text: str) -> tuple[str, bool]:
        for ch in text:
            if ch == "\n":
                tail, start = "", True
            elif ch.isspace():
                if tail:
                    start = tail.rstrip(_CLOSERS)[-1:] in _SENTENCE_END
                tail = ""
            else:
                tail += ch
        return tail, start

    def allows(self, text: str) -> bool:
        """Whether appending `text` keeps every word written so far possible."""
        tail, start = self.tail, self.start
        for ch in text:
            if ch.isspace() and tail and not self.words.allows_word(tail, start, finished=True):
                return False
            tail, start = self._advance(tail, start, ch)
        return self.words.allows_word(tail, start) if tail else True

    def __call__(self, input_ids: npt.NDArray[np.intc], logits: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        n = min(CANDIDATES, len(logits))
        top = np.argpartition(logits, -n)[-n:]
        keep = [int(t) for t in top if self._ok(int(t))]
        if not keep:  # rare: look further down the ranking for anything allowed
            order = np.argsort(-logits)[n:SCAN]
            keep = [int(t) for t in order if self._ok(int(t))][:n]
        out = np.full_like(logits, -np.inf)
        ids = np.array(keep or self.always, dtype=np.intp)
        out[ids] = logits[ids]
        return out

    def _ok(self, token: int) -> bool:
        if token in self.always or self.allows(self.token_texts[token]):
            return True
        self.masked += 1
        return False
