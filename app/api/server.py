"""The OpenAI-compatible HTTP API: `create_app` puts the routers together (chat in
`app.api.chat`, embeddings and collections in `app.api.knowledge`) behind the request guard, the
access log and the error handlers. Endpoints call the same services as the CLI and the UI."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api import audio, chat, knowledge
from app.api.deps import ApiContext, Auth, Ctx, is_loopback
from app.api.errors import ApiError, api_error_handler, http_handler, validation_handler
from app.api.guard import RequestGuard
from app.api.keys import KeyStore
from app.services import Services
from ingest.pipeline import IngestLimits
from runtime.errors import ArchivistError

__all__ = ["MAX_JSON_BODY", "create_app", "is_loopback"]

access = logging.getLogger("archivist.api.access")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_JSON_BODY = 8 * 2**20  # a chat or search request's body; uploads have their own limit


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
    limits = limits or services.settings.ingest_limits()
    app = FastAPI(title="Archivist", version="0.1.0", description="OpenAI-compatible API over Archivist assistants.")
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_handler)
    app.add_exception_handler(ArchivistError, archivist_error)
    app.state.keys, app.state.require_keys = KeyStore(services.store.engine), require_keys
    app.state.ctx = ApiContext(services, limits, max_queue)
    app.add_middleware(
        RequestGuard,
        bound_host=bound_host,
        allowed_hosts=allowed_hosts,
        max_body=MAX_JSON_BODY,
        max_upload_body=limits.max_file_bytes * 4 + 2**20,
    )
    app.middleware("http")(access_log)  # outermost: guard refusals are logged too
    app.get("/health")(health)
    app.get("/v1/models")(models)
    app.include_router(chat.router)
    app.include_router(knowledge.router)
    app.include_router(audio.router)
    return app


async def access_log(request: Request, call_next: Any) -> Any:
    """One line per request with its id (the client's X-Request-ID when it is a plain token, else
    a new one), also sent back as X-Request-ID; the path only: query strings and bodies may hold
    what users asked, and keys are never logged."""
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


def health() -> dict[str, str]:
    return {"status": "ok"}


def models(key: Auth, ctx: Ctx) -> dict[str, Any]:
    """The assistants this key may use, as OpenAI models."""
    entries, _ = ctx.services.library.entries()
    data = [
        {
            "id": e.assistant.name,
            "object": "model",
            "created": int(e.modified),
            "owned_by": "archivist",
            "description": e.assistant.description,
        }
        for e in entries
        if key is None or key.allows(e.assistant.name)
    ]
    return {"object": "list", "data": data}


async def archivist_error(request: Request, exc: Exception) -> Any:
    return await api_error_handler(request, ApiError(400, str(exc)))
