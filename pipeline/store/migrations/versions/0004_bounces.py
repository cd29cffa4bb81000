"""Bounces and pauses: the bounce score of an address (one row per counted bounce, by address
hash), and the circuit breaker's pause of the delivery job.

Written out by hand like the baseline, so it never follows ``tables.py``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_bounces_email_hash_bounced_at", "bounces", ["email_hash", "bounced_at"])

    op.create_table(
        "pauses",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trips", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("tripped_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pauses")
    op.drop_index("ix_bounces_email_hash_bounced_at", table_name="bounces")
    op.drop_table("bounces")
