"""The chat service: question -> retrieval -> prompt -> streamed answer with citations."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from assistants.conversations import ConversationStore
from assistants.schema import Assistant
from ingest.embed import Embedder
from ingest.store import Store
from retriever.context import PromptPlan, build_prompt
from retriever.keyword import content_words
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
    similarity: float = 0.0  # cosine of question and passage, whatever the search mode

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(float(self.score), 4)
        d["similarity"] = round(float(self.similarity), 4)
        return d


@dataclass
class Answer:
    """An answer, its citations (best passage first) and what it cost."""

    text: str
    citations: list[Citation]
    refused: bool = False
    stats: GenerationStats = field(default_factory=GenerationStats)
    retrieval_time: float = 0.0
    user_content: str | None = None  # the question as the model saw it, passages included
    message_id: int | None = None  # set when stored in a conversation


class AnswerStream:
    """Iterate for the answer's text pieces; `answer` is complete once the iteration ends."""

    def __init__(self, pieces: Iterator[str], finish: Callable[[str], Answer]) -> None:
        self._pieces, self._finish = pieces, finish
        self._then: list[Callable[[Answer], None]] = []
        self.answer: Answer | None = None
        self._parts: list[str] = []

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
            citation_style=assistant.citation_style,
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
        query: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        stop: Sequence[str] = (),
    ) -> AnswerStream:
        """Stream the answer to `question`; citations come with the finished answer.

        Sampling arguments override the assistant's settings for this request only."""
        t0 = time.perf_counter()
        hits = self.retrieve(assistant, query or question)
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
                Citation(
                    n,
                    h.document,
                    h.collection,
                    h.page,
                    h.page_end,
                    h.chunk_id,
                    h.score,
                    h.text,
                    n in cited,
                    h.similarity,
                )
                for n, h in enumerate(plan.passages, start=1)
            ]
            return Answer(text.strip(), cites, False, stats, retrieval_time, plan.user_content)

        return AnswerStream(pieces, finish)


_ANAPHORA = frozenset(
    [
        "it",
        "its",
        "it's",
        "this",
        "that",
        "these",
        "those",
        "they",
        "them",
        "their",
        "there",
        "he",
        "she",
        "his",
        "her",
        "such",
        "same",
        "one",
        "ones",
    ]
)


def retrieval_query(question: str, previous_questions: Sequence[str]) -> str:
    """The search query for a turn: the question, plus the previous question when this one leans
    on it ("and what about its default?") or is too short to search on its own."""
    if not previous_questions:
        return question
    words = re.findall(r"[\w']+", question.lower())
    if _ANAPHORA.intersection(words) or len(content_words(question)) <= 1:
        return f"{previous_questions[-1]} {question}"
    return question


class ConversationService:
    """Multi-turn chat: history from the store, follow-up aware retrieval, every turn stored."""

    def __init__(self, chat: ChatService, conversations: ConversationStore) -> None:
        self.chat, self.conversations = chat, conversations

    def history(self, conversation_id: int) -> tuple[list[Message], list[str]]:
        """Earlier turns as the model saw them, and the user's earlier questions."""
        past: list[Message] = []
        questions: list[str] = []
        for m in self.conversations.messages(conversation_id):
            if m.role == "user":
                past.append({"role": "user", "content": m.prompt_text or m.text})
                questions.append(m.text)
            else:
                past.append({"role": "assistant", "content": m.text})
        return past, questions

    def ask(self, assistant: Assistant, conversation_id: int, question: str) -> AnswerStream:
        """Answer the next question of a conversation; the turn is stored once the answer is complete."""
        past, questions = self.history(conversation_id)
        stream = self.chat.ask(assistant, question, past, query=retrieval_query(question, questions))
        settings = assistant.model_dump(mode="json", include={"model", "retrieval", "citation_style"})

        def store(answer: Answer) -> None:
            s = answer.stats
            user = {"text": question, "prompt_text": answer.user_content or question}
            reply = {
                "text": answer.text,
                "citations_json": json.dumps([c.to_json() for c in answer.citations]),
                "prompt_tokens": s.prompt_tokens,
                "evaluated_tokens": s.evaluated_tokens,
                "completion_tokens": s.completion_tokens,
                "time_to_first_token": s.time_to_first_token,
                "total_time": s.total_time + answer.retrieval_time,
                "settings_json": json.dumps(settings),
            }
            _, answer.message_id = self.conversations.add_turn(conversation_id, user, reply)

        return stream.then(store)
