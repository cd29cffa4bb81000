"""Table definitions the store's queries are written against (SQLAlchemy Core).

These describe the schema at the latest migration; the migrations themselves live under
``migrations/versions`` and never read these definitions, so editing a table here means
adding a revision there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
)

from pipeline.errors import StoreError


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise StoreError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


metadata = MetaData()

dumps = Table(
    "dumps",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 of the bytes
    Column("name", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("dump_date", Date, nullable=False),
    Column("ingested_at", UTCDateTime, nullable=False),
    Column("paper_count", Integer, nullable=False),
    Column("warnings", JSON, nullable=False),
)

papers = Table(
    "papers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("arxiv_id", String(32), unique=True),
    Column("title_key", String(32), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False),
    Column("authors", JSON, nullable=False),
    Column("authors_count", Integer),
    Column("organization", Text),
    Column("published", Date),
    Column("upvotes", Integer, nullable=False),
    Column("upvotes_as_of", Date),  # dump date the upvote count came from
    Column("url", Text),
    Column("pdf_url", Text),
    Column("code_url", Text),
    Column("project_url", Text),
    Column("github_stars", Integer),
    Column("keywords", JSON, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("ai_summary", Text),
    Column("source_format", String(16), nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False, index=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

dump_papers = Table(
    "dump_papers",
    metadata,
    Column("dump_id", String(64), ForeignKey("dumps.id", ondelete="CASCADE"), nullable=False),
    Column("paper_id", String(64), nullable=False, index=True),
    PrimaryKeyConstraint("dump_id", "paper_id"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("status", String(16), nullable=False, index=True),
    Column("timezone", String(64), nullable=False),
    Column("send_hour", Integer, nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("weekly_day", Integer, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("unsubscribed_at", UTCDateTime),
    Column("last_edition", Date),
    Column("consent", JSON, nullable=False),  # time, ip, form version, method
    Column("confirmation_sent_at", UTCDateTime),
    # store.subscribers.email_key(email), unique: case variants of one address are one reader.
    # Every write fills it; nullable only so that adding it needed no table rebuild on SQLite.
    Column("email_key", String(320)),
    # Bumped by each unsubscribe; a confirmation link carries the epoch it was mailed in, so one
    # mailed before the reader left never confirms a later (perhaps someone else's) sign-up.
    Column("confirm_epoch", Integer, nullable=False, server_default="0"),
    Index("ux_subscribers_email_key", "email_key", unique=True),
    # Never reuse an erased subscriber's id: links mailed to them carry it and never expire.
    sqlite_autoincrement=True,
)

subscriber_aliases = Table(
    # A subscriber id merged into another by revision 0007 (case variants of one address):
    # links mailed to it carry the old id and still reach the reader.
    "subscriber_aliases",
    metadata,
    Column("old_id", Integer, primary_key=True, autoincrement=False),
    Column("new_id", Integer, nullable=False, index=True),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),  # sha256 of the normalised address
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

bounces = Table(
    # One row per bounce that counts against an address (pipeline.bounces: "bounce"); enough
    # of them within the window suppress it. Keyed by the address's hash, like suppressions.
    "bounces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email_hash", String(64), nullable=False),
    Column("bounced_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_bounces_email_hash_bounced_at", "email_hash", "bounced_at"),
)

pauses = Table(
    # The circuit breaker's pause of a delivery job (one row per job, "deliver"): no sending
    # before paused_until; trips counts the runs in a row that tripped it.
    "pauses",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("paused_until", UTCDateTime, nullable=False),
    Column("trips", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("tripped_at", UTCDateTime, nullable=False),
)

health = Table(
    # One row per condition that degrades health ("run", "matching", "config"), written by
    # whichever process saw it and deleted when it clears; since: when it began.
    "health",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("subscriber_id", Integer, nullable=False),
    Column("edition_date", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("message_id", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_attempt_at", UTCDateTime),
    Column("next_attempt_at", UTCDateTime),
    Column("claimed_at", UTCDateTime),
    Column("last_error", Text),
    Column("server_reply", Text),
    Column("paper_ids", JSON, nullable=False),  # the papers the first rendering showed
    Column("picks", JSON, nullable=False),  # [{paper_id, score, reasons}]: rendered again on retry
    Column("more_count", Integer, nullable=False),  # "N more papers matched"
    # [{paper_id, score, reasons}]: the best of those more, for the web view; never "sent"
    Column("more_picks", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The latest claim's random token: a mark writes only while its own claim still holds.
    Column("claim_id", String(32)),
    PrimaryKeyConstraint("subscriber_id", "edition_date"),
    Index("ix_deliveries_status_next", "status", "next_attempt_at"),
)

sent_papers = Table(
    "sent_papers",
    metadata,
    Column("subscriber_id", Integer, nullable=False),
    Column("paper_id", String(64), nullable=False),
    Column("edition_date", Date, nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("subscriber_id", "paper_id"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("subscriber_id", Integer, nullable=False),
    Column("paper_id", String(64), nullable=False, index=True),
    Column("vote", Integer, nullable=False),  # +1 or -1
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("subscriber_id", "paper_id"),
)

used_tokens = Table(
    "used_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("purpose", String(32), nullable=False),
    Column("used_at", UTCDateTime, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

signup_events = Table(
    "signup_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ip", String(64), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("accepted", Boolean, nullable=False),
)

paper_aliases = Table(
    # A title-keyed paper's old id, kept when it is re-keyed to its arXiv id, because links
    # already mailed (👍/👎 feedback) still carry the old one.
    "paper_aliases",
    metadata,
    Column("old_id", String(32), primary_key=True),
    Column("new_id", String(32), nullable=False),
)

paper_vectors = Table(
    # A paper's sentence vector under one model (float32 bytes, little-endian), and the sha256
    # of the text it was computed from (``pipeline.embedding.paper_text``).
    "paper_vectors",
    metadata,
    Column("paper_id", String(64), nullable=False),
    Column("model", String(64), nullable=False),
    Column("text_sha", String(64), nullable=False),
    Column("vector", LargeBinary, nullable=False),
    PrimaryKeyConstraint("paper_id", "model"),
)

text_vectors = Table(
    # Vectors of interest items and topic texts, shared by every profile that has the text.
    "text_vectors",
    metadata,
    Column("model", String(64), nullable=False),
    Column("text_sha", String(64), nullable=False),
    Column("vector", LargeBinary, nullable=False),
    PrimaryKeyConstraint("model", "text_sha"),
)
