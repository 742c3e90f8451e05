"""The database's schema as Alembic migrations (ingest/schema.py runs them on every backend)."""
