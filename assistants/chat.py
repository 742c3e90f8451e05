"""The chat service: question -> retrieval -> prompt -> streamed answer with citations."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from assistants.schema import Assistant
from ingest.embed import Embedder
from ingest.store import Store
from retriever.context import PromptPlan, build_prompt
from retriever.rerank import CrossEncoderReranker, Reranker
from retriever.search import Hit, search
from runtime.protocol import GenerationParams, GenerationStats, Message
from runtime.registry import ModelPool


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

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(float(self.score), 4)
        return d


@dataclass
class Answer:
    """An answer, its citations (best passage first) and what it cost."""

    text: str
    citations: list[Citation]
    refused: bool = False
    stats: GenerationStats = field(default_factory=GenerationStats)
    retrieval_time: float = 0.0


class AnswerStream:
    """Iterate for the answer's text pieces; `answer` is complete once the iteration ends."""

    def __init__(self, pieces: Iterator[str], finish: Any) -> None:
        self._pieces, self._finish = pieces, finish
        self.answer: Answer | None = None
        self._parts: list[str] = []

    def __iter__(self) -> Iterator[str]:
        if self.answer is not None:
            return
        for piece in self._pieces:
            self._parts.append(piece)
            yield piece
        self.answer = self._finish("".join(self._parts))

    def result(self) -> Answer:
        """Consume what is left and return the answer."""
        if self.answer is None:
            for _ in self:
                pass
        assert self.answer is not None
        return self.answer


_CITE = re.compile(r"\[(\d{1,2})\]")


class ChatService:
    """Answers as an assistant, from its collections, on its model."""

    def __init__(self, store: Store, embedder: Embedder, models: ModelPool) -> None:
        self.store, self.embedder, self.models = store, embedder, models
        self._rerankers: dict[str, Reranker] = {}
        self._lock = threading.Lock()

    def retrieve(self, assistant: Assistant, query: str) -> list[Hit]:
        r = assistant.retrieval
        reranker = self._reranker(r.reranker) if r.reranker else None
        hits = search(
            self.store, self.embedder, assistant.knowledge.collections, query, r.top_k, mode=r.mode, reranker=reranker
        )
        if r.min_score is not None:
            hits = [h for h in hits if h.similarity >= r.min_score]
        return hits

    def _reranker(self, name: str) -> Reranker:
        with self._lock:
            if name not in self._rerankers:
                self._rerankers[name] = CrossEncoderReranker(name)
            return self._rerankers[name]

    def plan(
        self,
        assistant: Assistant,
        question: str,
        hits: Sequence[Hit],
        history: Sequence[Message] = (),
        reserve: int | None = None,
    ) -> PromptPlan:
        model = self.model_for(assistant)
        return build_prompt(
            instructions=assistant.instructions,
            question=question,
            hits=hits,
            history=history,
            render_tokens=lambda msgs: len(model.tokenize_prompt(msgs)),
            count_tokens=model.count_tokens,
            context_window=model.context_window,
            reserve=reserve if reserve is not None else assistant.model.max_tokens,
        )

    def model_for(self, assistant: Assistant) -> Any:
        m = assistant.model
        return self.models.get(m.path, context_window=m.context_window, n_threads=m.threads, gpu_layers=m.gpu_layers)

    def ask(
        self,
        assistant: Assistant,
        question: str,
        history: Sequence[Message] = (),
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        stop: Sequence[str] = (),
    ) -> AnswerStream:
        """Stream the answer to `question`; citations come with the finished answer.

        Sampling arguments override the assistant's settings for this request only."""
        t0 = time.perf_counter()
        hits = self.retrieve(assistant, question)
        retrieval_time = time.perf_counter() - t0
        if not hits:
            refusal = assistant.refusal
            return AnswerStream(iter([refusal]), lambda text: Answer(text, [], True, retrieval_time=retrieval_time))
        m = assistant.model
        params = GenerationParams(
            max_tokens=max_tokens if max_tokens is not None else m.max_tokens,
            temperature=temperature if temperature is not None else m.temperature,
            top_p=top_p if top_p is not None else m.top_p,
            stop=tuple(stop),
        )
        plan = self.plan(assistant, question, hits, history, reserve=params.max_tokens)
        stats = GenerationStats()
        pieces = self.model_for(assistant).stream(plan.messages, params, stats)

        def finish(text: str) -> Answer:
            cited = {int(n) for n in _CITE.findall(text)}
            cites = [
                Citation(n, h.document, h.collection, h.page, h.page_end, h.chunk_id, h.score, h.text, n in cited)
                for n, h in enumerate(plan.passages, start=1)
            ]
            return Answer(text.strip(), cites, False, stats, retrieval_time)

        return AnswerStream(pieces, finish)
