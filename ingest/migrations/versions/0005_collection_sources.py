"""Sources of a collection: the folders and files it mirrors (`archivist sync`), whether the app
and `archivist serve` follow them in the background, and the last sync's time and result.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collection_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("include_json", sa.Text(), nullable=False),
        sa.Column("exclude_json", sa.Text(), nullable=False),
        sa.Column("follow", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("synced_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_collection_sources_collection_id", "collection_sources", ["collection_id"])


def downgrade() -> None:
    op.drop_index("ix_collection_sources_collection_id", "collection_sources")
    op.drop_table("collection_sources")
