"""Subscribers, suppressions and bounce scores: who reads, how they want it, and who must never
be mailed."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pipeline.addresses import email_key
from pipeline.errors import StoreError, SubscriberError
from pipeline.models import Frequency, Profile, Subscriber, SubscriberStatus
from pipeline.store import tables as s
from pipeline.store.engine import Database, model_from, utcnow


def email_hash(email: str) -> str:
    """What a suppression remembers of an erased address: a hash, never the address."""
    return hashlib.sha256(email_key(email).encode("utf-8")).hexdigest()


def suppress_in(conn: Connection, email: str, reason: str) -> None:
    """Record a suppression inside the caller's transaction (the ledger's hard bounces too)."""
    digest = email_hash(email)
    if conn.execute(
        select(s.suppressions.c.email_hash).where(s.suppressions.c.email_hash == digest)
    ).first():
        return
    conn.execute(
        insert(s.suppressions).values(email_hash=digest, reason=reason, created_at=utcnow())
    )


def _subscriber_from(row: Any) -> Subscriber:
    return model_from(Subscriber, row)


def _new_row(entry: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The row ``add`` inserts for one entry of ``add``'s keyword arguments."""
    status = SubscriberStatus(entry.get("status") or SubscriberStatus.PENDING)
    return {
        "email": entry["email"],
        "email_key": email_key(entry["email"]),
        "status": status.value,
        "timezone": entry.get("timezone", "UTC"),
        "send_hour": entry.get("send_hour", 7),
        "frequency": Frequency(entry.get("frequency") or Frequency.DAILY).value,
        "weekly_day": entry.get("weekly_day", 0),
        "profile": (entry.get("profile") or Profile()).model_dump(mode="json"),
        "created_at": now,
        "confirmed_at": now if status == SubscriberStatus.ACTIVE else None,
        "consent": entry.get("consent") or {},
    }


