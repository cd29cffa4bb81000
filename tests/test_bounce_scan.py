"""Returned mail in a real Maildir or mbox, applied to the real store (SQLite and PostgreSQL):
DSNs (RFC 3464) and ARF complaints (RFC 5965) sorted by the classes of ``pipeline.bounces``."""

from __future__ import annotations

import json
import mailbox
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.bounce_scan import scan, scan_configured
from pipeline.bounces import BOUNCE_WINDOW
from pipeline.cli import app
from pipeline.config import Bounces, Config, load_config
from pipeline.errors import ConfigError
from pipeline.models import SubscriberStatus
from pipeline.run import deliver_due
from pipeline.schedule import LiveConfig, build_scheduler
from pipeline.store import Store, open_store
from pipeline.tokens import Tokens, tokens_for
from pipeline.verp import return_path
from tests.conftest import write_config
from tests.delivery_world import EDITION, NOW, add_readers, seed_papers, stub_select
from tests.returned_mail import arf, auto_reply, dsn

DOMAIN = "bounces.example.org"


@pytest.fixture
def verp_config(tmp_path: Path, backend_url: str) -> Config:
    """An instance that sends with VERP to its outbox."""
    extra = f'[email]\nbounce_domain = "{DOMAIN}"\n[web]\nsecret_key = "{"s" * 32}"\n'
    return load_config(write_config(tmp_path, backend_url, extra), env={})


@pytest.fixture
def sent(verp_config: Config) -> dict[str, str]:
    """Four readers who were sent the 3 July edition: address → its VERP Return-Path."""
    with open_store(verp_config) as store:
        seed_papers(store)
        add_readers(store, 4)
        assert deliver_due(verp_config, NOW, store=store, select=stub_select).sent == 4
    out = {}
    for path in verp_config.paths.outbox.iterdir():
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        out[str(msg["To"])] = str(msg["Return-Path"]).strip("<>")
    return out


@pytest.fixture
def db(verp_config: Config) -> Iterator[Store]:
    with open_store(verp_config) as store:
        yield store


def maildir(tmp_path: Path, *messages: Message) -> Path:
    path = tmp_path / "Maildir"
    box = mailbox.Maildir(path, create=True)
    for msg in messages:
        box.add(msg)
    box.close()
    return path


def status(store: Store, email: str) -> SubscriberStatus:
    sub = store.subscribers.find(email)
    assert sub is not None
    return sub.status


def r(i: int) -> str:
    return f"reader{i}@example.org"


def test_a_dsn_and_an_arf_report_in_a_maildir_suppress_the_right_addresses(
    tmp_path: Path, verp_config: Config, sent: dict[str, str], db: Store
) -> None:
    """5.1.1 and a complaint suppress; a 5.7.1 block suppresses no one; a bare 550 adds 1 to
    the bounce score; an auto-reply is left in new/; a rescan counts nothing again."""
    box = maildir(
        tmp_path,
        dsn(sent[r(0)], r(0), "5.1.1", "smtp; 550 5.1.1 <reader0@example.org>: user unknown"),
        arf(sent[r(1)], r(1)),
        dsn(sent[r(2)], r(2), "5.7.1", "smtp; 554 5.7.1 Service unavailable; client blocked"),
        dsn(sent[r(3)], r(3), "5.0.0", "smtp; 550 no such user"),
        auto_reply(sent[r(3)]),
    )
    tally = scan(box, db, tokens_for(verp_config))
    assert (tally.read, tally.suppressed, tally.complaints, tally.bounces) == (5, 2, 1, 1)
    assert (tally.soft, tally.unparseable, tally.duplicates) == (1, 1, 0)
    assert "multipart/report" in tally.problems[0]
    assert db.subscribers.is_suppressed(r(0)) and db.subscribers.is_suppressed(r(1))
    assert status(db, r(0)) == status(db, r(1)) == SubscriberStatus.SUPPRESSED
    assert status(db, r(2)) == status(db, r(3)) == SubscriberStatus.ACTIVE
    assert db.subscribers.bounce_score(r(3), BOUNCE_WINDOW) == 1
    assert db.subscribers.bounce_score(r(2), BOUNCE_WINDOW) == 0
    assert len(list((box / "new").iterdir())) == 1  # the auto-reply, left in place
    assert len(list((box / ".processed" / "cur").iterdir())) == 4
    again = scan(box, db, tokens_for(verp_config))
    assert (again.read, again.unparseable, again.bounces, again.suppressed) == (1, 1, 0, 0)
    assert db.subscribers.bounce_score(r(3), BOUNCE_WINDOW) == 1


