"""The delivery engine over the ledger, on SQLite and PostgreSQL, against a real SMTP server.

Each named fault of the SMTP conversation has a test here; each checks what the server got
(nothing lost, duplicates only where SMTP makes them unavoidable) and what the ledger says.
"""

from __future__ import annotations

import datetime as dt
import random
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import Config
from pipeline.config import Delivery as DeliveryConfig
from pipeline.deliver import retry_delay
from pipeline.editions import due_edition
from pipeline.mime import message_id_for
from pipeline.models import DeliveryStatus, Frequency, Paper, Subscriber, SubscriberStatus
from pipeline.run import deliver_due
from pipeline.store import Store
from tests.db_clock import age_claims, claim_of
from tests.delivery_world import (
    EDITION,
    NOW,
    add_readers,
    reader,
    seed_papers,
    smtp_config,
    stub_select,
)
from tests.smtp_server import SmtpServer, free_port

LATER = NOW + dt.timedelta(hours=1)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def run(config: Config, store: Store, now: dt.datetime = NOW, **kw: object):  # type: ignore[no-untyped-def]
    return deliver_due(config, now, store=store, select=stub_select, **kw)  # type: ignore[arg-type]


def statuses(store: Store) -> dict[str, str]:
    emails = {s.id: s.email for s in store.subscribers.all()}
    return {emails[d.subscriber_id]: d.status.value for d in store.ledger.all()}


def world(store: Store, readers: int = 3) -> list[Subscriber]:
    seed_papers(store)
    return add_readers(store, readers)


# --- who is due (pure) ------------------------------------------------------------------------


def test_due_at_the_local_send_hour_on_the_right_days() -> None:
    """Local time via zoneinfo, past send_hour, and frequency daily / weekdays / weekly day."""
    friday_8_utc = NOW
    assert due_edition(reader(send_hour=7), friday_8_utc) == EDITION
    assert due_edition(reader(send_hour=9), friday_8_utc) is None
    # 08:00 UTC is 17:00 in Tokyo: due there at 16h; not yet in Los Angeles (01:00).
    assert due_edition(reader(timezone="Asia/Tokyo", send_hour=16), friday_8_utc) == EDITION
    assert due_edition(reader(timezone="America/Los_Angeles", send_hour=7), friday_8_utc) is None
    # 14:00 UTC Friday is already Saturday 02:00 in Auckland in July (UTC+12).
    auckland = reader(timezone="Pacific/Auckland", send_hour=1, frequency=Frequency.WEEKDAYS)
    assert due_edition(auckland, friday_8_utc + dt.timedelta(hours=6)) is None
    daily = reader(timezone="Pacific/Auckland", send_hour=1)
    assert due_edition(daily, friday_8_utc + dt.timedelta(hours=6)) == dt.date(2026, 7, 4)
    assert due_edition(reader(frequency=Frequency.WEEKDAYS), friday_8_utc) == EDITION
    assert due_edition(reader(frequency=Frequency.WEEKLY, weekly_day=4), friday_8_utc) == EDITION
    assert due_edition(reader(frequency=Frequency.WEEKLY, weekly_day=0), friday_8_utc) is None
    for status in (
        SubscriberStatus.PENDING,
        SubscriberStatus.PAUSED,
        SubscriberStatus.UNSUBSCRIBED,
    ):
        assert due_edition(reader(status=status), friday_8_utc) is None


@given(attempts=st.integers(1, 60), seed=st.integers(0, 2**32))
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempts: int, seed: int) -> None:
    """retry n waits between half and all of min(base·2^(n-1), max)."""
    config = DeliveryConfig(retry_base_seconds=300, retry_max_seconds=21_600)
    delay = retry_delay(attempts, config, random.Random(seed)).total_seconds()
    full = min(300 * 2 ** (attempts - 1), 21_600)
    assert full / 2 <= delay <= full


# --- the happy path ---------------------------------------------------------------------------


def test_due_editions_go_to_the_outbox_once(instance: Config, store: Store) -> None:
    """By default editions land in var/outbox; sent papers are recorded; a rerun sends nothing."""
    readers = world(store)
    tally = run(instance, store)
    assert (tally.queued, tally.sent, tally.failed) == (3, 3, 0)
    files = sorted(instance.paths.outbox.iterdir())
    assert len(files) == 3
    assert set(statuses(store).values()) == {"sent"}
    sent = store.ledger.sent_paper_ids([r.id for r in readers])
    assert all(len(sent[r.id]) == 3 for r in readers)
    assert store.subscribers.get(readers[0].id).last_edition == EDITION  # type: ignore[union-attr]
    again = run(instance, store, LATER)
    assert (again.queued, again.sent) == (0, 0) and len(list(instance.paths.outbox.iterdir())) == 3


