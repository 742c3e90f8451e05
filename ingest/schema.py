"""The database's schema, created and upgraded by the Alembic migrations in ingest/migrations on
both backends: a new workspace or server database gets every revision, an existing one the ones it
lacks (a workspace made before migrations existed is adopted as it is by the first revision)."""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(conn: Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


@functools.cache
def head() -> str:
    """The newest revision (read from the migration scripts once per process: every store that
    opens asks)."""
    from alembic.script import ScriptDirectory

    cfg = _config(None)  # type: ignore[arg-type]
    return str(ScriptDirectory.from_config(cfg).get_current_head())


def current(engine: Engine) -> str | None:
    """The revision a database is at (None: never migrated)."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision (nothing to do when it is there already)."""
    from alembic import command

    if current(engine) == head():
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # processes starting together migrate one at a time
            conn.execute(text("SELECT pg_advisory_xact_lock(4242017)"))
        command.upgrade(_config(conn), "head")
