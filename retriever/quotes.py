"""Supporting quotes: the sentences of the retrieved passages that best answer the question.

Every sentence of the passages (`retriever.passages`: widened to whole sentences of their page)
is scored by the embedder (cosine with the question; the best
candidates also as read after the sentence before them, and a sentence that opens on a connective
always so), by keyword overlap (question words weighted by how rare they are among the candidates)
and by its passage (its rank, and the passage's own cosine with the question), plus the reranker
when the assistant has one, and the best four (five when the last one leans on the sentence before
it) are returned with document, page and their character offsets in the page text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt

from ingest.embed import Embedder
from ingest.injection import injection_kind
from retriever.answer_kind import expects, gives
from retriever.keyword import STOPWORDS
from retriever.passages import PassageSentences
from retriever.quote_settings import QuoteSettings
from retriever.rerank import Reranker
from retriever.sentences import LEADER, asks_another, is_heading, letters
from retriever.verify import asked_opposites, opposed

QUOTE_CONTEXT_CHARS = 300  # shown around a quote so a reader sees it in place
MIN_QUOTE_WORDS = 3  # shorter sentences (headings, "Yes.", code fragments) are not quoted on their own
GIVES_ANSWER = 0.7  # `answer_kind.gives` from which a sentence gives the kind of answer asked for
MIN_ASKED_CHARS = 12  # a question this long (letters and digits) found inside a sentence makes it no answer


@dataclass(frozen=True)
class Quote:
    """A sentence from a passage; `start`/`end` are offsets into its page's text."""

    text: str
    document: str
    collection: str
    page: int | None
    start: int
    end: int
    score: float
    passage: int  # 1-based number of the passage it comes from, as in the prompt
    context: str = ""  # the page text around it, to show it highlighted in place
    context_start: int = 0  # page offset of `context`

    def to_json(self, context: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "text": self.text,
            "document": self.document,
            "page": self.page,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 4),
            "passage": self.passage,
        }
        if context:
            d.update(context=self.context, context_start=self.context_start)
        return d


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS and len(w) > 1]


