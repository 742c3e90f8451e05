"""The tools an assistant uses for one question: run before the answer, and offered to the model.

Results become passages (`Hit`s with negative ids, collection "tools" or "web") so they enter the
prompt as marked, untrusted data, are quoted, checked and cited like any document passage.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from assistants.schema import Assistant
from assistants.tools import ToolStep
from assistants.tools.calculator import CalculatorError, calculate, evaluate, show
from assistants.tools.sandbox import CodeLimits, SandboxMissing, run_code
from assistants.tools.web import Page, WebLimits, find_urls, read
from ingest.embed import Embedder
from retriever.search import Hit

TOOL_COLLECTION = "tools"
WEB_COLLECTION = "web"
_ids = itertools.count(1)


def _hit(document: str, collection: str, text: str, heading: str = "") -> Hit:
    return Hit(-next(_ids), document, collection, None, None, heading, text, 1.0, 0, len(text), 1.0)


def _calculator_hit(card: str) -> Hit:
    """A calculator result as the passage the model reads and the answer cites."""
    return _hit("calculator", TOOL_COLLECTION, f"Calculator result: {card}")


def web_limits(assistant: Assistant) -> WebLimits:
    w = assistant.tools.web
    assert w is not None
    allow = w.allow_private if isinstance(w.allow_private, bool) else tuple(w.allow_private)
    return WebLimits(allow, w.max_bytes, w.timeout_s, w.max_redirects)


def code_limits(assistant: Assistant | None) -> CodeLimits:
    c = assistant.tools.code if assistant is not None else None
    return CodeLimits() if c is None else CodeLimits(c.timeout_s, c.memory_mb, c.output_chars)


def page_passages(page: Page, question: str, embedder: Embedder, keep: int = 3, size: int = 900) -> list[Hit]:
    """The page's paragraphs packed into ~`size`-character passages, the `keep` nearest the question."""
    pieces: list[str] = []
    current = ""
    for para in re.split(r"\n\s*\n", page.text):
        para = para.strip()
        if not para:
            continue
        if current and len(current) + len(para) > size:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{para}".strip()
        while len(current) > 2 * size:
            pieces.append(current[:size])
            current = current[size:]
    if current:
        pieces.append(current)
    pieces = pieces[:200]
    if len(pieces) > keep:
        vectors = embedder.embed([question, *pieces])
        order = np.argsort(-(vectors[1:] @ vectors[0]))[:keep]
        pieces = [pieces[i] for i in sorted(order)]
    return [_hit(page.final_url, WEB_COLLECTION, p) for p in pieces]


def before_answer(assistant: Assistant, question: str, embedder: Embedder) -> tuple[list[ToolStep], list[Hit]]:
    """Calculator on the question's arithmetic, the web reader on its URLs: steps and passages."""
    tools = assistant.tools
    steps: list[ToolStep] = []
    hits: list[Hit] = []
    if tools.web is not None:
        for url in find_urls(question, tools.web.max_pages):
            step, page = read(url, web_limits(assistant))
            steps.append(step)
            if page is not None:
                hits.extend(page_passages(page, question, embedder))
    if tools.calculator is not None:
        text = question
        for url in find_urls(question, 10):
            text = text.replace(url, " ")  # digits inside a URL are not arithmetic
        for step in calculate(text, tools.calculator.max_expressions):
            steps.append(step)
            if step.ok:
                hits.append(_calculator_hit(step.card))
    return steps, hits


_COMPUTE = re.compile(
    r"\b(calculate|compute|evaluate|work out|how much is|what (?:does|do) .{1,80} (?:come to|add up to|equal)|"
    r"result of)\b",
    re.I,
)


def from_passages(assistant: Assistant, question: str, hits: Sequence[Hit]) -> tuple[list[ToolStep], list[Hit]]:
    """When the question asks to compute something it does not write out ("compute the total in the
    example on page 12"), the calculator computes the arithmetic of the passages it points at (the
    top three found), each card naming where the expression came from."""
    if assistant.tools.calculator is None or not _COMPUTE.search(question):
        return [], []
    steps: list[ToolStep] = []
    out: list[Hit] = []
    for h in hits[:3]:
        if h.collection in (TOOL_COLLECTION, WEB_COLLECTION):
            continue
        where = h.document + (f", page {h.page}" if h.page else "")
        for step in calculate(h.text, assistant.tools.calculator.max_expressions - len(steps)):
            step.where, step.card = where, f"{step.card} (from {where})"
            steps.append(step)
            if step.ok:
                out.append(_calculator_hit(step.card))
        if len(steps) >= assistant.tools.calculator.max_expressions:
            break
    return steps, out


Executor = Callable[[dict[str, Any]], tuple[ToolStep, list[Hit]]]


def executors(
    assistant: Assistant, question: str, embedder: Embedder, search: Callable[[str], Sequence[Hit]]
) -> dict[str, Executor]:
    """What a model may call for this assistant: search_documents always, and its enabled tools."""

    def search_documents(args: dict[str, Any]) -> tuple[ToolStep, list[Hit]]:
        query = str(args.get("query", ""))[:500] or question
        found = list(search(query))
        where = "; ".join(f"{h.document}" + (f" p. {h.page}" if h.page else "") for h in found[:5])
        return ToolStep(
            "search_documents", query, where or "nothing found", True, f"searched for {query!r}: {len(found)} passages"
        ), found

    def calculator(args: dict[str, Any]) -> tuple[ToolStep, list[Hit]]:
        expression = str(args.get("expression", ""))
        try:
            value = show(evaluate(expression))
        except CalculatorError as exc:
            return ToolStep("calculator", expression, str(exc), False, f"{expression[:60]}: {exc}"), []
        card = f"{expression} = {value}"
        return ToolStep("calculator", expression, value, True, card), [_calculator_hit(card)]

    def run_code_tool(args: dict[str, Any]) -> tuple[ToolStep, list[Hit]]:
        code = str(args.get("code", ""))
        try:
            step = run_code(code, trusted=False, limits=code_limits(assistant), by="model")
        except SandboxMissing as exc:
            return ToolStep("code", code, str(exc), False, f"not run: {exc}"), []
        return step, [_hit("code output", TOOL_COLLECTION, f"Output of the model's code:\n{step.output[:2000]}")]

    def read_web_page(args: dict[str, Any]) -> tuple[ToolStep, list[Hit]]:
        url = str(args.get("url", ""))
        step, page = read(url, web_limits(assistant))
        return step, page_passages(page, question, embedder) if page is not None else []

    out: dict[str, Executor] = {"search_documents": search_documents}
    if assistant.tools.calculator is not None:
        out["calculator"] = calculator
    if assistant.tools.code is not None:
        out["run_code"] = run_code_tool
    if assistant.tools.web is not None:
        out["read_web_page"] = read_web_page
    return out
