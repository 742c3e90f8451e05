"""One schema path: the ORM models (one declarative base, ingest.catalog.Base) and the Alembic
migrations agree on both backends, and no product code creates or alters tables beside them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent
PRODUCT = ("app", "assistants", "ingest", "retriever", "runtime")


def _derived(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    """Keep what the models declare; leave out what is derived from them: SQLite's full-text tables
    (filled by triggers from chunks), PostgreSQL's generated tsvector column and its index, and the
    pgvector HNSW index the store builds for the embedder's dimension (ingest/pg_vectors.py)."""
    if kind == "table" and name is not None and name.startswith("chunks_fts"):
        return False
    if kind == "index" and name is not None and name.startswith(("chunks_embedding_hnsw", "chunks_tsv")):
        return False
    return not (kind == "column" and name == "tsv")


def test_models_and_migrations_agree_on_both_backends(
    database_url: str | None, tmp_path: Path, fake_embedder: Any
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import app.api.keys  # noqa: F401 - every module that declares a table
    import assistants.arena
    import assistants.conversations  # noqa: F401
    from ingest.catalog import Base
    from ingest.store import Store

    store = Store(tmp_path / "ws", fake_embedder.name, fake_embedder.dim, database_url)  # migrated on open
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _derived})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], diff
    tables = {t.name for t in Base.metadata.sorted_tables}
    assert {"documents", "chunks", "conversations", "messages", "arena_battles", "api_keys"} <= tables
    assert {"assistants", "originals", "ingest_jobs", "collection_sources"} <= tables


def test_no_product_code_creates_or_alters_tables_outside_the_migrations() -> None:
    found = []
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            for pattern in (r"\.create_all\(", r"\bALTER\s+TABLE\b", r"\bCREATE\s+TABLE\b", r"DeclarativeBase\)"):
                found += [f"{path.relative_to(ROOT)}: {pattern}" for _ in re.finditer(pattern, text)]
    # the one declarative base is ingest.catalog's
    assert found == ["ingest/catalog.py: DeclarativeBase\\)"], found


@pytest.mark.parametrize("package", PRODUCT)
def test_tables_are_declared_on_the_one_base(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"class (\w+)\((\w+)\):\n(?:    .*\n)*?    __tablename__", text):
            assert m.group(2) == "Base", f"{path}: {m.group(1)} is declared on {m.group(2)}"
