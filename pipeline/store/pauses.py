"""The circuit breaker's pause of the delivery job, and the deferral of what waits behind it.

``hold`` writes to the deliveries table, the ledger's aggregate, on purpose: the pause and the
rows it holds back change together, and only rows no runner has claimed (queued, or deferred
to before the pause ends) are touched, so a claim in flight is never disturbed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from pipeline.models import DeliveryStatus, Pause
from pipeline.store import tables as s
from pipeline.store.engine import Database

JOB = "deliver"

p = s.pauses.c
d = s.deliveries.c


def _pause_from(row: Any) -> Pause:
    return Pause(
        until=row.paused_until, trips=row.trips, reason=row.reason, tripped_at=row.tripped_at
    )


class Pauses:
    """One row per paused job: when it may send again, and how many trips in a row."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def current(self, now: dt.datetime) -> Pause | None:
        """The pause in force at ``now``; None when delivery may go ahead."""
        with self._db.tx() as conn:
            row = conn.execute(select(s.pauses).where(p.name == JOB)).first()
        if row is None or row.paused_until <= now:
            return None
        return _pause_from(row)

    def trip(
        self, reason: str, now: dt.datetime, first: dt.timedelta, longest: dt.timedelta
    ) -> tuple[Pause, int]:
        """Pause delivery: ``first`` after the first trip, doubling per trip in a row, at most
        ``longest``; the rows not yet tried are deferred to the pause's end in the same
        transaction. Returns the pause and how many rows it held back."""
        with self._db.tx() as conn:
            row = conn.execute(select(s.pauses).where(p.name == JOB)).first()
            trips = (row.trips if row else 0) + 1
            until = now + min(first * 2 ** (trips - 1), longest)
            values = {"paused_until": until, "trips": trips, "reason": reason, "tripped_at": now}
            if row is None:
                conn.execute(insert(s.pauses).values(name=JOB, **values))
            else:
                conn.execute(update(s.pauses).where(p.name == JOB).values(**values))
            held = _hold(conn, until, reason, now)
        return Pause(until=until, trips=trips, reason=reason, tripped_at=now), held

    def hold(self, pause: Pause, now: dt.datetime) -> int:
        """Defer the rows not yet tried to the end of ``pause``; how many were deferred."""
        with self._db.tx() as conn:
            return _hold(conn, pause.until, pause.reason, now)

    def clear(self) -> None:
        """A run sent mail without tripping: the next trip starts from the first pause again."""
        with self._db.tx() as conn:
            conn.execute(delete(s.pauses).where(p.name == JOB))


def _hold(conn: Connection, until: dt.datetime, reason: str, now: dt.datetime) -> int:
    note = f"not tried: delivery paused until {until:%Y-%m-%d %H:%M} UTC ({reason})"[:1000]
    queued = conn.execute(
        update(s.deliveries)
        .where(d.status == DeliveryStatus.QUEUED.value)
        .values(
            status=DeliveryStatus.DEFERRED.value,
            next_attempt_at=until,
            last_error=note,
            updated_at=now,
        )
    ).rowcount
    # Rows deferred earlier (this run's refusals among them) wait for the pause's end too.
    waiting = conn.execute(
        update(s.deliveries)
        .where(
            and_(
                d.status == DeliveryStatus.DEFERRED.value,
                or_(d.next_attempt_at.is_(None), d.next_attempt_at < until),
            )
        )
        .values(next_attempt_at=until, updated_at=now)
    ).rowcount
    return int(queued) + int(waiting)
