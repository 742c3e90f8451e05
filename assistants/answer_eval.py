"""Answer-level evaluation: what the user reads, measured against the set's evidence and answers.

Without generation it asks whether the supporting quotes hold the evidence. With generation
(`archivist eval --answers --generate`) it also measures, per question and over the set: the
share of the shown answer's sentences that the passages support; evidence recall (the share of
the evidence's content words the shown answer contains; answered at >= 0.5); token F1 against
the reference answer; what was shown (generated, best of N, the quotes, the refusal); seconds
per answer and tokens generated. An unanswerable question is right only when refused.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistants.answer import Answer
from assistants.chat import ChatService
from assistants.schema import Assistant, KnowledgeSettings
from assistants.tidy import cut_off, debris, names_keys, words_before_quotes
from retriever.evaluate import Question
from retriever.keyword import STOPWORDS
from retriever.sentences import collapse
from runtime.errors import ArchivistError

ANSWERED_RECALL = 0.5  # evidence recall at which a question counts as answered


@dataclass
class AnswerRow:
    """One question's outcome."""

    id: str
    evidence_in_quotes: bool | None  # None: the set gives no evidence for it
    quote_ms: float
    quotes: list[dict[str, Any]]
    answer: str | None = None
    supported_share: float | None = None
    grounding_ms: float | None = None
    unanswerable: bool = False
    shown: str = ""  # generated | best-of-n | quotes | refusal
    refused: bool = False
    evidence_recall: float | None = None
    token_f1: float | None = None
    seconds: float = 0.0
    tokens: int = 0
    candidates: int = 0
    claims: int = 0
    supported_claims: int = 0
    keys_named: bool | None = None  # the shown answer names every key term (None: the set gives none)
    words: int = 0  # words before the quoted lines
    cut_off: bool = False
    debris: int = 0  # template and markup pieces in the shown answer

    @property
    def right(self) -> bool | None:
        """Unanswerable: refused. Answerable: the evidence is in what was shown (None: no evidence given)."""
        if self.unanswerable:
            return self.refused
        return None if self.evidence_recall is None else self.evidence_recall >= ANSWERED_RECALL


@dataclass
class AnswerEval:
    """Rates and medians over the set."""

    questions: int
    with_evidence: int
    evidence_rate: float
    median_quote_ms: float
    rows: list[AnswerRow] = field(default_factory=list)
    mean_supported_share: float | None = None
    median_grounding_ms: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # the generated-answer measures, when generated

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "rows"}
        d["rows"] = [{**r.__dict__, "right": r.right} for r in self.rows]
        return d


def _tokens(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS]


def evidence_recall(shown: str, *evidence: str) -> float:
    """Share of the evidence's content words (stop words aside) that `shown` contains; with several
    evidence strings (the documents answer in several places), the best of them."""
    have = set(_tokens(shown))
    shares = [len(w & have) / len(w) for w in (set(_tokens(e)) for e in evidence) if w]
    return max(shares, default=0.0)


def token_f1(shown: str, reference: str) -> float:
    """SQuAD-style token F1 of the shown answer against the reference answer (stop words aside)."""
    a, b = Counter(_tokens(shown)), Counter(_tokens(reference))
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def _percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))] if s else 0.0


def summarize(rows: Sequence[AnswerRow]) -> dict[str, Any]:
    """The set's figures for generated answers."""
    answerable = [r for r in rows if not r.unanswerable]
    unanswerable = [r for r in rows if r.unanswerable]
    judged = [r for r in answerable if r.evidence_recall is not None]
    shown = [r for r in rows if r.supported_share is not None and not r.refused]
    claims = sum(r.claims for r in shown)
    seconds = [r.seconds for r in rows]
    f1 = [r.token_f1 for r in answerable if r.token_f1 is not None]

    def share(items: Sequence[AnswerRow], pred: Callable[[AnswerRow], bool]) -> float | None:
        return round(sum(map(pred, items)) / len(items), 4) if items else None

    keyed = [r for r in answerable if r.keys_named is not None]
    written = [r for r in rows if not r.refused]
    return {
        "answerable": len(answerable),
        "right": share(keyed, lambda r: bool(r.keys_named)),
        "keyed": len(keyed),
        "words_p50": statistics.median(r.words for r in written) if written else None,
        "cut_off": sum(r.cut_off for r in written),
        "debris": sum(bool(r.debris) for r in written),
        "unanswerable": len(unanswerable),
        "supported_share": round(statistics.fmean(r.supported_share or 0.0 for r in shown), 4) if shown else None,
        "supported_sentences": round(sum(r.supported_claims for r in shown) / claims, 4) if claims else None,
        "evidence_recall": round(statistics.fmean(r.evidence_recall or 0.0 for r in judged), 4) if judged else None,
        "answered": share(judged, lambda r: bool(r.right)),
        "token_f1": round(statistics.fmean(f1), 4) if f1 else None,
        "generated": share(answerable, lambda r: r.shown in ("generated", "best-of-n")),
        "fallback": share(answerable, lambda r: r.shown == "quotes"),
        "refused_answerable": share(answerable, lambda r: r.refused),
        "refused_unanswerable": share(unanswerable, lambda r: r.refused),
        "seconds_p50": round(statistics.median(seconds), 3) if seconds else None,
        "seconds_p95": round(_percentile(seconds, 0.95), 3) if seconds else None,
        "tokens_mean": round(statistics.fmean(r.tokens for r in rows), 1) if rows else None,
        "candidates_mean": round(statistics.fmean(r.candidates for r in rows), 2) if rows else None,
    }


