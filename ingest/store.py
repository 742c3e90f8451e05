"""The knowledge store: SQL catalog (truth) plus a derived FAISS index per collection."""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from ingest.catalog import Chunk, Collection, Document, DocumentStatus, make_engine
from ingest.embed import Vectors
from ingest.errors import IndexMismatchError, IngestError
from ingest.filters import SearchFilter
from ingest.types import ChunkDraft
from ingest.vectors import VectorIndex

FLUSH_S = 2.0  # documents added within this long share one index write (and become searchable together)


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


class Store:
    """Collections, documents and chunks of one workspace."""

    def __init__(self, home: Path, embedder: str, dim: int) -> None:
        self.home = home
        self.embedder, self.dim = embedder, dim
        self.engine = make_engine(home / "archivist.db")
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._indexes: dict[str, VectorIndex] = {}
        self._lock = threading.RLock()
        # documents stored but not yet ready: collection -> [(document id, versions it replaces, rebuild)]
        self._pending: dict[str, list[tuple[int, list[int], bool]]] = {}
        self._pending_keys: set[tuple[str, str]] = set()  # (collection, name or sha256) of those
        self._last_flush = time.monotonic()

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
        """One writer per workspace at a time (across processes); recovers what a crashed writer left."""
        self.home.mkdir(parents=True, exist_ok=True)
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

    def journal(self, collection: str, files: Sequence[tuple[str, bytes]]) -> Path:
        """Note files about to be ingested into `collection` (name, content), inside `writer()`. A file
        still noted when its writer stops (the process was killed or the app stopped) is recorded as
        failed, with that reason, by the next writer: an ingest never vanishes. Returns the note."""
        folder = self.home / "journal"
        folder.mkdir(parents=True, exist_ok=True)
        entries = [{"name": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files]
        path = folder / f"{uuid.uuid4().hex}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"collection": collection, "files": entries}))
        tmp.replace(path)
        return path

    def journal_done(self, path: Path, name: str) -> None:
        """`name` of the note at `path` was ingested or recorded as failed: forget it."""
        try:
            note = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        note["files"] = [f for f in note["files"] if f["name"] != name]
        if not note["files"]:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(note))
        tmp.replace(path)

    def in_progress(self, collection: str | None = None) -> list[tuple[str, str, int]]:
        """(collection, name, size) of the files a running writer has noted and not finished."""
        out: list[tuple[str, str, int]] = []
        for path in sorted((self.home / "journal").glob("*.json")):
            try:
                note = json.loads(path.read_text())
                if collection is None or note["collection"] == collection:
                    out.extend((note["collection"], f["name"], int(f["size"])) for f in note["files"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

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
    ) -> tuple[int, list[str]]:
        """Store a document and make it searchable in one step; replaces older versions of the same name.

        Returns the new document id and the names of the versions it replaced. Call inside `writer()`.
        """
        if len(chunks) != len(vectors):
            raise IngestError(f"{name}: {len(chunks)} chunks but {len(vectors)} vectors")
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
        """Record a file that could not be ingested, so it is listed with its error."""
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

    def delete_document(self, collection: str, name: str) -> int:
        """Delete every version of `name` from the collection, text and vectors; returns how many."""
        with self._lock, self.sessions.begin() as s:
            col = self._collection(s, collection)
            if col is None:
                raise IngestError(f"no collection named {collection!r}")
            docs = list(s.scalars(select(Document.id).where(Document.collection_id == col.id, Document.name == name)))
            if not docs:
                raise IngestError(f"no document named {name!r} in collection {collection!r}")
            chunk_ids = list(s.scalars(select(Chunk.id).where(Chunk.document_id.in_(docs))))
            index = self._live_index(collection)
            removed = index.remove(chunk_ids)
            index.save()
            s.execute(delete(Document).where(Document.id.in_(docs)))
        if not removed:
            self._rebuild(collection, index)
        return len(docs)

    # ---- indexes -------------------------------------------------------------------
    def _live_index(self, collection: str) -> VectorIndex:
        """With changes not yet written, the index held here is the truth (never reloaded over them)."""
        with self._lock:
            return self._indexes[collection] if collection in self._pending else self.index(collection)

    def index(self, collection: str) -> VectorIndex:
        """The collection's FAISS index, checked against the catalog (rebuilt when they disagree)."""
        check_collection_name(collection)
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
        self.flush()
        with self._lock:
            idx = VectorIndex(self.home / "indexes" / collection, self.embedder, self.dim)
            self._rebuild(collection, idx)
            self._indexes[collection] = idx
            return idx.size

    def page_texts(self, ids: Sequence[int]) -> dict[int, str]:
        """For each chunk id, its page's text rebuilt from the page's chunks (each chunk is a slice
        of the page text at its offsets; whitespace between chunks becomes newlines)."""
        if not ids:
            return {}
        with self.sessions() as s:
            keys = s.execute(select(Chunk.id, Chunk.document_id, Chunk.page).where(Chunk.id.in_(list(ids)))).all()
            wanted = {(d, p) for _, d, p in keys}
            docs = {d for d, _ in wanted}
            rows = s.execute(
                select(Chunk.document_id, Chunk.page, Chunk.start, Chunk.end, Chunk.text).where(
                    Chunk.document_id.in_(list(docs)), Chunk.page.in_([p for _, p in wanted])
                )
            ).all()
        slices: dict[tuple[int, int | None], list[tuple[int, int, str]]] = {}
        for d, p, a, b, t in rows:
            if (d, p) in wanted:
                slices.setdefault((d, p), []).append((a, b, t))
        pages: dict[tuple[int, int | None], str] = {}
        for key, parts in slices.items():
            buf = ["\n"] * max(b for _, b, _ in parts)
            for a, b, t in parts:
                buf[a:b] = list(t) if len(t) == b - a else list(t[: b - a].ljust(b - a))
            pages[key] = "".join(buf)
        return {cid: pages[(d, p)] for cid, d, p in keys if (d, p) in pages}

    def section(self, chunk_id: int, max_chars: int = 6000) -> tuple[str, str, int]:
        """The text of a chunk's section (its document's chunks under the same heading, in order;
        overlaps merged), the heading, and where the chunk starts in that text (-1: not found)."""
        with self.sessions() as s:
            c = s.get(Chunk, chunk_id)
            if c is None:
                return "", "", -1
            rows = s.execute(
                select(Chunk.id, Chunk.start, Chunk.end, Chunk.text)
                .where(Chunk.document_id == c.document_id, Chunk.heading == c.heading, Chunk.page.is_(c.page))
                .order_by(Chunk.start)
            ).all()
            heading = c.heading
        text, at, reached = "", -1, -1
        for cid, a, b, t in rows:
            if a < reached:  # overlapping windows: keep only what is new
                t = t[reached - a :] if len(t) == b - a else t
            elif text:
                text += "\n"
            if cid == chunk_id:
                at = max(0, len(text) - max(0, reached - a))
            text += t
            reached = max(reached, b)
            if len(text) > max_chars and at >= 0:
                break
        return text, heading, at

    def chunk_ids(self, collection: str, where: SearchFilter) -> list[int]:
        """The ready chunks of a collection that pass a filter (documents, pages)."""
        params: dict[str, object] = {"col": collection}
        sql = (
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id JOIN collections col "
            "ON col.id = d.collection_id WHERE col.name = :col AND d.status = 'ready'" + where.sql(params)
        )
        with self.engine.connect() as conn:
            return [int(r[0]) for r in conn.execute(text(sql), params)]

    def count_chunks(self, collection: str, document: str, pages: Sequence[int] = ()) -> int:
        """Ready chunks of a document that overlap any of `pages` (all of them when none are given)."""
        sql = (
            "SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id = c.document_id JOIN collections col "
            "ON col.id = d.collection_id WHERE col.name = :col AND d.name = :doc AND d.status = 'ready'"
        )
        if pages:  # a document without pages: every passage of it is relevant
            overlaps = " OR ".join(
                f"(c.page <= :p{i} AND COALESCE(c.page_end, c.page) >= :p{i})" for i in range(len(pages))
            )
            sql += f" AND ({overlaps})"
        params: dict[str, object] = {"col": collection, "doc": document}
        params.update({f"p{i}": p for i, p in enumerate(pages)})
        with self.engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar() or 0)

    def original(self, collection: str, name: str) -> Path | None:
        """The stored original file of a document (None when it was never kept or is gone)."""
        doc = next((d for d in self.documents(collection) if d.name == name), None)
        if doc is None:
            return None
        return next((self.home / "files").glob(f"{doc.sha256}*"), None)

    def sample_texts(self, n: int) -> list[str]:
        """Up to n chunk texts spread over the workspace (for measuring the encoder on real text)."""
        with self.sessions() as s:
            total = s.scalar(select(func.count(Chunk.id))) or 0
            step = max(1, total // max(n, 1))
            rows = s.execute(select(Chunk.text).where(Chunk.id % step == 0).order_by(Chunk.id).limit(n))
            return [r[0] for r in rows]

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Ready chunks by id (chunks of documents not ready are left out)."""
        if not ids:
            return {}
        with self.sessions() as s:
            rows = s.execute(
                select(Chunk, Document.name, Collection.name)
                .select_from(Chunk)
                .join(Document, Chunk.document_id == Document.id)
                .join(Collection, Document.collection_id == Collection.id)
                .where(Chunk.id.in_(list(ids)), Document.status == DocumentStatus.READY)
            ).all()
        return {
            c.id: StoredChunk(
                c.id,
                dname,
                c.document_id,
                cname,
                c.page,
                c.page_end,
                c.heading,
                c.start,
                c.end,
                c.text,
                c.n_tokens,
                c.embedding,
            )
            for c, dname, cname in rows
        }


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


COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
