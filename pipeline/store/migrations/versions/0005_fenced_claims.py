"""Fenced claims: each claim of a ledger row writes a fresh random ``claim_id``.

A mark (sent, deferred, failed) or a release then changes the row only while its own claim id
is still there, so a runner whose claim was taken over never overwrites the newer one. Rows
claimed before this revision have no claim id; such a row stuck in ``sending`` is reclaimed
when stale like any other, and the new claim writes one.

Written out by hand like the baseline, so it never follows ``tables.py``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("claim_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claim_id")
