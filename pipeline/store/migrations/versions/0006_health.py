"""Health: one row per condition that degrades paperboy's health (last run aborted, matching
fell back to lexical, config reload failed), written by whichever process saw it, read by
``/healthz``. The circuit breaker's condition is the ``pauses`` row itself.

Written out by hand like the baseline, so it never follows ``tables.py``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("health")
