"""Claiming and marking delivery rows: due → sending (claimed) → sent | sent_ambiguous |
deferred | failed, or released back to queued.

Claims are fenced: each claim writes a fresh ``claim_id`` to its row, and a mark (sent,
deferred, failed) or a release changes the row only while that claim id is still there. A
runner whose claim went stale and was taken over, or whose row was erased mid-send, records
nothing and logs why; it never overwrites the newer claim and never aborts the run. When a
claim is stale is judged by the database's clock (``engine.db_now``), never a process's.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, insert, or_, select, update

from pipeline.models import Delivery, DeliveryStatus, SubscriberStatus
from pipeline.store import tables as s
from pipeline.store.engine import Database, chunks, db_now, model_from, utcnow
from pipeline.store.subscribers import suppress_in

log = logging.getLogger("paperboy.ledger")

c = s.deliveries.c


def delivery_from(row: Any) -> Delivery:
    return model_from(Delivery, row)


def delivery_row(conn: Connection, subscriber_id: int, edition: dt.date) -> Any:
    return conn.execute(
        select(s.deliveries).where(c.subscriber_id == subscriber_id, c.edition_date == edition)
    ).first()


def _due(dialect: str, now: dt.datetime, stale_after: dt.timedelta) -> ColumnElement[bool]:
    """Queued, deferred and due at ``now``, or claimed longer than ``stale_after`` ago by the
    database's clock (a crash): a runner whose clock or ``--now`` runs ahead cannot take over
    a row another runner has in flight."""
    return or_(
        c.status == DeliveryStatus.QUEUED.value,
        and_(c.status == DeliveryStatus.DEFERRED.value, c.next_attempt_at <= now),
        and_(
            c.status == DeliveryStatus.SENDING.value,
            c.claimed_at <= db_now(dialect, -stale_after),
        ),
    )


def _held(subscriber_id: int, edition: dt.date, claim_id: str | None) -> ColumnElement[bool]:
    """This row, while ``claim_id`` still holds it (None: a row that was never claimed)."""
    held = c.claim_id.is_(None) if claim_id is None else c.claim_id == claim_id
    return and_(c.subscriber_id == subscriber_id, c.edition_date == edition, held)


def _not_recorded(
    conn: Connection, subscriber_id: int, edition: dt.date, claim_id: str | None, what: str
) -> None:
    """Log why a fenced write found no row: erased mid-send, or claimed again since."""
    row = delivery_row(conn, subscriber_id, edition)
    if row is None:
        log.warning(
            "edition %s for subscriber %s: the ledger row vanished while in flight "
            "(the reader was erased); %s not recorded",
            edition,
            subscriber_id,
            what,
        )
    else:
        log.warning(
            "edition %s for subscriber %s: claim %s was taken over (now %s, claim %s); "
            "%s not recorded",
            edition,
            subscriber_id,
            claim_id,
            row.status,
            row.claim_id,
            what,
        )


class Claims:
    """The sending side of the ledger: which rows are due, and their fenced claims and marks."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def due(
        self, now: dt.datetime, stale_after: dt.timedelta, limit: int | None = None
    ) -> list[Delivery]:
        """Rows ready to (re)send: queued, deferred and due, or stuck in sending (a crash)."""
        query = (
            select(s.deliveries)
            .where(_due(self._db.dialect, now, stale_after))
            .order_by(c.edition_date, c.subscriber_id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._db.tx() as conn:
            return [delivery_from(r) for r in conn.execute(query)]

    def claim(
        self, subscriber_id: int, edition: dt.date, now: dt.datetime, stale_after: dt.timedelta
    ) -> Delivery | None:
        """Move a due row to ``sending`` under a fresh claim id and commit, so no other runner
        sends it; None if taken. Pass the returned row's ``claim_id`` to the mark that follows.

        ``now`` decides whether a deferred row is due; the claim's own time, and whether an
        older claim went stale, come from the database's clock."""
        claim_id = secrets.token_hex(16)
        with self._db.tx() as conn:
            done = conn.execute(
                update(s.deliveries)
                .where(
                    c.subscriber_id == subscriber_id,
                    c.edition_date == edition,
                    _due(self._db.dialect, now, stale_after),
                )
                .values(
                    status=DeliveryStatus.SENDING.value,
                    claim_id=claim_id,
                    claimed_at=db_now(self._db.dialect),
                    attempts=c.attempts + 1,
                    first_attempt_at=func.coalesce(c.first_attempt_at, now),
                    updated_at=now,
                )
            ).rowcount
            row = delivery_row(conn, subscriber_id, edition) if done else None
        return delivery_from(row) if row else None

    def mark_sent(
        self,
        subscriber_id: int,
        edition: dt.date,
        reply: str,
        now: dt.datetime | None = None,
        *,
        claim_id: str | None = None,
        ambiguous: bool = False,
    ) -> bool:
        """The server said 250: record it, and its papers as sent, in one transaction.
        With ``ambiguous`` the reply never came after the final dot: the row becomes
        ``sent_ambiguous`` (never resent) and ``reply`` says what happened.

        False (and a log line) when ``claim_id`` no longer holds the row: it was taken over
        by another runner, or erased with its reader. Nothing is written then."""
        now = now or utcnow()
        status = DeliveryStatus.SENT_AMBIGUOUS if ambiguous else DeliveryStatus.SENT
        with self._db.tx() as conn:
            done = conn.execute(
                update(s.deliveries)
                .where(_held(subscriber_id, edition, claim_id))
                .values(
                    status=status.value,
                    server_reply=None if ambiguous else reply[:1000],
                    last_error=reply[:1000] if ambiguous else None,
                    next_attempt_at=None,
                    updated_at=now,
                )
            ).rowcount
            row = delivery_row(conn, subscriber_id, edition) if done else None
            if row is None:
                _not_recorded(conn, subscriber_id, edition, claim_id, status.value)
                return False
            _record_sent_papers(conn, subscriber_id, edition, list(row.paper_ids), now)
            set_last_edition(conn, subscriber_id, edition)
        return True

    def mark_deferred(
        self,
        subscriber_id: int,
        edition: dt.date,
        error: str,
        next_attempt_at: dt.datetime,
        now: dt.datetime | None = None,
        *,
        claim_id: str | None = None,
    ) -> bool:
        """Try again at ``next_attempt_at``; False when ``claim_id`` no longer holds the row."""
        with self._db.tx() as conn:
            return _update_delivery(
                conn,
                subscriber_id,
                edition,
                claim_id,
                DeliveryStatus.DEFERRED,
                error,
                next_attempt_at,
                now or utcnow(),
            )

    def mark_failed(
        self,
        subscriber_id: int,
        edition: dt.date,
        error: str,
        *,
        suppress_email: str | None = None,
        now: dt.datetime | None = None,
        claim_id: str | None = None,
    ) -> bool:
        """Give up on this edition; with ``suppress_email`` the address is never mailed again.

        False when ``claim_id`` no longer holds the row (None: a row never claimed); then
        nothing is written, not even the suppression."""
        now = now or utcnow()
        with self._db.tx() as conn:
            if not _update_delivery(
                conn, subscriber_id, edition, claim_id, DeliveryStatus.FAILED, error, None, now
            ):
                return False
            if suppress_email:
                suppress_in(conn, suppress_email, f"permanent failure: {error[:200]}")
                conn.execute(
                    update(s.subscribers)
                    .where(s.subscribers.c.id == subscriber_id)
                    .values(status=SubscriberStatus.SUPPRESSED.value)
                )
        return True

    def release(
        self,
        subscriber_id: int,
        edition: dt.date,
        now: dt.datetime | None = None,
        *,
        claim_id: str | None = None,
    ) -> bool:
        """Undo a claim that never reached the server (e.g. the run aborted on auth failure);
        False when ``claim_id`` no longer holds the row."""
        now = now or utcnow()
        greatest = func.max if self._db.dialect == "sqlite" else func.greatest
        with self._db.tx() as conn:
            done = conn.execute(
                update(s.deliveries)
                .where(
                    _held(subscriber_id, edition, claim_id),
                    c.status == DeliveryStatus.SENDING.value,
                )
                .values(
                    status=DeliveryStatus.QUEUED.value,
                    attempts=greatest(c.attempts - 1, 0),
                    claimed_at=None,
                    updated_at=now,
                )
            ).rowcount
            if not done:
                _not_recorded(conn, subscriber_id, edition, claim_id, "release")
        return bool(done)


def _record_sent_papers(
    conn: Connection, subscriber_id: int, edition: dt.date, paper_ids: list[str], now: dt.datetime
) -> None:
    """Add the edition's papers to what this subscriber was ever sent (once each)."""
    sp = s.sent_papers.c
    already = {
        r.paper_id
        for chunk in chunks(paper_ids)
        for r in conn.execute(
            select(sp.paper_id).where(sp.subscriber_id == subscriber_id, sp.paper_id.in_(chunk))
        )
    }
    fresh = [p for p in dict.fromkeys(paper_ids) if p not in already]
    if fresh:
        conn.execute(
            insert(s.sent_papers),
            [
                {
                    "subscriber_id": subscriber_id,
                    "paper_id": p,
                    "edition_date": edition,
                    "sent_at": now,
                }
                for p in fresh
            ],
        )


def set_last_edition(conn: Connection, subscriber_id: int, edition: dt.date) -> None:
    conn.execute(
        update(s.subscribers)
        .where(s.subscribers.c.id == subscriber_id)
        .values(last_edition=edition)
    )


def _update_delivery(
    conn: Connection,
    subscriber_id: int,
    edition: dt.date,
    claim_id: str | None,
    status: DeliveryStatus,
    error: str | None,
    next_attempt_at: dt.datetime | None,
    now: dt.datetime,
) -> bool:
    done = conn.execute(
        update(s.deliveries)
        .where(_held(subscriber_id, edition, claim_id))
        .values(
            status=status.value,
            last_error=error[:1000] if error else None,
            next_attempt_at=next_attempt_at,
            claimed_at=None,
            updated_at=now,
        )
    ).rowcount
    if not done:
        _not_recorded(conn, subscriber_id, edition, claim_id, status.value)
    return bool(done)
