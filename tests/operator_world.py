"""A day of deliveries as the operator commands see it: one edition in each status."""

from __future__ import annotations

import datetime as dt

from pipeline.models import Delivery, DeliveryStatus, SubscriberStatus
from pipeline.store import Store
from tests.db_clock import claim_of
from tests.delivery_world import add_readers

DEFERRAL = "421 4.7.0 Try again later"
FAILURE = "550 5.1.1 No such user here"


def seed_editions(store: Store, now: dt.datetime) -> dict[str, int]:
    """Five active readers and one pending; today's (UTC) editions: one sent, one deferred
    (attempted twice), one failed, one missed, one still queued. Returns the ids by status."""
    readers = add_readers(store, 5)
    store.subscribers.add("pending@example.org", status=SubscriberStatus.PENDING, now=now)
    day = now.astimezone(dt.UTC).date()
    names = ("sent", "deferred", "failed", "missed", "queued")
    ids = dict(zip(names, [r.id for r in readers], strict=True))
    store.ledger.queue_many(
        [
            Delivery(
                subscriber_id=ids[name],
                edition_date=day,
                status=DeliveryStatus.QUEUED,
                message_id=f"<{name}@example.org>",
            )
            for name in ("sent", "deferred", "failed", "queued")
        ],
        now,
    )
    stale = dt.timedelta(minutes=10)
    held = store.ledger.claim(ids["sent"], day, now, stale)
    store.ledger.mark_sent(ids["sent"], day, "250 2.0.0 queued", now, claim_id=claim_of(held))
    for _ in range(2):
        held = store.ledger.claim(ids["deferred"], day, now, stale)
        retry = now - dt.timedelta(seconds=1)  # due again at once: the second attempt
        store.ledger.mark_deferred(
            ids["deferred"], day, DEFERRAL, retry, now, claim_id=claim_of(held)
        )
    held = store.ledger.claim(ids["failed"], day, now, stale)
    store.ledger.mark_failed(ids["failed"], day, FAILURE, now=now, claim_id=claim_of(held))
    store.ledger.record_missed(ids["missed"], day, "not sent by its send hour + 6 h", now)
    return ids
