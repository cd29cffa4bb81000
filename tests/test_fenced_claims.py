"""Fenced claims and the database's clock: a runner whose clock runs ahead duplicates nothing,
a mark from a claim that was taken over changes nothing, and an erased row stops no run."""

from __future__ import annotations

import collections
import datetime as dt
import logging
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.config import Config, load_config
from pipeline.mime import message_id_for
from pipeline.models import DeliveryStatus, SubscriberStatus
from pipeline.run import deliver_due
from pipeline.send import SmtpSender, recipient
from pipeline.store import Store, open_store
from pipeline.store import tables as s
from tests.conftest import write_config
from tests.db_clock import age_claims, claim_of
from tests.delivery_world import EDITION, NOW, add_readers, seed_papers, smtp_config, stub_select
from tests.smtp_server import SmtpServer
from tests.test_deliver_crash import paperboy

STALE = dt.timedelta(minutes=10)  # delivery.sending_stale_minutes' default
AHEAD = NOW + dt.timedelta(minutes=30)  # the second runner's clock


def queue_editions(store: Store, config: Config, readers: int) -> list[int]:
    """``readers`` readers with an edition queued, as a planning run leaves them."""
    papers = [p.id for p in seed_papers(store, 3)]
    subs = add_readers(store, readers)
    for sub in subs:
        message_id = message_id_for(sub.id, EDITION, config.email)
        store.ledger.queue(sub.id, EDITION, message_id, papers, NOW)
    return [sub.id for sub in subs]


# --- the store: fencing and the database's clock ----------------------------------------------


def test_a_claim_is_stamped_with_the_databases_clock(store: Store) -> None:
    """claimed_at is the database's time (read back as aware UTC), whatever ``now`` says."""
    [sid] = queue_editions(store, Config(), 1)
    before = dt.datetime.now(dt.UTC)
    assert store.ledger.claim(sid, EDITION, AHEAD, STALE) is not None
    with store.engine.connect() as conn:
        at = conn.execute(select(s.deliveries.c.claimed_at)).scalar_one()
    assert at is not None and at.tzinfo is not None
    assert (
        before - dt.timedelta(seconds=5) <= at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    )


def test_a_clock_ahead_does_not_make_a_live_claim_stale(store: Store) -> None:
    """A runner whose ``now`` is 30 minutes ahead sees a fresh claim as in flight, not stale;
    once it really is older than the stale period by the database's clock, it is due again."""
    [sid] = queue_editions(store, Config(), 1)
    first = store.ledger.claim(sid, EDITION, NOW, STALE)
    assert first is not None
    assert store.ledger.due(AHEAD, STALE) == []
    assert store.ledger.claim(sid, EDITION, AHEAD, STALE) is None
    age_claims(store, STALE + dt.timedelta(seconds=30))
    again = store.ledger.claim(sid, EDITION, NOW, STALE)
    assert again is not None and again.claim_id != first.claim_id


def test_a_lease_outlives_a_clock_ahead(store: Store) -> None:
    """The lease's expiry is the database's: nobody takes it early, however far ahead."""
    assert store.leases.acquire("deliver", "first", STALE)
    assert not store.leases.acquire("deliver", "second", STALE)
    with store.engine.connect() as conn:
        expires = conn.execute(select(s.leases.c.expires_at)).scalar_one()
    left = expires - dt.datetime.now(dt.UTC)
    assert STALE - dt.timedelta(seconds=5) < left <= STALE + dt.timedelta(seconds=5)


