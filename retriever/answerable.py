"""Does the collection talk about what the question asks? A refusal signal that needs no model.

Retrieval always returns its best passages, relevant or not, and a question's similarity to
them does not tell an answerable question from one about something else (measured on the
R-manuals dev set: top cosine 0.45-0.82 for answerable questions, 0.34-0.63 for questions the
manuals do not answer). What does tell them apart is vocabulary: a question that names
something (a capitalised name, an acronym, code such as `read_excel` or `.xlsx`) that no
document of the collections contains, or most of whose words the documents never use, asks
about something the documents do not cover.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from retriever.keyword import STOPWORDS

MIN_COVERAGE = 0.5  # share of the question's words the documents must use
# Key names users abbreviate where manuals often spell them out ("Ctrl-C" for what the Python
# tutorial calls interrupting the program, "Control-C" elsewhere): either spelling counts as used.
KEY_ALIASES = {"ctrl": "control", "cmd": "command", "esc": "escape"}
_WORD = re.compile(r"[A-Za-z_][\w.+#-]*\w|[A-Za-z]")


@dataclass(frozen=True)
class Answerability:
    """The question's words, and which of them no document of the collections contains."""

    words: tuple[str, ...]
    missing: tuple[str, ...]
    names_missing: tuple[str, ...]  # names, acronyms and code among the missing words

    @property
    def coverage(self) -> float:
        return 1.0 - len(self.missing) / len(self.words) if self.words else 1.0

    def answerable(self, min_coverage: float = MIN_COVERAGE) -> bool:
        return not self.names_missing and self.coverage >= min_coverage

    def reason(self) -> str:
        if self.names_missing:
            return f"the documents never mention {', '.join(self.names_missing)}"
        return f"the documents use {self.coverage:.0%} of the question's words"


def _is_name(word: str, first: bool) -> bool:
    """A capitalised word inside the sentence, an acronym or mixed case ("R6", "S3" too), or code;
    never a number ("2x2", "64-bit")."""
    if word[0].isdigit() or word == "I":
        return False
    if any(c in "_.+#" for c in word.strip(".")):
        return True
    return any(c.isupper() for c in word[1:]) or (word[0].isupper() and not first)


def question_words(question: str) -> list[tuple[str, bool]]:
    """(word, is a name) for each content word of the question, in order, once each."""
    out: dict[str, bool] = {}
    for m in _WORD.finditer(question):
        w, before = m.group(), question[: m.start()].rstrip()
        name = _is_name(w, first=not before or before[-1] in ".!?:")
        if name or (w.lower() not in STOPWORDS and len(w) > 2):
            out[w] = out.get(w, False) or name
    return list(out.items())


def asking_part(question: str) -> str:
    """The sentence of the question that asks (the last one ending in '?', else the last one): in "A
    colleague in France wants CSV files with decimal commas. Which function writes them?" France is
    said in passing, and no reason to refuse."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+(?=[A-Z])", question.strip()) if p.strip()]
    if len(parts) <= 1:
        return question
    asked = [p for p in parts if p.endswith("?")]
    return asked[-1] if asked else parts[-1]


def answerability(question: str, present: Callable[[Sequence[str]], Iterable[str]]) -> Answerability:
    """Check the question's words against the documents; `present(words)` returns those they contain.
    A name the documents lack refuses only when it stands in the sentence that asks (`asking_part`);
    every word counts towards the coverage."""
    words = question_words(question)
    asking = {w for w, _ in question_words(asking_part(question))}
    lookup = {w: [p for p in re.split(r"[^\w]+", w.lower()) if p] for w, _ in words}
    asked = {p for parts in lookup.values() for p in parts}
    found = set(present(sorted(asked | {KEY_ALIASES[p] for p in asked if p in KEY_ALIASES})))
    found |= {p for p, spelled in KEY_ALIASES.items() if spelled in found}
    missing = [w for w, _ in words if not all(p in found for p in lookup[w])]
    names = dict(words)
    return Answerability(
        tuple(w for w, _ in words), tuple(missing), tuple(w for w in missing if names[w] and w in asking)
    )
