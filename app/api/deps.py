"""What every endpoint depends on: the caller's key, and the API's context (services, limits,
queues), with the rules of who may reach which assistant and collection."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import Depends, Header, Request, UploadFile

from app.api.errors import ApiError
from app.api.keys import KeyInfo, KeyStore
from app.api.streaming import Admission
from app.services import Services
from assistants.errors import AssistantError
from assistants.schema import Assistant
from ingest.errors import IngestError
from ingest.pipeline import IngestLimits
from ingest.store import check_collection_name


@dataclass
class ApiContext:
    """The services an API app serves, its file limits and its answer queues."""

    services: Services
    limits: IngestLimits
    max_queue: int
    admitted: Admission = field(default_factory=Admission)


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_upload(upload: UploadFile, limits: IngestLimits, param: str) -> tuple[str, bytes]:
    """An uploaded file's safe name and bytes; a 413 naming it and the limit when it is larger (no
    more than one byte past the limit is read)."""
    name = safe_name(upload.filename)
    data = upload.file.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise ApiError(413, f"{name}: file is over the limit of {limits.max_file_bytes / 2**20:,.0f} MB", param=param)
    return name, data


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


def collection_allowed(ctx: ApiContext, name: str, key: KeyInfo | None) -> bool:
    """A key limited to some assistants reaches only the collections those assistants search."""
    if key is None or not key.assistants:
        return True
    for assistant_name in key.assistants:
        try:
            if name in ctx.services.library.get_by_name(assistant_name).knowledge.collections:
                return True
        except AssistantError:
            continue
    return False


def reach(ctx: ApiContext, collection: str, key: KeyInfo | None) -> str:
    """The collection named in a path, when the name is valid and the key may use it."""
    known_collection(collection)
    if not collection_allowed(ctx, collection, key):
        raise ApiError(403, f"this API key may not use collection {collection!r}", param="collection")
    return collection


def assistant_for(ctx: ApiContext, name: str, key: KeyInfo | None) -> Assistant:
    """The assistant a request names as its model, when the key may use it."""
    try:
        assistant = ctx.services.library.get_by_name(name)
    except AssistantError:
        raise ApiError(404, f"no assistant named {name!r}", param="model", code="model_not_found") from None
    if key is not None and not key.allows(name):
        raise ApiError(403, f"this API key may not use assistant {name!r}", param="model")
    return assistant


def known_collection(name: str) -> str:
    try:
        check_collection_name(name)  # the store's own rule: names become folder names
    except IngestError as exc:
        raise ApiError(400, str(exc), param="collection") from None
    return name