def test_a_mark_with_a_stale_claim_id_does_not_overwrite_the_newer_claim(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The first runner's claim went stale and was taken over: its sent, deferred, failed and
    release marks return False, log it, and leave the newer claim's row as it was."""
    [sid] = queue_editions(store, Config(), 1)
    old = claim_of(store.ledger.claim(sid, EDITION, NOW, STALE))
    age_claims(store, STALE + dt.timedelta(minutes=1))
    new = claim_of(store.ledger.claim(sid, EDITION, NOW, STALE))
    email = "reader0@example.org"
    with caplog.at_level(logging.WARNING, logger="paperboy.ledger"):
        assert not store.ledger.mark_sent(sid, EDITION, "250 ok", NOW, claim_id=old)
        assert not store.ledger.mark_deferred(sid, EDITION, "451", AHEAD, NOW, claim_id=old)
        assert not store.ledger.mark_failed(
            sid, EDITION, "550 5.1.1", suppress_email=email, now=NOW, claim_id=old
        )
        assert not store.ledger.release(sid, EDITION, NOW, claim_id=old)
        assert not store.ledger.mark_sent(sid, EDITION, "250 ok", NOW)  # no claim id at all
    row = store.ledger.get(sid, EDITION)
    assert row is not None and row.status == DeliveryStatus.SENDING and row.claim_id == new
    assert row.attempts == 2 and row.server_reply is None and row.last_error is None
    assert store.ledger.sent_paper_ids([sid]) == {}
    assert not store.subscribers.is_suppressed(email)
    assert sum("was taken over" in r.getMessage() for r in caplog.records) == 5
    assert store.ledger.mark_sent(sid, EDITION, "250 ok", NOW, claim_id=new)
    done = store.ledger.get(sid, EDITION)
    assert done is not None and done.status == DeliveryStatus.SENT


def test_a_mark_for_an_erased_row_is_a_logged_no_op(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The reader was erased while their edition was in flight: every mark returns False,
    says so in the log, and raises nothing."""
    [sid] = queue_editions(store, Config(), 1)
    held = claim_of(store.ledger.claim(sid, EDITION, NOW, STALE))
    assert store.subscribers.delete(sid)
    with caplog.at_level(logging.WARNING, logger="paperboy.ledger"):
        assert not store.ledger.mark_sent(sid, EDITION, "250 ok", NOW, claim_id=held)
        assert not store.ledger.mark_deferred(sid, EDITION, "451", AHEAD, NOW, claim_id=held)
        assert not store.ledger.mark_failed(sid, EDITION, "550", now=NOW, claim_id=held)
        assert not store.ledger.release(sid, EDITION, NOW, claim_id=held)
    assert sum("vanished while in flight" in r.getMessage() for r in caplog.records) == 4
    assert store.ledger.all() == [] and store.ledger.sent_paper_ids([sid]) == {}


# --- runs -------------------------------------------------------------------------------------


def test_a_runner_30_minutes_ahead_sends_none_of_what_another_has_in_flight(
    instance: Config,
) -> None:
    """Runner A has claimed half the editions and is sending them; runner B, its clock 30
    minutes ahead (past sending_stale_minutes by its own reckoning), runs meanwhile with the
    lease free: B sends only the other half, A records all of its own, each reader gets one."""
    with SmtpServer() as server, open_store(instance) as store:
        config = smtp_config(instance, server.port)
        sids = queue_editions(store, config, 20)
        mine = {sid: claim_of(store.ledger.claim(sid, EDITION, NOW, STALE)) for sid in sids[:10]}

        tally = deliver_due(config, AHEAD, store=store, select=stub_select)
        assert (tally.sent, tally.busy, tally.aborted) == (10, False, None)
        for sid, claim_id in mine.items():  # A's sends come back 250 after B's run
            assert store.ledger.mark_sent(sid, EDITION, "250 ok", NOW, claim_id=claim_id)

        by_b = collections.Counter(m.rcpt_tos[0] for m in server.messages)
        emails = {sub.id: sub.email for sub in store.subscribers.all()}
        assert by_b == {emails[sid]: 1 for sid in sids[10:]}
        assert {d.status for d in store.ledger.all()} == {DeliveryStatus.SENT}


@pytest.mark.slow
def test_a_second_paperboy_send_30_minutes_ahead_duplicates_nothing(
    tmp_path: Path, backend_url: str
) -> None:
    """Two ``paperboy send`` processes on one database, the second with ``--now`` 30 minutes
    later while the first is mid-run: the second finds the planner role taken (the lease by
    the database's clock, or the advisory lock), plans nothing and helps send what is queued;
    every reader gets exactly one copy (SQLite and PostgreSQL)."""
    readers = 40
    with SmtpServer(data_delay=0.2) as server:  # the first run takes ~4 s
        path = write_config(
            tmp_path,
            backend_url,
            f"""
[delivery]
backend = "smtp"
[smtp]
host = "127.0.0.1"
port = {server.port}
security = "none"
pool_size = 2
rate_per_second = 1000.0
timeout_seconds = 10.0
[web]
secret_key = "{"k" * 32}"
""",
        )
        config = load_config(path, env={})
        with open_store(config) as store:
            queue_editions(store, config, readers)

        first = paperboy(path, "send", "--now", NOW.isoformat())
        deadline = time.monotonic() + 30
        while server.count() < 4:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never got going"
            time.sleep(0.005)
        second = paperboy(path, "send", "--now", AHEAD.isoformat(), "--json")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err.decode()
        assert b'"busy": true' in out and b'"planned": false' in out  # the first was planning
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err.decode()

        copies = collections.Counter(m.rcpt_tos[0] for m in server.messages)
        assert sorted(copies.values()) == [1] * readers
        with open_store(config) as store:
            assert {d.status for d in store.ledger.all()} == {DeliveryStatus.SENT}


class ErasingSender:
    """The real SMTP sender, except that one reader is erased while their mail is in flight
    (between the claim and the server's reply), as an admin's ``subscribers erase`` would."""

    def __init__(self, inner: SmtpSender, store: Store, victim: str) -> None:
        self.inner, self.store, self.victim = inner, store, victim

    async def send(self, message: EmailMessage) -> str:
        if recipient(message) == self.victim:
            sub = self.store.subscribers.find(self.victim)
            assert sub is not None and self.store.subscribers.delete(sub.id)
        return await self.inner.send(message)

    async def close(self) -> None:
        await self.inner.close()


def test_erasing_a_reader_mid_send_does_not_abort_the_run(
    instance: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """The erased reader's mark is skipped with a log line; everyone else is still sent and
    recorded, and the run ends without a database error."""
    with SmtpServer() as server, open_store(instance) as store:
        config = smtp_config(instance, server.port)
        sids = queue_editions(store, config, 5)
        victim = "reader1@example.org"
        sender = ErasingSender(SmtpSender(config.smtp, config.email.from_address), store, victim)
        with caplog.at_level(logging.WARNING, logger="paperboy.ledger"):
            tally = deliver_due(config, NOW, store=store, select=stub_select, sender=sender)
        assert tally.aborted is None and (tally.sent, tally.failed) == (5, 0)
        assert any("vanished while in flight" in r.getMessage() for r in caplog.records)
        rows = store.ledger.all()
        assert len(rows) == 4 and {d.status for d in rows} == {DeliveryStatus.SENT}
        assert store.subscribers.find(victim) is None
        assert store.subscribers.is_suppressed(victim)
        assert server.count() == 5
        left = [sub for sub in store.subscribers.all() if sub.id in sids]
        assert all(sub.status == SubscriberStatus.ACTIVE for sub in left) and len(left) == 4


def test_an_old_binary_claimed_row_without_a_claim_id_is_taken_over_when_stale(
    store: Store,
) -> None:
    """A row left in sending before claim ids existed (claim_id NULL) is reclaimed once stale,
    and the new claim writes a claim id."""
    [sid] = queue_editions(store, Config(), 1)
    held = store.ledger.claim(sid, EDITION, NOW, STALE)
    assert held is not None
    with store.engine.begin() as conn:
        conn.execute(s.deliveries.update().values(claim_id=None))
    age_claims(store, STALE + dt.timedelta(minutes=1))
    again = store.ledger.claim(sid, EDITION, NOW, STALE)
    assert again is not None and again.claim_id is not None
    assert not store.ledger.mark_sent(sid, EDITION, "250 ok", NOW, claim_id=held.claim_id)
