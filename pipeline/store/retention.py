"""Pruning: finished ledger rows and sent-paper records past their retention, counted or deleted.

Each method deletes the rows it names and returns how many went; with ``dry_run`` it counts
the same rows instead, so a dry run reports what the real one would remove. Rows go in
batches of ``BATCH``, a transaction each: the first prune of a years-old ledger never holds
SQLite's write lock for long enough to make the sender's writes time out.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, func, select

from pipeline.models import DeliveryStatus
from pipeline.store import tables as s
from pipeline.store.engine import Database

BATCH = 5000  # rows per delete transaction

# Rows no runner will touch again. Queued, sending and deferred rows are work in progress:
# kept however old, so pruning never loses an edition that is still owed.
FINISHED = (
    DeliveryStatus.SENT,
    DeliveryStatus.SENT_AMBIGUOUS,
    DeliveryStatus.FAILED,
    DeliveryStatus.SKIPPED,
    DeliveryStatus.MISSED,
)


class Retention:
    """What ``pipeline.prune`` removes from the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def prune_deliveries(
        self, before: dt.date, *, dry_run: bool = False, batch: int = BATCH
    ) -> int:
        """Finished ledger rows of editions dated before ``before``; how many (would) go."""
        c = s.deliveries.c
        old = and_(c.edition_date < before, c.status.in_([x.value for x in FINISHED]))
        return self._prune(s.deliveries, ("subscriber_id", "edition_date"), old, dry_run, batch)

    def prune_sent_papers(
        self,
        sent_before: dt.datetime,
        seen_before: dt.datetime,
        *,
        dry_run: bool = False,
        batch: int = BATCH,
    ) -> int:
        """Records of papers sent before ``sent_before`` whose paper is stored and was first
        seen before ``seen_before`` (so no edition can pick it again); how many (would) go.

        A record whose paper is not in the papers table is kept: were the paper stored again,
        it would be new to matching, and only the record would stop it reaching the reader
        a second time."""
        sp = s.sent_papers.c
        p = s.papers.c
        too_old = select(p.id).where(p.first_seen_at < seen_before)
        old = and_(sp.sent_at < sent_before, sp.paper_id.in_(too_old))
        return self._prune(s.sent_papers, ("subscriber_id", "paper_id"), old, dry_run, batch)

    def _prune(
        self,
        table: Table,
        key: tuple[str, str],
        where: ColumnElement[bool],
        dry_run: bool,
        batch: int,
    ) -> int:
        """Delete the rows ``where`` selects, ``batch`` primary keys (``key``) at a time."""
        if dry_run:
            with self._db.tx() as conn:
                found = conn.execute(select(func.count()).select_from(table).where(where))
                return int(found.scalar() or 0)
        first, second = (table.c[name] for name in key)
        by_key = delete(table).where(first == bindparam("k1"), second == bindparam("k2"))
        gone = 0
        while True:
            with self._db.tx() as conn:
                rows = conn.execute(select(first, second).where(where).limit(batch)).all()
                if rows:
                    conn.execute(by_key, [{"k1": a, "k2": b} for a, b in rows])
            gone += len(rows)
            if len(rows) < batch:
                return gone
