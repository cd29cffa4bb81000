"""The health record: the conditions that degrade paperboy, whichever process noted them.

Each condition is one row, set while it holds and deleted when it clears, so processes that
note different conditions never overwrite each other. The circuit breaker's condition is not
stored twice: it is the ``pauses`` row, which stays until a run sends.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, insert, select, update

from pipeline.models import HealthReason, HealthReport
from pipeline.store import tables as s
from pipeline.store.engine import Database
from pipeline.store.pauses import JOB

h = s.health.c


class Health:
    """Set, clear and read the conditions that make health ``degraded``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def set(self, name: str, reason: str, now: dt.datetime) -> None:
        """Note that condition ``name`` holds; a condition already set keeps its ``since``."""
        with self._db.tx() as conn:
            done = conn.execute(
                update(s.health).where(h.name == name).values(reason=reason, updated_at=now)
            ).rowcount
            if not done:
                conn.execute(
                    insert(s.health).values(name=name, reason=reason, since=now, updated_at=now)
                )

    def clear(self, name: str) -> None:
        """Condition ``name`` no longer holds."""
        with self._db.tx() as conn:
            conn.execute(delete(s.health).where(h.name == name))

    def report(self, now: dt.datetime) -> HealthReport:
        """Every condition in force: the breaker first (from its pause), then the stored ones."""
        reasons: list[HealthReason] = []
        with self._db.tx() as conn:
            pause = conn.execute(select(s.pauses).where(s.pauses.c.name == JOB)).first()
            rows = conn.execute(select(s.health).order_by(h.name)).all()
        if pause is not None:
            if pause.paused_until > now:
                state = f"delivery paused until {pause.paused_until:%Y-%m-%d %H:%M} UTC"
            else:
                state = "no run has sent since"
            reasons.append(
                HealthReason(
                    name="breaker",
                    reason=f"circuit breaker open: {pause.reason}; {state}",
                    since=pause.tripped_at,
                )
            )
        reasons += [HealthReason(name=r.name, reason=r.reason, since=r.since) for r in rows]
        return HealthReport(reasons=tuple(reasons))
