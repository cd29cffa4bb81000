"""Read-only counts for the operator's views (``paperboy status``, ``/healthz``, ``/metrics``):
dumps, new papers, subscribers and editions, each read at the moment it is asked for."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from pipeline.models import DeliveryStatus, Frozen
from pipeline.store import tables as s
from pipeline.store.engine import Database


class DumpSeen(Frozen):
    """One ingested dump as the operator sees it."""

    name: str
    format: str
    dump_date: dt.date
    ingested_at: dt.datetime
    papers: int
    warnings: int


class PendingGroup(Frozen):
    """Editions not yet handed to a server (queued, sending, deferred) that share one due
    moment: the same edition date, time zone and send hour."""

    edition_date: dt.date
    timezone: str
    send_hour: int
    editions: int


# A ledger row in one of these has not reached a mail server yet.
PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)


class Reports:
    """Counts over the whole store; nothing here writes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def last_dump(self) -> DumpSeen | None:
        """The most recently ingested dump; None before the first."""
        dumps = self._dumps(None, limit=1)
        return dumps[0] if dumps else None

    def dumps_since(self, since: dt.datetime) -> list[DumpSeen]:
        """The dumps ingested at or after ``since``, newest first."""
        return self._dumps(since)

    def papers_since(self, since: dt.datetime) -> int:
        """How many papers were seen for the first time at or after ``since``."""
        query = select(func.count()).where(s.papers.c.first_seen_at >= since)
        with self._db.tx() as conn:
            return int(conn.execute(query).scalar() or 0)

    def subscribers_by_status(self) -> dict[str, int]:
        c = s.subscribers.c
        query = select(c.status, func.count()).group_by(c.status)
        with self._db.tx() as conn:
            return {str(status): int(n) for status, n in conn.execute(query)}

    def editions_by_status(self, edition: dt.date) -> dict[str, int]:
        """The ledger's rows for one edition date, counted by status."""
        c = s.deliveries.c
        query = select(c.status, func.count()).where(c.edition_date == edition).group_by(c.status)
        with self._db.tx() as conn:
            return {str(status): int(n) for status, n in conn.execute(query)}

    def editions_by_day(self, first: dt.date, last: dt.date) -> dict[dt.date, dict[str, int]]:
        """The ledger's rows for each edition date from ``first`` to ``last``, by status."""
        c = s.deliveries.c
        query = (
            select(c.edition_date, c.status, func.count())
            .where(c.edition_date >= first, c.edition_date <= last)
            .group_by(c.edition_date, c.status)
        )
        out: dict[dt.date, dict[str, int]] = {}
        with self._db.tx() as conn:
            for day, status, n in conn.execute(query):
                out.setdefault(day, {})[str(status)] = int(n)
        return out

    def ledger_by_status(self) -> dict[str, int]:
        """Every ledger row still kept (all edition dates), counted by status."""
        c = s.deliveries.c
        query = select(c.status, func.count()).group_by(c.status)
        with self._db.tx() as conn:
            return {str(status): int(n) for status, n in conn.execute(query)}

    def dump_count(self) -> int:
        """How many dumps were ingested (the records retention keeps)."""
        with self._db.tx() as conn:
            return int(conn.execute(select(func.count()).select_from(s.dumps)).scalar() or 0)

    def pending_editions(self) -> list[PendingGroup]:
        """The editions not yet sent, grouped by what decides their due moment; a few rows
        per edition date however many readers wait."""
        d, sub = s.deliveries.c, s.subscribers.c
        query = (
            select(d.edition_date, sub.timezone, sub.send_hour, func.count())
            .join(s.subscribers, sub.id == d.subscriber_id)
            .where(d.status.in_(PENDING))
            .group_by(d.edition_date, sub.timezone, sub.send_hour)
        )
        with self._db.tx() as conn:
            rows = conn.execute(query).all()
        return [
            PendingGroup(edition_date=day, timezone=str(tz), send_hour=int(hour), editions=int(n))
            for day, tz, hour, n in rows
        ]

    def _dumps(self, since: dt.datetime | None, limit: int | None = None) -> list[DumpSeen]:
        c = s.dumps.c
        query = select(s.dumps).order_by(c.ingested_at.desc()).limit(limit)
        if since is not None:
            query = query.where(c.ingested_at >= since)
        with self._db.tx() as conn:
            rows = conn.execute(query).all()
        return [
            DumpSeen(
                name=r.name,
                format=r.format,
                dump_date=r.dump_date,
                ingested_at=r.ingested_at,
                papers=r.paper_count,
                warnings=len(r.warnings or []),
            )
            for r in rows
        ]
