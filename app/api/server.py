"""The OpenAI-compatible HTTP API. Endpoints call the same services as the CLI and the UI."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, cast

import anyio
from fastapi import Depends, FastAPI, Header, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.errors import ApiError, api_error_handler, http_handler, validation_handler
from app.api.guard import RequestGuard
from app.api.keys import KeyInfo, KeyStore
from app.services import Services
from assistants.answer import Answer
from assistants.errors import AssistantError
from assistants.schema import AnswerMode, Assistant, Grounding
from ingest.errors import IngestError, UnsupportedFileError
from ingest.pipeline import IngestLimits, ingest_bytes
from ingest.store import check_collection_name
from retriever.context import system_prompt
from retriever.search import Mode, search
from runtime.errors import ArchivistError, ContextOverflowError, ModelNotFoundError
from runtime.protocol import GenerationParams, GenerationStats, Message
from runtime.toolcalls import parse_calls

access = logging.getLogger("archivist.api.access")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_JSON_BODY = 8 * 2**20  # a chat or search request's body; uploads have their own limit
MAX_MESSAGES = 1000  # messages in one chat request
MAX_MESSAGE_CHARS = 2_000_000  # their text together (the prompt keeps what fits the context window)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send fields Archivist does not use
    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(None, ge=1, le=32768)
    stop: str | list[str] | None = None
    # OpenAI tools: passed to a model whose chat template supports them; 400 otherwise
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    # Archivist extensions (OpenAI clients pass them with extra_body)
    answer_mode: AnswerMode | None = None
    grounding: Grounding | None = None

    @model_validator(mode="after")
    def _total_text(self) -> ChatRequest:
        total = sum(len(m.text()) for m in self.messages)
        if total > MAX_MESSAGE_CHARS:
            raise ValueError(f"the messages hold {total:,} characters; the limit is {MAX_MESSAGE_CHARS:,}")
        return self


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str | list[str]
    model: str = "all-MiniLM-L6-v2"


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1)
    k: int = Field(5, ge=1, le=100)
    mode: Mode = "hybrid"


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


class Slot:
    """One admitted answer's place in its model's queue; `leave` is idempotent."""

    def __init__(self, admission: Admission, key: int) -> None:
        self._admission, self._key, self._left = admission, key, False

    def leave(self) -> None:
        if not self._left:
            self._left = True
            self._admission.leave(self._key)


class Admission:
    """Answers admitted per model, counted from arrival until done or abandoned."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[int, int] = {}

    def enter(self, key: int, limit: int) -> Slot | None:
        with self._lock:
            if self._count.get(key, 0) >= limit:
                return None
            self._count[key] = self._count.get(key, 0) + 1
            return Slot(self, key)

    def leave(self, key: int) -> None:
        with self._lock:
            self._count[key] = max(0, self._count.get(key, 0) - 1)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_name(filename: str | None) -> str:
    """A display name from an upload's file name: last path component, no control or bidi characters."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    # control characters, and bidi controls that would show "gpj.exe" as "exe.jpg"
    name = re.sub(r"[\x00-\x1f\x7f\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]", "", name).strip().lstrip(".")
    return name[:200] or "upload"


def auth(request: Request, authorization: Annotated[str | None, Header()] = None) -> KeyInfo | None:
    """The caller's API key; None where keys are not required (loopback, none configured)."""
    keys: KeyStore = request.app.state.keys
    required = request.app.state.require_keys
    if not (required if required is not None else keys.ever_created()):
        return None
    if not authorization or not authorization.lower().startswith("bearer "):
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")
    info = keys.check(authorization[7:].strip())
    if info is None:
        hint = "" if keys.active_count() else " (every key is revoked: create one with `archivist keys create NAME`)"
        raise ApiError(401, "invalid or revoked API key" + hint, code="invalid_api_key")
    return info


Auth = Annotated[KeyInfo | None, Depends(auth)]


