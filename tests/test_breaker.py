"""The circuit breaker: its thresholds (pure), its pause in the store, and whole runs against a
real SMTP server that blocks us, says 421 to everything, is blackholed or is not there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from pipeline.breaker import Breaker, signal_of
from pipeline.config import Breaker as BreakerConfig
from pipeline.config import Config
from pipeline.deliver import Tally
from pipeline.errors import (
    PermanentSendError,
    PolicyRefusal,
    RecipientBounced,
    TemporarySendError,
    Unreachable,
)
from pipeline.models import DeliveryStatus, SubscriberStatus
from pipeline.run import deliver_due
from pipeline.store import Store
from tests.delivery_world import NOW, add_readers, seed_papers, smtp_config, stub_select
from tests.smtp_server import Blackhole, SmtpServer, free_port

BLOCKED = "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.example.org"
MINUTE = dt.timedelta(minutes=1)


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed(breaker: Breaker, signals: str) -> list[str | None]:
    """a = answered, p = policy refusal, b = 421, u = unreachable."""
    names = {"a": "answered", "p": "policy", "b": "busy", "u": "unreachable"}
    return [breaker.record(names[ch], "x") for ch in signals]  # type: ignore[arg-type]


# --- thresholds (pure) ------------------------------------------------------------------------


def test_20_policy_refusals_among_the_last_50_recipients_trip_it() -> None:
    """The 20th policy refusal within a window of 50 answers trips it, once."""
    breaker = Breaker(BreakerConfig())
    results = feed(breaker, "pa" * 19 + "p" + "ppp")
    assert [i for i, r in enumerate(results) if r] == [38]
    assert "20 of the last 39 recipients were refused" in (results[38] or "")


def test_policy_refusals_outside_the_window_do_not_count() -> None:
    """19 refusals, then 50 deliveries push them out: 19 more refusals do not trip it."""
    breaker = Breaker(BreakerConfig())
    assert not any(feed(breaker, "p" * 19 + "a" * 50 + "p" * 19))


def test_5_connection_failures_in_a_row_trip_it_and_any_answer_resets_the_row() -> None:
    """Four failures, one answer, four failures: no trip; the fifth in a row trips it."""
    breaker = Breaker(BreakerConfig())
    assert not any(feed(breaker, "uuuuauuuu"))
    assert "5 connections in a row" in (feed(breaker, "u")[0] or "")


def test_10_421s_within_60_seconds_trip_it_but_spread_out_they_do_not() -> None:
    """421s older than the window fall out of the count."""
    ticks = Ticks()
    slow = Breaker(BreakerConfig(), ticks)
    for _ in range(30):
        assert not feed(slow, "b")[0]
        ticks.now += 7.0  # 9 per minute at most
    fast = Breaker(BreakerConfig(), ticks)
    results = []
    for _ in range(10):
        results += feed(fast, "b")
        ticks.now += 5.0
    assert not any(results[:9]) and "10 × 421" in (results[9] or "")


def test_what_each_failure_tells_the_breaker() -> None:
    """421 is busy, 5.7.x/554 policy, timeouts and connect failures unreachable; a drop (no
    reply) tells it nothing; any other reply, and a delivery, are answers."""
    assert signal_of(PolicyRefusal("RCPT: 421 4.7.0 later", 421)) == "busy"
    assert signal_of(PolicyRefusal(f"RCPT: {BLOCKED}", 554)) == "policy"
    assert signal_of(Unreachable("CONNECT: timed out")) == "unreachable"
    assert signal_of(TemporarySendError("RCPT: SMTPServerDisconnected")) is None
    assert signal_of(TemporarySendError("RCPT: 450 busy", 450)) == "answered"
    assert signal_of(RecipientBounced("RCPT: 550 no", 550)) == "answered"
    assert signal_of(PermanentSendError("DATA: 550 5.6.0", 550)) == "answered"
    assert signal_of(None) == "answered"


def test_a_window_smaller_than_its_threshold_is_a_config_error() -> None:
    """policy_window below policy_refusals could never trip: refused with the key named."""
    with pytest.raises(ValueError, match="policy_window"):
        BreakerConfig(policy_refusals=20, policy_window=10)


# --- the pause in the store -------------------------------------------------------------------


def test_pauses_double_per_trip_in_a_row_up_to_6_hours_and_reset_after_a_good_run(
    store: Store,
) -> None:
    """15 min, 30, 60, 120, 240, then 6 h at most; clear() starts again at 15 min."""
    first, longest = dt.timedelta(minutes=15), dt.timedelta(hours=6)
    lengths = []
    for _ in range(7):
        pause, _ = store.pauses.trip("blocked", NOW, first, longest)
        lengths.append((pause.until - NOW) / MINUTE)
    assert lengths == [15, 30, 60, 120, 240, 360, 360]
    assert store.pauses.current(NOW + dt.timedelta(hours=5)) is not None
    assert store.pauses.current(NOW + dt.timedelta(hours=6)) is None
    store.pauses.clear()
    pause, _ = store.pauses.trip("blocked", NOW, first, longest)
    assert (pause.until - NOW) / MINUTE == 15 and pause.trips == 1


def test_a_pause_holds_queued_and_earlier_deferred_rows_but_not_a_claimed_one(
    store: Store,
) -> None:
    """Rows not yet tried wait for the pause's end; a row being sent is left to its sender,
    and one deferred past the pause keeps its own time."""
    readers = add_readers(store, 4)
    day = NOW.date()
    for r in readers:
        store.ledger.queue(r.id, day, f"<{r.id}@x>", [], NOW)
    stale = dt.timedelta(minutes=10)
    store.ledger.claim(readers[1].id, day, NOW, stale)
    soon, far = NOW + dt.timedelta(minutes=5), NOW + dt.timedelta(hours=2)
    for reader, retry_at in ((readers[2], soon), (readers[3], far)):
        claimed = store.ledger.claim(reader.id, day, NOW, stale)
        assert claimed is not None
        assert store.ledger.mark_deferred(
            reader.id, day, "450", retry_at, NOW, claim_id=claimed.claim_id
        )
    pause, held = store.pauses.trip("blocked", NOW, dt.timedelta(minutes=15), dt.timedelta(hours=6))
    assert held == 2
    rows = {d.subscriber_id: d for d in store.ledger.all()}
    assert rows[readers[0].id].status == DeliveryStatus.DEFERRED
    assert rows[readers[0].id].next_attempt_at == pause.until
    assert "paused until" in (rows[readers[0].id].last_error or "")
    assert rows[readers[1].id].status == DeliveryStatus.SENDING
    assert rows[readers[2].id].next_attempt_at == pause.until
    assert rows[readers[3].id].next_attempt_at == far


# --- whole runs against a real server ---------------------------------------------------------


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def run(config: Config, store: Store, now: dt.datetime = NOW) -> Tally:
    return deliver_due(config, now, store=store, select=stub_select)


def nobody_suppressed(store: Store) -> bool:
    return all(s.status == SubscriberStatus.ACTIVE for s in store.subscribers.all()) and not any(
        store.subscribers.is_suppressed(s.email) for s in store.subscribers.all()
    )


def test_a_554_5_7_1_storm_suppresses_no_one_pauses_the_run_and_the_next_delivers_all(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """A blocklist hit on our IP at every RCPT: the breaker trips at the 20th refusal, no
    reader is suppressed or failed, every row waits 15 minutes; a run inside the pause tries
    nothing; the first run after it (server healthy again) delivers to everyone."""
    config = smtp_config(instance, server.port)
    seed_papers(store)
    add_readers(store, 60)
    server.storm("rcpt", BLOCKED)
    tally = run(config, store)
    assert tally.paused is not None and "20 of the last" in tally.paused
    assert "paused until 2026-07-03 08:15 UTC (trip 1 in a row)" in tally.paused
    assert tally.problem() == tally.paused
    assert (tally.sent, tally.failed) == (0, 0)
    assert 20 <= server.rcpt_attempts <= 20 + config.smtp.pool_size - 1
    rows = store.ledger.all()
    assert len(rows) == 60 and {r.status for r in rows} == {DeliveryStatus.DEFERRED}
    assert {r.next_attempt_at for r in rows} == {store.pauses.current(NOW).until}  # type: ignore[union-attr]
    assert nobody_suppressed(store)

    server.heal()
    inside = run(config, store, NOW + 10 * MINUTE)
    assert inside.paused is not None and inside.paused.startswith(
        "delivery is paused until 2026-07-03 08:15 UTC"
    )
    assert inside.sent == 0 and server.count() == 0

    after = run(config, store, NOW + 16 * MINUTE)
    assert (after.sent, after.paused, after.problem()) == (60, None, None)
    assert sorted(server.recipients()) == sorted(f"reader{i}@example.org" for i in range(60))
    assert store.pauses.current(NOW + 16 * MINUTE) is None


def test_a_block_that_lasts_doubles_the_pause(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """Still blocked when the pause ends: the second trip in a row pauses 30 minutes."""
    config = smtp_config(instance, server.port)
    seed_papers(store)
    add_readers(store, 25)
    server.storm("rcpt", BLOCKED)
    assert "trip 1 in a row" in (run(config, store).paused or "")
    second = run(config, store, NOW + 16 * MINUTE)
    assert second.paused is not None and "trip 2 in a row" in second.paused
    assert "until 2026-07-03 08:46 UTC" in second.paused
    assert nobody_suppressed(store) and server.count() == 0


def test_a_blackholed_relay_trips_it_after_5_timeouts(instance: Config, store: Store) -> None:
    """A relay that accepts TCP and never greets costs 5 timeouts (plus those already in
    flight), not one per reader; every edition waits for the pause, none fails."""
    seed_papers(store)
    add_readers(store, 30)
    with Blackhole() as relay:
        config = smtp_config(instance, relay.port, timeout_seconds=0.3, pool_size=2)
        tally = run(config, store)
        assert tally.paused is not None and "5 connections in a row" in tally.paused
        assert "timed out" in tally.paused.lower() or "Timeout" in tally.paused
        assert 5 <= relay.connections <= 5 + config.smtp.pool_size - 1
    assert (tally.sent, tally.failed) == (0, 0)
    assert {r.status for r in store.ledger.all()} == {DeliveryStatus.DEFERRED}
    assert len(store.ledger.all()) == 30


def test_a_relay_that_is_down_trips_it_after_5_refused_connections(
    instance: Config, store: Store
) -> None:
    """Nobody listening: five refused connections in a row, then the run pauses."""
    seed_papers(store)
    add_readers(store, 12)
    config = smtp_config(instance, free_port(), pool_size=1)
    tally = run(config, store)
    assert tally.paused is not None and "5 connections in a row" in tally.paused
    assert (tally.sent, tally.deferred, tally.failed) == (0, 5, 0)
    assert tally.held == 12


def test_a_421_storm_trips_it_at_the_tenth(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """Every RCPT answered 421 4.7.0 (and hung up): ten within a minute pause the run."""
    config = smtp_config(instance, server.port, pool_size=1)
    seed_papers(store)
    add_readers(store, 30)
    server.storm("rcpt", "421 4.7.0 Try again later, closing connection")
    tally = run(config, store)
    assert tally.paused is not None and "10 × 421" in tally.paused
    assert server.rcpt_attempts == 10
    assert (tally.sent, tally.failed) == (0, 0) and nobody_suppressed(store)


def test_a_few_refusals_do_not_pause_a_run(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """Two blocked readers among ten: deferred, the rest delivered, no pause."""
    config = smtp_config(instance, server.port)
    seed_papers(store)
    add_readers(store, 10)
    for i in (3, 7):
        server.inject("rcpt", BLOCKED, rcpt=f"reader{i}@example.org")
    tally = run(config, store)
    assert (tally.sent, tally.deferred, tally.paused, tally.problem()) == (8, 2, None, None)
    assert nobody_suppressed(store)
