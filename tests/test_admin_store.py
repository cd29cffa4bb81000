"""The store calls behind the admin app, on SQLite and PostgreSQL: retry now, search by
address, editions per day."""

from __future__ import annotations

import datetime as dt

from pipeline.models import DeliveryStatus, SubscriberStatus
from pipeline.store import Store
from tests.db_clock import claim_of

NOW = dt.datetime(2026, 7, 3, 6, 0, tzinfo=dt.UTC)
DAY = NOW.date()
STALE = dt.timedelta(minutes=10)


def queued(store: Store, email: str) -> int:
    sid = store.subscribers.add(email, status=SubscriberStatus.ACTIVE, now=NOW).id
    store.ledger.queue(sid, DAY, f"<{sid}@t>", ["p1"], NOW)
    return sid


def test_retry_now_requeues_deferred_and_failed_rows_only(store: Store) -> None:
    """Deferred and failed editions go back to queued and are due at once; a sent row and a
    row being sent are left alone."""
    deferred, failed, sent, sending = (
        queued(store, f"{name}@example.org") for name in ("d", "f", "s", "x")
    )
    held = store.ledger.claim(deferred, DAY, NOW, STALE)
    later = NOW + dt.timedelta(hours=3)
    store.ledger.mark_deferred(deferred, DAY, "451 later", later, NOW, claim_id=claim_of(held))
    held = store.ledger.claim(failed, DAY, NOW, STALE)
    store.ledger.mark_failed(failed, DAY, "554 no", now=NOW, claim_id=claim_of(held))
    held = store.ledger.claim(sent, DAY, NOW, STALE)
    store.ledger.mark_sent(sent, DAY, "250 ok", NOW, claim_id=claim_of(held))
    in_flight = store.ledger.claim(sending, DAY, NOW, STALE)

    assert store.ledger.retry_now(deferred, DAY, NOW)
    assert store.ledger.retry_now(failed, DAY, NOW)
    assert not store.ledger.retry_now(sent, DAY, NOW)
    assert not store.ledger.retry_now(sending, DAY, NOW)
    assert not store.ledger.retry_now(deferred, DAY - dt.timedelta(days=1), NOW)

    due = {d.subscriber_id for d in store.ledger.due(NOW, STALE)}
    assert due == {deferred, failed}  # not waiting for the deferred row's next attempt
    for sid in (deferred, failed):
        row = store.ledger.get(sid, DAY)
        assert row is not None and row.status == DeliveryStatus.QUEUED and row.attempts == 1
    row = store.ledger.get(sending, DAY)
    assert row is not None and row.status == DeliveryStatus.SENDING
    assert row.claim_id == claim_of(in_flight)


def test_a_retried_row_keeps_fencing(store: Store) -> None:
    """After a retry, the old claim cannot mark the row; the new claim can."""
    sid = queued(store, "fence@example.org")
    old = store.ledger.claim(sid, DAY, NOW, STALE)
    store.ledger.mark_deferred(sid, DAY, "451", NOW, NOW, claim_id=claim_of(old))
    assert store.ledger.retry_now(sid, DAY, NOW)
    new = store.ledger.claim(sid, DAY, NOW, STALE)
    assert new is not None and new.claim_id != claim_of(old) and new.attempts == 2
    assert not store.ledger.mark_sent(sid, DAY, "250 ok", NOW, claim_id=claim_of(old))
    assert store.ledger.mark_sent(sid, DAY, "250 ok", NOW, claim_id=claim_of(new))


def test_search_finds_addresses_by_any_part_in_any_case(store: Store) -> None:
    for email in ("Ada.Lovelace@Example.org", "bob@example.org", "100%_real@example.net"):
        store.subscribers.add(email, now=NOW)
    assert [s.email for s in store.subscribers.search("LOVELACE")] == ["Ada.Lovelace@Example.org"]
    assert len(store.subscribers.search("example.org")) == 2
    # % and _ are matched as themselves, not as wildcards.
    assert [s.email for s in store.subscribers.search("0%_r")] == ["100%_real@example.net"]
    assert store.subscribers.search("%") == store.subscribers.search("100%")
    assert store.subscribers.search("nobody") == []


def test_editions_by_day_counts_each_date_by_status(store: Store) -> None:
    a = queued(store, "a@example.org")
    b = queued(store, "b@example.org")
    store.ledger.record_skipped(a, DAY - dt.timedelta(days=1), "nothing new", NOW)
    store.ledger.record_missed(b, DAY - dt.timedelta(days=20), "late", NOW)
    counts = store.reports.editions_by_day(DAY - dt.timedelta(days=13), DAY)
    assert counts == {DAY: {"queued": 2}, DAY - dt.timedelta(days=1): {"skipped": 1}}
