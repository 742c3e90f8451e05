"""The storage seam: what differs between the two backends of `Store`. The catalog (collections,
documents, failures, sources) is the same SQL on both; where the vectors live, how a stored
document becomes searchable and how writers share a workspace is the backend's:

- `LocalBackend` (ingest/backend_local.py): the SQLite file with a FAISS index per collection,
  one writer per workspace, index writes batched and repaired from the catalog;
- `ServerBackend` (ingest/backend_server.py): PostgreSQL holding the vectors (pgvector), a
  document stored and searchable in one transaction, any number of writers.

`Store` picks one when it is made (from the database URL) and never asks which again."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ingest.catalog import Chunk, Collection, Document, DocumentStatus
from ingest.embed import Vectors
from ingest.pg_vectors import PgVectorIndex
from ingest.types import ChunkDraft
from ingest.vectors import VectorIndex


@dataclass(frozen=True)
class NewDocument:
    """A document about to be stored (its chunks and vectors go beside it)."""

    name: str
    sha256: str
    fmt: str
    size: int
    pages: int | None
    warnings: Sequence[str]
    page_info: Mapping[int, Mapping[str, float]] | None = None

    def row(self, collection_id: int, chunks: int, status: DocumentStatus) -> Document:
        return Document(
            collection_id=collection_id,
            name=self.name,
            sha256=self.sha256,
            format=self.fmt,
            size=self.size,
            pages=self.pages,
            n_chunks=chunks,
            status=status,
            warnings_json=json.dumps(list(self.warnings)),
            pages_json=_pages_json(self.page_info),
        )


class Catalog(Protocol):
    """What a backend uses of the store's catalog."""

    home: Path
    engine: Engine
    embedder: str
    dim: int
    sessions: sessionmaker[Session]

    def _collection(self, s: Session, name: str, create: bool = False) -> Collection | None: ...


class StorageBackend(Protocol):
    """Where vectors live and how documents become searchable."""

    shared: bool  # several processes (and machines) write at once; else one writer per workspace
    lock: threading.RLock  # held by the store around changes of this process that span both

    def describe(self) -> str:
        """Where the catalog is, as a user may be shown it (never a password)."""
        ...

    def writing(self) -> AbstractContextManager[None]:
        """Around one writer's work, inside the workspace's lock."""
        ...

    def recover(self) -> None:
        """Documents a killed writer left half-stored become failed (retryable)."""
        ...

    def add(
        self, collection: str, doc: NewDocument, chunks: Sequence[ChunkDraft], vectors: Vectors
    ) -> tuple[int, list[str]]:
        """Store a document, replacing older versions of its name; (its id, names it replaced)."""
        ...

    def forget(self, s: Session, collection: str, doc_ids: Sequence[int]) -> Callable[[], None]:
        """In the session that deletes these documents: take their vectors out. Returns what to run
        once it has committed."""
        ...

    def flush(self) -> None:
        """Make what was added searchable now."""
        ...

    def index(self, collection: str) -> VectorIndex | PgVectorIndex:
        """The collection's vector index, for search."""
        ...

    def reindex(self, collection: str) -> int:
        """Rebuild the collection's index; returns its size."""
        ...

    def renamed(self, old: str, new: str) -> None:
        """Collection `old` is called `new` now (in the session that renames it)."""
        ...

    def dropped(self, collection: str) -> None:
        """The collection is deleted (in the session that deletes it)."""
        ...


def chunk_rows(document_id: int, chunks: Sequence[ChunkDraft], vectors: Vectors) -> list[Chunk]:
    """A document's chunks as catalog rows, each with its vector."""
    return [
        Chunk(
            document_id=document_id,
            ordinal=i,
            page=c.page,
            page_end=c.page_end,
            heading=c.heading,
            start=c.start,
            end=c.end,
            n_tokens=c.n_tokens,
            text=c.text,
            embedding=v.tobytes(),
        )
        for i, (c, v) in enumerate(zip(chunks, vectors, strict=True))
    ]


def _pages_json(info: Mapping[int, Mapping[str, float]] | None) -> str | None:
    return (
        json.dumps({str(p): {k: round(v, 3) for k, v in d.items()} for p, d in sorted(info.items())}) if info else None
    )


def nothing() -> None:
    """What is left to do after a commit, when nothing is."""