def _score_shown(row: AnswerRow, q: Question, answer: Answer) -> None:
    """The measures of a generated answer, as shown: support, evidence recall, key terms, shape, F1."""
    g = answer.grounding
    if g is not None:
        row.claims, row.supported_claims = len(g.claims), sum(s.supported for s in g.claims)
    if q.evidence and not q.unanswerable:
        row.evidence_recall = 0.0 if answer.refused else evidence_recall(answer.text, *q.evidence)
    if not answer.refused:
        row.words = words_before_quotes(answer.text)
        row.cut_off, row.debris = cut_off(answer.text), len(debris(answer.text))
    if q.keys and not q.unanswerable:
        row.keys_named = not answer.refused and names_keys(answer.text, q.keys)
    if q.answer and not q.unanswerable:
        row.token_f1 = 0.0 if answer.refused else token_f1(answer.text, q.answer)


def evaluate_answers(
    chat: ChatService,
    collection: str,
    questions: Sequence[Question],
    *,
    assistant: Assistant | None = None,
    generate: bool = False,
    progress: Callable[[int, int], None] | None = None,
    seed: int | None = 0,
) -> AnswerEval:
    """Ask every question; score whether one of the quotes contains the evidence (whitespace collapsed).

    Without `generate` the answers are extractive (no model); with it the assistant answers as
    configured (its context, decoding, thinking and fallback settings) and every shown answer is
    checked against the passages. Every question is sampled with `seed` (None: unseeded), so two runs
    of the same settings give the same answers on one machine and a difference is the settings'."""
    if collection not in chat.store.collection_names():
        raise ArchivistError(f"no collection named {collection!r}; ingest the documents first")
    knowledge = KnowledgeSettings(collections=[collection])
    base = (
        assistant.model_copy(update={"knowledge": knowledge})
        if assistant is not None
        else Assistant(name="eval", knowledge=knowledge)
    )
    chat.ask(base, "warm up", answer_mode="extractive").result()
    rows: list[AnswerRow] = []
    for i, q in enumerate(questions, start=1):
        t0 = time.perf_counter()
        answer = chat.ask(
            base,
            q.question,
            answer_mode="generate" if generate else "extractive",
            grounding=("retry" if base.grounding == "retry" else "mark") if generate else "off",
            seed=seed,
        ).result()
        seconds = time.perf_counter() - t0
        found = None
        if q.evidence:
            found = any(collapse(ev) in collapse(x.text) for ev in q.evidence for x in answer.quotes)
        g = answer.grounding
        row = AnswerRow(
            q.id,
            found,
            answer.quote_time * 1000,
            [x.to_json() for x in answer.quotes],
            answer.text if generate else None,
            g.supported_share if g is not None else None,
            g.seconds * 1000 if g is not None else None,
            unanswerable=q.unanswerable,
            shown=answer.shown,
            refused=answer.refused,
            seconds=seconds,
            tokens=answer.stats.completion_tokens,
            candidates=answer.candidates,
        )
        if generate:
            _score_shown(row, q, answer)
        rows.append(row)
        if progress:
            progress(i, len(questions))
    judged = [r for r in rows if r.evidence_in_quotes is not None]
    shares = [r.supported_share for r in rows if r.supported_share is not None]
    gms = [r.grounding_ms for r in rows if r.grounding_ms is not None]
    return AnswerEval(
        len(rows),
        len(judged),
        sum(bool(r.evidence_in_quotes) for r in judged) / len(judged) if judged else 0.0,
        statistics.median(r.quote_ms for r in rows) if rows else 0.0,
        rows,
        statistics.fmean(shares) if shares else None,
        statistics.median(gms) if gms else None,
        summarize(rows) if generate else {},
    )
