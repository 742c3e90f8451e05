"""Copy a workspace's database into a PostgreSQL server: `archivist migrate --to URL`.

Every table of every part (the catalog with its chunks and vectors, conversations, arena battles,
API keys) is copied row by row with its ids, in one transaction (all or nothing), into a server
database that holds none of them yet; then the counts are compared and one search per collection
must return the same first passage on both sides. The workspace's assistant files become rows of
the server's `assistants` table, its original files rows of `originals`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, Table, func, inspect, select, text

import app.api.keys  # noqa: F401 - its table is part of the metadata copied
import assistants.arena
import assistants.conversations  # noqa: F401
from ingest.catalog import Base
from ingest.store import Store
from runtime.errors import ArchivistError

BATCH = 2000  # rows per INSERT


@dataclass
class MigrationReport:
    """Rows copied per table, and what the check after the copy found."""

    rows: dict[str, int] = field(default_factory=dict)
    searches: list[str] = field(default_factory=list)


def migrate(
    source: Store,
    target: Store,
    check: Callable[[Store, str], int | None] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> MigrationReport:
    """Copy every row of `source`'s database into `target`'s (a server backend with no rows yet).

    `check(store, collection)` runs a search and gives its first passage's id (None: no passage); it
    must give the same on both sides. Raises ArchivistError, naming the table, when the target is
    not empty or the counts differ after the copy."""
    if not target.server:
        raise ArchivistError("--to must name a PostgreSQL database (postgresql+psycopg://user:password@host/name)")
    src, dst = source.engine, target.engine
    report = MigrationReport()
    tables = Base.metadata.sorted_tables  # every table, parents before children
    with dst.connect() as conn:
        for table in ("assistants", "originals"):
            held = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar() or 0
            if held:
                raise ArchivistError(
                    f"the target database already holds {held} row(s) in table {table!r}: migrate into an empty database"
                )
        for t in tables:
            n = conn.execute(select(func.count()).select_from(t)).scalar() or 0
            if n:
                raise ArchivistError(
                    f"the target database already holds {n} row(s) in table {t.name!r}: migrate into an empty database"
                )
    have = set(inspect(src).get_table_names())
    with dst.begin() as out:
        for t in tables:
            if t.name not in have:
                report.rows[t.name] = 0
                continue
            copied = 0
            with src.connect() as inp:
                result = inp.execution_options(yield_per=BATCH).execute(select(t).order_by(*t.primary_key.columns))
                for part in result.partitions():
                    out.execute(t.insert(), [dict(r._mapping) for r in part])
                    copied += len(part)
                    if progress:
                        progress(t.name, copied)
            report.rows[t.name] = copied
            _advance_sequences(out, t.name, [c.name for c in t.primary_key.columns])
    _verify(dst, tables, report)
    report.rows["assistants"] = _copy_assistants(source, dst)
    report.rows["originals"] = _copy_originals(source, target)
    if check is not None:
        for name in sorted(source.collection_names()):
            a, b = check(source, name), check(target, name)
            if a != b:
                raise ArchivistError(
                    f"collection {name!r}: a search's first passage differs after the copy ({a} vs {b})"
                )
            report.searches.append(name)
    return report


def _copy_assistants(source: Store, dst: Engine) -> int:
    """The workspace's assistant files become rows of the server's `assistants` table (every
    machine shares them there); a file that does not validate is left out and named."""
    from assistants.library import AssistantLibrary, AssistantStore

    entries, errors = AssistantLibrary(source.home / "assistants").entries()
    shared = AssistantStore(source.home / "assistants", engine=dst)
    mine = [e for e in entries if e.source == "workspace"]
    for e in mine:
        shared.save(e.assistant)
    for err in errors:
        print(f"not copied: {err}", file=sys.stderr)
    return len(mine)


def _copy_originals(source: Store, target: Store) -> int:
    """The workspace's original files, into the server's `originals` table."""
    n = 0
    for f in sorted((source.home / "files").glob("*")) if (source.home / "files").is_dir() else []:
        sha, _, suffix = f.name.partition(".")
        if f.is_file() and len(sha) == 64 and not f.name.endswith((".tmp", ".part")):
            target.originals.share(sha, f".{suffix}" if suffix else "", f.read_bytes())
            n += 1
    return n


def _advance_sequences(conn: Connection, table: str, keys: list[str]) -> None:
    """Ids were copied as they were: the server's id sequences continue after the largest."""
    if len(keys) != 1:
        return
    col = keys[0]
    seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": col}).scalar()
    if seq:
        conn.execute(
            text(f'SELECT setval(:s, COALESCE((SELECT MAX("{col}") FROM "{table}"), 0) + 1, false)'), {"s": seq}
        )


def _verify(dst: Engine, tables: list[Table], report: MigrationReport) -> None:
    with dst.connect() as conn:
        for t in tables:
            n = int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
            if n != report.rows[t.name]:
                raise ArchivistError(f"table {t.name!r}: {report.rows[t.name]} rows copied but {n} found afterwards")


def first_passage(embedder: object) -> Callable[[Store, str], int | None]:
    """The check `migrate` runs on both sides: a dense search for the start of the collection's
    first passage (exact search on both backends at these sizes: the same first passage)."""
    from retriever.search import search

    def check(store: Store, collection: str) -> int | None:
        with store.sessions() as s:
            row = s.execute(
                text(
                    "SELECT c.text FROM chunks c JOIN documents d ON d.id = c.document_id JOIN collections col "
                    "ON col.id = d.collection_id WHERE col.name = :n AND d.status = 'ready' ORDER BY c.id LIMIT 1"
                ),
                {"n": collection},
            ).first()
        if row is None:
            return None
        hits = search(store, embedder, [collection], " ".join(row[0].split()[:30]), 1, mode="dense")  # type: ignore[arg-type]
        return hits[0].chunk_id if hits else None

    return check
