"""Embeddings and collections: list, rename, delete, upload into, delete from and search a collection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, UploadFile
from fastapi.responses import JSONResponse

from app.api.deps import ApiContext, Auth, Ctx, collection_allowed, reach, read_upload
from app.api.errors import ApiError
from app.api.schemas import EmbeddingRequest, RenameRequest, SearchRequest, VerifyRequest
from ingest.errors import IngestError
from ingest.jobs import JobQueue, worker_name

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


def _whole_workspace(key: Any, what: str) -> None:
    """Renaming or deleting a collection changes what every assistant searches: a key limited to
    some assistants may not."""
    if key is not None and key.assistants:
        raise ApiError(403, f"this API key is limited to some assistants and may not {what} a collection")


@router.post("/v1/collections/{collection}/rename")
def rename_collection(collection: str, req: RenameRequest, key: Auth, ctx: Ctx) -> dict[str, Any]:
    _whole_workspace(key, "rename")
    try:
        stuck = ctx.services.rename_collection(reach(ctx, collection, key), req.name)
    except IngestError as exc:
        status = 404 if "no collection" in str(exc) else 409 if "exists" in str(exc) else 400
        raise ApiError(status, str(exc), param="name") from None
    return {"renamed": collection, "name": req.name, "assistants_not_updated": stuck}


@router.delete("/v1/collections/{collection}")
def delete_collection(collection: str, key: Auth, ctx: Ctx, confirm: str = "") -> dict[str, Any]:
    _whole_workspace(key, "delete")
    name = reach(ctx, collection, key)
    if confirm != name:
        raise ApiError(
            400, f"to delete collection {name!r} and all its documents, add ?confirm={name}", param="confirm"
        )
    try:
        n = ctx.services.store.delete_collection(name)
    except IngestError as exc:
        raise ApiError(404, str(exc)) from None
    return {"deleted": name, "documents": n}


@router.get("/v1/collections/{collection}/documents")
def documents(collection: str, key: Auth, ctx: Ctx) -> dict[str, Any]:
    docs = ctx.services.store.documents(reach(ctx, collection, key))
    return {"data": [{**d.__dict__, "created_at": d.created_at.isoformat()} for d in docs]}


@router.post("/v1/collections/{collection}/documents", status_code=201, response_model=None)
def upload(
    collection: str, files: list[UploadFile], key: Auth, ctx: Ctx, wait: bool = True
) -> dict[str, Any] | JSONResponse:
    """Ingest the files and answer with how each ended. On a server database each file is an
    ingest job (any worker may take it); `wait=false` answers at once (202) with the job ids,
    whose progress `GET /v1/jobs/{id}` shows. A file that fails does not stop the others: it is
    listed as failed with its error, and only when every file failed is the answer an error
    (415 for a type Archivist does not read, else 400)."""
    reach(ctx, collection, key)
    limits, services = ctx.limits, ctx.services
    results = []
    uploads = []
    for f in files:
        uploads.append(read_upload(f, limits, "files"))
    if services.store.server:
        return _queued(ctx, collection, uploads, wait)
    if not wait:
        raise ApiError(
            400,
            "wait=false needs a server database (ARCHIVIST_DATABASE_URL); here uploads are ingested at once",
            param="wait",
        )
    failures: list[tuple[int, str]] = []
    with services.store.writer():  # one batch: the next files parsed ahead, small ones embedded together
        report = services.add_documents(collection, uploads)
    for (name, _), r in zip(uploads, report.results, strict=True):
        if r.status == "failed":
            error = r.error or f"{name}: failed"
            failures.append((415 if r.unsupported else 400, error))
            results.append(_failed(name, error))
            continue
        results.append(
            {"document": name, "status": r.status, "chunks": r.chunks, "pages": r.pages, "warnings": r.warnings}
        )
    return _answer(results, failures)


def _failed(name: str, error: str, **more: Any) -> dict[str, Any]:
    return {"document": name, "status": "failed", "chunks": 0, "pages": None, "warnings": [], "error": error, **more}


def _answer(results: list[dict[str, Any]], failures: list[tuple[int, str]]) -> dict[str, Any]:
    """Each file's outcome; an error only when no file got in (the first failure's status)."""
    if failures and len(failures) == len(results):
        raise ApiError(failures[0][0], failures[0][1], param="files")
    return {"data": results}


def _queued(
    ctx: ApiContext, collection: str, uploads: list[tuple[str, bytes]], wait: bool
) -> dict[str, Any] | JSONResponse:
    jobs = ctx.services.jobs
    if not wait:
        ids = jobs.enqueue(collection, uploads)
        return JSONResponse({"data": [j.to_json() for j in jobs.jobs(ids)][::-1]}, status_code=202)
    results = []
    failures: list[tuple[int, str]] = []
    for name, data in uploads:
        state = jobs.ingest(collection, [(name, data)], worker_name(), ctx.services.add_document)[0]
        if state.status == "failed":
            failures.append((415 if state.error_kind == "unsupported" else 400, state.error))
            results.append(_failed(name, state.error, job=state.id))
            continue
        results.append(
            {
                "document": name,
                "status": state.stage,
                "chunks": state.chunks,
                "pages": state.pages or None,
                "warnings": state.warnings,
                "job": state.id,
            }
        )
    return _answer(results, failures)


@router.get("/v1/jobs")
def list_jobs(key: Auth, ctx: Ctx) -> dict[str, Any]:
    """The newest ingest jobs of the server database (the collections this key may use)."""
    states = _jobs(ctx).jobs()
    return {"data": [j.to_json() for j in states if collection_allowed(ctx, j.collection, key)]}


@router.get("/v1/jobs/{job_id}")
def get_job(job_id: int, key: Auth, ctx: Ctx) -> dict[str, Any]:
    queue = _jobs(ctx)
    found = (
        [j for j in queue.jobs([job_id]) if collection_allowed(ctx, j.collection, key)] if 0 < job_id < 2**31 else []
    )
    if not found:
        raise ApiError(404, f"no ingest job {job_id}", param="job_id")
    return found[0].to_json()


def _jobs(ctx: ApiContext) -> JobQueue:
    if not ctx.services.store.server:
        raise ApiError(404, "ingest jobs exist on a server database only (ARCHIVIST_DATABASE_URL)")
    return ctx.services.jobs


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


@router.post("/v1/collections/{collection}/verify")
def verify_claim(collection: str, req: VerifyRequest, key: Auth, ctx: Ctx) -> dict[str, Any]:
    """Does the collection say it? Each sentence of the claim: supported, contradicted or not found,
    with the documents' sentence (and page) it was read against."""
    from retriever.claims import verify_text

    services = ctx.services
    if reach(ctx, collection, key) not in services.store.collection_names():
        raise ApiError(404, f"no collection named {collection!r}", param="collection")
    checks = verify_text(services.store, services.embedder, [collection], req.claim, req.k)
    return {"claims": [c.to_json() for c in checks]}
