"""A database as paperboy wrote it before Alembic: today's main, frozen for upgrade tests.

The table definitions and the creation step are a copy of ``pipeline/schema.py`` as it stood
at the move to Alembic (version 1, ``metadata.create_all`` plus a ``schema_version`` row).
Never update this file to follow the live schema: it is the past the migrations start from.
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
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    create_engine,
    func,
    select,
)

NOW = dt.datetime(2026, 7, 3, 6, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 7, 3)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, as the old store wrote them."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", UTCDateTime, nullable=False),
)

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
    # Never reuse an erased subscriber's id: links mailed to them carry it and never expire.
    sqlite_autoincrement=True,
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),  # sha256 of the normalised address
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
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


def create_legacy_database(url: str) -> None:
    """Create version 1 of the schema at ``url``, the old way, and fill it with a little of
    everything: papers (one re-keyed, with its alias), a dump, subscribers, a suppression,
    ledger rows, sent papers, votes, a used token, a lease and sign-up events."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(schema_version.insert().values(version=1, applied_at=NOW))
            # Row by row, in order: subscribers get ids 1, 2 from the database, as they did.
            for table, rows in legacy_rows().items():
                for row in rows:
                    conn.execute(metadata.tables[table].insert().values(**row))
    finally:
        engine.dispose()


def count_rows(url: str) -> dict[str, int]:
    """Rows per table of the version-1 schema (the bookkeeping table left out)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
                for name, table in metadata.tables.items()
                if name != "schema_version"
            }
    finally:
        engine.dispose()


def legacy_rows() -> dict[str, list[dict[str, Any]]]:
    paper = {
        "abstract": "An abstract.",
        "authors": ["A. Author"],
        "authors_count": 1,
        "upvotes": 58,
        "upvotes_as_of": DAY,
        "keywords": ["snn"],
        "categories": ["cs.NE"],
        "source_format": "hf_api",
        "first_seen_at": NOW,
        "updated_at": NOW,
    }
    pick = {"paper_id": "2607.01011", "score": 0.9, "reasons": ["matches spiking"]}
    sub = {
        "status": "active",
        "timezone": "Europe/Berlin",
        "send_hour": 7,
        "frequency": "daily",
        "weekly_day": 0,
        "profile": {"topics": ["snn"], "interests": "spiking networks"},
        "created_at": NOW,
        "confirmed_at": NOW,
        "consent": {"method": "form", "ip": "192.0.2.1"},
    }
    return {
        "dumps": [
            {
                "id": "d" * 64,
                "name": "api_2026-07-03.json",
                "format": "hf_api",
                "dump_date": DAY,
                "ingested_at": NOW,
                "paper_count": 2,
                "warnings": ["item 3: no title"],
            }
        ],
        "papers": [
            {
                **paper,
                "id": "2607.01011",
                "arxiv_id": "2607.01011",
                "title_key": "t:1",
                "title": "Spiking Transformers",
            },
            {
                **paper,
                "id": "2607.04444",
                "arxiv_id": "2607.04444",
                "title_key": "t:2",
                "title": "Graph Diffusion Priors",
            },
        ],
        "dump_papers": [
            {"dump_id": "d" * 64, "paper_id": "2607.01011"},
            {"dump_id": "d" * 64, "paper_id": "2607.04444"},
        ],
        "paper_aliases": [{"old_id": "t:00000000000000aa", "new_id": "2607.04444"}],
        "subscribers": [
            {**sub, "email": "ada@example.org", "last_edition": DAY},
            {**sub, "email": "bob@example.org", "status": "pending", "confirmed_at": None},
        ],
        "suppressions": [{"email_hash": "e" * 64, "reason": "bounced", "created_at": NOW}],
        "deliveries": [
            {
                "subscriber_id": 1,
                "edition_date": DAY,
                "status": "sent",
                "message_id": "<1.2026-07-03@paperboy>",
                "attempts": 1,
                "first_attempt_at": NOW,
                "server_reply": "250 ok",
                "paper_ids": ["2607.01011"],
                "picks": [pick],
                "more_count": 1,
                "more_picks": [{**pick, "paper_id": "2607.04444"}],
                "updated_at": NOW,
            }
        ],
        "sent_papers": [
            {"subscriber_id": 1, "paper_id": "2607.01011", "edition_date": DAY, "sent_at": NOW}
        ],
        "feedback": [{"subscriber_id": 1, "paper_id": "2607.01011", "vote": 1, "created_at": NOW}],
        "used_tokens": [{"token_hash": "f" * 64, "purpose": "unsubscribe", "used_at": NOW}],
        "leases": [{"name": "planner", "holder": "host:1", "expires_at": NOW}],
        "signup_events": [{"ip": "192.0.2.1", "at": NOW, "accepted": True}],
    }
