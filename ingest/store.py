"""The knowledge store: the SQL catalog (collections, documents, chunks: the truth) and, behind the
storage seam (ingest/backend.py), where vectors live: a FAISS index per collection beside a
SQLite file, or pgvector in a PostgreSQL database."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from ingest.backend import NewDocument, StorageBackend
from ingest.backend_local import LocalBackend
from ingest.backend_server import ServerBackend
from ingest.catalog import Collection, Document, DocumentStatus, forget, is_server_url, make_engine
from ingest.embed import Vectors
from ingest.errors import IndexMismatchError, IngestError
from ingest.journal import Journal
from ingest.originals import Originals
from ingest.pg_vectors import PgVectorIndex
from ingest.records import COLLECTION_NAME, DocumentInfo, StoredChunk, _info, check_collection_name
from ingest.store_reads import StoreReads
from ingest.store_sources import StoreSources
from ingest.types import ChunkDraft
from ingest.vectors import VectorIndex

__all__ = ["COLLECTION_NAME", "DocumentInfo", "Store", "StoredChunk", "check_collection_name"]


class Store(StoreReads, StoreSources, Journal):
    """Collections, documents and chunks of one workspace.

    Two backends, chosen here once from `url`: the SQLite file in the workspace with a FAISS index
    per collection (the default, one writer per workspace), or a PostgreSQL server that holds the
    vectors (pgvector) and the full text itself, where a document is stored and made searchable in
    one transaction, so any number of processes on any number of machines write at once."""

    def __init__(self, home: Path, embedder: str, dim: int, url: str | None = None) -> None:
        self.home = home
        self.embedder, self.dim = embedder, dim
        self.engine = make_engine(home / "archivist.db", url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        shared = is_server_url(url)
        self.backend: StorageBackend = ServerBackend(self) if shared else LocalBackend(self)
        self.originals = Originals(home, self.engine if shared else None)

    @property
    def server(self) -> bool:
        """Whether the catalog is a server database that several machines share."""
        return self.backend.shared

    def describe(self) -> str:
        """Where the catalog is, as a user may be shown it (never a password)."""
        return self.backend.describe()

    # ---- collections and documents -------------------------------------------------
    def _collection(self, s: Session, name: str, create: bool = False) -> Collection | None:
        check_collection_name(name)
        col = s.scalar(select(Collection).where(Collection.name == name))
        if col is None and create:
            col = Collection(name=name, embedder=self.embedder, dim=self.dim)
            s.add(col)
            s.flush()
        if col is not None and (col.embedder != self.embedder or col.dim != self.dim):
            raise IndexMismatchError(
                f"collection {name!r} was embedded with {col.embedder!r} ({col.dim} dims); this workspace uses "
                f"{self.embedder!r} ({self.dim} dims). Re-index it with `archivist reindex {name}`"
            )
        return col

    def collections(self) -> list[tuple[str, int, int]]:
        """(name, ready documents, chunks) of every collection."""
        with self.sessions() as s:
            rows = s.execute(
                select(Collection.name, func.count(Document.id), func.coalesce(func.sum(Document.n_chunks), 0))
                .outerjoin(
                    Document, (Document.collection_id == Collection.id) & (Document.status == DocumentStatus.READY)
                )
                .group_by(Collection.id)
                .order_by(Collection.name)
            ).all()
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    def collection_names(self) -> set[str]:
        """Names of the existing collections (cheap: no counts)."""
        with self.sessions() as s:
            return set(s.scalars(select(Collection.name)))

    def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        with self.sessions() as s:
            q = select(Document, Collection.name).join(Collection).order_by(Collection.name, Document.name)
            if collection is not None:
                q = q.where(Collection.name == collection)
            return [_info(d, c) for d, c in s.execute(q).all()]

    def original(self, collection: str, name: str) -> Path | None:
        """The stored original file of a document (None when it was never kept or is gone). On a
        server database a document ingested on another machine is fetched into this workspace's
        `files/` folder first."""
        doc = next((d for d in self.documents(collection) if d.name == name), None)
        return None if doc is None else self.originals.path(doc.sha256)

    def find(self, collection: str, sha256: str) -> DocumentInfo | None:
        with self.sessions() as s:
            row = s.execute(
                select(Document, Collection.name)
                .join(Collection)
                .where(Collection.name == collection, Document.sha256 == sha256)
            ).first()
            return _info(row[0], row[1]) if row else None

    @contextmanager
    def writer(self) -> Iterator[None]:
        """One writer per workspace at a time (across processes); recovers what a crashed writer left.

        On a server database writers run side by side (each document is one transaction there):
        they share the lock, which only keeps `recover_if_idle` from taking the journal of a
        running writer as that of a stopped one."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "ingest.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH if self.backend.shared else fcntl.LOCK_EX)
            try:
                if not self.backend.shared:
                    self._recover()
                with self.backend.writing():
                    yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def recover_if_idle(self) -> bool:
        """Record what a stopped writer left (interrupted ingests) when no writer holds the workspace
        now; listings call it so an interrupted ingest shows as failed, not as running. True if done."""
        if not (self.home / "journal").is_dir() and not self.home.exists():
            return False
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "ingest.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a writer is at work: its noted files are in progress
            try:
                self._recover()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return True

    def _recover_journal(self) -> None:
        for path in sorted((self.home / "journal").glob("*.json")):
            try:
                note = json.loads(path.read_text())
                for f in note["files"]:
                    self.mark_failed(
                        note["collection"],
                        name=f["name"],
                        sha256=f["sha256"],
                        fmt="unknown",
                        size=int(f["size"]),
                        error=f"{f['name']}: interrupted while it was being ingested (the process stopped); add it again",
                    )
            except (OSError, ValueError, KeyError, TypeError):
                pass  # an unreadable note cannot name its files
            path.unlink(missing_ok=True)

    def _recover(self) -> None:
        """Files a stopped writer had noted in its journal are recorded as failed; documents a killed
        writer left half-stored become failed (retryable), their chunks dropped."""
        self._recover_journal()
        self.backend.recover()

    def add_document(
        self,
        collection: str,
        *,
        name: str,
        sha256: str,
        fmt: str,
        size: int,
        pages: int | None,
        warnings: Sequence[str],
        chunks: Sequence[ChunkDraft],
        vectors: Vectors,
        page_info: Mapping[int, Mapping[str, float]] | None = None,
    ) -> tuple[int, list[str]]:
        """Store a document and make it searchable in one step; replaces older versions of the same name.
        `page_info`: what some pages are: read from a picture ({"ocr": confidence}), a stretch of a
        recording ({"start": s, "end": s}).

        Returns the new document id and the names of the versions it replaced. Call inside `writer()`.
        """
        if len(chunks) != len(vectors):
            raise IngestError(f"{name}: {len(chunks)} chunks but {len(vectors)} vectors")
        doc = NewDocument(name, sha256, fmt, size, pages, warnings, page_info)
        return self.backend.add(collection, doc, chunks, vectors)

    def flush(self) -> None:
        """Make every document added so far searchable (the local backend batches index writes)."""
        self.backend.flush()

    def mark_failed(self, collection: str, *, name: str, sha256: str, fmt: str, size: int, error: str) -> None:
        """Record a file that could not be ingested, so it is listed with its error. A document is its
        content: the same bytes failing again under another name are listed under the new name (the
        user's latest attempt), with the new error."""
        with self.sessions.begin() as s:
            col = self._collection(s, collection, create=True)
            assert col is not None
            existing = s.scalar(select(Document).where(Document.collection_id == col.id, Document.sha256 == sha256))
            if existing is not None and existing.status == DocumentStatus.READY:
                return
            if existing is None:
                s.add(
                    Document(
                        collection_id=col.id,
                        name=name,
                        sha256=sha256,
                        format=fmt,
                        size=size,
                        status=DocumentStatus.FAILED,
                        error=error,
                    )
                )
            else:
                if existing.status == DocumentStatus.FAILED:
                    existing.name, existing.format, existing.size = name, fmt, size
                existing.status, existing.error = DocumentStatus.FAILED, error

    def drop_failed_versions(self, collection: str, name: str, keep_sha256: str) -> int:
        """Forget failed versions of `name` other than `keep_sha256` (e.g. an interrupted replacement,
        once the file on disk is the ready version again); they have no chunks. Returns how many."""
        with self.sessions.begin() as s:
            col = self._collection(s, collection)
            if col is None:
                return 0
            gone = s.execute(
                delete(Document).where(
                    Document.collection_id == col.id,
                    Document.name == name,
                    Document.status == DocumentStatus.FAILED,
                    Document.sha256 != keep_sha256,
                )
            )
            return int(getattr(gone, "rowcount", 0) or 0)

    def delete_document(self, collection: str, name: str, *, scrub: bool = True) -> int:
        """Delete every version of `name` from the collection: text, vectors, its original file where
        no other document has the same content, and every copy SQLite kept (`catalog.forget`; with
        `scrub=False` the caller runs it once after a batch of deletes)."""
        with self.backend.lock, self.sessions.begin() as s:
            col = self._collection(s, collection)
            if col is None:
                raise IngestError(f"no collection named {collection!r}")
            found = s.execute(
                select(Document.id, Document.sha256).where(Document.collection_id == col.id, Document.name == name)
            ).all()
            docs, hashes = [d for d, _ in found], {h for _, h in found}
            if not docs:
                raise IngestError(f"no document named {name!r} in collection {collection!r}")
            after = self.backend.forget(s, collection, docs)
            s.execute(delete(Document).where(Document.id.in_(docs)))
            kept = set(s.scalars(select(Document.sha256).where(Document.sha256.in_(hashes))))
        after()
        self.originals.drop(hashes - kept)
        if scrub:
            forget(self.engine, full_text=True)
        return len(docs)

    # ---- indexes -------------------------------------------------------------------
    def index(self, collection: str) -> VectorIndex | PgVectorIndex:
        """The collection's vector index: FAISS, checked against the catalog (rebuilt when they
        disagree), or on the PostgreSQL backend the server's own."""
        check_collection_name(collection)
        return self.backend.index(collection)

    def reindex(self, collection: str) -> int:
        """Rebuild a collection's index from the catalog; returns its size."""
        return self.backend.reindex(collection)
