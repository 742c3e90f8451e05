"""The grounding check: which sentences of an answer the passages support.

Each answer sentence is compared with the passages' sentences and with the passages as a
whole (cosine of the embedder's vectors), and the facts it states (numbers, names,
identifiers such as `read.table()`, `drop = FALSE`, `--vanilla`) must each appear in some
passage. A sentence is supported when it is close enough to a passage and none of its facts
is missing; a sentence that states nothing checkable ("I hope this helps.") is left alone.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from ingest.embed import Embedder
from retriever import verify
from retriever.keyword import STOPWORDS
from retriever.passages import PassageSentences
from retriever.sentences import collapse, split_sentences

_MARKERS = re.compile(r"\s*\[\d{1,2}\](?:\s*\[\d{1,2}\])*|\s*\([^()]{1,120}?,\s*(?:p|pp|page|pages)\.?\s*\d[\d\s,-]*\)")
MIN_QUOTED_CHARS = 20  # a claim this long found word for word in a passage is a quote of it
_QUOTED = re.compile(r"^[\s>]*(?:According to [^:]{0,80}:\s*)?[\"“]|[\"”]\s*$")  # quote marks and lead-in
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)*%?(?![\w])")
_CODE = re.compile(
    r"`([^`]{1,80})`"  # `anything in backticks`
    r"|(--?[A-Za-z][\w-]*)"  # --vanilla
    r"|\b([A-Za-z_][\w.]*)\("  # name( -> name
    r"|\b([A-Za-z_]\w*(?:(?:\.|\$|::|_)\w+)+)"  # read.table, x$y, pkg::f, snake_case
    r"|\b([a-z]+[A-Z]\w*)"  # camelCase
    r"|\b(\w+\s?=\s?\w+)"  # drop = FALSE
)
_NAME = re.compile(r"(?<=[\w,;:)] )([A-Z][a-z]+(?:[ -][A-Z][a-z]+)*)")
_COMMON_CAPITALS = frozenset("I The A An This That These Those It If In On For But And Or You Yes No Note".split())  # noqa: SIM905


@dataclass(frozen=True)
class SentenceSupport:
    """One answer sentence and what the check found."""

    text: str
    supported: bool
    source: int | None  # passage number that supports it best
    similarity: float
    missing: tuple[str, ...] = ()  # facts the closest window of the passages lacks
    claim: bool = True  # False: nothing to check ("Yes.", "I hope this helps.")
    label: str = verify.SUPPORTED  # the verifier's: supported | contradicted | not found
    reason: str = ""  # why it is not supported, in words

    def to_json(self, ps: PassageSentences | None = None) -> dict[str, Any]:
        source: dict[str, Any] | None = None
        if self.source is not None:
            source = {"passage": self.source}
            if ps is not None and 0 < self.source <= len(ps.hits):
                h = ps.hits[self.source - 1]
                source.update(document=h.document, page=h.page)
        return {
            "text": self.text,
            "supported": self.supported,
            "source": source,
            "similarity": round(self.similarity, 4),
            "missing": list(self.missing),
            "claim": self.claim,
            "verdict": self.label if self.claim else None,
            "reason": self.reason,
        }


@dataclass
class GroundingReport:
    """The check of one answer: per sentence, and what it cost."""

    sentences: list[SentenceSupport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def claims(self) -> list[SentenceSupport]:
        return [s for s in self.sentences if s.claim]

    @property
    def unsupported(self) -> list[SentenceSupport]:
        return [s for s in self.sentences if not s.supported]

    @property
    def supported_share(self) -> float:
        claims = self.claims
        return sum(s.supported for s in claims) / len(claims) if claims else 1.0

    @property
    def mostly_unsupported(self) -> bool:
        """More than half of the sentences that state something lack support."""
        claims = self.claims
        return bool(claims) and sum(not s.supported for s in claims) * 2 > len(claims)


def strip_citations(text: str) -> str:
    """The sentence without its [1] or (file.pdf, p. 3) markers."""
    return _MARKERS.sub("", text).strip()


def facts(sentence: str) -> list[str]:
    """Numbers, identifiers and names a sentence states, as written."""
    s = _LIST_MARK.sub("", strip_citations(sentence))
    code = list(_CODE.finditer(s))
    found = [next(g for g in m.groups() if g) for m in code]
    for m in _NUMBER.finditer(s):
        if not any(c.start() <= m.start() < c.end() for c in code):
            found.append(m.group().rstrip("%").replace(",", ""))
    for m in _NAME.finditer(s):
        found.extend(w for w in re.split(r"[ -]", m.group(1)) if w not in _COMMON_CAPITALS)
    return list(dict.fromkeys(f for f in found if f.strip()))


def _normal(text: str) -> str:
    return collapse(text).lower()


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def _number_key(number: str) -> str:
    """'+1,024%' and '1024' compare equal."""
    return number.replace(",", "").rstrip("%").lstrip("+")


def _numbers_in(text: str) -> set[str]:
    return {_number_key(m.group()) for m in _NUMBER.finditer(text)}


def check(answer: str, ps: PassageSentences, embedder: Embedder, threshold: float = verify.TOPIC) -> GroundingReport:
    """Check every sentence of `answer` against the passages in `ps` with the verifier
    (`retriever.verify`): a sentence is supported when one window of the passages (a sentence with
    its neighbours) says it: its facts, most of its words, its polarity and no word's opposite.

    A sentence's facts are looked up in that window only, so a number that happens to stand
    elsewhere on the page ("14" as a page number) does not vouch for it, and two passages' facts
    joined into one sentence are no claim either passage makes."""
    t0 = time.perf_counter()
    # a line that is only ">" (between quoted passages) ends a sentence as a blank line does, so the
    # last sentence of one quote and the first of the next are never read as one claim
    spans = split_sentences(re.sub(r"(?m)^>[ \t]*$", lambda m: " " * len(m.group()), answer))
    texts = [answer[a:b] for a, b in spans]
    bare = [strip_citations(t) for t in texts]
    checkable = [i for i, b in enumerate(bare) if is_claim(b)]
    embedded: list[Any] = list(embedder.embed([bare[i] for i in checkable], batch_size=8)) if checkable else []
    vectors = dict(zip(checkable, embedded, strict=True))
    around = Neighbours.of(ps)
    out: list[SentenceSupport] = []
    for i, text in enumerate(texts):
        if i not in vectors:
            out.append(SentenceSupport(text, True, None, 0.0, (), claim=False))
            continue
        v = verdict(bare[i], vectors[i], ps, around, threshold)
        source = ps.sentences[v.sentence].passage if v.sentence is not None else None
        out.append(SentenceSupport(text, v.supported, source, v.similarity, v.missing, label=v.label, reason=v.reason))
    return GroundingReport(out, time.perf_counter() - t0)


@dataclass(frozen=True)
class Neighbours:
    """What reading claims against one set of passages needs besides the claim: each sentence's
    previous and next one in its passage, and the stems the passages use (built once per answer)."""

    previous: list[int | None]
    following: dict[int, int]
    vocabulary: set[str]

    @classmethod
    def of(cls, ps: PassageSentences) -> Neighbours:
        return cls(
            [s.previous for s in ps.sentences],
            {s.previous: i for i, s in enumerate(ps.sentences) if s.previous is not None},
            set().union(*(verify.content_stems(s.text) for s in ps.sentences)),
        )


def verdict(
    claim: str, vector: Any, ps: PassageSentences, around: Neighbours, threshold: float = verify.TOPIC
) -> verify.Verdict:
    """One claim (citation markers stripped) read against the passages' closest windows; a claim that
    stands word for word in a passage (a quote, quotation marks and "According to [n]:" aside) is
    what the documents say, by definition."""
    closest = verify.windows(vector, ps.vectors, around.previous, around.following)
    words = collapse(_QUOTED.sub("", claim)).rstrip(".")
    if len(words) >= MIN_QUOTED_CHARS and closest:
        for n, (_offset, text) in enumerate(ps.contexts, start=1):
            if words in collapse(text):
                j = next((j for j, _sim, _w in closest if ps.sentences[j].passage == n), closest[0][0])
                return verify.Verdict(claim, verify.SUPPORTED, j, 1.0, "the documents' own words")
    claim_facts = facts(claim)
    tried = []
    for j, sim, window_at in closest:
        window = [ps.sentences[k].text for k in window_at]
        joined = " ".join(window)
        found = (_normal(joined), _compact(joined), _numbers_in(joined))
        missing = tuple(f for f in claim_facts if not _found(f, *found))
        tried.append((j, sim, window, missing))
    return verify.decide(claim, tried, threshold, around.vocabulary)


def is_claim(sentence: str) -> bool:
    if sentence.rstrip().endswith("?"):
        return False  # a question (often the user's, echoed) states nothing to check
    words = [w for w in re.findall(r"\w+", sentence.lower()) if w not in STOPWORDS]
    return len(words) >= 3 or bool(facts(sentence))


def _found(fact: str, normal: str, compact: str, numbers: set[str]) -> bool:
    """Whether `fact` appears in the text (given lower-cased, without whitespace, and as its numbers)."""
    if _NUMBER.fullmatch(fact):
        return _number_key(fact) in numbers
    return fact.lower() in normal or _compact(fact) in compact
