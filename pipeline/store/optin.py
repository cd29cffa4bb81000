"""Double opt-in in the store: a sign-up and a confirmation, each one transaction.

A sign-up runs the same four statements whether the address is new, pending, subscribed,
unsubscribed or suppressed, so neither its answer nor its timing tells them apart. A
confirmation spends its link and activates the reader together, or does neither: a lock or
an outage in between leaves the reader pending and the link still good.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Connection,
    Insert,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from pipeline.addresses import email_key
from pipeline.models import Profile, Subscriber, SubscriberStatus
from pipeline.store import tables as s
from pipeline.store.engine import Database, model_from
from pipeline.store.subscribers import _new_row, email_hash

S = SubscriberStatus
# Statuses a sign-up starts over from (a new double opt-in), and those it mails a reminder to.
RESTART = (S.PENDING.value, S.UNSUBSCRIBED.value)
REMIND = (S.PENDING.value, S.ACTIVE.value, S.PAUSED.value)


class _NotPending(Exception):
    """Rolls a confirmation back: the reader was not pending in the epoch the link names."""


class OptIn:
    """Sign-ups and confirmations (``store.optin``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def sign_up(
        self,
        entry: dict[str, Any],
        *,
        every: dt.timedelta,
        now: dt.datetime,
    ) -> Subscriber | None:
        """Record a sign-up (``entry``: ``Subscribers.add``'s keyword arguments, status
        aside); the subscriber to mail now, or None.

        A new address is added pending; a pending or unsubscribed one becomes pending with
        the posted profile's topics and interests (other settings it had are kept) and the
        posted schedule and consent; a subscribed or paused one is left as it is. Whichever it
        was, the subscriber is returned only if no confirmation or welcome mail went to it
        within ``every``, and never for a suppressed address.
        """
        key = email_key(entry["email"])
        row = _new_row({**entry, "status": S.PENDING}, now)
        c = s.subscribers.c
        unsuppressed = ~exists().where(s.suppressions.c.email_hash == email_hash(key))
        with self._db.tx() as conn:
            old = conn.execute(
                select(c.profile).where(c.email_key == key).with_for_update()
            ).first()
            conn.execute(self._insert_new(row, unsuppressed))
            profile = Profile.model_validate(old.profile if old else row["profile"])
            posted = Profile.model_validate(row["profile"])
            profile = profile.model_copy(
                update={"topics": posted.topics, "interests": posted.interests}
            )
            restart = {
                k: row[k] for k in ("timezone", "send_hour", "frequency", "weekly_day", "consent")
            }
            conn.execute(
                update(s.subscribers)
                .where(c.email_key == key, c.status.in_(RESTART), unsuppressed)
                .values(
                    status=S.PENDING.value,
                    profile=profile.model_dump(mode="json"),
                    **restart,
                )
            )
            claimed = conn.execute(
                update(s.subscribers)
                .where(
                    c.email_key == key,
                    c.status.in_(REMIND),
                    or_(
                        c.confirmation_sent_at.is_(None),
                        c.confirmation_sent_at <= now - every,
                    ),
                    unsuppressed,
                )
                .values(confirmation_sent_at=now)
                .returning(*s.subscribers.c)
            ).first()
        return model_from(Subscriber, claimed) if claimed else None

    def _insert_new(self, row: dict[str, Any], unsuppressed: Any) -> Insert:
        """INSERT the row unless its address is suppressed or taken (then nothing).

        The SELECT keeps its WHERE even when it could go: SQLite would otherwise read the
        ``ON CONFLICT`` as a join's ``ON``.
        """
        columns = list(row)
        source = select(
            *[literal(row[k], s.subscribers.c[k].type).label(k) for k in columns]
        ).where(unsuppressed)
        if self._db.dialect == "postgresql":
            return (
                postgresql.insert(s.subscribers)
                .from_select(columns, source)
                .on_conflict_do_nothing()
            )
        return sqlite.insert(s.subscribers).from_select(columns, source).on_conflict_do_nothing()

    def spent(self, token_hash: str) -> bool:
        """Whether this single-use token was spent already."""
        with self._db.tx() as conn:
            return _spent(conn, token_hash)

    def confirm(
        self,
        subscriber_id: int,
        epoch: int,
        token_hash: str,
        confirmation: dict[str, Any],
        now: dt.datetime,
    ) -> Subscriber | None:
        """Spend the link and activate the subscriber, in one transaction; the subscriber, or
        None (nothing changed) unless it was pending in ``epoch``. ``confirmation`` joins its
        consent record. A link spent before (a confirmation that failed half-way under the old
        three-step code) is accepted again while the reader is pending."""
        c = s.subscribers.c
        try:
            with self._db.tx() as conn:
                if not _spent(conn, token_hash):
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                insert(s.used_tokens).values(
                                    token_hash=token_hash, purpose="confirm", used_at=now
                                )
                            )
                    except IntegrityError:
                        raise _NotPending from None  # a concurrent click spent it and won
                row = conn.execute(
                    update(s.subscribers)
                    .where(
                        c.id == subscriber_id,
                        c.status == S.PENDING.value,
                        c.confirm_epoch == epoch,
                    )
                    .values(status=S.ACTIVE.value, confirmed_at=func.coalesce(c.confirmed_at, now))
                    .returning(c.consent)
                ).first()
                if row is None:
                    raise _NotPending
                conn.execute(
                    update(s.subscribers)
                    .where(c.id == subscriber_id)
                    .values(consent={**(row.consent or {}), **confirmation})
                )
                found = conn.execute(select(s.subscribers).where(c.id == subscriber_id)).one()
        except _NotPending:
            return None
        return model_from(Subscriber, found)


def _spent(conn: Connection, token_hash: str) -> bool:
    found = conn.execute(
        select(s.used_tokens.c.token_hash).where(s.used_tokens.c.token_hash == token_hash)
    ).first()
    return found is not None
