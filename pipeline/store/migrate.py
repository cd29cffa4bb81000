"""Bring a database's schema to the version this paperboy expects."""

from __future__ import annotations

from sqlalchemy import Column, Connection, Integer, MetaData, Table, func, insert, select

from pipeline.errors import StoreError
from pipeline.store import tables as s
from pipeline.store.engine import Database, utcnow

_legacy = MetaData()
schema_version = Table(
    "schema_version",
    _legacy,
    Column("version", Integer, primary_key=True),
    Column("applied_at", s.UTCDateTime, nullable=False),
)


def _v1(conn: Connection) -> None:
    """The first schema: every table the pipeline and the subscriber app need."""
    s.metadata.create_all(conn)


MIGRATIONS = [_v1]


def current_version(db: Database) -> int:
    with db.tx() as conn:
        if not db.engine.dialect.has_table(conn, "schema_version"):
            return 0
        return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)


def migrate(db: Database) -> int:
    """Apply every pending migration, each in its own transaction; return the version."""
    with db.tx() as conn:
        schema_version.create(conn, checkfirst=True)
    current = current_version(db)
    if current > len(MIGRATIONS):
        raise StoreError(
            f"database schema is version {current}, newer than this paperboy "
            f"({len(MIGRATIONS)}); upgrade paperboy"
        )
    for version in range(current, len(MIGRATIONS)):
        with db.tx() as conn:
            if db.dialect == "postgresql":
                # Two processes starting together must not both migrate.
                conn.exec_driver_sql("LOCK TABLE schema_version IN EXCLUSIVE MODE")
                done = conn.execute(select(func.max(schema_version.c.version))).scalar()
                if (done or 0) > version:
                    continue
            MIGRATIONS[version](conn)
            conn.execute(insert(schema_version).values(version=version + 1, applied_at=utcnow()))
    return len(MIGRATIONS)