def test_nothing_new_is_recorded_as_skipped_and_not_reconsidered(
    instance: Config, store: Store
) -> None:
    """No eligible papers: a skipped row, no email, and the next run leaves it alone."""
    add_readers(store, 1)
    assert run(instance, store).skipped == 1
    assert statuses(store) == {"reader0@example.org": "skipped"}
    assert run(instance, store, LATER).skipped == 0
    assert not instance.paths.outbox.exists() or not list(instance.paths.outbox.iterdir())


def test_a_bad_address_fails_alone(instance: Config, store: Store) -> None:
    """A subscriber whose address cannot be mailed is a failed row; the others still go."""
    world(store, 2)
    store.subscribers.add(
        "broken address@", status=SubscriberStatus.ACTIVE, now=NOW - dt.timedelta(days=3)
    )
    tally = run(instance, store)
    assert (tally.sent, tally.failed) == (2, 1)
    assert "could not render" in tally.failures[0]


def test_dry_run_changes_nothing(instance: Config, store: Store) -> None:
    """--dry-run counts what is due but writes no ledger row and sends nothing."""
    world(store)
    tally = run(instance, store, dry_run=True)
    assert (tally.queued, tally.due, tally.sent) == (3, 3, 0)
    assert store.ledger.all() == []


def test_a_second_runner_plans_nothing_while_another_is_the_planner(
    instance: Config, store: Store
) -> None:
    """While another process holds the planner role, a run queues no edition."""
    world(store)
    other = store.planner_role("someone-else", dt.timedelta(minutes=10))
    assert other.take()
    try:
        tally = run(instance, store)
    finally:
        other.release()
    assert tally.busy and store.ledger.all() == []


# --- SMTP faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["450 4.2.0", "451 4.3.0", "452 4.2.2", "552 5.2.2"])
def test_4xx_and_552_at_rcpt_defer_then_deliver(
    instance: Config, store: Store, server: SmtpServer, code: str
) -> None:
    """Deferred with a retry time, the others unaffected, and delivered on a later run."""
    config = smtp_config(instance, server.port)
    world(store)
    server.inject("rcpt", f"{code} try again later", rcpt="reader0@example.org")
    first = run(config, store)
    assert (first.sent, first.deferred, first.failed) == (2, 1, 0)
    row = next(d for d in store.ledger.all() if d.status == DeliveryStatus.DEFERRED)
    assert row.last_error is not None and code[:3] in row.last_error
    assert row.next_attempt_at is not None and NOW < row.next_attempt_at <= NOW + dt.timedelta(
        minutes=6
    )
    second = run(config, store, LATER)
    assert (second.sent, second.deferred) == (1, 0)
    assert sorted(server.recipients()) == [f"reader{i}@example.org" for i in range(3)]
    assert set(statuses(store).values()) == {"sent"}


@pytest.mark.parametrize("code", ["550 5.1.1", "553 5.1.3"])
def test_5xx_at_rcpt_fails_and_suppresses_only_that_address(
    instance: Config, store: Store, server: SmtpServer, code: str
) -> None:
    """The refused address is failed and suppressed; everyone else gets their edition."""
    config = smtp_config(instance, server.port)
    readers = world(store)
    server.inject("rcpt", f"{code} no such user", rcpt="reader0@example.org")
    tally = run(config, store)
    assert (tally.sent, tally.failed) == (2, 1) and "suppressed" in tally.failures[0]
    assert store.subscribers.is_suppressed("reader0@example.org")
    assert store.subscribers.get(readers[0].id).status == SubscriberStatus.SUPPRESSED  # type: ignore[union-attr]
    assert store.ledger.sent_paper_ids([readers[0].id]) == {}
    seed_papers(store, 5, at=NOW + dt.timedelta(hours=20), start=100)
    tomorrow = run(config, store, NOW + dt.timedelta(days=1))
    assert tomorrow.queued == 2 and "reader0@example.org" not in server.recipients()


