"""Baseline: the schema as it stood when paperboy moved to Alembic (frozen; never edit).

Written out table by table on purpose: it must not follow ``pipeline/store/tables.py``, or
the first column added there would silently change what "revision 0001" means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    # The store's UTCDateTime is a TypeDecorator over this type; the DDL is the same.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    _papers_and_dumps()
    _subscribers()
    _ledger()
    _feedback_leases_events()


def _papers_and_dumps() -> None:
    op.create_table(
        "dumps",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("dump_date", sa.Date, nullable=False),
        sa.Column("ingested_at", _utc(), nullable=False),
        sa.Column("paper_count", sa.Integer, nullable=False),
        sa.Column("warnings", sa.JSON, nullable=False),
    )
    op.create_table(
        "papers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("arxiv_id", sa.String(32), unique=True),
        sa.Column("title_key", sa.String(32), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("authors_count", sa.Integer),
        sa.Column("organization", sa.Text),
        sa.Column("published", sa.Date),
        sa.Column("upvotes", sa.Integer, nullable=False),
        sa.Column("upvotes_as_of", sa.Date),
        sa.Column("url", sa.Text),
        sa.Column("pdf_url", sa.Text),
        sa.Column("code_url", sa.Text),
        sa.Column("project_url", sa.Text),
        sa.Column("github_stars", sa.Integer),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("ai_summary", sa.Text),
        sa.Column("source_format", sa.String(16), nullable=False),
        sa.Column("first_seen_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
    )
    op.create_index("ix_papers_title_key", "papers", ["title_key"])
    op.create_index("ix_papers_first_seen_at", "papers", ["first_seen_at"])
    op.create_table(
        "dump_papers",
        sa.Column(
            "dump_id",
            sa.String(64),
            sa.ForeignKey("dumps.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("paper_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("dump_id", "paper_id"),
    )
    op.create_index("ix_dump_papers_paper_id", "dump_papers", ["paper_id"])
    op.create_table(
        "paper_aliases",
        sa.Column("old_id", sa.String(32), primary_key=True),
        sa.Column("new_id", sa.String(32), nullable=False),
    )


def _subscribers() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("send_hour", sa.Integer, nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("weekly_day", sa.Integer, nullable=False),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("confirmed_at", _utc()),
        sa.Column("unsubscribed_at", _utc()),
        sa.Column("last_edition", sa.Date),
        sa.Column("consent", sa.JSON, nullable=False),
        sa.Column("confirmation_sent_at", _utc()),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.create_table(
        "suppressions",
        sa.Column("email_hash", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
    )


def _ledger() -> None:
    op.create_table(
        "deliveries",
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("edition_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_attempt_at", _utc()),
        sa.Column("next_attempt_at", _utc()),
        sa.Column("claimed_at", _utc()),
        sa.Column("last_error", sa.Text),
        sa.Column("server_reply", sa.Text),
        sa.Column("paper_ids", sa.JSON, nullable=False),
        sa.Column("picks", sa.JSON, nullable=False),
        sa.Column("more_count", sa.Integer, nullable=False),
        sa.Column("more_picks", sa.JSON, nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber_id", "edition_date"),
    )
    op.create_index("ix_deliveries_status_next", "deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "sent_papers",
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("paper_id", sa.String(64), nullable=False),
        sa.Column("edition_date", sa.Date, nullable=False),
        sa.Column("sent_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber_id", "paper_id"),
    )


def _feedback_leases_events() -> None:
    op.create_table(
        "feedback",
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("paper_id", sa.String(64), nullable=False),
        sa.Column("vote", sa.Integer, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber_id", "paper_id"),
    )
    op.create_index("ix_feedback_paper_id", "feedback", ["paper_id"])
    op.create_table(
        "used_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("used_at", _utc(), nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
    )
    op.create_table(
        "signup_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_signup_events_ip", "signup_events", ["ip"])
    op.create_index("ix_signup_events_at", "signup_events", ["at"])


def downgrade() -> None:
    # Nothing came before the baseline: going below it would only erase data.
    raise NotImplementedError("the baseline revision cannot be downgraded")