def test_three_bounces_from_an_mbox_suppress_and_a_rescan_counts_none_twice(
    tmp_path: Path, verp_config: Config, sent: dict[str, str], db: Store
) -> None:
    """Three returned 550s suppress (3 within 14 days); the mbox is never written; reading it
    again finds them all already counted."""
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    for n in range(3):
        box.add(dsn(sent[r(0)], r(0), "5.0.0", f"smtp; 550 rejected ({n})"))
    box.add(dsn(sent[r(1)], r(1), "4.4.7", "smtp; 451 timeout", action="delayed"))
    box.close()
    before = path.read_bytes()
    tally = scan(path, db, tokens_for(verp_config))
    assert (tally.bounces, tally.suppressed, tally.ignored, tally.unparseable) == (3, 1, 1, 0)
    assert status(db, r(0)) == SubscriberStatus.SUPPRESSED
    assert status(db, r(1)) == SubscriberStatus.ACTIVE
    again = scan(path, db, tokens_for(verp_config))
    assert (again.bounces, again.suppressed, again.duplicates) == (0, 0, 3)
    assert path.read_bytes() == before


def test_one_returned_message_read_twice_counts_one_bounce(
    tmp_path: Path, verp_config: Config, sent: dict[str, str], db: Store
) -> None:
    """The same DSN (one Message-ID) in two places raises the score once."""
    same = "<dsn-1@mx.example.net>"
    box = maildir(
        tmp_path,
        dsn(sent[r(2)], r(2), "5.0.0", "smtp; 550 nope", message_id=same),
        dsn(sent[r(2)], r(2), "5.0.0", "smtp; 550 nope", message_id=same),
    )
    tally = scan(box, db, tokens_for(verp_config))
    assert (tally.bounces, tally.duplicates) == (1, 1)
    assert db.subscribers.bounce_score(r(2), BOUNCE_WINDOW) == 1


def test_forged_or_unsigned_reports_are_left_in_place_and_change_nothing(
    tmp_path: Path, verp_config: Config, sent: dict[str, str], db: Store
) -> None:
    """A DSN naming a reader only in its recipient fields, or under a forged VERP address,
    or signed with another key, is unparseable: counted, kept, never guessed at."""
    forged = sent[r(0)].replace("bounces+1-", "bounces+2-")
    foreign = return_path(Tokens("x" * 32), DOMAIN, 1, EDITION)
    box = maildir(
        tmp_path,
        dsn("paperboy@example.org", r(0), "5.1.1", "smtp; 550 5.1.1 unknown"),
        dsn(forged, r(1), "5.1.1", "smtp; 550 5.1.1 unknown"),
        arf(foreign, r(0)),
    )
    tally = scan(box, db, tokens_for(verp_config))
    assert (tally.read, tally.unparseable, tally.suppressed) == (3, 3, 0)
    assert all("no delivery of ours" in p for p in tally.problems)
    assert not any(db.subscribers.is_suppressed(r(i)) for i in range(4))
    assert len(list((box / "new").iterdir())) == 3


def test_policy_busy_and_temporary_failures_never_suppress(
    tmp_path: Path, verp_config: Config, sent: dict[str, str], db: Store
) -> None:
    """5.7.x, 554, 421, 4.x.x and 552 returned by mail are counted and suppress no one."""
    replies = [
        ("5.7.1", "smtp; 550 5.7.1 blocked by policy"),
        ("5.0.0", "smtp; 554 transaction failed"),
        ("4.7.0", "smtp; 421 4.7.0 try later"),
        ("4.4.7", "smtp; 450 4.4.7 gave up"),
        ("5.2.2", "smtp; 552 5.2.2 mailbox full"),
    ]
    box = maildir(tmp_path, *(dsn(sent[r(0)], r(0), st, d) for st, d in replies))
    tally = scan(box, db, tokens_for(verp_config))
    assert (tally.soft, tally.bounces, tally.suppressed) == (5, 0, 0)
    assert status(db, r(0)) == SubscriberStatus.ACTIVE
    assert db.subscribers.bounce_score(r(0), BOUNCE_WINDOW) == 0


def test_dry_run_counts_and_changes_nothing(
    tmp_path: Path, verp_config: Config, sent: dict[str, str], db: Store
) -> None:
    """--dry-run predicts the counts; the store and the Maildir stay as they were."""
    box = maildir(
        tmp_path,
        dsn(sent[r(0)], r(0), "5.1.1", "smtp; 550 5.1.1 unknown"),
        arf(sent[r(1)], r(1)),
        dsn(sent[r(3)], r(3), "5.0.0", "smtp; 550 no"),
    )
    tally = scan(box, db, tokens_for(verp_config), dry_run=True)
    assert (tally.suppressed, tally.complaints, tally.bounces) == (2, 1, 1)
    assert not any(db.subscribers.is_suppressed(r(i)) for i in range(4))
    assert db.subscribers.bounce_score(r(3), BOUNCE_WINDOW) == 0
    assert len(list((box / "new").iterdir())) == 3 and not (box / ".processed").exists()


