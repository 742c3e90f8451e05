"""The folders and files a collection mirrors (`ingest.sync`), and renaming a document in place:
the store's side of a sync. All SQL on the catalog stays in ingest."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from ingest.catalog import Collection, CollectionSource, Document
from ingest.errors import IngestError


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


class StoreSources:
    """Sources and renames (mixed into `Store`): needs its sessions, lock and `_collection`."""

    sessions: sessionmaker[Session]
    _lock: threading.RLock
    _collection: Callable[..., Collection | None]  # (session, name, create=False), from Store

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
                )
                for r in rows
            ]

    def set_sources(self, collection: str, specs: Sequence[SourceSpec]) -> None:
        """Make `specs` the collection's sources (creating the collection if needed)."""
        with self._lock, self.sessions.begin() as s:
            col = self._collection(s, collection, create=True)
            assert col is not None
            s.execute(delete(CollectionSource).where(CollectionSource.collection_id == col.id))
            for spec in specs:
                s.add(
                    CollectionSource(
                        collection_id=col.id,
                        path=spec.path,
                        include_json=json.dumps(list(spec.include)),
                        exclude_json=json.dumps(list(spec.exclude)),
                    )
                )

    def record_sync(self, collection: str, result: dict[str, Any]) -> None:
        """Keep the last sync's time and result with each of the collection's sources."""
        with self._lock, self.sessions.begin() as s:
            col = self._collection(s, collection)
            if col is None:
                return
            for row in s.scalars(select(CollectionSource).where(CollectionSource.collection_id == col.id)):
                row.synced_at = datetime.now(UTC).replace(tzinfo=None)
                row.result = json.dumps(result)

    def rename_document(self, collection: str, old: str, new: str) -> None:
        """Give document `old` the name `new` (a moved or renamed file): its chunks and vectors stay."""
        with self._lock, self.sessions.begin() as s:
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
