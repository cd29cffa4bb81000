"""`paperboy preview` and `paperboy send` as an admin runs them, with the real matcher."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from pipeline.config import Config, load_config
from pipeline.models import Profile, SubscriberStatus
from pipeline.store import open_store
from tests.conftest import write_config
from tests.delivery_world import NOW, add_readers, seed_papers
from tests.smtp_server import SmtpServer

PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]


def paperboy(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PAPERBOY, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


@pytest.fixture
def instance(tmp_path: Path, server: SmtpServer) -> tuple[Path, Config]:
    """An SQLite instance mailing to the test server: 2 SNN readers, 1 robotics reader."""
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
rate_per_second = 1000.0
[web]
base_url = "https://papers.example.org"
secret_key = "{"k" * 32}"
""",
    )
    config = load_config(path, env={})
    with open_store(config) as store:
        seed_papers(store, 6)
        add_readers(store, 2)
        store.subscribers.add(
            "robots@example.org",
            status=SubscriberStatus.ACTIVE,
            profile=Profile(topics=("robotics",)),
            send_hour=7,
        )
    return path, config


def test_preview_prints_the_digest_and_changes_nothing(instance: tuple[Path, Config]) -> None:
    """Subject and text part on stdout; no ledger row, nothing sent."""
    path, config = instance
    result = paperboy(path, "preview", "reader0@example.org", "--date", "2026-07-03")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Subject: Fri 3 Jul: Sparse spiking transformers")
    assert "Unsubscribe: https://papers.example.org/u/" in result.stdout
    with open_store(config) as store:
        assert store.ledger.all() == []


def test_preview_writes_html_or_eml(instance: tuple[Path, Config], tmp_path: Path) -> None:
    """--out FILE.html writes the HTML part, --out FILE.eml the whole message."""
    path, _ = instance
    html, eml = tmp_path / "d.html", tmp_path / "d.eml"
    assert paperboy(path, "preview", "reader1@example.org", "--out", str(html)).returncode == 0
    assert html.read_text().startswith("<!doctype html>")
    assert paperboy(path, "preview", "reader1@example.org", "-o", str(eml)).returncode == 0
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["To"] == "reader1@example.org" and message["List-Unsubscribe-Post"]


def test_preview_of_a_sent_edition_shows_what_was_mailed(
    instance: tuple[Path, Config], server: SmtpServer
) -> None:
    """Previewing an edition in the ledger prints the reasons and the "N more" line the mail
    had, from what was recorded when it was queued."""
    path, _ = instance
    assert paperboy(path, "send", "--now", NOW.isoformat()).returncode == 0
    [mailed] = [m.message for m in server.messages if "reader0@" in str(m.message["To"])]
    part = mailed.get_body(("plain",))
    assert part is not None
    sent_text = str(part.get_content())
    result = paperboy(path, "preview", "reader0@example.org", "--date", "2026-07-03")
    assert result.returncode == 0, result.stderr

    def said(text: str) -> list[str]:
        """The reasons and the "N more" line (without its freshly signed link)."""
        lines = [line.strip() for line in text.splitlines()]
        return [
            line.split(": https://")[0] for line in lines if "Why:" in line or "more paper" in line
        ]

    assert said(sent_text) and "3 more papers matched your interests" in sent_text
    assert said(result.stdout) == said(sent_text)


def test_preview_of_an_unknown_address_is_a_usage_error(instance: tuple[Path, Config]) -> None:
    """An address that is not a subscriber: exit 2 and one line saying so."""
    path, _ = instance
    result = paperboy(path, "preview", "nobody@example.org")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "paperboy: error: no subscriber with address 'nobody@example.org'; "
        "see `paperboy subscribers list`"
    ]


def test_send_delivers_matched_editions_and_summarises(
    instance: tuple[Path, Config], server: SmtpServer
) -> None:
    """Matched readers get their digest; the robotics reader's empty edition is skipped."""
    path, _ = instance
    dry = paperboy(path, "send", "--now", NOW.isoformat(), "--dry-run")
    assert dry.returncode == 0 and "2 new editions to queue, 1 with nothing new" in dry.stdout
    assert server.count() == 0
    result = paperboy(path, "send", "--now", NOW.isoformat())
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == "sent 2, deferred 0, failed 0, skipped 1, missed 0 (2 new editions queued)"
    )
    assert sorted(server.recipients()) == ["reader0@example.org", "reader1@example.org"]
    again = paperboy(path, "send", "--now", NOW.isoformat(), "--json")
    assert json.loads(again.stdout)["sent"] == 0


