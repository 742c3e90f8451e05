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
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine

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


def make_engine(path: Path, url: str | None = None) -> Engine:
    """The catalog's engine, tables created if missing: the SQLite file at `path` (WAL mode, foreign
    keys enforced), or the PostgreSQL server `url` names (pgvector and full text set up there)."""
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
        cur.close()

    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        for ddl in _FTS_DDL:
            conn.exec_driver_sql(ddl)
    return engine


# The full-text index (BM25) is derived from chunks by triggers, so it can never drift from them.
_FTS_DDL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
    "text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_ai AFTER INSERT ON chunks BEGIN "
    "INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_ad AFTER DELETE ON chunks BEGIN "
    "INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
]


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
        _set_up_server(engine)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise ArchivistError(f"cannot use the database at {shown}: {reason}") from None
    return engine


def _set_up_server(engine: Engine) -> None:
    with engine.begin() as conn:
        # processes starting together on one database set it up one at a time
        conn.execute(text("SELECT pg_advisory_xact_lock(4242017)"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(4242017)"))
        for ddl in _PG_DDL:
            conn.execute(text(ddl))


# PostgreSQL's full text: a generated tsvector column (English stemming, as FTS5's porter) under a
# GIN index, so it can never drift from the chunks' text.
_PG_DDL = [
    "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS tsv tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
    "CREATE INDEX IF NOT EXISTS chunks_tsv ON chunks USING gin (tsv)",
]
