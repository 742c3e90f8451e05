"""Answers judged before they are shown: best of N candidates (the grounding check and the quotes
pick one; the quotes stand in when none is supported, unsupported sentences trimmed) and
`grounding: retry` (written again under a stricter rule, then the quotes)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from assistants.answer import extractive_text
from assistants.schema import Assistant
from assistants.system2 import (
    FALLBACK_NOTE,
    good_enough,
    judge,
    without,
    without_repeats,
)
from assistants.tidy import tidy
from ingest.embed import Embedder
from retriever.context import PromptPlan
from retriever.grounding import GroundingReport, check
from retriever.passages import PassageSentences
from retriever.quotes import Quote
from retriever.search import Hit
from retriever.sentences import collapse
from runtime.protocol import GenerationParams, GenerationStats, Message, TextGenerator


class ChatService(Protocol):
    """What judging needs of the answering service (assistants.chat.ChatService has it): the model,
    the embedder the checks use, and a prompt plan; named here so judging never imports chat."""

    embedder: Embedder

    def model_for(self, assistant: Assistant) -> TextGenerator: ...

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
    ) -> PromptPlan: ...


STRICT_RULE = (
    "Answer strictly from the passages: state only what they say, in their words where you can, and cite a "
    "passage for every sentence. If they do not answer the question, say so."
)


def judged(
    chat: ChatService,
    assistant: Assistant,
    params: GenerationParams,
    plan: PromptPlan,
    ps: PassageSentences,
    quotes: list[Quote],
    stats: GenerationStats,
    state: dict[str, Any],
) -> Iterator[str]:
    """Write up to N candidates (one without best of N) and keep the one the check and the quotes
    judge best, stopping early at a fully supported one that carries the best quote. When the best
    is still mostly unsupported the quotes are the answer, saying so (fallback: quotes or trim);
    with trim, the unsupported sentences of a kept answer are left out and listed."""
    t0 = time.perf_counter()
    model = chat.model_for(assistant)
    n = assistant.candidates if assistant.thinking == "best_of_n" else 1
    best: tuple[float, str, GroundingReport] | None = None
    made = 0
    for i in range(n):
        seed = i if params.seed is None else params.seed + i  # each candidate its own, repeatable
        p = params if i == 0 else dataclasses.replace(params, temperature=max(params.temperature, 0.7), seed=seed)
        one = GenerationStats()
        parts: list[str] = []
        state["partial"] = parts  # what a Stop now would keep
        for piece in model.stream(plan.messages, p, one):
            parts.append(piece)
            yield ""  # no text yet, but a reader can stop the candidate between any two tokens
        text = tidy(without_repeats("".join(parts), p.prefix if assistant.anchor == "quote" else ""))
        if made:
            _add_stats(stats, one)
        else:
            _copy_stats(stats, one)
        made += 1
        report = check(text, ps, chat.embedder)
        score = judge(report, text, quotes)
        if best is None or score > best[0]:
            best = (score, text, report)
        if good_enough(report, text, quotes):
            break
    assert best is not None
    _, text, report = best
    shown = "best-of-n" if n > 1 else "generated"
    if assistant.fallback != "off" and quotes and (report.mostly_unsupported or not report.claims):
        body = extractive_text(quotes, assistant.citation_style)
        report, shown = check(body, ps, chat.embedder), "quotes"
        text = f"{FALLBACK_NOTE}\n\n{body}"
    elif assistant.fallback == "trim" and report.unsupported:
        state["left_out"] = [collapse(s.text) for s in report.unsupported]
        text = without(text, [s.text for s in report.unsupported])
        report = check(text, ps, chat.embedder)
    state.update(report=report, shown=shown, candidates=made, judge_time=time.perf_counter() - t0)
    state.pop("partial", None)
    yield text


def checked(
    chat: ChatService,
    assistant: Assistant,
    question: str,
    history: Sequence[Message],
    params: GenerationParams,
    plan: PromptPlan,
    ps: PassageSentences,
    quotes: list[Quote],
    stats: GenerationStats,
    state: dict[str, Any],
) -> Iterator[str]:
    """grounding: retry. The answer is checked before it is shown: when most of its sentences lack
    support it is written again under a stricter rule, and if that fails too the quotes are the answer."""
    model = chat.model_for(assistant)
    text = tidy("".join(model.stream(plan.messages, params, stats)))
    report = check(text, ps, chat.embedder)
    if report.mostly_unsupported:
        strict = assistant.model_copy(update={"instructions": (assistant.instructions + "\n\n" + STRICT_RULE).strip()})
        plan2 = chat.plan(strict, question, plan.passages, history, reserve=params.max_tokens, marker=plan.marker)
        second = GenerationStats()
        text2 = tidy("".join(model.stream(plan2.messages, params, second)))
        _add_stats(stats, second)
        report2 = check(text2, ps, chat.embedder)
        spent = report.seconds + report2.seconds
        if not report2.mostly_unsupported:
            text, report, state["action"], state["user_content"] = text2, report2, "retried", plan2.user_content
        elif quotes:
            text = extractive_text(quotes, assistant.citation_style)
            report, state["action"] = check(text, ps, chat.embedder), "extractive-fallback"
        else:
            text, report, state["action"] = assistant.refusal, GroundingReport(), "extractive-fallback"
        state["shown"] = "quotes" if state.get("action") == "extractive-fallback" else "generated"
        report.seconds += spent
    state["report"] = report
    yield text


def _copy_stats(total: GenerationStats, first: GenerationStats) -> None:
    for f in dataclasses.fields(first):
        setattr(total, f.name, getattr(first, f.name))


def _add_stats(total: GenerationStats, more: GenerationStats) -> None:
    """Fold a second generation into the first's figures (the prompt is the larger of the two)."""
    total.prompt_tokens = max(total.prompt_tokens, more.prompt_tokens)
    total.evaluated_tokens += more.evaluated_tokens
    total.completion_tokens += more.completion_tokens
    total.total_time += more.total_time
    total.finish_reason = more.finish_reason or total.finish_reason
