"""This process's counters, moved by the real steps: SMTP replies by class against a real
server, send latency, inbox files by outcome, refused config reloads; and the pure helpers
the gauges use."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from pipeline import metrics
from pipeline.config import load_config
from pipeline.errors import (
    DeliveryUncertain,
    PermanentSendError,
    PolicyRefusal,
    RecipientBounced,
    SendAbort,
    SendError,
    TemporarySendError,
    Unreachable,
)
from pipeline.gauges import behind, due_moment
from pipeline.mime import message_id_for
from pipeline.run import InboxWatch, deliver_due, ingest_inbox
from pipeline.schedule import LiveConfig
from pipeline.store import open_store
from pipeline.store.reports import PendingGroup
from tests.conftest import write_config
from tests.delivery_world import EDITION, NOW, add_readers, seed_papers
from tests.smtp_server import SmtpServer, free_port
from tests.test_inbox import API
from tests.test_send import mail, smtp


class Counts:
    """The process counters as a registry of their own reads them, for before/after deltas."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        for collector in metrics.PROCESS:
            self.registry.register(collector)

    def get(self, name: str, **labels: str) -> float:
        found = self.registry.get_sample_value(name, labels)
        assert found is not None, name
        return found

    def replies(self) -> dict[str, float]:
        return {
            c: self.get("paperboy_smtp_replies_total", **{"class": c})
            for c in ("2xx", "4xx", "5xx", "connection", "other")
        }


def test_smtp_replies_are_counted_by_class_against_a_real_server() -> None:
    """A 250, a 450 at RCPT, a 550 at RCPT, and a port nobody listens on: one each of 2xx,
    4xx, 5xx and connection."""
    counts = Counts()
    before = counts.replies()

    async def go() -> list[str | Exception]:
        out: list[str | Exception] = []
        with SmtpServer() as server:
            server.inject("rcpt", "450 4.2.0 mailbox busy", rcpt="busy@example.org")
            server.inject("rcpt", "550 5.7.1 not here", rcpt="gone@example.org")
            sender = smtp(server.port)
            for n, to in enumerate(("ok@example.org", "busy@example.org", "gone@example.org")):
                try:
                    out.append(await sender.send(mail(to, n)))
                except SendError as e:
                    out.append(e)
            await sender.close()
        closed = smtp(free_port())
        try:
            await closed.send(mail("ok@example.org", 9))
        except SendError as e:
            out.append(e)
        return out

    results = asyncio.run(go())
    assert isinstance(results[0], str) and results[0].startswith("250")
    assert all(isinstance(r, SendError) for r in results[1:]), results
    after = counts.replies()
    delta = {c: after[c] - before[c] for c in after}
    assert delta == {"2xx": 1, "4xx": 1, "5xx": 1, "connection": 1, "other": 0}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, "2xx"),
        (PolicyRefusal("RCPT: 421 try later", 421), "4xx"),
        (RecipientBounced("RCPT: 550 no", 550), "5xx"),
        (SendAbort("auth failed", 535), "5xx"),
        (Unreachable("CONNECT: ConnectionRefusedError"), "connection"),
        (TemporarySendError("DATA: SMTPServerDisconnected"), "connection"),
        (DeliveryUncertain("lost after the dot"), "connection"),
        (SendAbort("TLS with host failed"), "other"),
        (PermanentSendError("the server does not offer SMTPUTF8"), "other"),
    ],
)
def test_reply_class_names_what_ended_the_transaction(
    error: SendError | None, expected: str
) -> None:
    """A reply code gives its class; no reply at all is a connection problem, unless the
    client refused before the server could answer."""
    assert metrics.reply_class(error) == expected


def test_each_edition_sent_is_timed(tmp_path: Path) -> None:
    """A delivery run through the outbox observes the send latency once per edition."""
    config = load_config(write_config(tmp_path, f"sqlite:///{tmp_path / 'paperboy.db'}"), env={})
    counts = Counts()
    before = counts.get("paperboy_send_seconds_count")
    with open_store(config) as store:
        papers = [p.id for p in seed_papers(store, 3)]
        for sub in add_readers(store, 3):
            store.ledger.queue(
                sub.id, EDITION, message_id_for(sub.id, EDITION, config.email), papers, NOW
            )
        tally = deliver_due(config, NOW, store=store)
    assert tally.sent == 3
    assert counts.get("paperboy_send_seconds_count") - before == 3
    assert counts.get("paperboy_send_seconds_bucket", le="+Inf") >= 3


