"""One planner, a standby: one process at a time queues editions, any number send what is
queued, and a standby takes the planner role over when its holder stops or dies."""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from pipeline.config import Config, load_config
from pipeline.mime import message_id_for
from pipeline.models import DeliveryStatus, Profile, SubscriberStatus
from pipeline.run import deliver_due
from pipeline.store import Store, open_store
from pipeline.store.leases import ADVISORY_KEY
from tests.conftest import write_config
from tests.delivery_world import EDITION, NOW, add_readers, seed_papers, stub_select
from tests.smtp_server import SmtpServer
from tests.test_service import PAPERBOY, ROOT, start, wait_for

LEASE = dt.timedelta(minutes=10)
LEASE_SECONDS = 6.0  # the services' lease in these tests: delivery.sending_stale_minutes
PLANNER = "this paperboy is the planner now"
STANDBY = "standing by: another paperboy plans editions"


# --- the role ---------------------------------------------------------------------------------


def test_one_process_holds_the_planner_role_until_it_gives_it_up(store: Store) -> None:
    """The holder keeps the role on every take; another is refused until the holder releases
    it, then takes it at once (SQLite's lease row and PostgreSQL's advisory lock alike)."""
    first = store.planner_role("first", LEASE)
    second = store.planner_role("second", LEASE)
    try:
        assert first.take() and first.take()
        assert not second.take()
        first.release()
        assert second.take()
        assert not first.take()
    finally:
        first.release()
        second.release()


def test_a_run_without_the_planner_role_sends_what_is_queued(instance: Config) -> None:
    """Sending needs no role: while another process plans, a run queues nothing new, says
    it was busy, and sends the editions already queued, each once."""
    with open_store(instance) as store:
        papers = [p.id for p in seed_papers(store, 3)]
        queued = add_readers(store, 3)
        for sub in queued:
            message_id = message_id_for(sub.id, EDITION, instance.email)
            store.ledger.queue(sub.id, EDITION, message_id, papers, NOW)
        unplanned = store.subscribers.add(
            "unplanned@example.org",
            status=SubscriberStatus.ACTIVE,
            profile=Profile(topics=("spiking-neural-networks",)),
            send_hour=7,
            now=NOW - dt.timedelta(days=30),
        )
        planner = store.planner_role("the-service", LEASE)
        assert planner.take()
        try:
            tally = deliver_due(instance, NOW, store=store, select=stub_select)
        finally:
            planner.release()
        assert tally.busy and (tally.queued, tally.sent) == (0, 3)
        assert {d.subscriber_id for d in store.ledger.all()} == {sub.id for sub in queued}
        assert {d.status for d in store.ledger.all()} == {DeliveryStatus.SENT}
        assert store.ledger.get(unplanned.id, EDITION) is None


@pytest.mark.postgres
@pytest.mark.parametrize("backend_url", ["postgresql"], indirect=True)
def test_a_planner_whose_session_ended_has_lost_the_role(instance: Config) -> None:
    """PostgreSQL: when the lock's session ends under the holder (a restarted server, an
    admin's pg_terminate_backend), another process can take the role, and the holder's next
    take says it no longer has it instead of trusting a reconnected session."""
    with open_store(instance) as store:
        holder = store.planner_role("holder", LEASE)
        other = store.planner_role("other", LEASE)
        try:
            assert holder.take()
            with store.engine.begin() as conn:
                ended = conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks "
                        "WHERE locktype = 'advisory' AND pid <> pg_backend_pid() "
                        "AND classid = :key AND objid = hashtext(current_schema())::oid"
                    ),
                    {"key": ADVISORY_KEY},
                ).scalars()
                assert list(ended) == [True]
            wait_for(other.take, "the lock to be free", timeout=10)
            assert not holder.take()
        finally:
            holder.release()
            other.release()


# --- two services -----------------------------------------------------------------------------