def test_send_exits_1_when_a_delivery_fails(
    instance: tuple[Path, Config], server: SmtpServer
) -> None:
    """A refused address is reported and the exit code is 1; the others are still sent."""
    path, _ = instance
    server.inject("rcpt", "550 5.1.1 no such user", rcpt="reader0@example.org")
    result = paperboy(path, "send", "--now", NOW.isoformat(), "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["failed"]) == (1, 1)
    assert "550 5.1.1" in summary["failures"][0]


def test_send_aborts_on_a_bad_config_with_one_line(
    instance: tuple[Path, Config], tmp_path: Path
) -> None:
    """A server that refuses the session aborts the run: exit 1, one error line, nothing marked."""
    path, config = instance
    path.write_text(path.read_text().replace('security = "none"', 'security = "starttls"'))
    result = paperboy(path, "send", "--now", NOW.isoformat())
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("paperboy: error")]
    assert errors and "STARTTLS" in errors[0]
    with open_store(config) as store:
        assert {d.status.value for d in store.ledger.all()} == {"queued", "skipped"}


def test_send_exits_1_when_editions_were_due_and_none_was_sent(
    instance: tuple[Path, Config], server: SmtpServer
) -> None:
    """The mail server is down: every due edition is deferred, and the run says so and exits 1
    instead of looking like a quiet success."""
    path, _ = instance
    server.stop()
    result = paperboy(path, "send", "--now", NOW.isoformat())
    assert result.returncode == 1
    assert result.stdout.startswith("sent 0, deferred 2, failed 0")
    [error] = [line for line in result.stderr.splitlines() if line.startswith("paperboy: error")]
    assert "2 editions were due and none was sent" in error


def test_a_policy_storm_pauses_send_with_exit_1_and_the_next_run_delivers(
    instance: tuple[Path, Config], server: SmtpServer
) -> None:
    """554 5.7.1 at every RCPT (breaker lowered to 2 of 5 for two readers): exit 1 with one
    line saying why and until when, nobody suppressed; after the pause, with the server
    healthy, `send` delivers to both and exits 0."""
    path, config = instance
    with path.open("a", encoding="utf-8") as f:
        f.write("[delivery.breaker]\npolicy_refusals = 2\npolicy_window = 5\n")
    server.storm("rcpt", "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked")
    result = paperboy(path, "send", "--now", NOW.isoformat())
    assert result.returncode == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("paperboy: error")]
    assert error.startswith("paperboy: error: circuit breaker: 2 of the last 2 recipients")
    assert "paused until 2026-07-03 08:15 UTC" in error
    with open_store(config) as store:
        assert not any(store.subscribers.is_suppressed(f"reader{i}@example.org") for i in (0, 1))
    server.heal()
    later = (NOW + dt.timedelta(minutes=16)).isoformat()
    again = paperboy(path, "send", "--now", later)
    assert again.returncode == 0, again.stderr
    assert sorted(server.recipients()) == ["reader0@example.org", "reader1@example.org"]


def test_send_reports_a_drop_after_the_message_as_sent_ambiguous(
    instance: tuple[Path, Config], server: SmtpServer
) -> None:
    """The connection lost after reader0's message and before the 250: the summary and --json
    count it as sent_ambiguous, stderr says why it is not resent, and the next run sends
    nothing."""
    path, _ = instance
    server.inject("data", "drop-after-data", rcpt="reader0@example.org")
    result = paperboy(path, "send", "--now", NOW.isoformat())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sent 1, sent_ambiguous 1, deferred 0, failed 0")
    assert "perhaps delivered, possibly duplicates if resent, so not resent" in result.stderr
    again = paperboy(path, "send", "--now", NOW.isoformat(), "--json")
    assert json.loads(again.stdout)["sent_ambiguous"] == 0
    assert sorted(server.recipients()) == ["reader0@example.org", "reader1@example.org"]


def test_send_groups_the_reasons_for_deferrals_and_failures(
    instance: tuple[Path, Config], server: SmtpServer
) -> None:
    """With SMTP at a closed port the summary says why the editions were deferred: one line
    per reason, with a count (each row's own retry time is left out of the grouping)."""
    path, _ = instance
    server.stop()  # the port is closed now: nothing listens
    result = paperboy(path, "send", "--now", NOW.isoformat())
    assert result.returncode == 1
    assert result.stdout.startswith("sent 0, deferred 2, failed 0")
    reasons = [line for line in result.stderr.splitlines() if line.startswith("  deferred")]
    assert len(reasons) == 1, result.stderr
    [reason] = reasons
    assert reason.startswith("  deferred 2: ") and str(server.port) in reason
    assert "refused" in reason.lower() or "connect" in reason.lower(), reason


def test_send_groups_refusals_with_their_count(
    instance: tuple[Path, Config], server: SmtpServer
) -> None:
    """Two readers refused with the same reply: one reason, "editions": 2, in the JSON."""
    path, _ = instance
    for rcpt in ("reader0@example.org", "reader1@example.org"):
        server.inject("rcpt", "550 5.1.1 no such user", rcpt=rcpt)
    result = paperboy(path, "send", "--now", NOW.isoformat(), "--json")
    assert result.returncode == 1
    [reason] = json.loads(result.stdout)["reasons"]
    assert (reason["status"], reason["editions"]) == ("failed", 2)
    assert "550 5.1.1 no such user" in reason["reason"]
