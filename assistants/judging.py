"""Answers judged before they are shown: best of N candidates (the grounding check and the quotes
pick one; the quotes stand in when none is supported, unsupported sentences trimmed) and
`grounding: retry` (written again under a stricter rule, then the quotes)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from assistants.answer import extractive_text
from assistants.schema import Assistant
from assistants.system2 import (
    FALLBACK_NOTE,
    good_enough,
    judge,
    judged_first,
    without,
    without_repeats,
)
from assistants.tidy import tidy
from ingest.embed import Embedder
from retriever.context import PromptPlan
from retriever.grounding import GroundingReport, check
from retriever.passages import PassageSentences
from retriever.quotes import Quote
from retriever.sentences import collapse
from runtime.protocol import GenerationParams, GenerationStats, TextGenerator


@dataclass
class Verdict:
    """What judging decided about the answer it hands over, filled in as it goes (the answer's
    `finish` reads it once the stream has ended)."""

    partial: list[str] | None = None  # the candidate being written: what a Stop now would keep
    report: GroundingReport | None = None  # the check of the text handed over
    shown: str = "generated"  # generated | best-of-n | quotes
    candidates: int = 1  # how many were written
    judge_time: float = 0.0
    left_out: list[str] = field(default_factory=list)  # unsupported sentences trimmed away
    action: str = ""  # retried | extractive-fallback
    user_content: str | None = None  # the prompt of the answer shown, when it was written again


@dataclass(frozen=True)
class Judging:
    """What a judge reads an answer against: the passages' sentences, the quotes, the embedder
    the grounding check uses."""

    ps: PassageSentences
    quotes: list[Quote]
    embedder: Embedder

    def check(self, text: str) -> GroundingReport:
        return check(text, self.ps, self.embedder)


STRICT_RULE = (
    "Answer strictly from the passages: state only what they say, in their words where you can, and cite a "
    "passage for every sentence. If they do not answer the question, say so."
)


def written(
    model: TextGenerator,
    assistant: Assistant,
    params: GenerationParams,
    prompt: PromptPlan,
    check_mode: str,
    by: Judging,
    stats: GenerationStats,
    verdict: Verdict,
    replan: Callable[[Assistant], PromptPlan],
) -> Iterator[str]:
    """The model's answer as it streams: as written, or judged first (best of N, a quotes fallback)
    or checked and written again (grounding: retry), the verdict filled in as it goes."""
    if check_mode == "retry":
        return checked(model, assistant, params, prompt, replan, by, stats, verdict)
    if judged_first(assistant.thinking, assistant.fallback, check_mode):
        return judged(model, assistant, params, prompt, by, stats, verdict)
    return model.stream(prompt.messages, params, stats)


def judged(
    model: TextGenerator,
    assistant: Assistant,
    params: GenerationParams,
    plan: PromptPlan,
    by: Judging,
    stats: GenerationStats,
    verdict: Verdict,
) -> Iterator[str]:
    """Write up to N candidates (one without best of N) and keep the one the check and the quotes
    judge best, stopping early at a fully supported one that carries the best quote. When the best
    is still mostly unsupported the quotes are the answer, saying so (fallback: quotes or trim);
    with trim, the unsupported sentences of a kept answer are left out and listed."""
    t0 = time.perf_counter()
    quotes = by.quotes
    n = assistant.candidates if assistant.thinking == "best_of_n" else 1
    best: tuple[float, str, GroundingReport] | None = None
    made = 0
    for i in range(n):
        seed = i if params.seed is None else params.seed + i  # each candidate its own, repeatable
        p = params if i == 0 else dataclasses.replace(params, temperature=max(params.temperature, 0.7), seed=seed)
        one = GenerationStats()
        parts: list[str] = []
        verdict.partial = parts
        for piece in model.stream(plan.messages, p, one):
            parts.append(piece)
            yield ""  # no text yet, but a reader can stop the candidate between any two tokens
        text = tidy(without_repeats("".join(parts), p.prefix if assistant.anchor == "quote" else ""))
        if made:
            _add_stats(stats, one)
        else:
            _copy_stats(stats, one)
        made += 1
        report = by.check(text)
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
        report, shown = by.check(body), "quotes"
        text = f"{FALLBACK_NOTE}\n\n{body}"
    elif assistant.fallback == "trim" and report.unsupported:
        verdict.left_out = [collapse(s.text) for s in report.unsupported]
        text = without(text, [s.text for s in report.unsupported])
        report = by.check(text)
    verdict.report, verdict.shown, verdict.candidates = report, shown, made
    verdict.judge_time = time.perf_counter() - t0
    verdict.partial = None
    yield text


def checked(
    model: TextGenerator,
    assistant: Assistant,
    params: GenerationParams,
    plan: PromptPlan,
    replan: Callable[[Assistant], PromptPlan],
    by: Judging,
    stats: GenerationStats,
    verdict: Verdict,
) -> Iterator[str]:
    """grounding: retry. The answer is checked before it is shown: when most of its sentences lack
    support it is written again under a stricter rule (`replan` plans the prompt of the stricter
    assistant), and if that fails too the quotes are the answer."""
    text = tidy("".join(model.stream(plan.messages, params, stats)))
    report = by.check(text)
    if report.mostly_unsupported:
        strict = assistant.model_copy(update={"instructions": (assistant.instructions + "\n\n" + STRICT_RULE).strip()})
        plan2 = replan(strict)
        second = GenerationStats()
        text2 = tidy("".join(model.stream(plan2.messages, params, second)))
        _add_stats(stats, second)
        report2 = by.check(text2)
        spent = report.seconds + report2.seconds
        if not report2.mostly_unsupported:
            text, report, verdict.action, verdict.user_content = text2, report2, "retried", plan2.user_content
        elif by.quotes:
            text = extractive_text(by.quotes, assistant.citation_style)
            report, verdict.action = by.check(text), "extractive-fallback"
        else:
            text, report, verdict.action = assistant.refusal, GroundingReport(), "extractive-fallback"
        verdict.shown = "quotes" if verdict.action == "extractive-fallback" else "generated"
        report.seconds += spent
    verdict.report = report
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
