"""Subscribers unique by their normalised address, and confirmation links with an epoch.

``email_key`` is the address trimmed, its domain in IDNA, the whole lower-cased; a unique
index on it makes ``Ada@Example.org`` and ``ada@example.org`` one reader, on PostgreSQL as on
SQLite (the old unique ``email`` was case-sensitive, so concurrent sign-ups of two spellings
made two rows). Rows that already share a key are merged into one, the winner being the most
advanced status (suppressed, then active, paused, pending, unsubscribed; the oldest row among
equals). The others' ledger rows, sent papers and votes move to the winner (where the winner
has its own for that edition or paper, the winner's stays), their ids become aliases of the
winner (links already mailed carry them), and their rows go.

``confirm_epoch`` counts a reader's unsubscribes; confirmation links carry it from now on.
Links mailed before have none and count as epoch 0, so readers who ever unsubscribed start at
1: a link from before they left can no longer confirm a later sign-up.

Written out by hand like the baseline, so it never follows ``tables.py``; the key function is
a copy of ``store.subscribers.email_key`` as it stood, for the same reason.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from typing import Any

import idna
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

log = logging.getLogger("paperboy.migrate")

# Which of several rows for one address is kept: the most advanced, suppressed first (never
# mail an address that asked to be erased or bounced for good).
RANK = {"suppressed": 5, "active": 4, "paused": 3, "pending": 2, "unsubscribed": 1}
# Tables keyed by (subscriber_id, this column): the winner's row stays where both have one.
HISTORY = {"deliveries": "edition_date", "sent_papers": "paper_id", "feedback": "paper_id"}


def email_key(email: str) -> str:
    local, at, domain = email.strip().rpartition("@")
    if at and not domain.isascii():
        with contextlib.suppress(idna.IDNAError):
            domain = idna.encode(domain, uts46=True).decode("ascii")
    return f"{local}{at}{domain}".lower()


def upgrade() -> None:
    op.create_table(
        "subscriber_aliases",
        sa.Column("old_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("new_id", sa.Integer, nullable=False),
    )
    op.create_index("ix_subscriber_aliases_new_id", "subscriber_aliases", ["new_id"])
    op.add_column("subscribers", sa.Column("email_key", sa.String(320), nullable=True))
    op.add_column(
        "subscribers",
        sa.Column("confirm_epoch", sa.Integer, nullable=False, server_default="0"),
    )
    conn = op.get_bind()
    # Links mailed before this revision carry no epoch and count as epoch 0. A reader who ever
    # unsubscribed may hold one from before they left: start them at 1, which voids those, and
    # let one who is pending again get a fresh link at once instead of after the resend window.
    conn.execute(
        sa.text("UPDATE subscribers SET confirm_epoch = 1 WHERE unsubscribed_at IS NOT NULL")
    )
    conn.execute(
        sa.text(
            "UPDATE subscribers SET confirmation_sent_at = NULL "
            "WHERE unsubscribed_at IS NOT NULL AND status = 'pending'"
        )
    )
    groups: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(
        sa.text("SELECT id, email, status, last_edition FROM subscribers ORDER BY id")
    ):
        groups[email_key(row.email)].append(row)
    for key, rows in groups.items():
        winner = min(rows, key=lambda r: (-RANK.get(r.status, 0), r.id))
        for loser in rows:
            if loser.id != winner.id:
                _merge(conn, loser, winner)
        last = max((r.last_edition for r in rows if r.last_edition is not None), default=None)
        conn.execute(
            sa.text("UPDATE subscribers SET email_key = :key, last_edition = :last WHERE id = :id"),
            {"key": key, "last": last, "id": winner.id},
        )
    op.create_index("ux_subscribers_email_key", "subscribers", ["email_key"], unique=True)


def _merge(conn: sa.Connection, loser: Any, winner: Any) -> None:
    """Move ``loser``'s history to ``winner``, alias its id, and delete its row."""
    ids = {"loser": loser.id, "winner": winner.id}
    for table, column in HISTORY.items():
        # Fixed names from HISTORY above, never input.
        conn.execute(
            sa.text(
                f"DELETE FROM {table} WHERE subscriber_id = :loser AND {column} IN "  # noqa: S608
                f"(SELECT {column} FROM {table} WHERE subscriber_id = :winner)"
            ),
            ids,
        )
        conn.execute(
            sa.text(f"UPDATE {table} SET subscriber_id = :winner WHERE subscriber_id = :loser"),  # noqa: S608
            ids,
        )
    conn.execute(
        sa.text("INSERT INTO subscriber_aliases (old_id, new_id) VALUES (:loser, :winner)"), ids
    )
    conn.execute(sa.text("DELETE FROM subscribers WHERE id = :loser"), ids)
    log.warning(
        "merged subscriber %s (%s) into %s (%s): the same address in another case",
        loser.id,
        loser.status,
        winner.id,
        winner.status,
    )


def downgrade() -> None:
    op.drop_index("ux_subscribers_email_key", table_name="subscribers")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("confirm_epoch")
        batch.drop_column("email_key")
    op.drop_index("ix_subscriber_aliases_new_id", table_name="subscriber_aliases")
    op.drop_table("subscriber_aliases")