def test_a_report_about_an_erased_reader_is_ignored(
    tmp_path: Path, verp_config: Config, sent: dict[str, str], db: Store
) -> None:
    """An erased reader has no delivery any more: their DSN is read, ignored and filed."""
    sub = db.subscribers.find(r(0))
    assert sub is not None and db.subscribers.delete(sub.id)
    box = maildir(tmp_path, dsn(sent[r(0)], r(0), "5.1.1", "smtp; 550 5.1.1 unknown"))
    tally = scan(box, db, tokens_for(verp_config))
    assert (tally.ignored, tally.suppressed, tally.unparseable) == (1, 0, 0)
    assert not list((box / "new").iterdir())


def test_the_service_scans_the_configured_maildir_on_its_schedule(
    tmp_path: Path, verp_config: Config, sent: dict[str, str], db: Store
) -> None:
    """With bounces.maildir set, the scheduler's bounces job applies what arrives there."""
    box = maildir(tmp_path, dsn(sent[r(0)], r(0), "5.1.1", "smtp; 550 5.1.1 unknown"))
    path = tmp_path / "config.toml"
    path.write_text(
        path.read_text() + f'[bounces]\nmaildir = "{box}"\nscan_every_seconds = 0.2\n',
        encoding="utf-8",
    )
    live = LiveConfig(path)
    scheduler = build_scheduler(live, lambda c: None, bounces=scan_configured)
    scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while not db.subscribers.is_suppressed(r(0)) and time.monotonic() < deadline:
            time.sleep(0.1)
        # A DSN dropped in later is picked up by a later run of the job.
        maildir(tmp_path, arf(sent[r(1)], r(1)))
        while not db.subscribers.is_suppressed(r(1)) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.shutdown(wait=True)
    assert db.subscribers.is_suppressed(r(0)) and db.subscribers.is_suppressed(r(1))
    assert not list((box / "new").iterdir())


def test_a_configured_maildir_that_is_missing_is_a_config_error(
    tmp_path: Path, verp_config: Config, db: Store
) -> None:
    """The scan names bounces.maildir and says how to fix it; unset, it does nothing."""
    assert scan_configured(verp_config, db) is None
    missing = verp_config.model_copy(update={"bounces": Bounces(maildir=tmp_path / "nowhere")})
    with pytest.raises(ConfigError, match=r"bounces.maildir = .*nowhere.*mkdir -p"):
        scan_configured(missing, db)


def test_an_unreadable_file_is_counted_and_the_rest_still_read(
    tmp_path: Path, verp_config: Config, sent: dict[str, str], db: Store
) -> None:
    """A message file the scan may not read is listed as unparseable; the others are applied."""
    box = maildir(tmp_path, dsn(sent[r(0)], r(0), "5.1.1", "smtp; 550 5.1.1 unknown"))
    blocked = box / "new" / "0000.blocked"
    blocked.mkdir()  # reading a folder fails like a file without read permission
    tally = scan(box, db, tokens_for(verp_config))
    assert (tally.read, tally.unparseable, tally.suppressed) == (2, 1, 1)
    assert "0000.blocked: cannot read it" in tally.problems[0]
    assert blocked.exists()


def test_the_bounces_command_prints_json_counts_and_exits_1_on_unparseable_mail(
    tmp_path: Path, verp_config: Config, sent: dict[str, str]
) -> None:
    """`paperboy bounces PATH --json` prints the counts; unparseable mail makes it exit 1."""
    box = maildir(tmp_path, dsn(sent[r(0)], r(0), "5.1.1", "smtp; 550 5.1.1 x"))
    config_path = str(tmp_path / "config.toml")
    runner = CliRunner()
    result = runner.invoke(app, ["--config", config_path, "bounces", str(box), "--json"], env={})
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert (counts["suppressed"], counts["unparseable"], counts["dry_run"]) == (1, 0, False)
    maildir(tmp_path, auto_reply(sent[r(1)]))
    result = runner.invoke(app, ["--config", config_path, "bounces", str(box)], env={})
    assert result.exit_code == 1 and "1 unparseable" in result.stdout
    assert "unparseable: new/" in result.stderr
    missing = runner.invoke(app, ["--config", config_path, "bounces", str(tmp_path / "no")])
    assert missing.exit_code == 2 and "no such Maildir or mbox" in missing.stderr
    (tmp_path / "notes.txt").write_text("hello\n")
    wrong = runner.invoke(app, ["--config", config_path, "bounces", str(tmp_path / "notes.txt")])
    assert wrong.exit_code == 2 and "not an mbox file" in wrong.stderr


def test_dry_run_on_the_command_line_moves_nothing(
    tmp_path: Path, verp_config: Config, sent: dict[str, str]
) -> None:
    """`--dry-run --json` reports what would happen and leaves the Maildir as it was."""
    box = maildir(tmp_path, dsn(sent[r(0)], r(0), "5.1.1", "smtp; 550 5.1.1 x"))
    result = CliRunner().invoke(
        app,
        ["--config", str(tmp_path / "config.toml"), "bounces", str(box), "--dry-run", "--json"],
        env={},
    )
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert (counts["dry_run"], counts["suppressed"]) == (True, 1)
    assert len(list((box / "new").iterdir())) == 1
