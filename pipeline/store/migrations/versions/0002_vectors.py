"""Vectors: sentence vectors of papers and of interest items / topic texts, per model.

Written out by hand like the baseline, so it never follows ``tables.py``. Neither table
refers to ``papers`` by a foreign key: a re-keyed paper's rows move with it (the store does
that in the ingest transaction), and a vector row without its paper is harmless, only unread.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paper_vectors",
        sa.Column("paper_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("text_sha", sa.String(64), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("paper_id", "model"),
    )
    op.create_table(
        "text_vectors",
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("text_sha", sa.String(64), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("model", "text_sha"),
    )


def downgrade() -> None:
    op.drop_table("text_vectors")
    op.drop_table("paper_vectors")
