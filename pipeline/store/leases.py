"""Leases and events: who plans editions now, and the sign-up events the rate limit counts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, insert, or_, select, update
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
