"""Crash safety: SIGKILL ``paperboy send`` mid-run, run it again, and count at the server."""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.mime import message_id_for
from pipeline.models import DeliveryStatus
from pipeline.store import open_store
from tests.conftest import write_config
from tests.db_clock import age_claims, expire_lease
from tests.delivery_world import EDITION, NOW, add_readers, seed_papers
from tests.smtp_server import SmtpServer

READERS = 40
POOL = 2


def paperboy(config: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pipeline.cli import app; app()",
            "--config",
            str(config),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


@pytest.mark.slow
def _wait_until_quiet(server: SmtpServer, quiet: float = 0.2, limit: float = 10.0) -> None:
    """Poll until the server's message count has not changed for ``quiet`` seconds."""
    count = server.count()
    changed = time.monotonic()
    deadline = changed + limit
    while time.monotonic() - changed < quiet:
        assert time.monotonic() < deadline, "the server kept receiving after the client died"
        time.sleep(0.02)
        now = server.count()
        if now != count:
            count, changed = now, time.monotonic()


def test_sigkill_mid_run_loses_nothing_and_duplicates_only_what_was_in_flight(
    tmp_path: Path,
) -> None:
    """Killed while sending 40 editions, then run again: every reader has theirs, and the
    only second copies are of messages that were in the server's hands at the kill."""
    # A slow server (50 ms per DATA) keeps messages in flight when the kill comes.
    with SmtpServer(data_delay=0.05) as server:
        path = write_config(
            tmp_path,
            "sqlite:///var/paperboy.db",
            f"""
[delivery]
backend = "smtp"
[smtp]
host = "127.0.0.1"
port = {server.port}
security = "none"
pool_size = {POOL}
rate_per_second = 1000.0
timeout_seconds = 10.0
[web]
secret_key = "{"k" * 32}"
""",
        )
        config = load_config(path, env={})
        with open_store(config) as store:
            papers = [p.id for p in seed_papers(store, 3)]
            readers = add_readers(store, READERS)
            for sub in readers:  # queued as a previous run would have left them
                store.ledger.queue(
                    sub.id, EDITION, message_id_for(sub.id, EDITION, config.email), papers, NOW
                )

        first = paperboy(path, "send", "--now", NOW.isoformat())
        deadline = time.monotonic() + 30
        while server.count() < READERS // 4:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never got going"
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.communicate()
        assert first.returncode == -signal.SIGKILL

        with open_store(config) as store:
            in_flight = [d for d in store.ledger.all() if d.status == DeliveryStatus.SENDING]
            sent_before = [d for d in store.ledger.all() if d.status == DeliveryStatus.SENT]
            # sending_stale_minutes pass by the database's clock: the dead run's claims and
            # its lease run out (a later --now alone would not do it)
            age_claims(store, dt.timedelta(minutes=11))
            expire_lease(store)
        assert 0 < len(sent_before) < READERS and len(in_flight) <= POOL
        _wait_until_quiet(server)  # the server may still be taking in what the client sent

        # The next run comes after sending_stale_minutes, when stuck claims are due again.
        later = (NOW + dt.timedelta(minutes=11)).isoformat()
        second = paperboy(path, "send", "--now", later)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 0, err.decode()

        copies = collections.Counter(m.rcpt_tos[0] for m in server.messages)
        lost = [s.email for s in readers if copies[s.email] == 0]
        duplicated = {email: n for email, n in copies.items() if n > 1}
        assert lost == []
        assert all(n == 2 for n in duplicated.values())
        in_flight_emails = {
            s.email for s in readers if s.id in {d.subscriber_id for d in in_flight}
        }
        assert set(duplicated) <= in_flight_emails
        by_address = collections.defaultdict(set)
        for m in server.messages:
            by_address[m.rcpt_tos[0]].add(m.message_id)
        assert all(len(ids) == 1 for ids in by_address.values())  # a resend is the same message
        with open_store(config) as store:
            assert {d.status for d in store.ledger.all()} == {DeliveryStatus.SENT}
        print(
            f"killed after {len(sent_before)} sent, {len(in_flight)} in flight; "
            f"{len(duplicated)} duplicate(s)"
        )
