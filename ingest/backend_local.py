"""The local backend: the workspace's SQLite file holds the catalog and the vectors (truth), and a
FAISS index per collection, derived from them, serves search. One writer per workspace."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ingest.backend import Catalog, NewDocument, chunk_rows
from ingest.catalog import Chunk, Collection, Document, DocumentStatus
from ingest.embed import Vectors
from ingest.types import ChunkDraft
from ingest.vectors import VectorIndex

FLUSH_S = 2.0  # documents added within this long share one index write (and become searchable together)


class LocalBackend:
    shared = False

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._indexes: dict[str, VectorIndex] = {}
        self.lock = threading.RLock()
        # documents stored but not yet ready: collection -> [(document id, versions it replaces, rebuild)]
        self._pending: dict[str, list[tuple[int, list[int], bool]]] = {}
        self._pending_keys: set[tuple[str, str]] = set()  # (collection, name or sha256) of those
        self._last_flush = time.monotonic()

    def describe(self) -> str:
        return f"SQLite file {self.catalog.home / 'archivist.db'} with a FAISS index per collection"

    @contextmanager
    def writing(self) -> Iterator[None]:
        self._last_flush = time.monotonic()
        try:
            yield
        finally:
            self.flush()

    def recover(self) -> None:
        with self.catalog.sessions.begin() as s:
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

    def add(
        self, collection: str, doc: NewDocument, chunks: Sequence[ChunkDraft], vectors: Vectors
    ) -> tuple[int, list[str]]:
        """The document and its chunks go into the catalog as 'indexing'; the index learns the new
        vectors (and forgets the old versions') now; it is written, and the catalog calls the
        documents ready, at the next flush: search trusts only 'ready' chunks, and a crash in
        between leaves the new version 'indexing' (failed and retryable on restart) and an index
        that is repaired from the catalog when it is next opened."""
        if {(collection, doc.name), (collection, doc.sha256)} & self._pending_keys:
            self.flush()  # the same name or content again within one flush: settle the first one
        with self.catalog.sessions.begin() as s:
            col = self.catalog._collection(s, collection, create=True)
            assert col is not None
            same = list(
                s.scalars(select(Document.id).where(Document.collection_id == col.id, Document.sha256 == doc.sha256))
            )
            same_chunks = list(s.scalars(select(Chunk.id).where(Chunk.document_id.in_(same)))) if same else []
            s.execute(delete(Document).where(Document.id.in_(same)))
            row = doc.row(col.id, len(chunks), DocumentStatus.INDEXING)
            s.add(row)
            s.flush()
            rows = chunk_rows(row.id, chunks, vectors)
            s.add_all(rows)
            s.flush()
            ids = np.array([r.id for r in rows], dtype=np.int64)
            old_ids = list(
                s.scalars(
                    select(Document.id).where(
                        Document.collection_id == col.id, Document.name == doc.name, Document.id != row.id
                    )
                )
            )
            old_chunks = list(s.scalars(select(Chunk.id).where(Chunk.document_id.in_(old_ids)))) if old_ids else []
            doc_id = row.id
        with self.lock:
            index = self._live_index(collection)
            removed = index.remove(old_chunks + same_chunks)
            index.add(ids, vectors)
            self._pending.setdefault(collection, []).append((doc_id, old_ids, not removed))
            self._pending_keys.update({(collection, doc.name), (collection, doc.sha256)})
        if time.monotonic() - self._last_flush >= FLUSH_S:
            self.flush()
        return doc_id, [doc.name for _ in old_ids]

    def flush(self) -> None:
        """Write the indexes that changed, then mark their new documents ready and drop the versions
        they replace, in one transaction. One index write serves every document added since the
        last flush (a folder of small files wrote the whole index once per file)."""
        with self.lock:
            pending, self._pending = self._pending, {}
            self._pending_keys.clear()
            self._last_flush = time.monotonic()
            for collection, docs in pending.items():
                index = self._indexes[collection]  # holds the changes (see _live_index)
                index.save()
                with self.catalog.sessions.begin() as s:
                    for doc_id, old_ids, _ in docs:
                        s.execute(update(Document).where(Document.id == doc_id).values(status=DocumentStatus.READY))
                        if old_ids:
                            s.execute(delete(Document).where(Document.id.in_(old_ids)))
                if any(rebuild for _, _, rebuild in docs):
                    self._rebuild(collection, index)

    def forget(self, s: Session, collection: str, doc_ids: Sequence[int]) -> Callable[[], None]:
        chunk_ids = list(s.scalars(select(Chunk.id).where(Chunk.document_id.in_(doc_ids))))
        index = self._live_index(collection)
        removed = index.remove(chunk_ids)
        index.save()
        return (lambda: None) if removed else (lambda: self._rebuild(collection, index))

    def index(self, collection: str) -> VectorIndex:
        """FAISS, checked against the catalog (rebuilt when they disagree)."""
        with self.lock:
            idx = self._indexes.get(collection)
            if idx is not None and not idx.changed_on_disk():
                return idx
            idx = VectorIndex(self.catalog.home / "indexes" / collection, self.catalog.embedder, self.catalog.dim)
            loaded = idx.load()
            if not loaded or idx.ids() != self._ready_chunk_ids(collection):
                self._rebuild(collection, idx)
            self._indexes[collection] = idx
            return idx

    def reindex(self, collection: str) -> int:
        self.flush()
        with self.lock:
            idx = VectorIndex(self.catalog.home / "indexes" / collection, self.catalog.embedder, self.catalog.dim)
            self._rebuild(collection, idx)
            self._indexes[collection] = idx
            return idx.size

    def renamed(self, old: str, new: str) -> None:
        with self.lock:
            self._indexes.pop(old, None)
            folder = self.catalog.home / "indexes" / old
            if folder.exists():
                folder.rename(self.catalog.home / "indexes" / new)

    def dropped(self, collection: str) -> None:
        with self.lock:
            self._indexes.pop(collection, None)
            shutil.rmtree(self.catalog.home / "indexes" / collection, ignore_errors=True)

    def _live_index(self, collection: str) -> VectorIndex:
        """With changes not yet written, the index held here is the truth (never reloaded over them)."""
        with self.lock:
            return self._indexes[collection] if collection in self._pending else self.index(collection)

    def _ready_chunk_ids(self, collection: str) -> set[int]:
        with self.catalog.sessions() as s:
            return set(s.scalars(_ready(select(Chunk.id), collection)))

    def _rebuild(self, collection: str, idx: VectorIndex) -> None:
        idx.reset(len(self._ready_chunk_ids(collection)))
        dim = self.catalog.dim
        with self.catalog.sessions() as s:
            rows = s.execute(_ready(select(Chunk.id, Chunk.embedding), collection).execution_options(yield_per=10000))
            for part in rows.partitions():
                ids = np.array([r[0] for r in part], dtype=np.int64)
                vecs = np.frombuffer(b"".join(r[1] for r in part), dtype=np.float32).reshape(len(part), dim)
                idx.add(ids, vecs)
        idx.save()


def _ready(q, collection: str):  # type: ignore[no-untyped-def]
    """The query narrowed to the ready chunks of `collection`."""
    return (
        q.join(Document).join(Collection).where(Collection.name == collection, Document.status == DocumentStatus.READY)
    )
