"""The delivery ledger and sent papers: one row per (subscriber, edition date), queued →
sending → sent | sent_ambiguous | deferred | failed, or recorded skipped | missed.

Queueing, recording and reading rows live here; claiming and marking them (fenced by claim
id, judged by the database's clock) in ``claims.py``, whose ``Claims`` this class extends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update

from pipeline.errors import StoreError
from pipeline.models import Delivery, DeliveryStatus, Pick
from pipeline.store import tables as s
from pipeline.store.claims import Claims, delivery_from, delivery_row, set_last_edition
from pipeline.store.engine import chunks, utcnow

c = s.deliveries.c


def _queued_row(d: Delivery, now: dt.datetime) -> dict[str, Any]:
    """The row a queued edition starts as: its picks are what a resend renders."""
    row = d.model_dump(
        mode="json", include={"subscriber_id", "message_id", "more_count", "picks", "more_picks"}
    )
    return {
        **row,
        "edition_date": d.edition_date,
        "status": DeliveryStatus.QUEUED.value,
        "attempts": 0,
        "paper_ids": list(d.paper_ids),
        "updated_at": now,
    }


def _as_queued(entry: Delivery | tuple[int, dt.date, str, Sequence[str]]) -> Delivery:
    if isinstance(entry, Delivery):
        return entry
    sid, edition, message_id, paper_ids = entry
    return Delivery(
        subscriber_id=sid,
        edition_date=edition,
        status=DeliveryStatus.QUEUED,
        message_id=message_id,
        paper_ids=tuple(paper_ids),
    )


class Ledger(Claims):
    """One row per (subscriber, edition date), and every paper a subscriber was ever sent."""

    def queue(
        self,
        subscriber_id: int,
        edition: dt.date,
        message_id: str,
        paper_ids: Sequence[str],
        now: dt.datetime | None = None,
        *,
        picks: Sequence[Pick] = (),
        more_count: int = 0,
        more_picks: Sequence[Pick] = (),
    ) -> Delivery:
        """The ledger row for this edition, created as queued if new (idempotent).

        ``picks`` (score and reasons per paper) and ``more_count`` are what a resend renders;
        ``more_picks`` the further matches the web view lists (never marked sent)."""
        entry = Delivery(
            subscriber_id=subscriber_id,
            edition_date=edition,
            status=DeliveryStatus.QUEUED,
            message_id=message_id,
            paper_ids=tuple(paper_ids),
            picks=tuple(picks),
            more_count=more_count,
            more_picks=tuple(more_picks),
        )
        with self._db.tx() as conn:
            row = delivery_row(conn, subscriber_id, edition)
            if row is None:
                conn.execute(insert(s.deliveries).values(**_queued_row(entry, now or utcnow())))
                row = delivery_row(conn, subscriber_id, edition)
        if row is None:
            raise StoreError(f"the queued delivery for {subscriber_id} on {edition} vanished")
        return delivery_from(row)

    def queue_many(
        self,
        entries: Sequence[Delivery | tuple[int, dt.date, str, Sequence[str]]],
        now: dt.datetime | None = None,
    ) -> int:
        """``queue`` for many rows in one transaction; rows that exist are left alone.
        Returns how many were new. An entry is a ``Delivery`` (its picks and more_count are
        kept for resends, its more_picks for the web view) or a bare (subscriber, edition,
        message id, paper ids)."""
        now = now or utcnow()
        new = 0
        with self._db.tx() as conn:
            for chunk in chunks([_as_queued(e) for e in entries]):
                existing = {
                    (r.subscriber_id, r.edition_date)
                    for r in conn.execute(
                        select(c.subscriber_id, c.edition_date).where(
                            c.subscriber_id.in_([d.subscriber_id for d in chunk]),
                            c.edition_date.in_(sorted({d.edition_date for d in chunk})),
                        )
                    )
                }
                rows = [
                    _queued_row(d, now)
                    for d in chunk
                    if (d.subscriber_id, d.edition_date) not in existing
                ]
                if rows:
                    conn.execute(insert(s.deliveries), rows)
                    new += len(rows)
        return new

    def record_skipped(
        self, subscriber_id: int, edition: dt.date, reason: str, now: dt.datetime | None = None
    ) -> None:
        """An edition with nothing to send: recorded so it is not reconsidered."""
        self._record_unsent(subscriber_id, edition, DeliveryStatus.SKIPPED, reason, now)

    def record_missed(
        self, subscriber_id: int, edition: dt.date, reason: str, now: dt.datetime | None = None
    ) -> None:
        """An edition too late to send: recorded so downtime leaves a trace and it is never
        sent. The reader's last edition stays what it was, so the next one covers the gap."""
        self._record_unsent(subscriber_id, edition, DeliveryStatus.MISSED, reason, now)

    def _record_unsent(
        self,
        subscriber_id: int,
        edition: dt.date,
        status: DeliveryStatus,
        reason: str,
        now: dt.datetime | None,
    ) -> None:
        now = now or utcnow()
        with self._db.tx() as conn:
            if delivery_row(conn, subscriber_id, edition) is None:
                conn.execute(
                    insert(s.deliveries).values(
                        subscriber_id=subscriber_id,
                        edition_date=edition,
                        status=status.value,
                        message_id="",
                        attempts=0,
                        paper_ids=[],
                        picks=[],
                        more_count=0,
                        more_picks=[],
                        last_error=reason,
                        updated_at=now,
                    )
                )
            if status == DeliveryStatus.SKIPPED:
                set_last_edition(conn, subscriber_id, edition)

    def get(self, subscriber_id: int, edition: dt.date) -> Delivery | None:
        with self._db.tx() as conn:
            row = delivery_row(conn, subscriber_id, edition)
        return delivery_from(row) if row else None

    def all(
        self, statuses: Sequence[DeliveryStatus] | None = None, edition: dt.date | None = None
    ) -> list[Delivery]:
        query = select(s.deliveries).order_by(c.edition_date, c.subscriber_id)
        if statuses:
            query = query.where(c.status.in_([x.value for x in statuses]))
        if edition:
            query = query.where(c.edition_date == edition)
        with self._db.tx() as conn:
            return [delivery_from(r) for r in conn.execute(query)]

    def with_edition(self, edition: dt.date, subscriber_ids: Iterable[int]) -> set[int]:
        """Which of these subscribers already have a ledger row for ``edition`` (ids only:
        the rows themselves carry every pick and reason)."""
        out: set[int] = set()
        with self._db.tx() as conn:
            for chunk in chunks(sorted(set(subscriber_ids))):
                query = select(c.subscriber_id).where(
                    c.edition_date == edition, c.subscriber_id.in_(chunk)
                )
                out.update(conn.execute(query).scalars())
        return out

    def sent_paper_ids(
        self, subscriber_ids: Iterable[int], among: Iterable[str] | None = None
    ) -> dict[int, set[str]]:
        """The papers each subscriber was ever sent; only those in ``among`` when given.

        Matching passes the day's candidate papers as ``among``: a long-time reader's whole
        history (thousands of rows each) would otherwise be loaded for every edition.
        """
        sp = s.sent_papers.c
        paper_chunks = [None] if among is None else list(chunks(sorted(set(among))))
        out: dict[int, set[str]] = {}
        with self._db.tx() as conn:
            for chunk in chunks(sorted(set(subscriber_ids))):
                for papers in paper_chunks:
                    query = select(sp.subscriber_id, sp.paper_id).where(sp.subscriber_id.in_(chunk))
                    if papers is not None:
                        query = query.where(sp.paper_id.in_(papers))
                    for row in conn.execute(query):
                        out.setdefault(row.subscriber_id, set()).add(row.paper_id)
        return out

    def last_sent_at(self, subscriber_ids: Iterable[int]) -> dict[int, dt.datetime]:
        """When each subscriber's latest edition was accepted by the server."""
        out: dict[int, dt.datetime] = {}
        with self._db.tx() as conn:
            for chunk in chunks(sorted(set(subscriber_ids))):
                for row in conn.execute(
                    select(c.subscriber_id, func.max(c.updated_at).label("at"))
                    .where(c.subscriber_id.in_(chunk), c.status == DeliveryStatus.SENT.value)
                    .group_by(c.subscriber_id)
                ):
                    out[row.subscriber_id] = (
                        row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)
                    )
        return out

    def cancel(self, subscriber_id: int, reason: str, now: dt.datetime | None = None) -> int:
        """Mark this subscriber's queued and deferred editions skipped, so none is sent."""
        now = now or utcnow()
        with self._db.tx() as conn:
            return int(
                conn.execute(
                    update(s.deliveries)
                    .where(
                        c.subscriber_id == subscriber_id,
                        c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.DEFERRED.value]),
                    )
                    .values(
                        status=DeliveryStatus.SKIPPED.value,
                        last_error=reason[:1000],
                        next_attempt_at=None,
                        updated_at=now,
                    )
                ).rowcount
            )

    def retry_now(
        self, subscriber_id: int, edition: dt.date, now: dt.datetime | None = None
    ) -> bool:
        """A deferred or failed edition back to queued, so the next delivery run sends it (an
        admin's "retry now"). Rows in any other status are left alone (False): one being sent
        stays with its claim, and a sent one is never sent again. The row's claim id is not
        touched; the next claim writes a fresh one, so fencing holds."""
        now = now or utcnow()
        retryable = [DeliveryStatus.DEFERRED.value, DeliveryStatus.FAILED.value]
        with self._db.tx() as conn:
            done = conn.execute(
                update(s.deliveries)
                .where(
                    c.subscriber_id == subscriber_id,
                    c.edition_date == edition,
                    c.status.in_(retryable),
                )
                .values(status=DeliveryStatus.QUEUED.value, next_attempt_at=None, updated_at=now)
            ).rowcount
        return bool(done)