def create_app(
    services: Services,
    *,
    require_keys: bool | None = None,
    max_queue: int = 32,
    limits: IngestLimits | None = None,
    bound_host: str = "127.0.0.1",
    allowed_hosts: Sequence[str] = (),
) -> FastAPI:
    """The API app. `require_keys` defaults to: once any key was created (revoking them all keeps
    it closed). `bound_host` and `allowed_hosts` are the names a request's Host may carry (see
    `app.api.guard`); `max_queue` is how many answers may wait for each model before 503."""
    keys = KeyStore(services.store.engine)
    limits = limits or services.settings.ingest_limits()
    app = FastAPI(title="Archivist", version="0.1.0", description="OpenAI-compatible API over Archivist assistants.")
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_handler)

    app.state.keys, app.state.require_keys = keys, require_keys
    app.add_middleware(
        RequestGuard,
        bound_host=bound_host,
        allowed_hosts=allowed_hosts,
        max_body=MAX_JSON_BODY,
        max_upload_body=limits.max_file_bytes * 4 + 2**20,
    )
    admitted = Admission()

    @app.middleware("http")
    async def access_log(request: Request, call_next: Any) -> Any:
        """One line per request with its id (the client's X-Request-ID when it is a plain token, else
        a new one), also sent back as X-Request-ID; the path only: query strings and bodies may
        hold what users asked, and keys are never logged."""
        given = request.headers.get("x-request-id", "")
        rid = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-ID"] = rid
        access.info(
            "%s %s %d %.0f ms rid=%s",
            request.method,
            request.url.path,
            response.status_code,
            1000 * (time.perf_counter() - started),
            rid,
        )
        return response

    def collection_allowed(name: str, key: KeyInfo | None) -> bool:
        """A key limited to some assistants reaches only the collections those assistants search."""
        if key is None or not key.assistants:
            return True
        for assistant_name in key.assistants:
            try:
                if name in services.library.get_by_name(assistant_name).knowledge.collections:
                    return True
            except AssistantError:
                continue
        return False

    def reach(collection: str, key: KeyInfo | None) -> str:
        known_collection(collection)
        if not collection_allowed(collection, key):
            raise ApiError(403, f"this API key may not use collection {collection!r}", param="collection")
        return collection

    def assistant_for(name: str, key: KeyInfo | None) -> Assistant:
        try:
            assistant = services.library.get_by_name(name)
        except AssistantError:
            raise ApiError(404, f"no assistant named {name!r}", param="model", code="model_not_found") from None
        if key is not None and not key.allows(name):
            raise ApiError(403, f"this API key may not use assistant {name!r}", param="model")
        return assistant

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models(key: Auth) -> dict[str, Any]:
        entries, _ = services.library.entries()
        data = [
            {
                "id": e.assistant.name,
                "object": "model",
                "created": int(e.path.stat().st_mtime),
                "owned_by": "archivist",
                "description": e.assistant.description,
            }
            for e in entries
            if key is None or key.allows(e.assistant.name)
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    def chat(req: ChatRequest, key: Auth) -> dict[str, Any] | StreamingResponse:
        assistant = assistant_for(req.model, key)
        if req.tools and req.tool_choice != "none":
            called = client_tools(req, assistant)
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
            model = None if extractive else services.chat.model_for(assistant)
        except ModelNotFoundError as exc:
            raise ApiError(503, str(exc)) from None
        slot = None
        if model is not None:
            # a slot is taken on arrival (retrieval and quotes run before the model is reached) and
            # given back when the answer is done or its client goes away
            slot = admitted.enter(id(model), max_queue) if model.waiting < max_queue else None
            if slot is None:
                raise ApiError(
                    503,
                    f"the model queue is full ({max_queue} requests); retry shortly",
                    headers={"Retry-After": "2"},
                    code="queue_full",
                )
        try:
            return answer_request(req, assistant, history, slot)
        except BaseException:
            if slot is not None:
                slot.leave()
            raise

    def answer_request(
        req: ChatRequest, assistant: Assistant, history: list[Message], slot: Slot | None
    ) -> dict[str, Any] | StreamingResponse:
        turns = [m for m in req.messages if m.role in ("user", "assistant")]
        stop = [req.stop] if isinstance(req.stop, str) else (req.stop or [])
        try:
            stream = services.chat.ask(
                assistant,
                turns[-1].text(),
                history,
                temperature=req.temperature,
                top_p=req.top_p,
                max_tokens=req.max_completion_tokens or req.max_tokens,
                stop=stop,
                answer_mode=req.answer_mode,
                grounding=req.grounding,
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
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer.text},
                        "finish_reason": _finish(answer),
                    }
                ],
                "usage": _usage(answer),
                "citations": [c.to_json() for c in answer.citations],
                "archivist": answer.details_json(),
            }

        def events() -> Iterator[str]:
            head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": assistant.name}
            yield _sse(
                {
                    **head,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                    # the supporting quotes are known before the first token
                    "archivist": {
                        "quotes": [q.to_json() for q in stream.quotes],
                        "tools": [t.to_json() for t in stream.tools],
                    },
                }
            )
            try:
                for piece in stream:
                    if not piece:
                        continue  # a heartbeat between tokens while candidates are written
                    yield _sse({**head, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                answer = stream.result()
            except ArchivistError as exc:
                yield _sse({"error": {"message": str(exc), "type": "api_error", "param": None, "code": None}})
                return

            yield _sse(
                {
                    **head,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": _finish(answer)}],
                    "usage": _usage(answer),
                    "citations": [c.to_json() for c in answer.citations],
                    "archivist": answer.details_json(),
                }
            )
            yield "data: [DONE]\n\n"

        def done() -> None:  # however the response ends, the client hanging up at any point included
            stream.close()
            if slot is not None:
                slot.leave()

        return ClosingStreamingResponse(
            closing(events()), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}, on_close=done
        )

    def client_tools(req: ChatRequest, assistant: Assistant) -> dict[str, Any] | StreamingResponse | None:
        """The request's own tools go to the model; its calls come back as OpenAI `tool_calls`. None
        when the model answered without a call to the user's question: the documents answer it."""
        if (req.answer_mode or assistant.answer_mode) == "extractive":
            raise ApiError(400, "tools need a model; this request answers with quotes only (extractive)", param="tools")
        try:
            model = services.chat.model_for(assistant)
        except ModelNotFoundError as exc:
            raise ApiError(503, str(exc)) from None
        native, why = getattr(model, "tool_support", (False, "this model backend reports no tool support"))
        if not native:
            raise ApiError(400, f"tools cannot be used with assistant {assistant.name!r}: {why}", param="tools")
        specs = [t for t in req.tools or [] if t.get("type") == "function" and isinstance(t.get("function"), dict)]
        if not specs:
            raise ApiError(400, "tools must be a list of {type: function, function: {name, parameters}}", param="tools")
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt(assistant.instructions, assistant.citation_style)}
        ]
        for m in req.messages:
            turn: dict[str, Any] = {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for extra in ("tool_calls", "tool_call_id", "name"):
                if getattr(m, extra, None) is not None:
                    turn[extra] = getattr(m, extra)
            messages.append(turn)
        forced = forced_schema(req.tool_choice, specs)
        params = GenerationParams(
            max_tokens=req.max_completion_tokens or req.max_tokens or max(assistant.model.max_tokens, 256),
            temperature=req.temperature if req.temperature is not None else assistant.model.temperature,
            top_p=req.top_p if req.top_p is not None else assistant.model.top_p,
            tools=specs,
            json_schema=forced,
        )
        stats = GenerationStats()
        try:
            # tool-call turns carry more keys than Message names; the chat template reads them all
            text = "".join(model.stream(cast("list[Message]", messages), params, stats))
        except ContextOverflowError as exc:
            raise ApiError(400, str(exc), param="messages", code="context_length_exceeded") from None
        names = {t["function"].get("name") for t in specs}
        calls = [c for c in parse_calls(text) if c.name in names]
        if not calls and req.messages[-1].role == "user":
            return None
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        usage = {
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "total_tokens": stats.prompt_tokens + stats.completion_tokens,
        }
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

        def events() -> Iterator[str]:
            head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": assistant.name}
            if calls:
                for i, tc in enumerate(tool_calls):
                    first = {
                        "index": i,
                        "id": tc["id"],
                        "type": "function",
                        "function": {"name": tc["function"]["name"], "arguments": ""},
                    }
                    delta: dict[str, Any] = {"tool_calls": [first]}
                    if i == 0:
                        delta = {"role": "assistant", "content": None, **delta}
                    yield _sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                    args = {"index": i, "function": {"arguments": tc["function"]["arguments"]}}
                    yield _sse(
                        {**head, "choices": [{"index": 0, "delta": {"tool_calls": [args]}, "finish_reason": None}]}
                    )
            else:
                delta = {"role": "assistant", "content": message["content"]}
                yield _sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            yield _sse({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage})
            yield "data: [DONE]\n\n"

        return ClosingStreamingResponse(
            closing(events()), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.post("/v1/embeddings")
    def embeddings(req: EmbeddingRequest, _key: Auth) -> dict[str, Any]:
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts or len(texts) > 2048:
            raise ApiError(400, f"input must hold 1 to 2,048 texts; got {len(texts)}", param="input")
        emb = services.embedder
        tokens = emb.count_tokens(texts)
        too_long = [i for i, n in enumerate(tokens) if n > emb.max_tokens]
        if too_long:
            raise ApiError(
                400,
                f"input {too_long[0]} has {tokens[too_long[0]]:,} tokens; the embedder's limit is {emb.max_tokens:,}",
                param="input",
            )
        vecs = emb.embed(texts)
        return {
            "object": "list",
            "model": emb.name,
            "usage": {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)},
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)],
        }

    def known_collection(name: str) -> str:
        try:
            check_collection_name(name)  # the store's own rule: names become folder names
        except IngestError as exc:
            raise ApiError(400, str(exc), param="collection") from None
        return name

    @app.get("/v1/collections")
    def collections(key: Auth) -> dict[str, Any]:
        rows = [(n, d, c) for n, d, c in services.store.collections() if collection_allowed(n, key)]
        return {"data": [{"name": n, "documents": d, "chunks": c} for n, d, c in rows]}

    @app.get("/v1/collections/{collection}/documents")
    def documents(collection: str, key: Auth) -> dict[str, Any]:
        docs = services.store.documents(reach(collection, key))
        return {"data": [{**d.__dict__, "created_at": d.created_at.isoformat()} for d in docs]}

    @app.post("/v1/collections/{collection}/documents", status_code=201)
    def upload(collection: str, files: list[UploadFile], key: Auth) -> dict[str, Any]:
        reach(collection, key)
        results = []
        for f in files:
            name = safe_name(f.filename)
            data = f.file.read(limits.max_file_bytes + 1)
            if len(data) > limits.max_file_bytes:
                raise ApiError(
                    413, f"{name}: file is over the limit of {limits.max_file_bytes / 2**20:,.0f} MB", param="files"
                )
            try:
                with services.store.writer():
                    r = ingest_bytes(data, name, collection, services.store, services.embedder, limits=limits)
            except UnsupportedFileError as exc:
                raise ApiError(415, str(exc), param="files") from None
            except IngestError as exc:
                raise ApiError(400, str(exc), param="files") from None
            results.append(
                {"document": name, "status": r.status, "chunks": r.chunks, "pages": r.pages, "warnings": r.warnings}
            )
        return {"data": results}

    @app.delete("/v1/collections/{collection}/documents/{document:path}")
    def delete(collection: str, document: str, key: Auth) -> dict[str, Any]:
        try:
            n = services.store.delete_document(reach(collection, key), document)
        except IngestError as exc:
            raise ApiError(404, str(exc)) from None
        return {"deleted": document, "versions": n}

    @app.post("/v1/collections/{collection}/search")
    def search_collection(collection: str, req: SearchRequest, key: Auth) -> dict[str, Any]:
        if reach(collection, key) not in services.store.collection_names():
            raise ApiError(404, f"no collection named {collection!r}", param="collection")
        hits = search(services.store, services.embedder, [collection], req.query, req.k, mode=req.mode)
        return {"hits": [h.to_json() for h in hits]}

    @app.exception_handler(ArchivistError)
    async def archivist_error(_request: Request, exc: Exception) -> Any:
        return await api_error_handler(_request, ApiError(400, str(exc)))

    return app


_DONE = object()


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its body however it ends (Starlette leaves an abandoned
    body iterator to the garbage collector, which may hold it, and the model, for minutes)."""

    def __init__(self, *args: Any, on_close: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self.body_iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
                if self.on_close is not None:  # also when the body never started (the client left first)
                    await anyio.to_thread.run_sync(self.on_close)


async def closing(events: Iterator[str]) -> AsyncIterator[str]:
    """Serve a blocking event generator from worker threads and close it however the response
    ends: a client that hangs up mid-answer must not leave the model's stream (and the model)
    held by a generator nobody resumes."""
    try:
        while True:
            event = await anyio.to_thread.run_sync(next, events, _DONE)
            if event is _DONE:
                return
            yield event  # type: ignore[misc]
    finally:
        with anyio.CancelScope(shield=True):  # runs even when the response was cancelled
            await anyio.to_thread.run_sync(events.close)  # type: ignore[attr-defined]


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _finish(answer: Answer) -> str:
    return "length" if answer.stats.finish_reason == "length" else "stop"


def _usage(answer: Answer) -> dict[str, int]:
    p, c = answer.stats.prompt_tokens, answer.stats.completion_tokens
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
