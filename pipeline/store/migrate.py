"""Bring a database's schema to Alembic's head revision, adopting pre-Alembic databases.

Revisions live in ``migrations/versions`` (found next to this file, so an installed wheel
migrates too) and run on one connection inside one transaction. A database written before
Alembic carries a ``schema_version`` table instead of ``alembic_version``: it is checked
against the baseline revision's tables and columns, stamped at the baseline, and upgraded.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, inspect, text

from pipeline.errors import StoreError
from pipeline.store.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"
LEGACY_TABLE = "schema_version"  # the pre-Alembic runner's bookkeeping, dropped on adoption
_LOCK_KEY = 0x70617065  # PostgreSQL advisory lock: two processes starting together migrate once

# What the baseline revision created; a pre-Alembic database must have at least this.
BASELINE_COLUMNS: dict[str, set[str]] = {
    "dumps": {"id", "name", "format", "dump_date", "ingested_at", "paper_count", "warnings"},
    "papers": {
        *("id", "arxiv_id", "title_key", "title", "abstract", "authors", "authors_count"),
        *("organization", "published", "upvotes", "upvotes_as_of", "url", "pdf_url"),
        *("code_url", "project_url", "github_stars", "keywords", "categories", "ai_summary"),
        *("source_format", "first_seen_at", "updated_at"),
    },
    "dump_papers": {"dump_id", "paper_id"},
    "paper_aliases": {"old_id", "new_id"},
    "subscribers": {
        *("id", "email", "status", "timezone", "send_hour", "frequency", "weekly_day"),
        *("profile", "created_at", "confirmed_at", "unsubscribed_at", "last_edition"),
        *("consent", "confirmation_sent_at"),
    },
    "suppressions": {"email_hash", "reason", "created_at"},
    "deliveries": {
        *("subscriber_id", "edition_date", "status", "message_id", "attempts"),
        *("first_attempt_at", "next_attempt_at", "claimed_at", "last_error", "server_reply"),
        *("paper_ids", "picks", "more_count", "more_picks", "updated_at"),
    },
    "sent_papers": {"subscriber_id", "paper_id", "edition_date", "sent_at"},
    "feedback": {"subscriber_id", "paper_id", "vote", "created_at"},
    "used_tokens": {"token_hash", "purpose", "used_at"},
    "leases": {"name", "holder", "expires_at"},
    "signup_events": {"id", "ip", "at", "accepted"},
}


@functools.cache
def script() -> ScriptDirectory:
    """The revisions shipped with this paperboy (read once: they cannot change at run time)."""
    return ScriptDirectory(str(MIGRATIONS))


def revisions() -> list[str]:
    """Every revision id, baseline first."""
    return [r.revision for r in reversed(list(script().walk_revisions()))]


def _config(conn: Connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _revision_of(conn: Connection) -> str | None:
    # Read directly rather than through MigrationContext, which logs its set-up at INFO on
    # every start of the store.
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _head() -> str:
    head = script().get_current_head()
    if head is None:
        raise StoreError(f"no schema migrations under {MIGRATIONS}; reinstall paperboy")
    return head


def current_revision(db: Database) -> str | None:
    with db.tx() as conn:
        return _revision_of(conn)


def current_version(db: Database) -> int:
    """The current revision's place in the history (baseline = 1; 0 for an empty database)."""
    current = current_revision(db)
    return 0 if current is None else revisions().index(current) + 1


def migrate(db: Database, target: str = "head") -> int:
    """Adopt a pre-Alembic database if needed, then upgrade to ``target``; return the version."""
    with db.tx() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        tables = set(inspect(conn).get_table_names())
        if LEGACY_TABLE in tables and "alembic_version" not in tables:
            adopt_legacy(conn)
        current = _revision_of(conn)
        if current is not None and current not in revisions():
            raise StoreError(
                f"database schema is at revision {current}, newer than this paperboy "
                f"(head {_head()}); upgrade paperboy"
            )
        wanted = _head() if target == "head" else target
        if current != wanted:
            try:
                command.upgrade(_config(conn), wanted)
            except CommandError as e:
                raise StoreError(f"cannot migrate the database to {wanted}: {e}") from e
    return current_version(db)


def adopt_legacy(conn: Connection) -> None:
    """Check a pre-Alembic database against the baseline, stamp it there, drop its old table."""
    found = inspect(conn)
    version = conn.execute(text(f"SELECT max(version) FROM {LEGACY_TABLE}")).scalar()  # noqa: S608
    if version != 1:
        raise StoreError(
            f"database schema_version is {version!r}, but only version 1 predates Alembic; "
            "restore a backup made by this paperboy's predecessor"
        )
    tables = set(found.get_table_names())
    problems = [f"table {t} is missing" for t in sorted(BASELINE_COLUMNS.keys() - tables)]
    for table in sorted(BASELINE_COLUMNS.keys() & tables):
        have = {c["name"] for c in found.get_columns(table)}
        problems += [
            f"column {table}.{c} is missing" for c in sorted(BASELINE_COLUMNS[table] - have)
        ]
    if problems:
        raise StoreError(
            "the database does not match the schema it claims (version 1): "
            + "; ".join(problems)
            + "; restore a backup or migrate it by hand"
        )
    command.stamp(_config(conn), BASELINE)
    conn.execute(text(f"DROP TABLE {LEGACY_TABLE}"))