def test_inbox_files_are_counted_by_outcome(tmp_path: Path) -> None:
    """One dump ingested, one broken file quarantined, then the same dump again: a
    duplicate."""
    config = load_config(write_config(tmp_path, f"sqlite:///{tmp_path / 'paperboy.db'}"), env={})
    counts = Counts()

    def outcomes() -> dict[str, float]:
        return {
            o: counts.get("paperboy_ingest_files_total", outcome=o) for o in metrics.INGEST_OUTCOMES
        }

    before = outcomes()
    inbox = config.paths.inbox
    inbox.mkdir(parents=True)
    (inbox / "daily_2026-07-02.json").write_text(json.dumps(API), encoding="utf-8")
    (inbox / "broken.json").write_text("{not json", encoding="utf-8")
    later = time.time() + 3600  # past the settle time
    watch = InboxWatch()  # a file written in place is taken at the scan that finds it unchanged
    for _ in range(2):
        ingest_inbox(config, now=later, watch=watch)
    (inbox / "again.json").write_text(json.dumps(API), encoding="utf-8")
    for _ in range(2):
        ingest_inbox(config, now=later, watch=watch)
    after = outcomes()
    delta = {o: after[o] - before[o] for o in after}
    assert delta == {"ingested": 1, "duplicate": 1, "quarantined": 1, "failed": 0}


def test_a_refused_config_reload_is_counted(tmp_path: Path) -> None:
    """An edit that does not load counts one failure; a good edit counts none."""
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'paperboy.db'}")
    live = LiveConfig(path)
    counts = Counts()
    before = counts.get("paperboy_config_reload_failures_total")
    path.write_text(path.read_text() + "\n[match\n", encoding="utf-8")
    assert live.reload() is False
    assert counts.get("paperboy_config_reload_failures_total") - before == 1
    path.write_text(path.read_text().replace("\n[match\n", "\n# fixed\n"), encoding="utf-8")
    assert live.reload() is True
    assert counts.get("paperboy_config_reload_failures_total") - before == 1


def group(day: dt.date, zone: str, hour: int, n: int = 1) -> PendingGroup:
    return PendingGroup(edition_date=day, timezone=zone, send_hour=hour, editions=n)


def test_an_edition_is_due_at_its_readers_send_hour_in_their_zone() -> None:
    """07:00 in Kolkata is 01:30 UTC; an unknown zone counts as UTC, as delivery does."""
    day = dt.date(2026, 7, 3)
    kolkata = due_moment(group(day, "Asia/Kolkata", 7))
    assert kolkata.astimezone(dt.UTC) == dt.datetime(2026, 7, 3, 1, 30, tzinfo=dt.UTC)
    unknown = due_moment(group(day, "Mars/Olympus", 7))
    assert unknown.astimezone(dt.UTC) == dt.datetime(2026, 7, 3, 7, tzinfo=dt.UTC)


def test_lag_is_the_oldest_pending_edition_past_its_send_hour() -> None:
    """Editions not yet due add nothing; the lag is the oldest overdue one's lateness."""
    now = dt.datetime(2026, 7, 3, 9, 0, tzinfo=dt.UTC)
    day = now.date()
    groups = [
        group(day, "UTC", 8, 3),  # due an hour ago
        group(day, "America/New_York", 7, 5),  # 11:00 UTC: not yet
        group(day - dt.timedelta(days=1), "UTC", 7, 2),  # 26 hours late
    ]
    assert behind(groups, now) == (5, 26 * 3600.0)
    assert behind([], now) == (0, 0.0)


def test_two_registries_read_the_same_process_counters() -> None:
    """The counters are registered in each app's own registry (two apps in one process
    never clash), and every registry reads the one process-wide count."""
    first, second = Counts(), Counts()
    metrics.config_reload_failed()
    name = "paperboy_config_reload_failures_total"
    assert first.get(name) == second.get(name) >= 1