class Subscribers:
    """The subscribers table and the suppression list (hashes of addresses never to mail)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        email: str,
        *,
        profile: Profile | None = None,
        status: SubscriberStatus = SubscriberStatus.PENDING,
        timezone: str = "UTC",
        send_hour: int = 7,
        frequency: Frequency = Frequency.DAILY,
        weekly_day: int = 0,
        consent: dict[str, Any] | None = None,
        now: dt.datetime | None = None,
    ) -> Subscriber:
        """Create a subscriber; SubscriberError if the address exists or is suppressed."""
        entry = {
            "email": email,
            "profile": profile,
            "status": status,
            "timezone": timezone,
            "send_hour": send_hour,
            "frequency": frequency,
            "weekly_day": weekly_day,
            "consent": consent,
        }
        [new_id] = self.add_many([entry], now)
        return self._must_get(new_id)

    def add_many(
        self, entries: Sequence[dict[str, Any]], now: dt.datetime | None = None
    ) -> list[int]:
        """Create many subscribers in one transaction (all or none); each entry takes
        ``add``'s keyword arguments. SubscriberError names the first refused address."""
        now = now or utcnow()
        rows = [_new_row(entry, now) for entry in entries]
        ids: list[int] = []
        try:
            with self._db.engine.begin() as conn:
                for row in rows:
                    _refuse_known(conn, row["email"])
                    ids.append(
                        conn.execute(
                            insert(s.subscribers).values(**row).returning(s.subscribers.c.id)
                        ).scalar_one()
                    )
        except IntegrityError:
            # Lost a race with another writer between the check and the insert.
            raise SubscriberError("an address in the batch is already a subscriber") from None
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {e}") from e
        return ids

    def get(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this id, or the one a merged id now points to (0007 merged
        case variants of one address; links mailed to the merged row still carry its id)."""
        c = s.subscribers.c
        with self._db.tx() as conn:
            row = conn.execute(select(s.subscribers).where(c.id == subscriber_id)).first()
            if row is None:
                alias = s.subscriber_aliases.c
                row = conn.execute(
                    select(s.subscribers)
                    .join(s.subscriber_aliases, alias.new_id == c.id)
                    .where(alias.old_id == subscriber_id)
                ).first()
        return _subscriber_from(row) if row else None

    def _must_get(self, subscriber_id: int) -> Subscriber:
        sub = self.get(subscriber_id)
        if sub is None:
            raise StoreError(f"subscriber {subscriber_id} vanished while it was being written")
        return sub

    def find(self, email: str) -> Subscriber | None:
        with self._db.tx() as conn:
            row = conn.execute(
                select(s.subscribers).where(s.subscribers.c.email_key == email_key(email))
            ).first()
        return _subscriber_from(row) if row else None

    def search(self, text: str, limit: int = 50) -> list[Subscriber]:
        """Subscribers whose address contains ``text`` (any case), in id order, ``limit`` at
        most; ``%`` and ``_`` match themselves."""
        c = s.subscribers.c
        query = (
            select(s.subscribers)
            .where(func.lower(c.email).contains(text.strip().lower(), autoescape=True))
            .order_by(c.id)
            .limit(limit)
        )
        with self._db.tx() as conn:
            return [_subscriber_from(r) for r in conn.execute(query)]

    def record(self, subscriber_id: int) -> dict[str, Any] | None:
        """Everything stored about one subscriber, for 'export my data' and ``show``."""
        with self._db.tx() as conn:
            row = conn.execute(
                select(s.subscribers).where(s.subscribers.c.id == subscriber_id)
            ).first()
            if row is None:
                return None
            record = dict(row._mapping)
            for key, table in (("deliveries", s.deliveries), ("feedback", s.feedback)):
                record[key] = [
                    dict(r._mapping)
                    for r in conn.execute(
                        select(table).where(table.c.subscriber_id == subscriber_id)
                    )
                ]
        return record

    def all(self, statuses: Sequence[SubscriberStatus] | None = None) -> list[Subscriber]:
        query = select(s.subscribers).order_by(s.subscribers.c.id)
        if statuses:
            query = query.where(s.subscribers.c.status.in_([x.value for x in statuses]))
        with self._db.tx() as conn:
            return [_subscriber_from(r) for r in conn.execute(query)]

    def pages(
        self, statuses: Sequence[SubscriberStatus] | None = None, page: int = 10_000
    ) -> Iterator[list[Subscriber]]:
        """Subscribers in id order, ``page`` at a time, each page its own short read: a
        million readers never sit in memory together, and no transaction stays open while the
        caller works on a page."""
        after = 0
        while True:
            query = (
                select(s.subscribers)
                .where(s.subscribers.c.id > after)
                .order_by(s.subscribers.c.id)
                .limit(page)
            )
            if statuses:
                query = query.where(s.subscribers.c.status.in_([x.value for x in statuses]))
            with self._db.tx() as conn:
                found = [_subscriber_from(r) for r in conn.execute(query)]
            if not found:
                return
            yield found
            after = found[-1].id

    def update(self, subscriber_id: int, **fields: Any) -> Subscriber:
        """Change columns of one subscriber (profile as a Profile, enums as enums)."""
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key not in s.subscribers.c or key in ("id", "email", "email_key"):
                raise SubscriberError(f"cannot change subscriber field {key!r}")
            if isinstance(value, Profile):
                value = value.model_dump(mode="json")
            elif isinstance(value, (SubscriberStatus, Frequency)):
                value = value.value
            values[key] = value
        if values.get("status") == SubscriberStatus.UNSUBSCRIBED.value:
            values["confirm_epoch"] = s.subscribers.c.confirm_epoch + 1
        with self._db.tx() as conn:
            done = conn.execute(
                update(s.subscribers).where(s.subscribers.c.id == subscriber_id).values(**values)
            ).rowcount
        if not done:
            raise SubscriberError(f"no subscriber with id {subscriber_id}")
        return self._must_get(subscriber_id)

    def set_status(
        self, subscriber_id: int, status: SubscriberStatus, now: dt.datetime | None = None
    ) -> Subscriber:
        now = now or utcnow()
        extra: dict[str, Any] = {}
        if status == SubscriberStatus.ACTIVE:
            extra["confirmed_at"] = now
        if status == SubscriberStatus.UNSUBSCRIBED:
            extra["unsubscribed_at"] = now
        return self.update(subscriber_id, status=status, **extra)

    def change_status(
        self,
        subscriber_id: int,
        status: SubscriberStatus,
        *,
        only_from: Sequence[SubscriberStatus],
        now: dt.datetime | None = None,
    ) -> bool:
        """Set ``status`` only if the current one is in ``only_from`` (one conditional UPDATE,
        so a confirmation racing an unsubscribe cannot undo it); False if nothing changed."""
        now = now or utcnow()
        c = s.subscribers.c
        extra: dict[str, Any] = {}
        if status == SubscriberStatus.ACTIVE:
            extra["confirmed_at"] = func.coalesce(c.confirmed_at, now)
        if status == SubscriberStatus.UNSUBSCRIBED:
            extra["unsubscribed_at"] = now
            # Every confirmation link mailed so far is void: they predate the leaving.
            extra["confirm_epoch"] = c.confirm_epoch + 1
        with self._db.tx() as conn:
            done = conn.execute(
                update(s.subscribers)
                .where(c.id == subscriber_id, c.status.in_([x.value for x in only_from]))
                .values(status=status.value, **extra)
            ).rowcount
        return bool(done)

    def claim_confirmation(
        self, subscriber_id: int, every: dt.timedelta, now: dt.datetime | None = None
    ) -> bool:
        """Take the right to mail this subscriber a confirmation now; False if one went out
        within ``every``. One UPDATE, so concurrent sign-ups of one address claim it once."""
        now = now or utcnow()
        c = s.subscribers.c
        with self._db.tx() as conn:
            taken = conn.execute(
                update(s.subscribers)
                .where(
                    c.id == subscriber_id,
                    or_(c.confirmation_sent_at.is_(None), c.confirmation_sent_at <= now - every),
                )
                .values(confirmation_sent_at=now)
            ).rowcount
        return bool(taken)

    def delete(self, subscriber_id: int, reason: str = "erased on request") -> bool:
        """Erase a subscriber and their history, keeping only a suppression hash."""
        with self._db.tx() as conn:
            row = conn.execute(
                select(s.subscribers.c.email).where(s.subscribers.c.id == subscriber_id)
            ).first()
            if row is None:
                return False
            for table in (s.deliveries, s.sent_papers, s.feedback):
                conn.execute(delete(table).where(table.c.subscriber_id == subscriber_id))
            conn.execute(delete(s.bounces).where(s.bounces.c.email_hash == email_hash(row.email)))
            conn.execute(
                delete(s.subscriber_aliases).where(s.subscriber_aliases.c.new_id == subscriber_id)
            )
            conn.execute(delete(s.subscribers).where(s.subscribers.c.id == subscriber_id))
            suppress_in(conn, row.email, reason)
        return True

    def suppress(self, email: str, reason: str) -> None:
        """Never mail this address again (hard bounce, complaint, erasure)."""
        with self._db.tx() as conn:
            suppress_in(conn, email, reason)
            conn.execute(
                update(s.subscribers)
                .where(s.subscribers.c.email_key == email_key(email))
                .values(status=SubscriberStatus.SUPPRESSED.value)
            )

    def record_bounce(
        self,
        email: str,
        reason: str,
        *,
        limit: int,
        window: dt.timedelta,
        now: dt.datetime | None = None,
    ) -> bool:
        """Add 1 to the address's bounce score; at ``limit`` bounces within ``window`` the
        address is suppressed (in the same transaction). True if it was suppressed now."""
        now = now or utcnow()
        with self._db.tx() as conn:
            return _add_bounce(conn, email, reason, limit, window, now)

    def record_returned_bounce(
        self,
        email: str,
        key: str,
        reason: str,
        *,
        limit: int,
        window: dt.timedelta,
        now: dt.datetime | None = None,
    ) -> Literal["duplicate", "counted", "suppressed"]:
        """``record_bounce`` for a returned message identified by ``key`` (a digest of its
        Message-ID): the same message read twice (an mbox scanned again) counts once."""
        now = now or utcnow()
        tag = f"[{key}] "
        with self._db.tx() as conn:
            seen = conn.execute(
                select(s.bounces.c.id).where(
                    s.bounces.c.email_hash == email_hash(email),
                    s.bounces.c.reason.startswith(tag, autoescape=True),
                )
            ).first()
            if seen is not None:
                return "duplicate"
            suppressed = _add_bounce(conn, email, tag + reason, limit, window, now)
        return "suppressed" if suppressed else "counted"

    def bounce_score(self, email: str, window: dt.timedelta, now: dt.datetime | None = None) -> int:
        """How many bounces counted against the address within ``window`` before ``now``."""
        now = now or utcnow()
        b = s.bounces.c
        with self._db.tx() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(s.bounces)
                    .where(b.email_hash == email_hash(email), b.bounced_at > now - window)
                ).scalar_one()
            )

    def is_suppressed(self, email: str) -> bool:
        with self._db.tx() as conn:
            return _is_suppressed(conn, email)

    def unsuppress(self, email: str) -> bool:
        """Allow the address again; False if it was not suppressed. A bounced reader's row
        (kept, status suppressed) becomes unsubscribed, from where signing up starts over."""
        with self._db.tx() as conn:
            lifted = conn.execute(
                delete(s.suppressions).where(s.suppressions.c.email_hash == email_hash(email))
            ).rowcount
            # Lifting a suppression starts the bounce score afresh, or one bounce re-suppresses.
            conn.execute(delete(s.bounces).where(s.bounces.c.email_hash == email_hash(email)))
            conn.execute(
                update(s.subscribers)
                .where(
                    s.subscribers.c.email_key == email_key(email),
                    s.subscribers.c.status == SubscriberStatus.SUPPRESSED.value,
                )
                .values(status=SubscriberStatus.UNSUBSCRIBED.value)
            )
        return bool(lifted)


def _add_bounce(
    conn: Connection,
    email: str,
    reason: str,
    limit: int,
    window: dt.timedelta,
    now: dt.datetime,
) -> bool:
    """One bounce against ``email``, suppressing it at ``limit`` within ``window``."""
    b = s.bounces.c
    digest = email_hash(email)
    conn.execute(insert(s.bounces).values(email_hash=digest, bounced_at=now, reason=reason[:1000]))
    score = conn.execute(
        select(func.count())
        .select_from(s.bounces)
        .where(b.email_hash == digest, b.bounced_at > now - window)
    ).scalar_one()
    if score < limit:
        return False
    suppress_in(conn, email, f"{score} bounces within {window.days} days: {reason[:200]}")
    conn.execute(
        update(s.subscribers)
        .where(s.subscribers.c.email_key == email_key(email))
        .values(status=SubscriberStatus.SUPPRESSED.value)
    )
    return True


def _is_suppressed(conn: Connection, email: str) -> bool:
    found = conn.execute(
        select(s.suppressions.c.email_hash).where(s.suppressions.c.email_hash == email_hash(email))
    ).first()
    return found is not None


def _refuse_known(conn: Connection, email: str) -> None:
    """SubscriberError if ``email`` is suppressed or already a subscriber."""
    if _is_suppressed(conn, email):
        raise SubscriberError(f"{email} is suppressed (it bounced or asked to be erased)")
    if conn.execute(
        select(s.subscribers.c.id).where(s.subscribers.c.email_key == email_key(email))
    ).first():
        raise SubscriberError(f"{email} is already a subscriber")
