"""What the store hands out: a document's listing, a stored chunk; and the rule for collection names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ingest.catalog import Document
from ingest.errors import IngestError

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class DocumentInfo:
    """What `archivist documents` lists."""

    id: int
    collection: str
    name: str
    sha256: str
    format: str
    size: int
    pages: int | None
    chunks: int
    status: str
    warnings: list[str]
    error: str | None
    created_at: datetime


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as search returns it."""

    id: int
    document: str
    document_id: int
    collection: str
    page: int | None
    page_end: int | None
    heading: str
    start: int
    end: int
    text: str
    n_tokens: int
    embedding: bytes = b""
    ocr: float | None = None  # its page was read from a picture: the OCR engine's confidence
    seconds: tuple[float, float] | None = None  # its page is a stretch of a recording: start and end


def check_collection_name(name: str) -> None:
    """Collection names become folder names: letters, digits, '_', '-', '.'; at most 64."""
    if not COLLECTION_NAME.fullmatch(name) or ".." in name:  # fullmatch: "$" lets a final newline through
        raise IngestError(
            f"collection name {name!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )


def _info(d: Document, collection: str) -> DocumentInfo:
    return DocumentInfo(
        d.id,
        collection,
        d.name,
        d.sha256,
        d.format,
        d.size,
        d.pages,
        d.n_chunks,
        d.status,
        d.warnings,
        d.error,
        d.created_at,
    )
