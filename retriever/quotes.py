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
from retriever.rerank import Reranker
from retriever.sentences import LEADER, is_heading, letters
from retriever.verify import asked_opposites, opposed

QUOTE_CONTEXT_CHARS = 300  # shown around a quote so a reader sees it in place
MIN_QUOTE_WORDS = 3  # shorter sentences (headings, "Yes.", code fragments) are not quoted on their own
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


@dataclass(frozen=True)
class QuoteSettings:
    """Weights of the sentence score and how many quotes to give."""

    # Evidence inside the quotes, measured on both dev sets (R-intro + R-FAQ; bench/eval/second-dev.jsonl)
    # over the top 5 passages: the sentence alone, keyword 0.25: 0.825 / 0.575 (keyword 0.5: the
    # same). Read 0.4 with the sentence before it: 0.875 / 0.650 at keyword 0.5 (0.3-0.5 of it and
    # keyword 0.25-0.5: 0.825-0.875 / 0.650; keyword 0.75-1.0: 0.850-0.875 / 0.600-0.650). Reading
    # only the 12 best candidates so gave the same figures as reading all (5 to 1000 measured alike)
    # and costs one small embedding batch: the quotes' median time 159 -> 222 ms on the dev set.
    # A relative floor only lost quotes.
    dense_weight: float = 1.0
    context_weight: float = 0.4  # share of the dense score read with the sentence before it
    context_candidates: int = 12  # how many of the best candidates are read so (an embedding each)
    keyword_weight: float = 0.5
    # What the passage of a sentence says about it: its rank (weight / rank) and its own cosine with
    # the question (the stored chunk embedding). Evidence inside the quotes, both dev sets: rank 0.2
    # alone 0.900 / 0.800; with the passage's cosine, rank 0.05-0.1 and cosine 0.2-0.6 all gave
    # 0.925 / 0.825 (rank 0.15 or 0, or cosine 0.8, lost a question on one set). The cosine tells a
    # third passage that is close to the question from one that is third by a wide margin (found:
    # rdata-06's answer in a third passage, behind sentences of the first that only name its topic).
    rank_weight: float = 0.075
    passage_weight: float = 0.4
    reranker_weight: float = 0.5
    # A sentence about the opposite action of the question's (it writes where the question reads, adds
    # where it removes) and not about the asked one loses this much: "How do I read it?" was answered
    # with write.csv2's paragraph while read.csv2's sentence stood third.
    opposite_penalty: float = 0.3
    # Four sentences, with `chain` and `chain_forward` below: 0.875 -> 0.900 (R-intro + R-FAQ) and
    # 0.675 -> 0.725 (second-dev); the bundled model's answers (README's `--generate` command, same
    # run) answered 0.825 -> 0.875 and 0.625 -> 0.775, token F1 0.32 -> 0.29 and 0.18 -> 0.17
    # (longer answers), median 1.30 -> 1.54 s and 1.12 -> 1.21 s. Three with both rules: 0.850 / 0.675.
    max_sentences: int = 4
    relative_floor: float = 0.0  # a later quote must score at least this share of the best
    # A chosen sentence brings in the next one when that one refers back to it ("To read such
    # files ...", "This is ..."), as a connective sentence brings in the one before it. Evidence
    # inside the quotes, measured on both dev sets: 0.800 -> 0.825 (R-intro + R-FAQ) and
    # 0.425 -> 0.500 (bench/eval/second-dev.jsonl).
    follow_on: bool = True
    # The best sentence always brings in the one after it in its passage (the answer often follows
    # the sentence that names the question's topic: "If a separator is specified, leading white
    # space is part of the field. To strip the space, use strip.white = TRUE."). Measured on both
    # dev sets, three sentences at most either way: 0.825 -> 0.825 (R-intro + R-FAQ) and 0.500 ->
    # 0.575 (second-dev); for the two best sentences it lost dev questions (0.775).
    pair_best: bool = True
    # A sentence that ends in a colon and the one it introduces (an example, code) come together,
    # whichever of them is chosen ("For example, here's a case-insensitive string comparison:").
    # Found on second-set misses, so confirmed on the dev set only as doing no harm: 0.875 -> 0.875
    # (R-intro + R-FAQ) and 0.625 -> 0.650 (second-dev, through `archivist eval`).
    introduced: bool = True
    # A sentence brought in for the one after it ("This means ...") brings in the sentence that
    # introduces it in turn ("... named as follows:" before a line of code). Found on a second-set
    # miss; evidence inside the quotes 0.875 -> 0.875 (R-intro + R-FAQ), 0.675 -> 0.700 (second-dev).
    chain: bool = True
    # The sentence that follows a chosen one, or its pair, brings in the next one when that one
    # refers back too ("... losing the unnecessary extent. After much discussion this has been
    # determined to be a feature. To prevent this happening, add the option drop = FALSE ...").
    # Found on a dev miss, with four sentences: 0.875 -> 0.900 (R-intro + R-FAQ), 0.725 -> 0.725
    # (second-dev): no harm there.
    chain_forward: bool = True
    # A sentence that opens on a connective ("It modifies the list in-place (and returns None to
    # avoid confusion).", "Therefore, if you change your modules, you must restart ...") leans on the
    # one before it and is quoted with it: it is scored as read with it (the pair's cosine with the
    # question, for every such candidate, not only the best), and it brings that sentence in even
    # when that takes the quotes one sentence past `max_sentences`, so no quote opens on a dangling
    # "It". Evidence inside the quotes over each set's top 5 passages (R-intro + R-FAQ /
    # bench/eval/second-dev.jsonl / third-dev / fourth-dev): 37 / 33 / 20 / 30 -> 37 / 34 / 22 / 30,
    # median characters 550 / 514 / 582 / 421 -> 568 / 514 / 570 / 439. The scoring alone: 37 / 34 /
    # 21 / 29 (fourth's mod-01 chose "Therefore, ..." as the fourth sentence, with no room for the
    # answer before it); the room alone: unchanged on all four; the pair's cosine at 0.75 of the score
    # rather than all of it: 37 / 33 / 22 / 30. Found on a second-set miss (py-sort-01).
    leaning: bool = True
    # The quotes are ordered by their best sentence's score plus this share of how much they give
    # the kind of answer the question asks for (`retriever.answer_kind`: a name the question does not
    # hold for "how"/"which", a number for "how many", a reason for "why"), so the quote that answers
    # opens the answer rather than the one that restates the question ("use the 'utf-8-sig' codec"
    # over "the BOM ... will be silently dropped"). The opening quote names every key term
    # (bench/eval/keys; dev / second / third / fourth): 32 / 28 / 24 / 24 -> 33 / 29 / 24 / 26 at
    # 0.2 (0.1: 33 / 29 / 24 / 25; 0.3: 30 / 29 / 24 / 26; 0.5: 29 / 30 / 23 / 25). Scoring the
    # sentences so, rather than ordering the quotes, lost dev questions at every weight tried
    # (0.1-0.5: dev 32 -> 32-23, fourth 24 -> 22-26).
    answer_order_weight: float = 0.2
    # When no chosen sentence gives the kind of answer asked for (`answer_kind.gives` >= 0.7), the best
    # sentence that does is added, if it scores at least this share of the best sentence. The opening
    # quote names every key term (dev / second / third / fourth): 33 / 29 / 24 / 26 -> 33 / 30 / 24 /
    # 27 at 0.8 (0.6 and 0.7 the same; 0.9: unchanged).
    answer_slot: float = 0.8


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
    # A sentence that holds the question itself, question mark and all, asks it (an FAQ heading, an
    # example request); it does not answer it: found on the example assistant's starter "How do I run
    # a model on the GPU?", answered from an API example's line `"content": "How do I run a model on
    # the GPU?"}],`. A search-like question without "?" ("byte order mark") may well be inside one.
    asked = letters(question) if question.rstrip().endswith("?") else ""
    idx = [i for i, c in enumerate(ps.sentences) if _quotable(c.text) and not _asks(c.text, asked)]
    # A passage that starts or ends inside a sentence (a chunk of a document without pages is read
    # as it is) gives a piece of a sentence that another passage may hold whole: the piece is no
    # candidate, and no quote takes in a sentence that overlaps one already taken, so no words are
    # quoted twice (found on HTML pages: 3 of 43 questions of bench/eval/fourth-dev.jsonl quoted
    # "an omitted first index defaults to zero ..." both alone and in its whole sentence).
    inside = _inside_others(ps)
    idx = [i for i in idx if i not in inside]
    if not idx:
        return []
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
    best = float(score[order[0]])
    chosen: dict[int, float] = {}  # sentence index -> score of the pick that brought it in

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
    kinds = expects(question) if (s.answer_order_weight or s.answer_slot) else frozenset()
    if s.answer_slot and kinds and not any(gives(ps.sentences[i].text, question, kinds) >= 0.7 for i in chosen):
        for j in order:
            i = idx[j]
            if float(score[j]) < s.answer_slot * best:
                break
            if i in chosen or _overlaps(ps, i, chosen) or gives(ps.sentences[i].text, question, kinds) < 0.7:
                continue
            chosen[i] = float(score[j])
            before = ps.sentences[i].previous
            if before is not None and _CONNECTIVE.match(ps.sentences[i].text) and before not in chosen:
                chosen[before] = float(score[j])
            break
    # Consecutive sentences of one passage make one quote, ranked by its best sentence.
    groups: list[list[int]] = []
    for i in sorted(chosen):
        if groups and ps.sentences[i].previous == groups[-1][-1]:
            groups[-1].append(i)
        else:
            groups.append([i])
    quotes = [_quote(ps, g, max(chosen[i] for i in g)) for g in groups]
    return sorted(quotes, key=lambda q: -(q.score + s.answer_order_weight * gives(q.text, question, kinds)))


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