def _stem(word: str) -> str:
    """Crude suffix folding so 'divert'/'diverts'/'diverting' meet."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _asks(text: str, asked: str) -> bool:
    """Does the sentence hold the question `asked` (its letters and digits), with a question mark?"""
    return len(asked) >= MIN_ASKED_CHARS and "?" in text and asked in letters(text)


def _quotable(text: str) -> bool:
    """Sentences worth quoting: enough words, not a question (FAQ headings are questions), not a
    Markdown heading, not a table-of-contents line, not an instruction addressed to a model."""
    t = text.rstrip()
    if len(_words(t)) < MIN_QUOTE_WORDS or t.endswith("?") or is_heading(t) or injection_kind(t):
        return False
    return not LEADER.search(t)


_CONNECTIVE = re.compile(
    r"^(?:this|these|that|those|it|its|they|their|such|he|she|here|there|however|thus|hence|therefore|"
    r"but|also|so|then|otherwise|instead|similarly)\b",
    re.I,
)


def find_quotes(
    question: str,
    ps: PassageSentences,
    embedder: Embedder,
    *,
    reranker: Reranker | None = None,
    settings: QuoteSettings | None = None,
) -> list[Quote]:
    """The sentences that best answer `question` (up to `max_sentences`, one more when the last leans on
    the one before it), as quotes of consecutive sentences, best first."""
    s = settings or QuoteSettings()
    idx = _candidates(question, ps)
    if not idx:
        return []
    score, order = _scores(question, ps, idx, embedder, reranker, s)
    chosen = _choose(ps, idx, score, order, s)
    kinds = expects(question) if (s.answer_order_weight or s.answer_slot) else frozenset()
    if s.answer_slot and kinds:
        _add_answer(question, kinds, ps, idx, score, order, chosen, s.answer_slot)
    # Consecutive sentences of one passage make one quote, ranked by its best sentence.
    groups: list[list[int]] = []
    for i in sorted(chosen):
        if groups and ps.sentences[i].previous == groups[-1][-1]:
            groups[-1].append(i)
        else:
            groups.append([i])
    quotes = [_quote(ps, g, max(chosen[i] for i in g)) for g in groups]
    return sorted(quotes, key=lambda q: -(q.score + s.answer_order_weight * gives(q.text, question, kinds)))


def _candidates(question: str, ps: PassageSentences) -> list[int]:
    """The sentences that may be quoted."""
    # A sentence that holds the question itself, question mark and all, asks it (an FAQ heading, an
    # example request); it does not answer it: found on the example assistant's starter "How do I run
    # a model on the GPU?", answered from an API example's line `"content": "How do I run a model on
    # the GPU?"}],`. A search-like question without "?" ("byte order mark") may well be inside one.
    # Nor does one that asks another question inside quotes or brackets: the same line quoted as the
    # answer to "Can I use a GPU?", the reader's first words of the answer a JSON fragment; nor one
    # that quotes a question people ask (R-data's "... 'how do I read an Excel spreadsheet'").
    asked = letters(question) if question.rstrip().endswith("?") else ""
    asking = bool(asked) and len(question.split()) >= 3  # a question, not a word searched for ("GPU?")
    idx = [i for i, c in enumerate(ps.sentences) if _quotable(c.text) and not _asks(c.text, asked)]
    idx = [i for i in idx if not (asking and asks_another(ps.sentences[i].text))]
    # A passage that starts or ends inside a sentence (a chunk of a document without pages is read
    # as it is) gives a piece of a sentence that another passage may hold whole: the piece is no
    # candidate, and no quote takes in a sentence that overlaps one already taken, so no words are
    # quoted twice (found on HTML pages: 3 of 43 questions of bench/eval/fourth-dev.jsonl quoted
    # "an omitted first index defaults to zero ..." both alone and in its whole sentence).
    inside = _inside_others(ps)
    return [i for i in idx if i not in inside]


def _scores(
    question: str,
    ps: PassageSentences,
    idx: list[int],
    embedder: Embedder,
    reranker: Reranker | None,
    s: QuoteSettings,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Each candidate's score (positions in `idx`) and the candidates best first."""
    qv = embedder.embed([question])[0]
    dense = ps.vectors[idx] @ qv
    read: set[int] = set()  # candidates (positions in idx) already scored as read with the sentence before
    if s.leaning:
        lean = [
            j
            for j, i in enumerate(idx)
            if ps.sentences[i].previous is not None and _CONNECTIVE.match(ps.sentences[i].text)
        ]
        if lean:
            dense = dense.copy()
            dense[lean] = _read_with_previous(ps, [idx[j] for j in lean], qv, embedder)
            read = set(lean)
    cand_words = [{_stem(w) for w in _words(ps.sentences[i].text)} for i in idx]
    qwords = list(dict.fromkeys(_stem(w) for w in _words(question)))
    df = {w: sum(w in cw for cw in cand_words) for w in qwords}
    weight = {w: math.log(1 + len(idx) / (1 + df[w])) for w in qwords}
    total = sum(weight.values()) or 1.0
    keyword = np.array([sum(weight[w] for w in qwords if w in cw) / total for cw in cand_words])
    rank = np.array([1.0 / ps.sentences[i].passage for i in idx])
    score = s.dense_weight * dense + s.keyword_weight * keyword + s.rank_weight * rank
    if s.passage_weight and ps.passage_vectors is not None and len(ps.passage_vectors):
        near = ps.passage_vectors @ qv  # per passage
        score = score + s.passage_weight * near[[ps.sentences[i].passage - 1 for i in idx]]
    opposites = asked_opposites(question) if s.opposite_penalty else {}
    if opposites:  # the question reads, the sentence writes: the neighbouring topic, not the answer
        score = score - s.opposite_penalty * np.array([opposed(opposites, ps.sentences[i].text) for i in idx])
    if reranker is not None:
        raw = np.array(reranker.score(question, [ps.sentences[i].text for i in idx]))
        score = score + s.reranker_weight / (1 + np.exp(-raw))  # logits to 0..1
    order = np.argsort(-score, kind="stable")
    if s.context_weight and s.context_candidates:
        order = _with_context(ps, idx, score, dense, order, qv, embedder, s, read)
    return score, order


