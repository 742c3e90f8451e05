"""Writes over a whole collection, mixed into `Store`: the folders and files it mirrors
(`ingest.sync`), renaming a document in place, and renaming or deleting the collection itself.
All SQL on the catalog stays in ingest."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from ingest.backend import StorageBackend
from ingest.catalog import Collection, CollectionSource, Document, forget
from ingest.errors import IngestError
from ingest.originals import Originals
from ingest.records import check_collection_name


@dataclass(frozen=True)
class SourceSpec:
    """A folder (searched recursively) or a file a collection mirrors; `include`/`exclude`: glob
    patterns on the path inside the folder (`*.pdf`, `drafts/*`)."""

    path: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredSource:
    spec: SourceSpec
    synced_at: datetime | None
    result: dict[str, Any] | None
    follow: bool = False  # the app and `archivist serve` follow it in the background


class StoreSources:
    """Sources, renames and collection deletes (mixed into `Store`): needs its home, engine,
    sessions, lock, loaded indexes and `_collection`."""

    home: Path
    engine: Engine
    sessions: sessionmaker[Session]
    backend: StorageBackend
    originals: Originals
    _collection: Callable[..., Collection | None]  # (session, name, create=False), from Store
    flush: Callable[[], None]

    def rename_collection(self, old: str, new: str) -> None:
        """Give collection `old` the name `new`: its documents, chunks, vectors and sources stay."""
        check_collection_name(new)
        self.flush()
        with self.backend.lock, self.sessions.begin() as s:
            col = self._collection(s, old)
            if col is None:
                raise IngestError(f"no collection named {old!r}")
            if s.scalar(select(Collection.id).where(Collection.name == new)) is not None:
                raise IngestError(f"a collection named {new!r} exists already")
            col.name = new
            self.backend.renamed(old, new)

    def delete_collection(self, name: str) -> int:
        """Delete the collection and everything of it (documents, chunks, vectors, sources, original
        files no other document shares); returns how many documents it held."""
        self.flush()
        with self.backend.lock, self.sessions.begin() as s:
            col = self._collection(s, name)
            if col is None:
                raise IngestError(f"no collection named {name!r}")
            hashes = set(s.scalars(select(Document.sha256).where(Document.collection_id == col.id)))
            n = len(hashes)
            s.execute(delete(Document).where(Document.collection_id == col.id))  # chunks follow (cascade)
            s.delete(col)
            kept = set(s.scalars(select(Document.sha256).where(Document.sha256.in_(hashes)))) if hashes else set()
            self.backend.dropped(name)
        self.originals.drop(hashes - kept)
        forget(self.engine, full_text=True)
        return n

    def sources(self, collection: str) -> list[StoredSource]:
        """The collection's sources, as last set (empty when it has none or does not exist)."""
        with self.sessions() as s:
            col = s.scalar(select(Collection).where(Collection.name == collection))
            if col is None:
                return []
            rows = s.scalars(
                select(CollectionSource).where(CollectionSource.collection_id == col.id).order_by(CollectionSource.id)
            ).all()
            return [
                StoredSource(
                    SourceSpec(r.path, tuple(json.loads(r.include_json)), tuple(json.loads(r.exclude_json))),
                    r.synced_at,
                    json.loads(r.result) if r.result else None,
                    r.follow,
                )
                for r in rows
            ]

    def followed(self) -> list[str]:
        """The collections whose folders are followed in the background."""
        with self.sessions() as s:
            q = select(Collection.name).join(CollectionSource).where(CollectionSource.follow.is_(True)).distinct()
            return sorted(s.scalars(q))

    def set_sources(self, collection: str, specs: Sequence[SourceSpec], follow: bool | None = None) -> None:
        """Make `specs` the collection's sources (creating the collection if needed); `follow`: whether
        they are followed in the background (None: as before)."""
        with self.backend.lock, self.sessions.begin() as s:
            col = self._collection(s, collection, create=True)
            assert col is not None
            old = s.scalars(select(CollectionSource.follow).where(CollectionSource.collection_id == col.id)).first()
            follow = bool(old) if follow is None else follow
            s.execute(delete(CollectionSource).where(CollectionSource.collection_id == col.id))
            for spec in specs:
                s.add(
                    CollectionSource(
                        collection_id=col.id,
                        path=spec.path,
                        include_json=json.dumps(list(spec.include)),
                        exclude_json=json.dumps(list(spec.exclude)),
                        follow=follow,
                    )
                )

    def record_sync(self, collection: str, result: dict[str, Any]) -> None:
        """Keep the last sync's time and result with each of the collection's sources."""
        with self.backend.lock, self.sessions.begin() as s:
            col = self._collection(s, collection)
            if col is None:
                return
            for row in s.scalars(select(CollectionSource).where(CollectionSource.collection_id == col.id)):
                row.synced_at = datetime.now(UTC).replace(tzinfo=None)
                row.result = json.dumps(result)

    def rename_document(self, collection: str, old: str, new: str) -> None:
        """Give document `old` the name `new` (a moved or renamed file): its chunks and vectors stay."""
        with self.backend.lock, self.sessions.begin() as s:
            col = self._collection(s, collection)
            if col is None:
                raise IngestError(f"no collection named {collection!r}")
            taken = s.scalar(select(Document.id).where(Document.collection_id == col.id, Document.name == new))
            if taken is not None:
                raise IngestError(f"{new!r} is already a document of {collection!r}")
            docs = s.scalars(select(Document).where(Document.collection_id == col.id, Document.name == old)).all()
            if not docs:
                raise IngestError(f"no document named {old!r} in collection {collection!r}")
            for d in docs:
                d.name = new
