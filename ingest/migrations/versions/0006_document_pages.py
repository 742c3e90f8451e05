"""What a document's pages are, where they are more than text: read from a picture (the OCR
engine's confidence) or a stretch of a recording (its start and end in seconds), as JSON
{page: {...}}, so search hits and citations can say "read from an image" or "at 12:34".

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("pages_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("pages_json")