def _choose(
    ps: PassageSentences,
    idx: list[int],
    score: npt.NDArray[np.float64],
    order: npt.NDArray[np.intp],
    s: QuoteSettings,
) -> dict[int, float]:
    """The sentences quoted, best first, each with the sentences it brings in: sentence index -> score
    of the pick that brought it in."""
    best = float(score[order[0]])
    chosen: dict[int, float] = {}

    def free(k: int | None, past_budget: bool = False) -> TypeGuard[int]:
        """Sentence k exists, is not chosen yet, overlaps none that is, and the budget has room for it
        (or `past_budget`: it may take the quotes past the budget)."""
        return (
            k is not None
            and k not in chosen
            and (past_budget or len(chosen) < s.max_sentences)
            and not _overlaps(ps, k, chosen)
        )

    def following(k: int) -> int | None:
        """The sentence after k in the same passage."""
        n = k + 1
        return n if n < len(ps.sentences) and ps.sentences[n].previous == k else None

    for j in order:
        if len(chosen) >= s.max_sentences:
            break
        i = idx[j]
        if i in chosen or _overlaps(ps, i, chosen):
            continue
        if chosen and float(score[j]) < s.relative_floor * best:
            break
        c = ps.sentences[i]
        picked = float(score[j])
        chosen[i] = picked
        # "This is the only way to terminate repeat loops." needs the sentence before it.
        before = c.previous
        leans = bool(_CONNECTIVE.match(c.text))
        if (
            free(before, past_budget=s.leaning and leans)
            and (leans or (s.introduced and _introduces(ps.sentences[before].text)))
            and not injection_kind(ps.sentences[before].text)
        ):
            chosen[before] = picked
            intro = ps.sentences[before].previous
            if (
                s.chain
                and free(intro)
                and _introduces(ps.sentences[intro].text)
                and not injection_kind(ps.sentences[intro].text)
            ):
                chosen[intro] = picked
        after = following(i)
        pair = s.pair_best and len(chosen) == 1  # the best sentence, alone so far
        leads = s.introduced and _introduces(c.text)
        if (s.follow_on or pair or leads) and free(after) and _joins(ps.sentences[after].text, pair, leads):
            chosen[after] = picked
            while s.chain_forward:
                nxt = following(after)
                if not free(nxt) or not _joins(ps.sentences[nxt].text, False, _introduces(ps.sentences[after].text)):
                    break
                chosen[nxt] = picked
                after = nxt
    return chosen


def _add_answer(
    question: str,
    kinds: frozenset[str],
    ps: PassageSentences,
    idx: list[int],
    score: npt.NDArray[np.float64],
    order: npt.NDArray[np.intp],
    chosen: dict[int, float],
    share: float,
) -> None:
    """When no chosen sentence gives the kind of answer asked for, add (to `chosen`) the best one that
    does, with the sentence before it when it leans on it, if it scores `share` of the best."""
    if any(gives(ps.sentences[i].text, question, kinds) >= GIVES_ANSWER for i in chosen):
        return
    best = float(score[order[0]])
    for j in order:
        i = idx[j]
        if float(score[j]) < share * best:
            return
        if i in chosen or _overlaps(ps, i, chosen) or gives(ps.sentences[i].text, question, kinds) < GIVES_ANSWER:
            continue
        chosen[i] = float(score[j])
        before = ps.sentences[i].previous
        if before is not None and _CONNECTIVE.match(ps.sentences[i].text) and before not in chosen:
            chosen[before] = float(score[j])
        return


def _place(ps: PassageSentences, i: int) -> tuple[str, str, int | None]:
    """The page a sentence's offsets count on."""
    h = ps.hits[ps.sentences[i].passage - 1]
    return h.collection, h.document, h.page


