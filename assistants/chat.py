"""The chat service: question -> retrieval -> prompt -> streamed answer with citations."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from assistants.answer import Answer, AnswerStream, Citation, extractive_text
from assistants.judging import Judging, Verdict, written
from assistants.markers import seeded_marker, workspace_key
from assistants.schema import Assistant
from assistants.stages import Gathered, Prepared
from assistants.system2 import (
    lead_text,
    opening,
    quote_passages,
)
from assistants.tidy import tidy
from assistants.tools import ToolStep
from assistants.tools.calls import LoopResult, ToolLoop
from assistants.tools.client import ClientTurn, client_turn
from assistants.tools.use import before_answer, executors, from_passages
from ingest.embed import Embedder
from ingest.store import Store
from retriever.answerable import Answerability, answerability
from retriever.context import ECHO_STOPS, PromptPlan, build_prompt, system_prompt, without_marker
from retriever.keyword import content_words
from retriever.passages import PassageSentences, passage_sentences
from retriever.quotes import Quote, find_quotes
from retriever.rerank import CrossEncoderReranker, Reranker
from retriever.search import Hit, present_words, search
from runtime.protocol import GenerationParams, GenerationStats, Message, TextGenerator
from runtime.registry import ModelPool

# An answer reads up to two passages of a page before any page's third; a search lists each page
# once before any twice (a list of places to look). Evidence inside the supporting quotes, R-intro +
# R-FAQ 0.900 either way, bench/eval/second-dev.jsonl 0.775 -> 0.800 (R-lang p. 52's answer was its
# second passage, pushed behind every other page's first); as a search, hybrid MRR there 0.890 -> 0.885.
ANSWER_PASSAGES_PER_PAGE = 2

_CITE = re.compile(r"\[(\d{1,2})\]")


class ChatService:
    """Answers as an assistant, from its collections, on its model."""

    def __init__(self, store: Store, embedder: Embedder, models: ModelPool) -> None:
        self.store, self.embedder, self.models = store, embedder, models
        self._rerankers: dict[str, Reranker] = {}
        self._lock = threading.Lock()
        self._marker_key: bytes | None = None

    def answerability(self, assistant: Assistant, question: str) -> Answerability:
        """Which of the question's words no document of the assistant's collections contains."""
        collections = assistant.knowledge.collections
        return answerability(question, lambda words: present_words(self.store, collections, words))

    def retrieve(self, assistant: Assistant, query: str) -> list[Hit]:
        r = assistant.retrieval
        reranker = self._reranker(assistant)
        hits = search(
            self.store,
            self.embedder,
            assistant.knowledge.collections,
            query,
            r.top_k,
            mode=r.mode,
            reranker=reranker,
            per_page=ANSWER_PASSAGES_PER_PAGE,
        )
        if r.min_score is not None:
            hits = [h for h in hits if h.similarity >= r.min_score]
        return hits

    def _reranker(self, assistant: Assistant) -> Reranker | None:
        """The assistant's cross-encoder, loaded once per name; None when it has none."""
        name = assistant.retrieval.reranker
        if not name:
            return None
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
        *,
        lead: str = "",
        marker: str | None = None,
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
            marker=marker,
            lead=lead,
        )

    def model_for(self, assistant: Assistant) -> TextGenerator:
        """The assistant's model, through the generation protocol only (any backend slots in)."""
        m = assistant.model
        return self.models.get(m.path, context_window=m.context_window, n_threads=m.threads, gpu_layers=m.gpu_layers)

    def quotes(
        self, assistant: Assistant, question: str, hits: Sequence[Hit]
    ) -> tuple[PassageSentences, list[Quote], float]:
        """The passages' sentences, the best of them for `question`, and the seconds it took."""
        t0 = time.perf_counter()
        ps = passage_sentences(self.store, self.embedder, hits)
        quotes = find_quotes(question, ps, self.embedder, reranker=self._reranker(assistant))
        return ps, quotes, time.perf_counter() - t0

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
        answer_mode: str | None = None,
        grounding: str | None = None,
        seed: int | None = None,
    ) -> AnswerStream:
        """Stream the answer to `question`; the supporting quotes are on the stream before the first
        piece, citations and the grounding check come with the finished answer.

        Sampling arguments, `answer_mode` and `grounding` override the assistant's settings for this
        request only; a `seed` (or else the assistant's `model.seed`) makes sampling repeatable (the
        same question, settings and model give the same answer on the same machine). With best of N,
        a quotes fallback or grounding: retry the answer is judged before it is shown, so it arrives in
        one piece after the quotes."""
        mode = answer_mode or assistant.answer_mode
        seed = seed if seed is not None else assistant.model.seed
        got = self._gather(assistant, question, history, query, mode)
        hits, steps, retrieval_time = got.hits, got.steps, got.seconds
        if not hits:
            return _refused(assistant.refusal, got.why, retrieval_time, steps)
        check_mode = grounding or assistant.grounding
        if mode == "extractive":
            return self._extractive(assistant, question, hits, retrieval_time, steps)
        sampling = _sampling(assistant, max_tokens, temperature, top_p, stop, seed)
        ready = self._prepare(assistant, question, hits, history, sampling)
        params, plan, ps, quotes, prompt = ready.params, ready.plan, ready.ps, ready.quotes, ready.prompt
        stats = GenerationStats()
        verdict = Verdict()
        by = Judging(ps, quotes, self.embedder)

        def replan(strict: Assistant) -> PromptPlan:  # grounding: retry writes it again under a stricter rule
            return self.plan(
                strict, question, prompt.passages, history, reserve=params.max_tokens, marker=prompt.marker
            )

        model = self.model_for(assistant)
        pieces = without_marker(
            written(model, assistant, params, prompt, check_mode, by, stats, verdict, replan), prompt.marker
        )

        def finish(text: str) -> Answer:
            if not text.strip() and verdict.partial:  # stopped while a candidate was being written
                text = "".join(verdict.partial)
            text = tidy(text)  # no template debris, no sentence cut off by the token budget
            report = verdict.report
            if report is None and check_mode != "off":
                report = by.check(text)
            return Answer(
                text.strip(),
                self._citations(plan.passages, {int(n) for n in _CITE.findall(text)}),
                False,
                stats,
                retrieval_time,
                verdict.user_content or prompt.user_content,
                quotes=quotes,
                grounding=report,
                action=verdict.action,
                quote_time=ready.quote_time,
                evidence=ps,
                shown=verdict.shown,
                candidates=verdict.candidates,
                judge_time=verdict.judge_time,
                left_out=verdict.left_out,
                tools=steps,
            )

        return AnswerStream(pieces, finish, quotes, steps, draft=lambda: "".join(verdict.partial or ()))

    def _prepare(
        self,
        assistant: Assistant,
        question: str,
        hits: Sequence[Hit],
        history: Sequence[Message],
        params: GenerationParams,
    ) -> Prepared:
        """The prompt within the context budget, the supporting quotes, what the model reads, and the
        generation settings with the answer's opening and the faithful-decoding sources."""
        marker = None if params.seed is None else self._seeded_marker(params.seed, question)
        plan = self.plan(assistant, question, hits, history, reserve=params.max_tokens, marker=marker)
        ps, quotes, quote_time = self.quotes(assistant, question, plan.passages)
        # what the model reads; the citations keep the whole passages of `plan`
        prompt = self._shaped(assistant, question, plan, quotes, history, params.max_tokens)
        if assistant.anchor != "off" and quotes:
            lead = opening(quotes[0], assistant.citation_style, with_quote=assistant.anchor == "quote")
            params = dataclasses.replace(params, prefix=lead)
        if assistant.decoding == "faithful":
            sources = [prompt.messages[0]["content"], question, *(text for _, text in ps.contexts)]
            params = dataclasses.replace(params, sources="\n".join(sources))
        return Prepared(params, plan, ps, quotes, quote_time, prompt)

    def _seeded_marker(self, seed: int, question: str) -> str:
        with self._lock:
            if self._marker_key is None:
                self._marker_key = workspace_key(self.store.home / "marker.key")
        return seeded_marker(self._marker_key, seed, question)

    def _gather(
        self, assistant: Assistant, question: str, history: Sequence[Message], query: str | None, mode: str
    ) -> Gathered:
        """What the answer is built from: the tools' results and the passages (or why there are none,
        for the refusal), and the seconds it took."""
        t0 = time.perf_counter()
        steps, tool_hits = before_answer(assistant, question, self.embedder) if assistant.tools.names else ([], [])
        known = (
            self.answerability(assistant, query or question) if assistant.retrieval.unknown_terms == "refuse" else None
        )
        if tool_hits and len(content_words(_without_tool_inputs(question, steps))) <= 1:
            hits: list[Hit]
            hits, why = [], "the question is only what the tools answered"  # "What is 12.5% of 3,840?"
        elif known is not None and not known.answerable(assistant.retrieval.min_coverage):
            hits, why = [], known.reason()
        else:
            hits = self.retrieve(assistant, query or question)
            floor = assistant.retrieval.min_score
            why = f"no passage reached the relevance floor {floor}" if floor is not None else "no document was found"
        if mode != "extractive" and assistant.tools.calls != "off" and (hits or tool_hits):
            called = self.model_calls(assistant, question, history)
            if called is not None:
                steps += called.steps
                tool_hits += called.found
        if hits and not any(s.tool == "calculator" for s in steps):
            found_steps, found_hits = from_passages(assistant, question, hits)
            steps += found_steps
            tool_hits += found_hits
        hits = _unique([*tool_hits, *hits])
        return Gathered(hits, steps, why, time.perf_counter() - t0)

    def client_turn(
        self,
        assistant: Assistant,
        turns: Sequence[dict[str, Any]],
        tools: list[dict[str, Any]],
        params: GenerationParams,
    ) -> ClientTurn:
        """The model's turn of a conversation whose caller brought its own tools (the API's
        `tools`): its calls go back to the caller. ToolsUnsupportedError when its model cannot
        be handed tools."""
        return client_turn(self.model_for(assistant), assistant, turns, tools, params)

    def model_calls(self, assistant: Assistant, question: str, history: Sequence[Message] = ()) -> LoopResult | None:
        """Let the model call tools (calls: auto, where its template supports tools; calls: forced, one
        grammar-forced call with any llama.cpp model). None when this tier is off for it."""
        model = self.model_for(assistant)
        native, _why = getattr(model, "tool_support", (False, "the backend reports no tool support"))
        if assistant.tools.calls == "auto" and not native:
            return None
        names = executors(assistant, question, self.embedder, lambda q: self.retrieve(assistant, q))
        messages: list[Message] = [
            {"role": "system", "content": system_prompt(assistant.instructions, assistant.citation_style)},
            *history,
            {"role": "user", "content": question},
        ]
        params = GenerationParams(max_tokens=256, temperature=0.0, stop=ECHO_STOPS)
        return ToolLoop(model, names).run(
            messages, params, native=native, force_first=assistant.tools.calls == "forced"
        )

    def _shaped(
        self,
        assistant: Assistant,
        question: str,
        plan: PromptPlan,
        quotes: Sequence[Quote],
        history: Sequence[Message],
        reserve: int,
    ) -> PromptPlan:
        """The prompt as the assistant's `context` setting wants it: passages, quotes first, or quotes only."""
        if assistant.context == "passages" or not quotes:
            return plan
        passages = plan.passages if assistant.context == "quotes-first" else quote_passages(plan.passages, quotes)
        lead = lead_text(quotes) if assistant.context == "quotes-first" else ""
        return self.plan(assistant, question, passages, history, reserve, lead=lead, marker=plan.marker)

    def _citations(self, passages: Sequence[Hit], cited: set[int]) -> list[Citation]:
        return [Citation.of(n, h, n in cited) for n, h in enumerate(passages, start=1)]

    def _extractive(
        self,
        assistant: Assistant,
        question: str,
        hits: Sequence[Hit],
        retrieval_time: float,
        steps: Sequence[ToolStep] = (),
    ) -> AnswerStream:
        """The quotes are the answer: no model is loaded."""
        ps, quotes, quote_time = self.quotes(assistant, question, hits)
        text = extractive_text(quotes, assistant.citation_style) if quotes else assistant.refusal
        cited = {q.passage for q in quotes}
        answer = Answer(
            text,
            self._citations(hits, cited),
            not quotes,
            retrieval_time=retrieval_time,
            quotes=quotes,
            mode="extractive",
            quote_time=quote_time,
            evidence=ps,
            shown="quotes" if quotes else "refusal",
            candidates=0,
            tools=list(steps),
        )
        return AnswerStream(iter([text]), lambda _text: answer, quotes, steps)


