"""Embeddings and collections: list, upload into, delete from and search a collection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, UploadFile

from app.api.deps import Auth, Ctx, collection_allowed, reach, safe_name
from app.api.errors import ApiError
from app.api.schemas import EmbeddingRequest, SearchRequest
from ingest.errors import IngestError, UnsupportedFileError

router = APIRouter()


@router.post("/v1/embeddings")
def embeddings(req: EmbeddingRequest, _key: Auth, ctx: Ctx) -> dict[str, Any]:
    texts = [req.input] if isinstance(req.input, str) else req.input
    if not texts or len(texts) > 2048:
        raise ApiError(400, f"input must hold 1 to 2,048 texts; got {len(texts)}", param="input")
    emb = ctx.services.embedder
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


@router.get("/v1/collections")
def collections(key: Auth, ctx: Ctx) -> dict[str, Any]:
    rows = [(n, d, c) for n, d, c in ctx.services.store.collections() if collection_allowed(ctx, n, key)]
    return {"data": [{"name": n, "documents": d, "chunks": c} for n, d, c in rows]}


@router.get("/v1/collections/{collection}/documents")
def documents(collection: str, key: Auth, ctx: Ctx) -> dict[str, Any]:
    docs = ctx.services.store.documents(reach(ctx, collection, key))
    return {"data": [{**d.__dict__, "created_at": d.created_at.isoformat()} for d in docs]}


@router.post("/v1/collections/{collection}/documents", status_code=201)
def upload(collection: str, files: list[UploadFile], key: Auth, ctx: Ctx) -> dict[str, Any]:
    reach(ctx, collection, key)
    limits, services = ctx.limits, ctx.services
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
                r = services.add_document(collection, name, data)
        except UnsupportedFileError as exc:
            raise ApiError(415, str(exc), param="files") from None
        except IngestError as exc:
            raise ApiError(400, str(exc), param="files") from None
        results.append(
            {"document": name, "status": r.status, "chunks": r.chunks, "pages": r.pages, "warnings": r.warnings}
        )
    return {"data": results}


@router.delete("/v1/collections/{collection}/documents/{document:path}")
def delete(collection: str, document: str, key: Auth, ctx: Ctx) -> dict[str, Any]:
    try:
        n = ctx.services.store.delete_document(reach(ctx, collection, key), document)
    except IngestError as exc:
        raise ApiError(404, str(exc)) from None
    return {"deleted": document, "versions": n}


@router.post("/v1/collections/{collection}/search")
def search_collection(collection: str, req: SearchRequest, key: Auth, ctx: Ctx) -> dict[str, Any]:
    services = ctx.services
    if reach(ctx, collection, key) not in services.store.collection_names():
        raise ApiError(404, f"no collection named {collection!r}", param="collection")
    hits = services.search([collection], req.query, req.k, mode=req.mode)
    return {"hits": [h.to_json() for h in hits]}