def service_config(folder: Path, url: str, smtp_port: int) -> Path:
    """Fast ticks, a short planner lease, no sentence model: two services on one database."""
    return write_config(
        folder,
        url,
        f"""
[schedule]
ingest_every_seconds = 0.5
deliver_every_seconds = 0.5
config_reload_seconds = 0.3
[meaning]
enabled = false
[delivery]
backend = "smtp"
sending_stale_minutes = {LEASE_SECONDS / 60}
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
pool_size = 2
rate_per_second = 1000.0
timeout_seconds = 10.0
[web]
secret_key = "{"k" * 32}"
""",
    )


def add_due_readers(config: Config, first: int, n: int) -> list[str]:
    """``n`` readers whose edition is due now (send hour this hour, UTC), and papers for them."""
    now = dt.datetime.now(dt.UTC)
    emails = [f"reader{i}@example.org" for i in range(first, first + n)]
    with open_store(config) as store:
        seed_papers(store, 6, at=now - dt.timedelta(hours=2), start=first)
        for email in emails:
            store.subscribers.add(
                email,
                status=SubscriberStatus.ACTIVE,
                profile=Profile(topics=("spiking-neural-networks",), max_papers=3),
                send_hour=now.hour,
                now=now - dt.timedelta(days=30),
            )
    return emails


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """The ``paperboy run`` processes a test starts; any still running are killed after it."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def run_service(config: Path, name: str, procs: list[subprocess.Popen[str]]) -> Path:
    """Start ``paperboy run --no-web``, its output in ``<name>.log``; returns the log's path."""
    log = config.parent / f"{name}.log"
    with log.open("w", encoding="utf-8") as output:
        procs.append(start(config, "--no-web", output=output))
    return log


def recorded_sent(store: Store, emails: list[str]) -> bool:
    """True once the ledger records every one of these readers' editions ``sent``: the
    sender's mark committed, so none of them is in flight any more (a server's count alone
    is reached before the 250 is read and the mark committed; a kill in between is the
    crash window README's "When a duplicate can happen" describes)."""
    subscribers = [store.subscribers.find(email) for email in emails]
    ids = {sub.id for sub in subscribers if sub is not None}
    rows = [d for d in store.ledger.all() if d.subscriber_id in ids]
    return len(rows) == len(emails) and all(d.status == DeliveryStatus.SENT for d in rows)


def says(log: Path, text: str) -> bool:
    return text in log.read_text(encoding="utf-8")


