"""The server backend: a PostgreSQL database holds the catalog, the vectors (pgvector) and the full
text; a document is stored and made searchable in one transaction, so any number of processes on
any number of machines write at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest.backend import Catalog, NewDocument, chunk_rows, nothing
from ingest.catalog import Document, DocumentStatus
from ingest.embed import Vectors
from ingest.pg_vectors import PgVectorIndex, ensure_hnsw
from ingest.types import ChunkDraft


class ServerBackend:
    shared = True

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.lock = threading.RLock()
        ensure_hnsw(catalog.engine, catalog.dim)

    def describe(self) -> str:
        u = self.catalog.engine.url
        return f"PostgreSQL at {u.host or 'localhost'}:{u.port or 5432}/{u.database} (pgvector, shared)"

    @contextmanager
    def writing(self) -> Iterator[None]:
        yield  # each document is its own transaction: nothing to write at the end

    def recover(self) -> None:
        """A document is stored in one transaction here: none is left half-written."""

    def add(
        self, collection: str, doc: NewDocument, chunks: Sequence[ChunkDraft], vectors: Vectors
    ) -> tuple[int, list[str]]:
        """The document, its chunks and vectors, and the end of the versions it replaces, in one
        transaction; writers of the same name wait for each other (an advisory lock)."""
        for attempt in range(3):
            try:
                with self.catalog.sessions.begin() as s:
                    s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{collection}/{doc.name}"})
                    col = self.catalog._collection(s, collection, create=True)
                    assert col is not None
                    mine = (Document.sha256 == doc.sha256) | (Document.name == doc.name)
                    found = s.execute(
                        select(Document.id, Document.sha256).where(Document.collection_id == col.id, mine)
                    ).all()
                    replaced = [doc.name for _, sha in found if sha != doc.sha256]
                    s.execute(delete(Document).where(Document.id.in_([d for d, _ in found])))
                    row = doc.row(col.id, len(chunks), DocumentStatus.READY)
                    s.add(row)
                    s.flush()
                    s.add_all(chunk_rows(row.id, chunks, vectors))
                    return row.id, replaced
            except IntegrityError:  # another writer created the collection at the same moment: try again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def flush(self) -> None:
        """Every document is searchable once its transaction commits."""

    def forget(self, s: Session, collection: str, doc_ids: Sequence[int]) -> Callable[[], None]:
        return nothing  # the vectors are the chunks' own column: they go with the documents

    def index(self, collection: str) -> PgVectorIndex:
        with self.catalog.sessions() as s:
            self.catalog._collection(s, collection)  # refuses another embedder's collection
        return PgVectorIndex(self.catalog.engine, collection, self.catalog.dim)

    def reindex(self, collection: str) -> int:
        with self.catalog.engine.begin() as conn:
            conn.execute(text(f"REINDEX INDEX chunks_embedding_hnsw_{self.catalog.dim}"))
        return PgVectorIndex(self.catalog.engine, collection, self.catalog.dim).size

    def renamed(self, old: str, new: str) -> None:
        """The vectors are found by the collection's row: nothing to move."""

    def dropped(self, collection: str) -> None:
        """The vectors went with the chunks."""
