"""Late and missed editions: downtime leaves a trace, and nobody gets yesterday's mail late."""

from __future__ import annotations

import datetime as dt

from pipeline.config import Config
from pipeline.deliver import Tally
from pipeline.editions import owed_editions
from pipeline.models import DeliveryStatus, Subscriber, SubscriberStatus
from pipeline.run import deliver_due
from pipeline.store import Store
from tests.delivery_world import NOW, add_readers, seed_papers, stub_select

CUTOFF = dt.timedelta(hours=6)  # delivery.late_cutoff_hours' default
DAY = dt.timedelta(days=1)


def run(config: Config, store: Store, now: dt.datetime) -> Tally:
    return deliver_due(config, now, store=store, select=stub_select)


def ledger(store: Store) -> dict[tuple[int, dt.date], str]:
    return {(d.subscriber_id, d.edition_date): d.status.value for d in store.ledger.all()}


def sent_files(config: Config) -> int:
    return len(list(config.paths.outbox.glob("*.eml")))


def test_thirty_hours_down_records_the_missed_day_and_sends_nothing_late(
    instance: Config, store: Store
) -> None:
    """Sent on 3 July at 08:00, down until 4 July 14:00 (31 h; send hour 07:00, cutoff 6 h):
    4 July's edition is recorded missed, nothing goes out; 5 July's goes out on time."""
    seed_papers(store, 6)
    [reader] = add_readers(store, 1)
    assert run(instance, store, NOW).sent == 1
    back = NOW + dt.timedelta(hours=30)  # 4 July, 14:00 UTC
    tally = run(instance, store, back)
    assert (tally.sent, tally.queued, tally.missed) == (0, 0, 1)
    july3, july4 = NOW.date(), NOW.date() + DAY
    assert ledger(store) == {(reader.id, july3): "sent", (reader.id, july4): "missed"}
    assert sent_files(instance) == 1
    again = run(instance, store, back + dt.timedelta(minutes=5))
    assert (again.sent, again.missed) == (0, 0)  # a missed edition is decided once
    seed_papers(store, 3, at=NOW + 2 * DAY - dt.timedelta(hours=2), start=100)
    assert run(instance, store, NOW + 2 * DAY).sent == 1  # 5 July, 08:00: on time
    assert ledger(store)[(reader.id, july4 + DAY)] == "sent"


def test_downtime_of_several_days_leaves_one_missed_row_per_day(
    instance: Config, store: Store
) -> None:
    """Back on 6 July at 08:00 after mailing 3 July: 4 and 5 July missed, 6 July sent."""
    seed_papers(store, 6)
    [reader] = add_readers(store, 1)
    run(instance, store, NOW)
    seed_papers(store, 3, at=NOW + 3 * DAY - dt.timedelta(hours=2), start=100)
    tally = run(instance, store, NOW + 3 * DAY)
    assert (tally.sent, tally.missed) == (1, 2)
    statuses = ledger(store)
    assert [statuses[(reader.id, NOW.date() + n * DAY)] for n in range(4)] == [
        "sent",
        "missed",
        "missed",
        "sent",
    ]


def reader_confirmed_at(store: Store, confirmed: dt.datetime) -> Subscriber:
    sub = store.subscribers.add(
        "new@example.org", status=SubscriberStatus.ACTIVE, send_hour=7, now=confirmed
    )
    assert sub.confirmed_at == confirmed
    return sub


def test_a_reader_confirming_after_the_cutoff_starts_with_the_next_send_hour(
    instance: Config, store: Store
) -> None:
    """Confirmed at 15:00 (send hour 07:00, cutoff until 13:00): no edition today, none
    recorded missed, the first one tomorrow at 07:00."""
    afternoon = NOW.replace(hour=15)
    sub = reader_confirmed_at(store, afternoon)
    assert owed_editions(sub, afternoon + dt.timedelta(minutes=1), CUTOFF) == []
    tomorrow = (NOW + DAY).replace(hour=7, minute=1)
    assert owed_editions(sub, tomorrow, CUTOFF) == [(tomorrow.date(), False)]


def test_a_reader_confirming_within_the_cutoff_gets_todays_edition(
    instance: Config, store: Store
) -> None:
    """Confirmed at 09:00 (two hours after the send hour): today's edition, now."""
    morning = NOW.replace(hour=9)
    sub = reader_confirmed_at(store, morning)
    assert owed_editions(sub, morning + dt.timedelta(minutes=1), CUTOFF) == [(NOW.date(), False)]


def test_an_edition_becomes_late_exactly_after_the_cutoff() -> None:
    """Due from the send hour until the send hour plus the cutoff; missed after it."""
    sub = Subscriber(
        id=1,
        email="a@example.org",
        status=SubscriberStatus.ACTIVE,
        send_hour=7,
        created_at=NOW - 30 * DAY,
        confirmed_at=NOW - 30 * DAY,
    )
    seven = NOW.replace(hour=7)
    assert owed_editions(sub, seven - dt.timedelta(minutes=1), CUTOFF) == []
    assert owed_editions(sub, seven + CUTOFF, CUTOFF) == [(NOW.date(), False)]
    late = seven + CUTOFF + dt.timedelta(seconds=1)
    assert owed_editions(sub, late, CUTOFF) == [(NOW.date(), True)]
    assert DeliveryStatus.MISSED.value == "missed"