def test_421_and_a_dropped_session_lose_nothing(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """421 and a hang-up mid-session defer those two; the rest go on new sessions; all arrive."""
    config = smtp_config(instance, server.port, pool_size=1)
    world(store, 4)
    server.inject("rcpt", "421 4.3.2 service shutting down", rcpt="reader0@example.org")
    server.inject("rcpt", "drop", rcpt="reader1@example.org")
    first = run(config, store)
    assert (first.sent, first.deferred) == (2, 2)
    run(config, store, LATER)
    assert sorted(server.recipients()) == [f"reader{i}@example.org" for i in range(4)]


def test_a_drop_after_the_final_dot_is_recorded_sent_ambiguous_and_never_resent(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """The server kept the message but the 250 never came: the row is sent_ambiguous (counted,
    with its papers recorded as sent) and no later run sends it again."""
    config = smtp_config(instance, server.port)
    readers = world(store)
    server.inject("data", "drop-after-data", rcpt="reader0@example.org")
    first = run(config, store)
    assert (first.sent, first.ambiguous, first.deferred) == (2, 1, 0)
    assert first.as_dict()["sent_ambiguous"] == 1
    row = store.ledger.get(readers[0].id, EDITION)
    assert row is not None and row.status == DeliveryStatus.SENT_AMBIGUOUS
    assert row.last_error and "before the server replied" in row.last_error
    assert store.ledger.sent_paper_ids([readers[0].id])[readers[0].id] == set(row.paper_ids)
    assert run(config, store, LATER).sent == 0
    assert len(server.messages) == 3  # one copy each, nothing resent


def test_a_drop_before_the_final_dot_is_deferred_and_resent(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """A hang-up at the DATA command, before the message went: a plain deferral, sent later."""
    config = smtp_config(instance, server.port)
    world(store)
    server.inject("data-command", "drop", rcpt="reader0@example.org")
    first = run(config, store)
    assert (first.sent, first.ambiguous, first.deferred) == (2, 0, 1)
    assert run(config, store, LATER).sent == 1
    assert sorted(server.recipients()) == [f"reader{i}@example.org" for i in range(3)]


def test_server_down_at_start_defers_then_delivers_when_back(
    instance: Config, store: Store
) -> None:
    """Nobody listening: every edition is deferred; once the server is up, all are delivered."""
    port = free_port()
    config = smtp_config(instance, port)
    world(store)
    first = run(config, store)
    assert (first.sent, first.deferred, first.failed) == (0, 3, 0)
    with SmtpServer(port) as server:
        second = run(config, store, LATER)
        assert second.sent == 3 and len(server.messages) == 3


def test_gives_up_after_the_configured_period(instance: Config, store: Store) -> None:
    """Still failing after delivery.give_up_after_hours: failed, but not suppressed."""
    config = smtp_config(instance, free_port())
    world(store, 1)
    run(config, store)
    tally = run(config, store, NOW + dt.timedelta(hours=73))
    assert tally.failed == 1 and "gave up after 72 h" in tally.failures[0]
    assert not store.subscribers.is_suppressed("reader0@example.org")


def test_auth_failure_aborts_the_run_and_marks_nothing(
    instance: Config, store: Store, tmp_path: Path
) -> None:
    """535: the run stops with a clear message, every row stays queued, attempts unchanged."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with SmtpServer(starttls=context, auth=("paperboy", "right")) as server:
        tls = {"security": "starttls", "ca_file": tmp_path / "ca.pem", "username": "paperboy"}
        wrong = smtp_config(instance, server.port, password="wrong", **tls)
        world(store)
        tally = run(wrong, store)
        assert tally.aborted is not None and "authentication failed" in tally.aborted
        assert (tally.sent, tally.deferred, tally.failed) == (0, 0, 0)
        rows = store.ledger.all()
        assert len(rows) == 3
        assert all(r.status == DeliveryStatus.QUEUED and r.attempts == 0 for r in rows)
        assert server.count() == 0
        right = smtp_config(instance, server.port, password="right", **tls)
        assert run(right, store, LATER).sent == 3 and server.count() == 3


def test_a_row_stuck_in_sending_is_resent_with_its_message_id(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """A crash left a claimed row: after sending_stale_minutes it goes out, same Message-ID."""
    config = smtp_config(instance, server.port)
    [sub] = world(store, 1)
    message_id = message_id_for(sub.id, EDITION, config.email)
    store.ledger.queue(sub.id, EDITION, message_id, ["2607.00000", "2607.00001"], NOW)
    stale = dt.timedelta(minutes=10)
    assert store.ledger.claim(sub.id, EDITION, NOW, stale) is not None  # then the process died
    age_claims(store, dt.timedelta(minutes=5))
    assert run(config, store, NOW + dt.timedelta(minutes=5)).sent == 0
    age_claims(store, dt.timedelta(minutes=11))
    assert run(config, store, NOW + dt.timedelta(minutes=11)).sent == 1
    [got] = server.messages
    assert got.message_id == message_id
    html = got.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "part 0:" in html and "part 1:" in html and "part 2:" not in html


def test_unsubscribed_after_queueing_is_never_sent(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """An edition queued before the reader left is skipped at send time."""
    config = smtp_config(instance, server.port)
    readers = world(store, 2)
    server.inject("rcpt", "450 busy", rcpt="reader0@example.org")
    run(config, store)
    store.subscribers.set_status(readers[0].id, SubscriberStatus.UNSUBSCRIBED)
    tally = run(config, store, LATER)
    assert (tally.sent, tally.skipped) == (0, 1)
    assert server.recipients() == ["reader1@example.org"]
    assert statuses(store)["reader0@example.org"] == "skipped"


@pytest.mark.parametrize("smtputf8", [True, False], ids=["offered", "not-offered"])
def test_a_non_ascii_address_gets_its_edition_over_smtputf8(
    instance: Config, store: Store, smtputf8: bool
) -> None:
    """jörg@example.org is sent with SMTPUTF8; a server without it fails that edition with a
    reason, suppresses nothing, and everyone else is delivered."""
    world(store, 1)
    jorg = store.subscribers.add(
        "jörg@example.org", status=SubscriberStatus.ACTIVE, now=NOW - dt.timedelta(days=3)
    )
    with SmtpServer(smtputf8=smtputf8) as server:
        tally = run(smtp_config(instance, server.port), store)
        if smtputf8:
            assert (tally.sent, tally.failed) == (2, 0)
            [got] = [m for m in server.messages if m.rcpt_tos == ["jörg@example.org"]]
            assert got.smtputf8 and got.message["To"] == "jörg@example.org"
        else:
            assert (tally.sent, tally.failed) == (1, 1)
            assert "SMTPUTF8" in tally.failures[0]
            assert server.recipients() == ["reader0@example.org"]
            assert not store.subscribers.is_suppressed(jorg.email)


def test_a_non_ascii_address_gets_its_edition_in_the_outbox(instance: Config, store: Store) -> None:
    """The outbox sender writes jörg@example.org's edition like any other."""
    seed_papers(store)
    store.subscribers.add("jörg@example.org", status=SubscriberStatus.ACTIVE, now=NOW)
    assert run(instance, store).sent == 1
    [eml] = instance.paths.outbox.iterdir()
    assert "To: jörg@example.org\r\n".encode() in eml.read_bytes()


def test_each_reader_gets_only_papers_first_seen_since_their_last_edition(store: Store) -> None:
    """select_editions hands the matcher each reader's new papers (since their last edition,
    or their reading window for a first one) and only the candidate papers of their history."""
    from pipeline.editions import select_editions

    old = seed_papers(store, 2, at=NOW - dt.timedelta(days=3), start=0)
    mid = seed_papers(store, 2, at=NOW - dt.timedelta(hours=10), start=10)
    new = seed_papers(store, 2, at=NOW - dt.timedelta(hours=2), start=20)
    regular, fresh, weekly, recent = add_readers(store, 4)
    weekly = store.subscribers.update(weekly.id, frequency=Frequency.WEEKLY)
    for sub, at, papers in (
        (regular, NOW - dt.timedelta(hours=12), [old[0].id, "gone-paper"]),
        (recent, NOW - dt.timedelta(minutes=30), [mid[0].id]),
    ):
        day = at.date() - dt.timedelta(days=1)
        store.ledger.queue(sub.id, day, f"<{sub.id}@x>", papers, at)
        held = store.ledger.claim(sub.id, day, at, dt.timedelta(minutes=10))
        store.ledger.mark_sent(sub.id, day, "250 OK", at, claim_id=claim_of(held))
    seen: dict[str, object] = {}

    def capture(subs, papers, edition, sent, eligible):  # type: ignore[no-untyped-def]
        seen.update(sent=sent, eligible=eligible, papers={p.id for p in papers})
        return stub_select(subs, papers, edition, sent, eligible)

    select_editions(store, capture, [regular, fresh, weekly, recent], EDITION, NOW)

    def ids(papers: list[Paper]) -> set[str]:
        return {p.id for p in papers}

    assert seen["papers"] == ids(old + mid + new)
    assert seen["eligible"] == {
        regular.id: ids(mid + new),  # since an hour before its last edition
        fresh.id: ids(mid + new),  # a daily reader's first edition looks back 36 hours
        weekly.id: ids(old + mid + new),
        recent.id: set(),
    }
    assert seen["sent"] == {regular.id: {old[0].id}, recent.id: {mid[0].id}}


def test_plan_editions_pages_without_losing_or_repeating_anyone(store: Store) -> None:
    """Small pages plan exactly what one big page does: every due reader once, with their
    edition date; readers not due yet, and editions already in the ledger, are left out; an
    edition past its send hour plus the late cutoff is planned as missed."""
    from pipeline.editions import plan_editions

    readers = add_readers(store, 5)
    # 08:00 UTC on 3 July is 21:00 on 2 July in Pago Pago: that reader's edition is 2 July's,
    # 14 hours after its 07:00 send hour, so too late (the cutoff is 6 hours): missed.
    store.subscribers.update(readers[1].id, timezone="Pacific/Pago_Pago")
    store.subscribers.update(readers[2].id, send_hour=23)  # not due at 08:00 UTC
    store.ledger.queue(readers[3].id, EDITION, "<done@x>", [], NOW)

    def planned(page: int) -> list[tuple[dt.date, int, bool]]:
        return [
            (day, sub.id, late)
            for day, due, missed in plan_editions(store, NOW, page=page)
            for group, late in ((due, False), (missed, True))
            for sub in group
        ]

    whole = planned(100)
    assert sorted(whole) == sorted(
        [
            (EDITION, readers[0].id, False),
            (EDITION - dt.timedelta(days=1), readers[1].id, True),
            (EDITION, readers[4].id, False),
        ]
    )
    assert sorted(planned(2)) == sorted(whole) and sorted(planned(1)) == sorted(whole)


# --- bounce classes ---------------------------------------------------------------------------


def test_550_5_1_1_suppresses_at_once(instance: Config, store: Store, server: SmtpServer) -> None:
    """One 550 5.1.1 (no such mailbox) fails the edition and suppresses the address at once,
    with no bounce score needed."""
    config = smtp_config(instance, server.port)
    world(store, 2)
    server.inject(
        "rcpt", "550 5.1.1 <reader0@example.org>: no such mailbox", rcpt="reader0@example.org"
    )
    tally = run(config, store)
    assert (tally.sent, tally.failed) == (1, 1) and "address suppressed" in tally.failures[0]
    assert store.subscribers.is_suppressed("reader0@example.org")
    assert store.subscribers.bounce_score("reader0@example.org", dt.timedelta(days=14), NOW) == 0


@pytest.mark.parametrize(("bounces", "suppressed"), [(2, False), (3, True)])
def test_a_bare_550_counts_a_bounce_and_three_in_14_days_suppress(
    instance: Config, store: Store, server: SmtpServer, bounces: int, suppressed: bool
) -> None:
    """ "550 no such user" (no enhanced code) fails that day's edition and adds 1 to the
    address's bounce score; the third within 14 days suppresses it, the second does not."""
    config = smtp_config(instance, server.port)
    world(store, 2)
    for day in range(bounces):
        at = NOW + dt.timedelta(days=5 * day)  # days 0, 5, 10: all within 14 days
        if day:
            seed_papers(store, 3, at=at - dt.timedelta(hours=2), start=100 * day)
        server.inject("rcpt", "550 no such user", rcpt="reader0@example.org")
        tally = run(config, store, at)
        assert (tally.sent, tally.failed) == (1, 1)
    assert store.subscribers.is_suppressed("reader0@example.org") is suppressed
    assert ("address suppressed" in tally.failures[0]) is suppressed
    bounced = store.subscribers.find("reader0@example.org")
    assert bounced is not None
    rows = [d for d in store.ledger.all() if d.subscriber_id == bounced.id]
    assert [r.status for r in rows] == [DeliveryStatus.FAILED] * bounces
    later = NOW + dt.timedelta(days=5 * bounces)
    seed_papers(store, 3, at=later - dt.timedelta(hours=2), start=1000)
    run(config, store, later)
    assert ("reader0@example.org" in server.recipients()) is not suppressed


def test_bounces_older_than_14_days_do_not_count(store: Store) -> None:
    """The bounce score only counts the last 14 days: three bounces spread over a month do
    not suppress the address."""
    store.subscribers.add("far@example.org", status=SubscriberStatus.ACTIVE, now=NOW)
    window = dt.timedelta(days=14)
    for day in (0, 10, 20):
        suppressed = store.subscribers.record_bounce(
            "far@example.org", "550 no", limit=3, window=window, now=NOW + dt.timedelta(days=day)
        )
        assert not suppressed
    assert (
        store.subscribers.bounce_score("far@example.org", window, NOW + dt.timedelta(days=20)) == 2
    )
    assert store.subscribers.record_bounce(
        "far@example.org", "550 no", limit=3, window=window, now=NOW + dt.timedelta(days=21)
    )
    assert store.subscribers.find("far@example.org").status == SubscriberStatus.SUPPRESSED  # type: ignore[union-attr]
    store.subscribers.unsuppress("far@example.org")
    assert (
        store.subscribers.bounce_score("far@example.org", window, NOW + dt.timedelta(days=21)) == 0
    )
