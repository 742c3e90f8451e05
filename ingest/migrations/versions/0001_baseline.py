"""The schema of the first versions: catalog, full text, conversations, arena battles, API keys.

Workspaces made before migrations existed already hold these tables: each is created only where
it is missing (and `messages.details_json`, added in a later version of that time, is added where
it is missing), so such a workspace is adopted as it is, nothing stored touched.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

from ingest.catalog import Embedding

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> list[tuple[str, list[SchemaItem], list[tuple[str, list[str], bool]]]]:
    """The knowledge catalog's tables: (table, columns and constraints, indexes (name, columns, unique))."""
    return [
        (
            "collections",
            [
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("name", sa.String(length=200), nullable=False),
                sa.Column("embedder", sa.String(length=200), nullable=False),
                sa.Column("dim", sa.Integer(), nullable=False),
                sa.Column("created_at", sa.DateTime(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
                sa.UniqueConstraint("name"),
            ],
            [],
        ),
        (
            "documents",
            [
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("collection_id", sa.Integer(), nullable=False),
                sa.Column("name", sa.String(length=500), nullable=False),
                sa.Column("sha256", sa.String(length=64), nullable=False),
                sa.Column("format", sa.String(length=20), nullable=False),
                sa.Column("size", sa.Integer(), nullable=False),
                sa.Column("pages", sa.Integer(), nullable=True),
                sa.Column("n_chunks", sa.Integer(), nullable=False),
                sa.Column("status", sa.String(length=20), nullable=False),
                sa.Column("warnings_json", sa.Text(), nullable=False),
                sa.Column("error", sa.Text(), nullable=True),
                sa.Column("created_at", sa.DateTime(), nullable=False),
                sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
                sa.PrimaryKeyConstraint("id"),
                sa.UniqueConstraint("collection_id", "sha256"),
            ],
            [("ix_documents_collection_id", ["collection_id"], False), ("ix_documents_status", ["status"], False)],
        ),
        (
            "chunks",
            [
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("document_id", sa.Integer(), nullable=False),
                sa.Column("ordinal", sa.Integer(), nullable=False),
                sa.Column("page", sa.Integer(), nullable=True),
                sa.Column("page_end", sa.Integer(), nullable=True),
                sa.Column("heading", sa.Text(), nullable=False),
                sa.Column("start", sa.Integer(), nullable=False),
                sa.Column("end", sa.Integer(), nullable=False),
                sa.Column("n_tokens", sa.Integer(), nullable=False),
                sa.Column("text", sa.Text(), nullable=False),
                sa.Column("embedding", Embedding(), nullable=False),
                sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="CASCADE"),
                sa.PrimaryKeyConstraint("id"),
            ],
            [("ix_chunks_document_id", ["document_id"], False)],
        ),
    ]


def _conversation_tables() -> list[tuple[str, list[SchemaItem], list[tuple[str, list[str], bool]]]]:
    """Conversations and their messages, as `_tables`."""
    return [
        (
            "conversations",
            [
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("assistant", sa.String(length=100), nullable=False),
                sa.Column("title", sa.String(length=200), nullable=False),
                sa.Column("created_at", sa.DateTime(), nullable=False),
                sa.Column("updated_at", sa.DateTime(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
            [("ix_conversations_assistant", ["assistant"], False)],
        ),
        (
            "messages",
            [
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("conversation_id", sa.Integer(), nullable=False),
                sa.Column("role", sa.String(length=20), nullable=False),
                sa.Column("text", sa.Text(), nullable=False),
                sa.Column("prompt_text", sa.Text(), nullable=True),
                sa.Column("citations_json", sa.Text(), nullable=False),
                sa.Column("prompt_tokens", sa.Integer(), nullable=False),
                sa.Column("evaluated_tokens", sa.Integer(), nullable=False),
                sa.Column("completion_tokens", sa.Integer(), nullable=False),
                sa.Column("time_to_first_token", sa.Float(), nullable=True),
                sa.Column("total_time", sa.Float(), nullable=False),
                sa.Column("settings_json", sa.Text(), nullable=False),
                sa.Column("details_json", sa.Text(), nullable=False, server_default="{}"),
                sa.Column("feedback", sa.Integer(), nullable=True),
                sa.Column("feedback_comment", sa.Text(), nullable=True),
                sa.Column("created_at", sa.DateTime(), nullable=False),
                sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
                sa.PrimaryKeyConstraint("id"),
            ],
            [("ix_messages_conversation_id", ["conversation_id"], False)],
        ),
    ]


def _vote_and_key_tables() -> list[tuple[str, list[SchemaItem], list[tuple[str, list[str], bool]]]]:
    """Arena votes and API keys, as `_tables`."""
    return [
        (
            "arena_battles",
            [
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("mode", sa.String(length=10), nullable=False),
                sa.Column("question", sa.Text(), nullable=False),
                sa.Column("question_id", sa.String(length=200), nullable=True),
                sa.Column("a_name", sa.String(length=100), nullable=False),
                sa.Column("a_hash", sa.String(length=12), nullable=False),
                sa.Column("b_name", sa.String(length=100), nullable=False),
                sa.Column("b_hash", sa.String(length=12), nullable=False),
                sa.Column("a_json", sa.Text(), nullable=False),
                sa.Column("b_json", sa.Text(), nullable=False),
                sa.Column("vote", sa.String(length=4), nullable=True),
                sa.Column("created_at", sa.DateTime(), nullable=False),
                sa.Column("voted_at", sa.DateTime(), nullable=True),
                sa.Column("seconds", sa.Float(), nullable=False),
                sa.Column("seed", sa.Integer(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
            [
                ("ix_arena_battles_a_name", ["a_name"], False),
                ("ix_arena_battles_b_name", ["b_name"], False),
                ("ix_arena_battles_mode", ["mode"], False),
            ],
        ),
        (
            "api_keys",
            [
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("name", sa.String(length=100), nullable=False),
                sa.Column("hint", sa.String(length=20), nullable=False),
                sa.Column("digest", sa.String(length=64), nullable=False),
                sa.Column("assistants_json", sa.Text(), nullable=False),
                sa.Column("created_at", sa.DateTime(), nullable=False),
                sa.Column("revoked_at", sa.DateTime(), nullable=True),
                sa.PrimaryKeyConstraint("id"),
                sa.UniqueConstraint("digest"),
                sa.UniqueConstraint("name"),
            ],
            [],
        ),
    ]


# SQLite: the full-text index (BM25) is derived from chunks by triggers, so it can never drift from them.
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
    "text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_ai AFTER INSERT ON chunks BEGIN "
    "INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_ad AFTER DELETE ON chunks BEGIN "
    "INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
]
# PostgreSQL: a generated tsvector column (English stemming, as FTS5's porter) under a GIN index.
POSTGRES_FTS = [
    "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
    "CREATE INDEX IF NOT EXISTS chunks_tsv ON chunks USING gin (tsv)",
]


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    have = set(sa.inspect(bind).get_table_names())
    for name, items, indexes in _tables() + _conversation_tables() + _vote_and_key_tables():
        if name in have:
            continue
        op.create_table(name, *items)
        for index, indexed, unique in indexes:
            op.create_index(index, name, indexed, unique=unique)
    if "messages" in have:
        present = {c["name"] for c in sa.inspect(bind).get_columns("messages")}
        if "details_json" not in present:
            op.add_column("messages", sa.Column("details_json", sa.Text(), nullable=False, server_default="{}"))
    for ddl in POSTGRES_FTS if postgres else SQLITE_FTS:
        op.execute(ddl)


def downgrade() -> None:
    raise NotImplementedError("the first schema has nothing to go back to")
