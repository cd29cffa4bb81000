"""Leases and events: who plans editions now, and the sign-up events the rate limit counts."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Protocol

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pipeline.errors import StoreError
from pipeline.store import tables as s
from pipeline.store.engine import Database, db_now, utcnow


class Leases:
    """Named leases with an expiry: one holder at a time (the planner election).

    Expiry is the database's clock: a runner whose clock (or ``--now``) is ahead cannot think
    a live lease has expired."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire(self, name: str, holder: str, ttl: dt.timedelta) -> bool:
        """Take or renew the named lease until ``ttl`` from now by the database's clock;
        False while another holder's lease is unexpired."""
        c = s.leases.c
        dialect = self._db.dialect
        try:
            with self._db.engine.begin() as conn:
                taken = conn.execute(
                    update(s.leases)
                    .where(c.name == name, or_(c.holder == holder, c.expires_at <= db_now(dialect)))
                    .values(holder=holder, expires_at=db_now(dialect, ttl))
                ).rowcount
                if taken:
                    return True
                if conn.execute(select(c.name).where(c.name == name)).first():
                    return False
                conn.execute(
                    insert(s.leases).values(
                        name=name, holder=holder, expires_at=db_now(dialect, ttl)
                    )
                )
                return True
        except IntegrityError:
            return False  # another runner inserted the lease first
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {e}") from e

    def release(self, name: str, holder: str) -> None:
        with self._db.tx() as conn:
            conn.execute(
                delete(s.leases).where(s.leases.c.name == name, s.leases.c.holder == holder)
            )


PLANNER_LEASE = "deliver"  # the lease row's name, as releases before the planner role had it
# The advisory lock's first key ("pbpy"); the second is the schema's hash, so instances in
# different schemas of one database elect their planners apart.
ADVISORY_KEY = 0x70627079


class PlannerRole(Protocol):
    """The right to plan editions, held by one process at a time (sending needs none)."""

    def take(self) -> bool:
        """Take the role, or confirm (and renew) it; False while another process holds it."""
        ...

    def release(self) -> None:
        """Give the role up, so a standby takes it at once (a no-op when not held)."""
        ...


class LeaseRole:
    """The role as the ``deliver`` lease row: renewed by each ``take``, it passes to another
    process once ``ttl`` went by without one, by the database's clock."""

    def __init__(self, leases: Leases, holder: str, ttl: dt.timedelta) -> None:
        self._leases, self._holder, self._ttl = leases, holder, ttl

    def take(self) -> bool:
        return self._leases.acquire(PLANNER_LEASE, self._holder, self._ttl)

    def release(self) -> None:
        self._leases.release(PLANNER_LEASE, self._holder)


class AdvisoryRole:
    """The role as a PostgreSQL session advisory lock on a connection kept for it: released
    by the server the moment the holder's session ends (a stop, a crash, a SIGKILL).

    The session's TCP keepalives are set so that the server also ends it within about
    ``ttl`` after the holder's host vanished (a power cut, a partition) rather than hours."""

    def __init__(self, engine: Engine, ttl: dt.timedelta) -> None:
        self._engine = engine
        self._ttl = ttl
        self._conn: Connection | None = None
        self._pid: int | None = None
        self._mutex = threading.Lock()  # the service's heartbeat and its delivery run share it

    def take(self) -> bool:
        with self._mutex:
            if self._conn is not None:
                if self._same_session():
                    return True
                self._drop()  # the session ended, and the lock with it: try again below
            try:
                return self._try_lock()
            except SQLAlchemyError as e:
                self._drop()
                raise StoreError(f"database error: {e.__class__.__name__}: {e.args[0]}") from e

    def _same_session(self) -> bool:
        """True while the connection is the session that took the lock (SQLAlchemy would
        reconnect a broken one silently: a new backend holds no lock)."""
        if self._conn is None:
            return False
        try:
            return bool(self._conn.execute(text("SELECT pg_backend_pid()")).scalar() == self._pid)
        except SQLAlchemyError:
            return False

    def _try_lock(self) -> bool:
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:key, hashtext(current_schema()))"),
                {"key": ADVISORY_KEY},
            ).scalar()
            if not got:
                conn.close()
                return False
            idle = max(1, int(self._ttl.total_seconds() / 3))
            for name, value in (("idle", idle), ("interval", idle), ("count", 2)):
                conn.execute(text(f"SET tcp_keepalives_{name} = {int(value)}"))
            self._pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        except BaseException:
            conn.invalidate()  # never return a session that may hold the lock to the pool
            conn.close()
            raise
        self._conn = conn
        return True

    def release(self) -> None:
        with self._mutex:
            if self._conn is None:
                return
            try:
                self._conn.execute(
                    text("SELECT pg_advisory_unlock(:key, hashtext(current_schema()))"),
                    {"key": ADVISORY_KEY},
                )
            except SQLAlchemyError:
                self._conn.invalidate()  # ending the session releases the lock all the same
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            # A dead connection may fail to close: its session, and the lock, are gone.
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
        self._conn, self._pid = None, None


class SignupEvents:
    """One row per sign-up attempt and address of origin, for the per-IP rate limit."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, ip: str, accepted: bool, now: dt.datetime | None = None) -> None:
        with self._db.tx() as conn:
            conn.execute(
                insert(s.signup_events).values(ip=ip, at=now or utcnow(), accepted=accepted)
            )

    def prune(self, before: dt.datetime) -> int:
        """Delete sign-up events older than ``before``; returns how many went."""
        with self._db.tx() as conn:
            gone = conn.execute(delete(s.signup_events).where(s.signup_events.c.at < before))
            return int(gone.rowcount or 0)

    def count_since(self, ip: str, since: dt.datetime) -> int:
        c = s.signup_events.c
        with self._db.tx() as conn:
            found = conn.execute(
                select(func.count()).select_from(s.signup_events).where(c.ip == ip, c.at > since)
            ).scalar()
        return int(found or 0)
