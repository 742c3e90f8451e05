"""A staged file's last steps: its chunks embedded (alone, or together with other small files
sorted by length across them), then the document stored with its original."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ingest import staging
from ingest.embed import Embedder, Vectors
from ingest.errors import IngestError
from ingest.results import FileResult, FileStatus
from ingest.staging import Staged, check_text, embed_sorted, embed_staged
from ingest.store import Store
from ingest.types import Page


def finish_one(
    staged: Staged,
    collection: str,
    store: Store,
    embedder: Embedder,
    notify: Callable[..., None],
    advance: Callable[[], None] | None = None,
) -> FileResult:
    """Embed and store a staged file; `advance` is called between batches (to stage what follows)."""
    try:
        vectors = embed_staged(staged, embedder, notify, advance or (lambda: None))
        check_text(staged)
    except IngestError as exc:
        _mark_failed(staged, collection, store, exc)
        raise
    return _store(staged, collection, store, vectors)


def finish_together(
    files: list[Staged | FileResult | Exception],
    collection: str,
    store: Store,
    embedder: Embedder,
    notify: Callable[..., None],
    advance: Callable[[], None],
) -> list[FileResult | Exception]:
    """Embed several parsed files' chunks together (sorted by length across them), then store each
    file in turn; what failed before (or fails its own checks) keeps its place in the results."""
    out = {k: f for k, f in enumerate(files) if not isinstance(f, Staged)}
    ready: list[tuple[int, Staged]] = []
    for k, f in enumerate(files):
        if isinstance(f, Staged):
            try:
                f.take()  # raises the parse's failure
                check_text(f)
                ready.append((k, f))
            except IngestError as exc:
                _mark_failed(f, collection, store, exc)
                out[k] = exc
            except Exception as exc:
                out[k] = exc
    # one encoder batch per call: the parser is given the next file after each (small files each
    # take about one batch to embed, so staging one file per call of EMBED_BATCH falls behind)
    step = min(staging.EMBED_BATCH, getattr(embedder, "batch_size", staging.EMBED_BATCH))
    pages = sum(len(f.doc.pages) for _, f in ready)
    if not ready:
        return [out[k] for k in range(len(files))]
    try:
        vectors = embed_sorted([d for _, f in ready for d in f.drafts], embedder, step, advance, notify, pages)
        parts = np.split(vectors, np.cumsum([len(f.drafts) for _, f in ready])[:-1])
    except Exception:  # the encoder failed on the group: each file alone, so only the one it fails on fails
        parts = []
        for k, f in ready:
            try:
                parts.append(embed_sorted(f.drafts, embedder, step, advance, notify, len(f.doc.pages)))
            except IngestError as exc:
                _mark_failed(f, collection, store, exc)
                out[k] = exc
            except Exception as exc:
                out[k] = exc
        ready = [(k, f) for k, f in ready if k not in out]
    for (k, f), vectors in zip(ready, parts, strict=True):
        try:
            out[k] = _store(f, collection, store, vectors)
        except Exception as exc:
            out[k] = exc
    return [out[k] for k in range(len(files))]


def _mark_failed(staged: Staged, collection: str, store: Store, exc: IngestError) -> None:
    store.mark_failed(
        collection, name=staged.name, sha256=staged.sha, fmt="unknown", size=len(staged.data), error=str(exc)
    )


def _store(staged: Staged, collection: str, store: Store, vectors: Vectors) -> FileResult:
    name, data, doc = staged.name, staged.data, staged.doc
    doc.warnings = list(staged.info.warnings or [])
    store.originals.keep(staged.sha, name, data)
    # PDFs and pictures have pages (a TIFF's frames; one that could not be read still counts)
    pages = (
        max((p.number or 0 for p in doc.pages), default=0) or None if doc.format in ("pdf", "image", "audio") else None
    )
    _, replaced = store.add_document(
        collection,
        name=name,
        sha256=staged.sha,
        fmt=doc.format,
        size=len(data),
        pages=pages,
        warnings=doc.warnings,
        chunks=staged.drafts,
        vectors=vectors,
        page_info=_page_info(doc.pages),
    )
    status: FileStatus = "replaced" if replaced else "added"
    return FileResult(staged.label, status, len(staged.drafts), pages, doc.warnings, name=name)


def _page_info(pages: Sequence[Page]) -> dict[int, dict[str, float]]:
    """What pages are beyond text: read from a picture (the OCR confidence), a stretch of a recording."""
    info: dict[int, dict[str, float]] = {}
    for p in pages:
        if p.number is None:
            continue
        if p.ocr is not None:
            info.setdefault(p.number, {})["ocr"] = p.ocr
        if p.seconds is not None:
            info.setdefault(p.number, {}).update(start=p.seconds[0], end=p.seconds[1])
    return info
