"""The knowledge store: SQL catalog (truth) plus a derived FAISS index per collection."""

from __future__ import annotations

import fcntl
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ingest.catalog import Chunk, Collection, Document, DocumentStatus, forget, is_server_url, make_engine
from ingest.embed import Vectors
from ingest.errors import IndexMismatchError, IngestError
from ingest.journal import Journal
from ingest.pg_vectors import PgVectorIndex, ensure_hnsw
from ingest.records import COLLECTION_NAME, DocumentInfo, StoredChunk, _info, check_collection_name
from ingest.store_reads import StoreReads
from ingest.store_sources import StoreSources
from ingest.types import ChunkDraft
from ingest.vectors import VectorIndex

__all__ = ["COLLECTION_NAME", "DocumentInfo", "Store", "StoredChunk", "check_collection_name"]

FLUSH_S = 2.0  # documents added within this long share one index write (and become searchable together)


delete_originals = text("DELETE FROM originals WHERE sha256 = :h")


class Store(StoreReads, StoreSources, Journal):
    """Collections, documents and chunks of one workspace.

    Two backends: the SQLite file in the workspace with a FAISS index per collection (the default,
    one writer per workspace), or a PostgreSQL server (`url`) that holds the vectors (pgvector) and
    the full text itself, where a document is stored and made searchable in one transaction, so any
    number of processes on any number of machines write at once."""

    def __init__(self, home: Path, embedder: str, dim: int, url: str | None = None) -> None:
        self.home = home
        self.embedder, self.dim = embedder, dim
        self.server = is_server_url(url)
        self.engine = make_engine(home / "archivist.db", url)
        if self.server:
            ensure_hnsw(self.engine, dim)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._indexes: dict[str, VectorIndex] = {}
        self._lock = threading.RLock()
        # documents stored but not yet ready: collection -> [(document id, versions it replaces, rebuild)]
        self._pending: dict[str, list[tuple[int, list[int], bool]]] = {}
        self._pending_keys: set[tuple[str, str]] = set()  # (collection, name or sha256) of those
        self._last_flush = time.monotonic()

    def describe(self) -> str:
        """Where the catalog is, as a user may be shown it (never a password)."""
        if self.server:
            u = self.engine.url
            return f"PostgreSQL at {u.host or 'localhost'}:{u.port or 5432}/{u.database} (pgvector, shared)"
        return f"SQLite file {self.home / 'archivist.db'} with a FAISS index per collection"

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
        if doc is None:
            return None
        here = next((self.home / "files").glob(f"{doc.sha256}*"), None)
        if here is not None or not self.server:
            return here
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT suffix, data FROM originals WHERE sha256 = :h"), {"h": doc.sha256}).first()
        if row is None:
            return None
        target = self.home / "files" / f"{doc.sha256}{row[0]}"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(bytes(row[1]))
        tmp.replace(target)
        return target

    def share_original(self, sha256: str, suffix: str, data: bytes) -> None:
        """On a server database, keep an original file where every machine can read it."""
        if not self.server:
            return
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO originals (sha256, suffix, data, created_at) VALUES (:h, :s, :d, now()) "
                    "ON CONFLICT (sha256) DO NOTHING"
                ),
                {"h": sha256, "s": suffix, "d": data},
            )

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
        if self.server:
            with open(self.home / "ingest.lock", "w") as fh:
                fcntl.flock(fh, fcntl.LOCK_SH)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
            return
        with open(self.home / "ingest.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                self._recover()
                self._last_flush = time.monotonic()
                try:
                    yield
                finally:
                    self.flush()
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
        """Documents left 'indexing' by a killed writer become 'failed' (retryable), their chunks dropped;
        files a stopped writer had noted in its journal are recorded as failed."""
        self._recover_journal()
        if self.server:
            return  # a document is stored in one transaction there: none is left half-written
        with self.sessions.begin() as s:
            stale = s.scalars(select(Document.id).where(Document.status == DocumentStatus.INDEXING)).all()
            if stale:
                s.execute(delete(Chunk).where(Chunk.document_id.in_(stale)))
                s.execute(
                    update(Document)
                    .where(Document.id.in_(stale))
                    .values(
                        status=DocumentStatus.FAILED, n_chunks=0, error="interrupted while indexing; ingest it again"
                    )
                )

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
        if self.server:
            fields = dict(
                name=name, sha256=sha256, fmt=fmt, size=size, pages=pages, warnings=warnings, page_info=page_info
            )
            return self._add_on_server(collection, fields, chunks, vectors)
        if {(collection, name), (collection, sha256)} & self._pending_keys:
            self.flush()  # the same name or content again within one flush: settle the first one
        with self.sessions.begin() as s:
            col = self._collection(s, collection, create=True)
            assert col is not None
            same = list(
                s.scalars(select(Document.id).where(Document.collection_id == col.id, Document.sha256 == sha256))
            )
            same_chunks = list(s.scalars(select(Chunk.id).where(Chunk.document_id.in_(same)))) if same else []
            s.execute(delete(Document).where(Document.id.in_(same)))
            doc = Document(
                collection_id=col.id,
                name=name,
                sha256=sha256,
                format=fmt,
                size=size,
                pages=pages,
                n_chunks=len(chunks),
                status=DocumentStatus.INDEXING,
                warnings_json=json.dumps(list(warnings)),
                pages_json=_pages_json(page_info),
            )
            s.add(doc)
            s.flush()
            rows = _chunk_rows(doc.id, chunks, vectors)
            s.add_all(rows)
            s.flush()
            ids = np.array([r.id for r in rows], dtype=np.int64)
            old = s.execute(
                select(Document.id, Document.sha256).where(
                    Document.collection_id == col.id, Document.name == name, Document.id != doc.id
                )
            ).all()
            old_ids = [o[0] for o in old]
            old_chunks = list(s.scalars(select(Chunk.id).where(Chunk.document_id.in_(old_ids)))) if old_ids else []
            doc_id = doc.id
        # The index learns the new vectors (and forgets the old versions') now; it is written, and the
        # catalog calls the documents ready, at the next flush: search trusts only 'ready' chunks, and
        # a crash in between leaves the new version 'indexing' (failed and retryable on restart) and
        # an index that is repaired from the catalog when it is next opened.
        with self._lock:
            index = self._live_index(collection)
            removed = index.remove(old_chunks + same_chunks)
            index.add(ids, vectors)
            self._pending.setdefault(collection, []).append((doc_id, old_ids, not removed))
            self._pending_keys.update({(collection, name), (collection, sha256)})
        if time.monotonic() - self._last_flush >= FLUSH_S:
            self.flush()
        return doc_id, [name for _ in old_ids]

    def _add_on_server(
        self, collection: str, doc: dict[str, Any], chunks: Sequence[ChunkDraft], vectors: Vectors
    ) -> tuple[int, list[str]]:
        """PostgreSQL: the document, its chunks and vectors, and the end of the versions it replaces,
        in one transaction; writers of the same name wait for each other (an advisory lock)."""
        for attempt in range(3):
            try:
                with self.sessions.begin() as s:
                    s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{collection}/{doc['name']}"})
                    col = self._collection(s, collection, create=True)
                    assert col is not None
                    mine = (Document.sha256 == doc["sha256"]) | (Document.name == doc["name"])
                    found = s.execute(
                        select(Document.id, Document.sha256).where(Document.collection_id == col.id, mine)
                    )
                    old, replaced = [], []
                    for doc_id, sha in found:
                        old.append(doc_id)
                        if sha != doc["sha256"]:
                            replaced.append(doc["name"])
                    s.execute(delete(Document).where(Document.id.in_(old)))
                    row = Document(
                        collection_id=col.id,
                        name=doc["name"],
                        sha256=doc["sha256"],
                        format=doc["fmt"],
                        size=doc["size"],
                        pages=doc["pages"],
                        n_chunks=len(chunks),
                        status=DocumentStatus.READY,
                        warnings_json=json.dumps(list(doc["warnings"])),
                        pages_json=_pages_json(doc["page_info"]),
                    )
                    s.add(row)
                    s.flush()
                    s.add_all(_chunk_rows(row.id, chunks, vectors))
                    return row.id, replaced
            except IntegrityError:  # another writer created the collection at the same moment: try again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def flush(self) -> None:
        """Write the indexes that changed, then mark their new documents ready and drop the versions
        they replace, in one transaction. One index write serves every document added since the
        last flush (a folder of small files wrote the whole index once per file)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._pending_keys.clear()
            self._last_flush = time.monotonic()
            for collection, docs in pending.items():
                index = self._indexes[collection]  # holds the changes (see _live_index)
                index.save()
                with self.sessions.begin() as s:
                    for doc_id, old_ids, _ in docs:
                        s.execute(update(Document).where(Document.id == doc_id).values(status=DocumentStatus.READY))
                        if old_ids:
                            s.execute(delete(Document).where(Document.id.in_(old_ids)))
                if any(rebuild for _, _, rebuild in docs):
                    self._rebuild(collection, index)

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
        with self._lock, self.sessions.begin() as s:
            col = self._collection(s, collection)
            if col is None:
                raise IngestError(f"no collection named {collection!r}")
            found = s.execute(
                select(Document.id, Document.sha256).where(Document.collection_id == col.id, Document.name == name)
            ).all()
            docs, hashes = [d for d, _ in found], {h for _, h in found}
            if not docs:
                raise IngestError(f"no document named {name!r} in collection {collection!r}")
            removed = True
            if not self.server:
                chunk_ids = list(s.scalars(select(Chunk.id).where(Chunk.document_id.in_(docs))))
                index = self._live_index(collection)
                removed = index.remove(chunk_ids)
                index.save()
            s.execute(delete(Document).where(Document.id.in_(docs)))
            kept = set(s.scalars(select(Document.sha256).where(Document.sha256.in_(hashes))))
        if not removed:
            self._rebuild(collection, index)
        self._drop_originals(hashes - kept)
        if scrub:
            forget(self.engine, full_text=True)
        return len(docs)

    def _drop_originals(self, hashes: set[str]) -> None:
        """Remove the kept original files of these contents (no document has them any more)."""
        for sha in hashes:
            for f in (self.home / "files").glob(f"{sha}*"):
                f.unlink(missing_ok=True)
        if self.server and hashes:
            with self.engine.begin() as conn:
                conn.execute(delete_originals, [{"h": h} for h in hashes])

    # ---- indexes -------------------------------------------------------------------
    def _live_index(self, collection: str) -> VectorIndex:
        """(SQLite backend) With changes not yet written, the index held here is the truth (never reloaded over them)."""
        with self._lock:
            return self._indexes[collection] if collection in self._pending else self._faiss(collection)

    def index(self, collection: str) -> VectorIndex | PgVectorIndex:
        """The collection's vector index: FAISS, checked against the catalog (rebuilt when they
        disagree), or on the PostgreSQL backend the server's own."""
        check_collection_name(collection)
        if self.server:
            with self.sessions() as s:
                self._collection(s, collection)  # refuses another embedder's collection
            return PgVectorIndex(self.engine, collection, self.dim)
        return self._faiss(collection)

    def _faiss(self, collection: str) -> VectorIndex:
        with self._lock:
            idx = self._indexes.get(collection)
            if idx is not None and not idx.changed_on_disk():
                return idx
            idx = VectorIndex(self.home / "indexes" / collection, self.embedder, self.dim)
            loaded = idx.load()
            if not loaded or idx.ids() != self._ready_chunk_ids(collection):
                self._rebuild(collection, idx)
            self._indexes[collection] = idx
            return idx

    def _ready_chunk_ids(self, collection: str) -> set[int]:
        with self.sessions() as s:
            return set(
                s.scalars(
                    select(Chunk.id)
                    .join(Document)
                    .join(Collection)
                    .where(Collection.name == collection, Document.status == DocumentStatus.READY)
                )
            )

    def _rebuild(self, collection: str, idx: VectorIndex) -> None:
        idx.reset(len(self._ready_chunk_ids(collection)))
        with self.sessions() as s:
            rows = s.execute(
                select(Chunk.id, Chunk.embedding)
                .join(Document)
                .join(Collection)
                .where(Collection.name == collection, Document.status == DocumentStatus.READY)
                .execution_options(yield_per=10000)
            )
            for part in rows.partitions():
                ids = np.array([r[0] for r in part], dtype=np.int64)
                vecs = np.frombuffer(b"".join(r[1] for r in part), dtype=np.float32).reshape(len(part), self.dim)
                idx.add(ids, vecs)
        idx.save()

    def reindex(self, collection: str) -> int:
        """Rebuild a collection's index from the catalog; returns its size."""
        if self.server:
            with self.engine.begin() as conn:
                conn.execute(text(f"REINDEX INDEX chunks_embedding_hnsw_{self.dim}"))
            return PgVectorIndex(self.engine, collection, self.dim).size
        self.flush()
        with self._lock:
            idx = VectorIndex(self.home / "indexes" / collection, self.embedder, self.dim)
            self._rebuild(collection, idx)
            self._indexes[collection] = idx
            return idx.size


def _chunk_rows(document_id: int, chunks: Sequence[ChunkDraft], vectors: Vectors) -> list[Chunk]:
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