def stop(proc: subprocess.Popen[str], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text(encoding="utf-8")


@pytest.mark.slow
def test_two_services_plan_each_edition_once(
    tmp_path: Path, backend_url: str, services: list[subprocess.Popen[str]]
) -> None:
    """Two ``paperboy run`` started together on one database: one is the planner, the other
    stands by (and helps send); each reader gets exactly one mail (SQLite and PostgreSQL)."""
    with SmtpServer() as server:
        path = service_config(tmp_path, backend_url, server.port)
        config = load_config(path, env={})
        emails = add_due_readers(config, 0, 20)
        logs = [run_service(path, name, services) for name in ("a", "b")]
        with open_store(config) as store:
            wait_for(lambda: recorded_sent(store, emails), "every reader's mail", timeout=60)
            rows = store.ledger.all()
        wait_for(
            lambda: all(says(log, PLANNER) or says(log, STANDBY) for log in logs),
            "both services to know their role",
        )
        planners = [says(log, PLANNER) for log in logs]
        assert sorted(planners) == [False, True], [log.read_text() for log in logs]
        # The standby stops first, so the role never changes hands while the test looks.
        for proc, log in sorted(
            zip(services, logs, strict=True), key=lambda p: says(p[1], PLANNER)
        ):
            stop(proc, log)
        assert not any(says(log, PLANNER) and says(log, STANDBY) for log in logs)
    assert collections.Counter(server.recipients()) == dict.fromkeys(emails, 1)
    assert len(rows) == len(emails) and {d.status for d in rows} == {DeliveryStatus.SENT}


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_the_standby_takes_over_when_the_planner_dies_or_stops(
    tmp_path: Path, backend_url: str, services: list[subprocess.Popen[str]], how: signal.Signals
) -> None:
    """After SIGKILL (or SIGTERM) of the planner, the standby becomes the planner within the
    lease's expiry (at its next election when the role was given up, or on PostgreSQL, where
    the lock goes with the session) and plans the editions due after; nobody gets a mail
    twice. The planner goes once the first editions are recorded sent, outside the window
    in which a kill may duplicate what was in flight (test_deliver_crash covers that)."""
    with SmtpServer() as server:
        path = service_config(tmp_path, backend_url, server.port)
        config = load_config(path, env={})
        first = run_service(path, "first", services)
        wait_for(lambda: says(first, PLANNER), "the first service to be the planner")
        second = run_service(path, "second", services)
        wait_for(lambda: says(second, STANDBY), "the second service to stand by")

        before = add_due_readers(config, 0, 5)
        # Killed only once their editions are recorded sent: a kill between the server's 250
        # and the mark is the documented crash window, whose resend test_deliver_crash counts.
        with open_store(config) as store:
            wait_for(lambda: recorded_sent(store, before), "the first readers' mail")

        services[0].send_signal(how)
        assert services[0].wait(timeout=30) == (0 if how == signal.SIGTERM else -how)
        after = add_due_readers(config, 5, 5)
        # The lease was renewed at most an election (a third of it) before the kill; the
        # standby tries at each election: the bound is the lease plus slack for a busy host.
        wait_for(lambda: says(second, PLANNER), "the standby to take over", LEASE_SECONDS + 9)
        wait_for(lambda: server.count() >= len(before) + len(after), "the later readers' mail")
        stop(services[1], second)
        with open_store(config) as store:
            assert recorded_sent(store, before + after)
    assert collections.Counter(server.recipients()) == dict.fromkeys(before + after, 1)


def test_paperboy_send_without_the_role_sends_the_queue_and_says_so(
    tmp_path: Path, backend_url: str
) -> None:
    """While a service holds the planner role, ``paperboy send`` queues nothing, sends what is
    queued and says why it planned nothing; once the role is free, it plans as before."""
    with SmtpServer() as server:
        path = service_config(tmp_path, backend_url, server.port)
        config = load_config(path, env={})
        with open_store(config) as store:
            papers = [p.id for p in seed_papers(store, 3)]
            for sub in add_readers(store, 2):
                message_id = message_id_for(sub.id, EDITION, config.email)
                store.ledger.queue(sub.id, EDITION, message_id, papers, NOW)
            store.subscribers.add(
                "unplanned@example.org",
                status=SubscriberStatus.ACTIVE,
                profile=Profile(topics=("spiking-neural-networks",)),
                send_hour=7,
                now=NOW - dt.timedelta(days=30),
            )
            service = store.planner_role("the-service", LEASE)
            assert service.take()
            try:
                busy = send(path, "--now", NOW.isoformat())
            finally:
                service.release()
            planned = send(path, "--now", NOW.isoformat())
    assert busy.returncode == 0, busy.stderr
    assert "another paperboy is the planner" in busy.stderr
    assert busy.stdout.startswith("sent 2, deferred 0, failed 0")
    assert "(0 new editions queued)" in busy.stdout
    assert planned.returncode == 0, planned.stderr
    assert "another paperboy" not in planned.stderr
    assert planned.stdout.startswith("sent 1,") and "(1 new editions queued)" in planned.stdout
    assert sorted(server.recipients()) == [
        "reader0@example.org",
        "reader1@example.org",
        "unplanned@example.org",
    ]


def send(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``paperboy send``, run to its end, importing this tree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [*PAPERBOY, "--config", str(config), "send", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