def _overlaps(ps: PassageSentences, k: int, chosen: dict[int, float]) -> bool:
    """Does sentence k share characters of its page with a chosen sentence?"""
    a, place = ps.sentences[k], _place(ps, k)
    return any(
        _place(ps, i) == place and ps.sentences[i].start < a.end and a.start < ps.sentences[i].end for i in chosen
    )


def _inside_others(ps: PassageSentences) -> set[int]:
    """Sentences whose span on their page lies inside another sentence's (a longer one: passage_sentences
    keeps one sentence per span of a page)."""
    where: dict[tuple[str, str, int | None], list[int]] = {}
    for i in range(len(ps.sentences)):
        where.setdefault(_place(ps, i), []).append(i)
    out: set[int] = set()
    for group in where.values():
        for i in group:
            a = ps.sentences[i]
            if any(j != i and ps.sentences[j].start <= a.start and a.end <= ps.sentences[j].end for j in group):
                out.add(i)
    return out


def _with_context(
    ps: PassageSentences,
    idx: list[int],
    score: npt.NDArray[np.float64],
    dense: npt.NDArray[np.float32],
    order: npt.NDArray[np.intp],
    qv: npt.NDArray[np.float32],
    embedder: Embedder,
    s: QuoteSettings,
    done: set[int],
) -> npt.NDArray[np.intp]:
    """The best candidates rescored with `context_weight` of their dense score read from the
    sentence together with the one before it (in `score`, in place), best first, then the rest.
    A sentence that opens its passage keeps its score, and so does one `done` (its dense score is
    already so read)."""
    top = order[: s.context_candidates]
    read = [j for j in top if ps.sentences[idx[j]].previous is not None and int(j) not in done]
    if read:
        windows = _read_with_previous(ps, [idx[j] for j in read], qv, embedder)
        score[read] += s.dense_weight * s.context_weight * (windows - dense[read])
    return np.concatenate([top[np.argsort(-score[top], kind="stable")], order[s.context_candidates :]])


def _read_with_previous(
    ps: PassageSentences, sentences: list[int], qv: npt.NDArray[np.float32], embedder: Embedder
) -> npt.NDArray[np.float32]:
    """Cosine with the question of each sentence read after the one before it (which must exist)."""
    texts = [f"{ps.sentences[ps.sentences[i].previous].text} {ps.sentences[i].text}" for i in sentences]  # type: ignore[index]
    out: npt.NDArray[np.float32] = embedder.embed(texts, batch_size=8) @ qv
    return out


def _introduces(text: str) -> bool:
    """A sentence that ends in a colon introduces the next one (often an example or code)."""
    return text.rstrip().endswith(":")


_REFERS_BACK = re.compile(r"\b(?:this|these|such|that|those|it|they|above)\b", re.I)


def _refers_back(text: str) -> bool:
    """A sentence that leans on the one before it: a connective opening, or a back-reference
    ("such", "this", "it") among its first four words."""
    return bool(_CONNECTIVE.match(text)) or bool(_REFERS_BACK.search(" ".join(text.split()[:4])))


def _joins(text: str, pair: bool, introduced: bool) -> bool:
    """May this sentence join the chosen one before it? Never an instruction addressed to a model;
    after a sentence that introduces it (ends in a colon), any other sentence, code included; as
    the best sentence's pair, any quotable sentence; otherwise one that refers back."""
    if introduced or _refers_back(text):
        return not injection_kind(text)
    return pair and _quotable(text)  # _quotable refuses instructions too


def _quote(ps: PassageSentences, group: list[int], score: float) -> Quote:
    first, last = ps.sentences[group[0]], ps.sentences[group[-1]]
    offset, context = ps.contexts[first.passage - 1]
    h = ps.hits[first.passage - 1]
    lo = max(0, first.start - offset - QUOTE_CONTEXT_CHARS)
    hi = min(len(context), last.end - offset + QUOTE_CONTEXT_CHARS)
    return Quote(
        context[first.start - offset : last.end - offset],
        h.document,
        h.collection,
        h.page,
        first.start,
        last.end,
        score,
        first.passage,
        context[lo:hi],
        offset + lo,
    )
