"""The engine and transaction helper every store aggregate shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Interval,
    create_engine,
    event,
    func,
    literal,
)
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import StoreError

CHUNK = 500  # ids per IN (...) clause: well under SQLite's and PostgreSQL's parameter limits

M = TypeVar("M", bound=BaseModel)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def db_now(dialect: str, plus: dt.timedelta = dt.timedelta(0)) -> ColumnElement[Any]:
    """The database's own clock (UTC) plus ``plus``, read inside the statement.

    Leases and stale claims compare against this, never a process's clock: two hosts whose
    clocks disagree, or a ``--now`` in the future, then agree on when a claim went stale.
    On SQLite a ``UTCDateTime`` is naive UTC text, ``YYYY-MM-DD HH:MM:SS.ffffff``; this
    builds the same text from SQLite's clock (milliseconds, padded), so it compares and
    stores like any written value.
    """
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f000", "now", f"{plus.total_seconds():+.3f} seconds")
    # transaction start time: every comparison in one transaction sees the same instant
    return func.now() + literal(plus, Interval())


def engine_for(url: str, busy_timeout_ms: int = 5000) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys on every connect."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions; BEGIN IMMEDIATE avoids
            # lock upgrades that would fail under concurrent writers.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """One engine and the way every aggregate opens a transaction on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One transaction; any database error leaves it as a StoreError."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {e.__class__.__name__}: {e.args[0]}") from e


def model_from(model: type[M], row: Any) -> M:
    """A model from the row's columns of the same names (other columns are left out)."""
    mapping = row._mapping
    return model.model_validate({name: mapping[name] for name in model.model_fields})


def chunks(items: Sequence[Any]) -> Iterator[list[Any]]:
    items = list(items)
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def since(days: float | None, now: dt.datetime | None) -> dt.datetime | None:
    if days is None:
        return None
    return (now or utcnow()) - dt.timedelta(days=days)
