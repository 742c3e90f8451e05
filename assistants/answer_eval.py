"""Answer-level evaluation: are the supporting quotes the evidence, and is the generated text grounded?"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistants.chat import ChatService
from assistants.schema import Assistant, KnowledgeSettings
from retriever.evaluate import Question
from retriever.sentences import collapse
from runtime.errors import ArchivistError


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

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "rows"}
        d["rows"] = [r.__dict__ for r in self.rows]
        return d


def evaluate_answers(
    chat: ChatService,
    collection: str,
    questions: Sequence[Question],
    *,
    assistant: Assistant | None = None,
    generate: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerEval:
    """Ask every question; score whether one of the quotes contains the evidence (whitespace collapsed).

    Without `generate` the answers are extractive (no model); with it the assistant's model answers
    and the grounding check runs on every answer."""
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
        answer = chat.ask(
            base,
            q.question,
            answer_mode="generate" if generate else "extractive",
            grounding="mark" if generate else "off",
        ).result()
        found = None
        if q.evidence:
            ev = collapse(q.evidence)
            found = any(ev in collapse(x.text) for x in answer.quotes)
        g = answer.grounding
        rows.append(
            AnswerRow(
                q.id,
                found,
                answer.quote_time * 1000,
                [x.to_json() for x in answer.quotes],
                answer.text if generate else None,
                g.supported_share if g is not None else None,
                g.seconds * 1000 if g is not None else None,
            )
        )
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
    )
