"""`paperboy run`: ingests, delivers, serves, survives bad config edits, stops cleanly."""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from pipeline.config import load_config
from pipeline.models import Profile, SubscriberStatus
from pipeline.schedule import LiveConfig
from pipeline.store import open_store
from pipeline.store.migrate import revisions
from tests.conftest import write_config
from tests.test_inbox import PAGE

PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]
ROOT = Path(__file__).resolve().parents[1]
FAST = """
[schedule]
ingest_every_seconds = 0.5
deliver_every_seconds = 0.5
config_reload_seconds = 0.3
[ingest]
settle_seconds = 0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return dict(json.load(r))
    except OSError:
        return None


def start(config: Path, *args: str, output: IO[str] | None = None) -> subprocess.Popen[str]:
    """``paperboy run``, its output piped (or written to ``output``, to watch it as it runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [*PAPERBOY, "--config", str(config), "run", *args],
        stdout=output if output is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, int, list[subprocess.Popen[str]]]]:
    """An instance folder with a free web port; any daemon started is stopped afterwards."""
    port = free_port()
    config = write_config(tmp_path, "sqlite:///var/paperboy.db", FAST + f"[web]\nport = {port}\n")
    procs: list[subprocess.Popen[str]] = []
    yield config, port, procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_live_config_keeps_the_last_good_config_after_a_bad_edit(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite:///var/paperboy.db", "[smtp]\nport = 2525\n")
    live = LiveConfig(path)
    assert live.reload() is False  # unchanged file: nothing to do

    path.write_text(path.read_text().replace("2525", "99999"), encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    assert live.reload() is False
    assert live.config.smtp.port == 2525
    assert live.last_error is not None and "smtp.port = 99999" in live.last_error

    path.write_text(path.read_text().replace("99999", "2626"), encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 20_000_000))
    assert live.reload() is True
    assert live.config.smtp.port == 2626
    assert live.last_error is None


def hour_due_now() -> int:
    """The UTC hour that makes a reader added now due at once, and not late, whatever the time.

    An earlier hour is "missed" for a reader who joined more than delivery.late_cutoff_hours
    after it. In the last minute of a day this waits for midnight: the daemon's first run
    could fall on the next day, when the hour just past is tomorrow's."""
    now = dt.datetime.now(dt.UTC)
    if now.hour == 23 and now.minute == 59:
        time.sleep(61 - now.second)
        now = dt.datetime.now(dt.UTC)
    return now.hour


def test_run_ingests_delivers_serves_and_survives_a_bad_edit(
    daemon: tuple[Path, int, list[subprocess.Popen[str]]],
) -> None:
    config_path, port, procs = daemon
    config = load_config(config_path, env={})
    config.paths.inbox.mkdir(parents=True)
    (config.paths.inbox / "hf_daily_papers_2026-07-03.txt").write_text(PAGE, encoding="utf-8")
    with open_store(config) as store:
        store.subscribers.add(
            "reader@example.org",
            profile=Profile(interests="keyword spotting, hearing aids"),
            status=SubscriberStatus.ACTIVE,
            send_hour=hour_due_now(),
        )

    log = config_path.parent / "daemon.log"
    with log.open("w", encoding="utf-8") as output:
        proc = start(config_path, output=output)
    procs.append(proc)
    wait_for(lambda: (health(port) or {}).get("status") == "ok", "web")
    body = health(port) or {}
    assert body["db"] == "ok" and body["schema_version"] == len(revisions())
    wait_for(lambda: any(config.paths.archive.glob("*.txt")), "the dump to be archived")
    wait_for(lambda: any(config.paths.outbox.glob("digest.*.eml")), "the digest")

    # A bad edit is reported; the service keeps running on the last good config.
    config_path.write_text(config_path.read_text() + "\n[smtp]\nport = 99999\n", "utf-8")
    reported = "config error, keeping the last good config"
    wait_for(lambda: reported in log.read_text(encoding="utf-8"), "the bad edit to be reported")
    assert proc.poll() is None
    assert health(port) is not None

    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    out = log.read_text(encoding="utf-8")
    assert proc.returncode == 0, out
    assert "hf_daily_papers_2026-07-03.txt (hf_page):" in out
    assert "delivered: sent 1, deferred 0, failed 0" in out
    assert "config error, keeping the last good config" in out
    assert "smtp.port = 99999" in out
    assert out.rstrip().endswith("paperboy: stopped")
    # Without the model the service matched by words, and said so once, not every tick.
    assert out.count("matching by meaning is unavailable") <= 1


def test_run_refuses_a_taken_port_before_touching_the_inbox(
    daemon: tuple[Path, int, list[subprocess.Popen[str]]],
) -> None:
    config_path, port, procs = daemon
    config = load_config(config_path, env={})
    config.paths.inbox.mkdir(parents=True)
    dump = config.paths.inbox / "hf_daily_papers_2026-07-03.txt"
    dump.write_text(PAGE, encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        proc = start(config_path)
        procs.append(proc)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out.strip().splitlines() == [
        f"paperboy: error: cannot listen on 127.0.0.1:{port} (Address already in use); "
        "is another paperboy running? Set web.port, or use --no-web"
    ]
    assert dump.exists()


def test_the_service_log_counts_sent_ambiguous_editions(caplog: pytest.LogCaptureFixture) -> None:
    """A run with a connection lost after the message says so in the service's output."""
    from pipeline.commands.service import print_tally
    from pipeline.deliver import Tally

    with caplog.at_level(logging.INFO, logger="paperboy"):
        print_tally(Tally(sent=2, ambiguous=1))
    text = caplog.text
    assert "delivered: sent 2, deferred 0, failed 0" in text
    assert "sent_ambiguous 1: the connection was lost after the message" in text


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="tgkill (one thread's signal) is Linux's"
)
def test_run_stops_on_sigterm_whichever_thread_takes_it(
    daemon: tuple[Path, int, list[subprocess.Popen[str]]],
) -> None:
    """The kernel hands a process's SIGTERM to whichever of its threads takes it first, on
    a busy host often a scheduler thread: ``paperboy run --no-web`` stops all the same,
    with exit 0. Here the signal goes to a thread other than the main one, as it may."""
    config_path, _, procs = daemon
    log = config_path.parent / "run.log"
    with log.open("w", encoding="utf-8") as output:
        proc = start(config_path, "--no-web", output=output)
    procs.append(proc)
    # The planner line comes from a scheduler thread: the SIGTERM handler is in place.
    wait_for(lambda: "planner now" in log.read_text(encoding="utf-8"), "the service to start")
    threads = {int(t) for t in os.listdir(f"/proc/{proc.pid}/task")} - {proc.pid}
    libc = ctypes.CDLL(None, use_errno=True)
    sent = libc.tgkill(proc.pid, min(threads), signal.SIGTERM)
    assert sent == 0, os.strerror(ctypes.get_errno())
    assert proc.wait(timeout=60) == 0, log.read_text(encoding="utf-8")
    assert "INFO paperboy: stopped" in log.read_text(encoding="utf-8")
