"""The SQL catalog: the source of truth for collections, documents and chunks (with their embeddings)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Dialect,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine

from ingest.schema import upgrade
from runtime.errors import ArchivistError


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def is_server_url(url: str | None) -> bool:
    """Whether a database URL names a PostgreSQL server (the shared backend) rather than a file."""
    return bool(url) and str(url).startswith(("postgresql", "postgres://"))


class Embedding(TypeDecorator[bytes]):
    """A chunk's vector: float32 bytes in SQLite, a pgvector `vector` in PostgreSQL (searched there);
    Python code sees float32 bytes on both."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from pgvector.sqlalchemy import Vector

            return dialect.type_descriptor(Vector())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "postgresql" and value is not None:
            return np.frombuffer(value, dtype=np.float32)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if dialect.name == "postgresql" and value is not None:
            return np.asarray(value, dtype=np.float32).tobytes()
        return value  # type: ignore[no-any-return]


class Base(DeclarativeBase):
    """Declarative base of every Archivist table."""


class Collection(Base):
    __tablename__ = "collections"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    embedder: Mapped[str] = mapped_column(String(200))
    dim: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    documents: Mapped[list[Document]] = relationship(back_populates="collection", cascade="all, delete-orphan")


class DocumentStatus(StrEnum):
    """Where a document is: being indexed, searchable, or failed (ingesting it again retries)."""

    INDEXING = "indexing"
    READY = "ready"
    FAILED = "failed"


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection_id", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(20))
    size: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    n_chunks: Mapped[int] = mapped_column(Integer, default=0)
    # indexing -> ready, or failed (retryable: ingesting the same file again redoes it)
    status: Mapped[str] = mapped_column(String(20), default=DocumentStatus.INDEXING.value, index=True)
    warnings_json: Mapped[str] = mapped_column(Text, default="[]")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    # what some pages are: {"4": {"ocr": 0.93}} read from a picture (the OCR engine's confidence),
    # {"3": {"start": 61.2, "end": 90.4}} a stretch of a recording; None: plain pages
    pages_json: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    collection: Mapped[Collection] = relationship(back_populates="documents")
    chunks: Mapped[list[Chunk]] = relationship(back_populates="document", cascade="all, delete-orphan")

    @property
    def warnings(self) -> list[str]:
        value: list[str] = json.loads(self.warnings_json or "[]")
        return value


class Chunk(Base):
    __tablename__ = "chunks"
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    page_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heading: Mapped[str] = mapped_column(Text, default="")
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    n_tokens: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(Embedding)
    document: Mapped[Document] = relationship(back_populates="chunks")


class CollectionSource(Base):
    """A folder or file a collection mirrors (`archivist sync`), and how its last sync went."""

    __tablename__ = "collection_sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)
    include_json: Mapped[str] = mapped_column(Text, default="[]")
    exclude_json: Mapped[str] = mapped_column(Text, default="[]")
    follow: Mapped[bool] = mapped_column(default=False)
    synced_at: Mapped[datetime | None] = mapped_column(nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)


class IngestJob(Base):
    """An uploaded file waiting for, or under, an ingest worker (the server backend; ingest/jobs.py)."""

    __tablename__ = "ingest_jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    collection: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), index=True)  # queued | running | done | failed
    stage: Mapped[str] = mapped_column(String(20))
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    error_kind: Mapped[str] = mapped_column(String(20), default="")
    warnings_json: Mapped[str] = mapped_column(Text, default="[]")
    worker: Mapped[str] = mapped_column(String(200), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now)


class AssistantRow(Base):
    """An assistant's YAML on a server database (a workspace's own are files; assistants/library.py)."""

    __tablename__ = "assistants"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    yaml: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column()


class OriginalRow(Base):
    """A document's original file on a server database, by content (on SQLite they are files)."""

    __tablename__ = "originals"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    suffix: Mapped[str] = mapped_column(String(10))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column()


def make_engine(path: Path, url: str | None = None) -> Engine:
    """The catalog's engine, its schema brought to the newest migration (ingest/schema.py): the
    SQLite file at `path` (WAL mode, foreign keys enforced), or the PostgreSQL server `url` names
    (pgvector and full text set up there)."""
    if is_server_url(url):
        return _server_engine(str(url))
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA secure_delete=ON")  # freed pages are overwritten: deleted text is gone from the file
        cur.close()

    upgrade(engine)
    return engine


def forget(engine: Engine, *, full_text: bool = False) -> None:
    """After a delete on SQLite, leave no copy of what was deleted in the workspace's files: the
    full-text index merged (`full_text`; FTS5 keeps deleted rows' terms in its segments until a
    merge) and the write-ahead log checkpointed and truncated (its frames hold earlier versions of
    the pages). Freed pages are zeroed by `secure_delete`. A server database is the server's."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        if full_text:
            conn.exec_driver_sql("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
            conn.commit()
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _server_engine(url: str) -> Engine:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        where = make_url(url)
        shown = f"{where.host or 'localhost'}:{where.port or 5432}/{where.database or ''}"
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except (ArgumentError, ValueError) as exc:
        raise ArchivistError(f"ARCHIVIST_DATABASE_URL / --database-url is not a database URL: {exc}") from None
    except ModuleNotFoundError as exc:
        raise ArchivistError(
            f"the server database needs {exc.name}: install the server extra (pip install -e '.[server]')"
        ) from None
    try:
        upgrade(engine)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise ArchivistError(f"cannot use the database at {shown}: {reason}") from None
    return engine
