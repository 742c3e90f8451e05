"""What the chat service returns: an answer with its citations, quotes, check and costs, and the stream
that delivers it piece by piece."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from assistants.tools import ToolStep
from retriever.grounding import GroundingReport
from retriever.passages import PassageSentences
from retriever.quotes import Quote
from retriever.search import Hit
from retriever.sentences import collapse
from runtime.protocol import GenerationStats


@dataclass(frozen=True)
class Citation:
    """A passage the answer was given, numbered as in the prompt."""

    n: int
    document: str
    collection: str
    page: int | None
    page_end: int | None
    chunk_id: int
    score: float
    text: str
    cited: bool  # the answer refers to it as [n]
    similarity: float = 0.0  # cosine of question and passage, whatever the search mode
    ocr: float | None = None  # its page was read from a picture: the OCR engine's confidence (check the page)
    seconds: tuple[float, float] | None = None  # a stretch of a recording: where it starts and ends

    @classmethod
    def of(cls, n: int, hit: Hit, cited: bool) -> Citation:
        """Passage `n` of the prompt, from the hit it was found as."""
        h = hit
        fields = (h.document, h.collection, h.page, h.page_end, h.chunk_id, h.score, h.text)
        return cls(n, *fields, cited, h.similarity, h.ocr, h.seconds)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(float(self.score), 4)
        d["similarity"] = round(float(self.similarity), 4)
        return d


@dataclass
class Answer:
    """An answer, its citations (best passage first), supporting quotes, grounding check and what it cost."""

    text: str
    citations: list[Citation]
    refused: bool = False
    stats: GenerationStats = field(default_factory=GenerationStats)
    retrieval_time: float = 0.0
    user_content: str | None = None  # the question as the model saw it, passages included
    message_id: int | None = None  # set when stored in a conversation
    quotes: list[Quote] = field(default_factory=list)
    grounding: GroundingReport | None = None  # None: grounding off, or nothing generated
    mode: str = "generate"  # generate | extractive
    action: str = ""  # "retried" or "extractive-fallback" when grounding: retry stepped in
    quote_time: float = 0.0
    evidence: PassageSentences | None = None  # the passages' sentences quotes and checks used
    shown: str = "generated"  # what the user reads: generated | best-of-n | quotes | refusal
    candidates: int = 0  # answers written for it (best of N writes up to N)
    judge_time: float = 0.0  # seconds spent writing and judging candidates before the first was shown
    refusal_reason: str = ""  # why nothing was searched or kept, when refused
    left_out: list[str] = field(default_factory=list)  # unsupported sentences trimmed from the answer
    tools: list[ToolStep] = field(default_factory=list)  # calculator, web, code and model-driven calls
    stopped: bool = False  # the user stopped it: the text is what was written until then

    def sentences_json(self) -> list[dict[str, Any]]:
        """Per answer sentence: {text, supported, source, similarity, missing}."""
        if self.grounding is None:
            return []
        return [s.to_json(self.evidence) for s in self.grounding.sentences]

    def details_json(self, context: bool = False) -> dict[str, Any]:
        """Quotes, the grounding check and timings, as the CLI and the API report them (`context`: with
        the page text around each quote, as conversations store it for the UI)."""
        g = self.grounding
        return {
            "mode": self.mode,
            "shown": self.shown,
            "refused": self.refused,
            "refusal_reason": self.refusal_reason,
            "left_out": self.left_out,
            "candidates": self.candidates,
            "stopped": self.stopped,
            "tools": [t.to_json() for t in self.tools],
            "quotes": [q.to_json(context) for q in self.quotes],
            "sentences": self.sentences_json(),
            "grounding": None
            if g is None
            else {
                "supported_share": round(g.supported_share, 4),
                "unsupported": len(g.unsupported),
                "action": self.action or "kept",
                "seconds": round(g.seconds, 4),
            },
            "timings": {
                "retrieval": round(self.retrieval_time, 4),
                "quotes": round(self.quote_time, 4),
                "grounding": round(g.seconds, 4) if g is not None else 0.0,
                "time_to_first_token": self.stats.time_to_first_token,
                "generation": round(self.stats.total_time, 4),
                "judging": round(self.judge_time, 4),
            },
        }


class AnswerStream:
    """Iterate for the answer's text pieces; `answer` is complete once the iteration ends."""

    def __init__(
        self,
        pieces: Iterator[str],
        finish: Callable[[str], Answer],
        quotes: Sequence[Quote] = (),
        tools: Sequence[ToolStep] = (),
        draft: Callable[[], str] | None = None,
    ) -> None:
        self._pieces, self._finish = pieces, finish
        self.quotes = list(quotes)  # known before the first piece: a UI can show them while the model writes
        self.tools = list(tools)  # the tool steps run before the answer (cards), also known up front
        self._draft = draft
        self._then: list[Callable[[Answer], None]] = []
        self.answer: Answer | None = None
        self._parts: list[str] = []

    def draft(self) -> str:
        """While an answer is written to be judged before it is shown (the pieces are then empty
        heartbeats): the candidate being written so far, for a UI to show marked as a draft; "" when
        there is none (the answer streams as it is written, or it is done)."""
        return self._draft() if self._draft is not None and self.answer is None else ""

    def then(self, callback: Callable[[Answer], None]) -> AnswerStream:
        """Run `callback` on the finished answer (e.g. to store it) before `answer` is set."""
        self._then.append(callback)
        return self

    def __iter__(self) -> Iterator[str]:
        if self.answer is not None:
            return
        for piece in self._pieces:
            self._parts.append(piece)
            yield piece
        answer = self._finish("".join(self._parts))
        for callback in self._then:
            callback(answer)
        self.answer = answer

    def close(self) -> None:
        """Stop generating (the reader went away): the model's stream is closed, so it frees the model."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()

    def stop(self) -> Answer:
        """Stop generating now (the user pressed Stop) and finish with what was written so far, marked
        stopped; the callbacks (storing it) run as for a finished answer. Idempotent."""
        if self.answer is not None:
            return self.answer
        self.close()
        answer = self._finish("".join(self._parts))
        answer.stopped = True
        for callback in self._then:
            callback(answer)
        self.answer = answer
        return answer

    def result(self) -> Answer:
        """Consume what is left and return the answer."""
        if self.answer is None:
            for _ in self:
                pass
        assert self.answer is not None
        return self.answer


def extractive_text(quotes: Sequence[Quote], citation_style: str) -> str:
    """The quotes as the answer: one quoted sentence per line, with where it comes from."""
    lines = []
    for q in quotes:
        where = f"{q.document}, page {q.page}" if q.page is not None else q.document
        cite = {
            "numbered": f" [{q.passage}]",
            "document-page": f" ({q.document}, p. {q.page})" if q.page is not None else f" ({q.document})",
        }.get(citation_style, f" ({where})")
        lines.append(f"> “{collapse(q.text)}”{cite}")
    return "\n>\n".join(lines)
