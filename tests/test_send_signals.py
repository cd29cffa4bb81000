"""SIGTERM to a real `paperboy send` process mid-run, on SQLite and PostgreSQL: the send in
flight is finished and recorded, nothing is left `sending`, and the next run starts at once."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pipeline.config import load_config
from pipeline.store import open_store
from tests.conftest import write_config
from tests.delivery_world import NOW, add_readers, seed_papers
from tests.smtp_server import SmtpServer
from tests.test_send_cli import PAPERBOY, paperboy

READERS = 8


def wait_until(done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not come true in time")
        time.sleep(0.005)


def test_sigterm_mid_run_loses_nothing_and_the_next_run_starts_at_once(
    tmp_path: Path, backend_url: str
) -> None:
    """SIGTERM while the third message waits for its 250: that send finishes and is marked
    sent, no further edition is claimed, the process exits 143 having released its lease and
    claims, and an immediate second run (same --now, long before sending_stale_minutes)
    delivers every other reader exactly once."""
    with SmtpServer(data_delay=0.5) as server:
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
pool_size = 1
rate_per_second = 1000.0
[web]
base_url = "https://papers.example.org"
secret_key = "{"k" * 32}"
""",
        )
        config = load_config(path, env={})
        with open_store(config) as store:
            seed_papers(store, 6)
            add_readers(store, READERS)
        run = subprocess.Popen(
            [*PAPERBOY, "--config", str(path), "send", "--now", NOW.isoformat()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # The third message is on the server, which holds its reply for data_delay.
            wait_until(lambda: server.data_started == 3 and server.count() == 2)
            run.send_signal(signal.SIGTERM)
            out, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        assert run.returncode == 143, err
        assert "paperboy: stopped by SIGTERM" in err
        assert out.startswith("sent 3, deferred 0, failed 0")
        with open_store(config) as store:
            statuses = Counter(d.status.value for d in store.ledger.all())
        assert statuses["sent"] == server.count() == 3
        assert statuses["sending"] == 0

        again = paperboy(path, "send", "--now", NOW.isoformat())
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith(f"sent {READERS - 3}, deferred 0, failed 0")
        recipients = server.recipients()
        assert sorted(recipients) == sorted(f"reader{i}@example.org" for i in range(READERS))
