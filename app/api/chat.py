"""POST /v1/chat/completions: answers from an assistant's documents, streamed or whole, and
the request's own tools handed to a model whose template supports them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.api.deps import ApiContext, Auth, Ctx, assistant_for
from app.api.errors import ApiError
from app.api.schemas import ChatRequest
from app.api.streaming import ClosingStreamingResponse, Slot, closing, sse
from assistants.answer import Answer, AnswerStream
from assistants.schema import Assistant
from assistants.tools.client import ToolsUnsupportedError
from runtime.errors import ArchivistError, ContextOverflowError, ModelNotFoundError
from runtime.protocol import GenerationParams, Message

router = APIRouter()


def forced_schema(choice: str | dict[str, Any] | None, specs: list[dict[str, Any]]) -> str | None:
    """tool_choice "required" or a named function: a JSON schema (llama.cpp grammar) that admits
    only such a call; None for "auto"."""
    if choice == "required":
        chosen = specs
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        chosen = [t for t in specs if t["function"].get("name") == choice["function"].get("name")]
        if not chosen:
            raise ApiError(400, "tool_choice names a function that is not in tools", param="tool_choice")
    else:
        return None
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t["function"]["name"]},
                "arguments": t["function"].get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for t in chosen
    ]
    return json.dumps(options[0] if len(options) == 1 else {"oneOf": options})


@router.post("/v1/chat/completions", response_model=None)
def chat(req: ChatRequest, key: Auth, ctx: Ctx) -> dict[str, Any] | StreamingResponse:
    assistant = assistant_for(ctx, req.model, key)
    if req.tools and req.tool_choice != "none":
        called = client_tools(ctx, req, assistant)
        if called is not None:
            return called
    turns = [m for m in req.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise ApiError(400, "the last message must be a non-empty user message", param="messages")
    extra = "\n".join(m.text() for m in req.messages if m.role in ("system", "developer")).strip()
    if extra:
        assistant = assistant.model_copy(update={"instructions": (assistant.instructions + "\n\n" + extra).strip()})
    history: list[Message] = [{"role": m.role, "content": m.text()} for m in turns[:-1]]
    extractive = (req.answer_mode or assistant.answer_mode) == "extractive"
    try:
        model = None if extractive else ctx.services.chat.model_for(assistant)
    except ModelNotFoundError as exc:
        raise ApiError(503, str(exc)) from None
    slot = None
    if model is not None:
        # a slot is taken on arrival (retrieval and quotes run before the model is reached) and
        # given back when the answer is done or its client goes away
        slot = ctx.admitted.enter(id(model), ctx.max_queue) if model.waiting < ctx.max_queue else None
        if slot is None:
            raise ApiError(
                503,
                f"the model queue is full ({ctx.max_queue} requests); retry shortly",
                headers={"Retry-After": "2"},
                code="queue_full",
            )
    try:
        return answer_request(ctx, req, assistant, history, slot)
    except BaseException:
        if slot is not None:
            slot.leave()
        raise


def answer_request(
    ctx: ApiContext, req: ChatRequest, assistant: Assistant, history: list[Message], slot: Slot | None
) -> dict[str, Any] | StreamingResponse:
    """The answer to the request's last user message, whole or as server-sent events."""
    turns = [m for m in req.messages if m.role in ("user", "assistant")]
    stop = [req.stop] if isinstance(req.stop, str) else (req.stop or [])
    try:
        stream = ctx.services.chat.ask(
            assistant,
            turns[-1].text(),
            history,
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=req.max_completion_tokens or req.max_tokens,
            stop=stop,
            answer_mode=req.answer_mode,
            grounding=req.grounding,
            seed=req.seed,
        )
    except ContextOverflowError as exc:
        raise ApiError(400, str(exc), param="messages", code="context_length_exceeded") from None
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not req.stream:
        answer = stream.result()
        if slot is not None:
            slot.leave()
        return {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": assistant.name,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": _finish(answer)}
            ],
            "usage": _usage(answer),
            "citations": [c.to_json() for c in answer.citations],
            "archivist": answer.details_json(),
        }
    head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": assistant.name}

    def done() -> None:  # however the response ends, the client hanging up at any point included
        stream.close()
        if slot is not None:
            slot.leave()

    return ClosingStreamingResponse(
        closing(answer_events(stream, head)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
        on_close=done,
    )


def answer_events(stream: AnswerStream, head: dict[str, Any]) -> Iterator[str]:
    """An answer as OpenAI chunks: the quotes first (known before the first token), then the
    text as it is written, then the citations and usage."""
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    extra = {"quotes": [q.to_json() for q in stream.quotes], "tools": [t.to_json() for t in stream.tools]}
    yield sse({**head, "choices": [first], "archivist": extra})
    try:
        for piece in stream:
            if not piece:
                continue  # a heartbeat between tokens while candidates are written
            yield sse({**head, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        answer = stream.result()
    except ArchivistError as exc:
        yield sse({"error": {"message": str(exc), "type": "api_error", "param": None, "code": None}})
        return
    yield sse(
        {
            **head,
            "choices": [{"index": 0, "delta": {}, "finish_reason": _finish(answer)}],
            "usage": _usage(answer),
            "citations": [c.to_json() for c in answer.citations],
            "archivist": answer.details_json(),
        }
    )
    yield "data: [DONE]\n\n"


def client_tools(ctx: ApiContext, req: ChatRequest, assistant: Assistant) -> dict[str, Any] | StreamingResponse | None:
    """The request's own tools go to the model; its calls come back as OpenAI `tool_calls`. None
    when the model answered without a call to the user's question: the documents answer it."""
    if (req.answer_mode or assistant.answer_mode) == "extractive":
        raise ApiError(400, "tools need a model; this request answers with quotes only (extractive)", param="tools")
    specs = [t for t in req.tools or [] if t.get("type") == "function" and isinstance(t.get("function"), dict)]
    if not specs:
        raise ApiError(400, "tools must be a list of {type: function, function: {name, parameters}}", param="tools")
    seed = req.seed if req.seed is not None else assistant.model.seed
    params = GenerationParams(
        max_tokens=req.max_completion_tokens or req.max_tokens or max(assistant.model.max_tokens, 256),
        temperature=req.temperature if req.temperature is not None else assistant.model.temperature,
        top_p=req.top_p if req.top_p is not None else assistant.model.top_p,
        tools=specs,
        json_schema=forced_schema(req.tool_choice, specs),
        seed=seed,
        repeatable=seed is not None,
    )
    try:
        turn = ctx.services.chat.client_turn(assistant, tool_turns(req), specs, params)
    except ModelNotFoundError as exc:
        raise ApiError(503, str(exc)) from None
    except ToolsUnsupportedError as exc:
        raise ApiError(400, str(exc), param="tools") from None
    except ContextOverflowError as exc:
        raise ApiError(400, str(exc), param="messages", code="context_length_exceeded") from None
    calls, text, stats = turn.calls, turn.text, turn.stats
    if not calls and req.messages[-1].role == "user":
        return None
    usage = {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "total_tokens": stats.prompt_tokens + stats.completion_tokens,
    }
    return tool_response(req, assistant, calls, text, usage)


def tool_turns(req: ChatRequest) -> list[dict[str, Any]]:
    """The request's messages as the model reads them with tools: with their tool calls and results."""
    turns: list[dict[str, Any]] = []
    for m in req.messages:
        turn: dict[str, Any] = {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for extra in ("tool_calls", "tool_call_id", "name"):
            if getattr(m, extra, None) is not None:
                turn[extra] = getattr(m, extra)
        turns.append(turn)
    return turns


def tool_response(
    req: ChatRequest, assistant: Assistant, calls: list[Any], text: str, usage: dict[str, int]
) -> dict[str, Any] | StreamingResponse:
    """The model's tool calls (or its text) as an OpenAI completion, whole or streamed."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    tool_calls: list[dict[str, Any]] = [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
        }
        for c in calls
    ]
    finish = "tool_calls" if calls else "stop"
    message: dict[str, Any] = {"role": "assistant", "content": None if calls else text.strip()}
    if calls:
        message["tool_calls"] = tool_calls
    if not req.stream:
        return {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": assistant.name,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
    head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": assistant.name}

    def events() -> Iterator[str]:
        if calls:
            for i, tc in enumerate(tool_calls):
                name = {"name": tc["function"]["name"], "arguments": ""}
                delta: dict[str, Any] = {
                    "tool_calls": [{"index": i, "id": tc["id"], "type": "function", "function": name}]
                }
                if i == 0:
                    delta = {"role": "assistant", "content": None, **delta}
                yield sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                args = {"index": i, "function": {"arguments": tc["function"]["arguments"]}}
                yield sse({**head, "choices": [{"index": 0, "delta": {"tool_calls": [args]}, "finish_reason": None}]})
        else:
            delta = {"role": "assistant", "content": message["content"]}
            yield sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        yield sse({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage})
        yield "data: [DONE]\n\n"

    return ClosingStreamingResponse(
        closing(events()), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def _finish(answer: Answer) -> str:
    return "length" if answer.stats.finish_reason == "length" else "stop"


def _usage(answer: Answer) -> dict[str, int]:
    p, c = answer.stats.prompt_tokens, answer.stats.completion_tokens
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