def _without_tool_inputs(question: str, steps: Sequence[ToolStep]) -> str:
    """The question less the expressions and URLs the tools took from it."""
    for s in steps:
        question = question.replace(s.input, " ")
    return question


def _unique(hits: Sequence[Hit]) -> list[Hit]:
    """Hits in order, each passage once (a model's search may find what the first search found)."""
    seen: set[int] = set()
    out: list[Hit] = []
    for h in hits:
        if h.chunk_id not in seen:
            seen.add(h.chunk_id)
            out.append(h)
    return out


def _refused(refusal: str, why: str, retrieval_time: float, steps: list[ToolStep]) -> AnswerStream:
    """The assistant's refusal, when nothing found answers the question (`why` says what was missing)."""
    return AnswerStream(
        iter([refusal]),
        lambda text: Answer(
            text, [], True, retrieval_time=retrieval_time, shown="refusal", refusal_reason=why, tools=steps
        ),
        tools=steps,
    )


def _sampling(
    assistant: Assistant,
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    stop: Sequence[str],
    seed: int | None,
) -> GenerationParams:
    """The assistant's sampling settings, with what this request overrides."""
    settings = assistant.model
    return GenerationParams(
        max_tokens=max_tokens if max_tokens is not None else settings.max_tokens,
        temperature=temperature if temperature is not None else settings.temperature,
        top_p=top_p if top_p is not None else settings.top_p,
        stop=(*stop, *ECHO_STOPS),
        seed=seed,
        repeatable=seed is not None,
    )
