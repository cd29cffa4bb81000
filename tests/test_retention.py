"""Retention: ``paperboy prune`` and the service's prune job remove old ledger rows, sent-paper
records and archive/outbox files, on SQLite and PostgreSQL, and a paper still never reaches a
reader twice."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.config import Config, Retention, load_config
from pipeline.errors import ConfigError
from pipeline.models import DeliveryStatus
from pipeline.prune import prune, prune_step
from pipeline.run import deliver_due
from pipeline.schedule import LiveConfig, build_scheduler
from pipeline.store import Store, open_store
from tests.conftest import write_config
from tests.db_clock import claim_of
from tests.delivery_world import NOW, add_readers, make_paper, seed_papers, stub_select

PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]
DAY = dt.timedelta(days=1)
STALE = dt.timedelta(minutes=10)


def keeping(config: Config, **days: float) -> Config:
    return config.model_copy(update={"retention": Retention.model_validate(days)})


def sent(store: Store, sid: int, day: dt.date, papers: list[str], at: dt.datetime) -> None:
    """A ledger row for ``day`` marked sent at ``at`` (its papers recorded as sent then)."""
    store.ledger.queue(sid, day, f"<{sid}.{day}@x>", papers, at)
    held = store.ledger.claim(sid, day, at, STALE)
    assert store.ledger.mark_sent(sid, day, "250 OK", at, claim_id=claim_of(held))


def test_finished_ledger_rows_past_the_retention_go_and_work_in_progress_stays(
    instance: Config, store: Store
) -> None:
    """Sent, failed, skipped and missed rows of editions older than deliveries_days go (a dry
    run counts them and removes nothing); queued and deferred rows stay however old, and so
    do rows inside the retention."""
    (reader,) = add_readers(store, 1)
    sid = reader.id
    old = (NOW - 40 * DAY).date()
    sent(store, sid, old, ["p1"], NOW - 40 * DAY)
    store.ledger.record_skipped(sid, old + DAY, "nothing new", NOW - 39 * DAY)
    store.ledger.record_missed(sid, old + 2 * DAY, "too late", NOW - 38 * DAY)
    store.ledger.queue(sid, old + 3 * DAY, "<f@x>", ["p2"], NOW - 37 * DAY)
    held = store.ledger.claim(sid, old + 3 * DAY, NOW - 37 * DAY, STALE)
    store.ledger.mark_failed(
        sid, old + 3 * DAY, "550 no", now=NOW - 37 * DAY, claim_id=claim_of(held)
    )
    store.ledger.queue(sid, old + 4 * DAY, "<q@x>", ["p3"], NOW - 36 * DAY)
    store.ledger.queue(sid, old + 5 * DAY, "<d@x>", ["p4"], NOW - 35 * DAY)
    held = store.ledger.claim(sid, old + 5 * DAY, NOW - 35 * DAY, STALE)
    store.ledger.mark_deferred(
        sid, old + 5 * DAY, "451 later", NOW, NOW - 35 * DAY, claim_id=claim_of(held)
    )
    recent = (NOW - 10 * DAY).date()
    sent(store, sid, recent, ["p5"], NOW - 10 * DAY)
    config = keeping(instance, deliveries_days=30)

    preview = prune(config, store, NOW, dry_run=True)
    assert (preview.deliveries, preview.deliveries_before) == (4, (NOW - 30 * DAY).date())
    assert len(store.ledger.all()) == 7

    # In batches of three rows: two transactions.
    assert store.retention.prune_deliveries((NOW - 30 * DAY).date(), batch=3) == 4
    left = {d.edition_date: d.status for d in store.ledger.all()}
    assert left == {
        old + 4 * DAY: DeliveryStatus.QUEUED,
        old + 5 * DAY: DeliveryStatus.DEFERRED,
        recent: DeliveryStatus.SENT,
    }
    assert prune(config, store, NOW).deliveries == 0


def test_sent_paper_records_go_only_for_papers_matching_can_no_longer_pick(
    instance: Config, store: Store
) -> None:
    """A record older than sent_papers_days goes when its paper was first seen before the
    matching horizon; a record of a paper first seen recently (a replayed date), of a paper
    not stored, or sent inside the retention is kept."""
    reader, other = add_readers(store, 2)
    old_paper, young_paper = make_paper(1), make_paper(2)
    seed_papers(store, 1, at=NOW - 41 * DAY, start=1)
    seed_papers(store, 1, at=NOW - 2 * DAY, start=2)
    sent(store, reader.id, (NOW - 40 * DAY).date(), [old_paper.id, "not-stored"], NOW - 40 * DAY)
    # Sent "40 days ago" by a run replaying that date, though first seen two days ago.
    sent(store, reader.id, (NOW - 39 * DAY).date(), [young_paper.id], NOW - 39 * DAY)
    sent(store, other.id, (NOW - 5 * DAY).date(), [old_paper.id], NOW - 5 * DAY)
    config = keeping(instance, sent_papers_days=30)

    assert prune(config, store, NOW, dry_run=True).sent_papers == 1
    assert prune(config, store, NOW).sent_papers == 1
    remaining = store.ledger.sent_paper_ids([reader.id, other.id])
    assert remaining == {reader.id: {"not-stored", young_paper.id}, other.id: {old_paper.id}}
    # Once its paper is past the horizon too, the replayed record goes (a batch of one row).
    assert store.retention.prune_sent_papers(NOW - 30 * DAY, NOW, batch=1) == 1
    remaining = store.ledger.sent_paper_ids([reader.id, other.id])
    assert remaining == {reader.id: {"not-stored"}, other.id: {old_paper.id}}


def test_after_pruning_a_paper_already_mailed_is_never_mailed_again(
    instance: Config, store: Store
) -> None:
    """Three weeks of daily editions, then pruning at two weeks: the service plans nothing
    again for the pruned days, and a dump that lists every paper ever mailed again (plus one
    new) brings the reader only the new paper."""
    (reader,) = add_readers(store, 1)
    for d in range(21):
        seed_papers(store, 1, at=NOW + d * DAY - dt.timedelta(hours=2), start=100 + d)
        deliver_due(instance, NOW + d * DAY, store=store, select=stub_select)
    mailed = [row.paper_ids for row in store.ledger.all([DeliveryStatus.SENT])]
    assert mailed == [(make_paper(100 + d).id,) for d in range(21)]

    config = keeping(instance, deliveries_days=14, sent_papers_days=14)
    done = prune(config, store, NOW + 20 * DAY)
    assert (done.deliveries, done.sent_papers) == (6, 6)
    assert len(store.ledger.sent_paper_ids([reader.id])[reader.id]) == 15

    # The same day again: no edition is owed again for a pruned date.
    deliver_due(config, NOW + 20 * DAY + dt.timedelta(hours=1), store=store, select=stub_select)
    assert len(store.ledger.all()) == 15

    relisted = seed_papers(store, 21, at=NOW + 21 * DAY - dt.timedelta(hours=2), start=100)
    assert all(p.upvotes > 0 for p in relisted)
    seed_papers(store, 1, at=NOW + 21 * DAY - dt.timedelta(hours=2), start=300)
    deliver_due(config, NOW + 21 * DAY, store=store, select=stub_select)
    today = store.ledger.get(reader.id, (NOW + 21 * DAY).date())
    assert today is not None and today.status == DeliveryStatus.SENT
    assert today.paper_ids == (make_paper(300).id,)


def aged(path: Path, days: float, data: bytes = b"x" * 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    at = time.time() - days * 86400
    os.utime(path, (at, at))
    return path


def test_old_archive_and_outbox_files_go_through_the_cli(tmp_path: Path) -> None:
    """`paperboy prune` removes files last modified before archive_days / outbox_days, only
    regular files directly in each folder; --dry-run lists the same and removes nothing."""
    path = write_config(
        tmp_path,
        "sqlite:///var/paperboy.db",
        "[retention]\narchive_days = 30\noutbox_days = 7\n",
    )
    config = load_config(path, env={})
    archive, outbox = config.paths.archive, config.paths.outbox
    old_dump = aged(archive / "2026-05-01.json", 31, b"d" * 100)
    new_dump = aged(archive / "2026-06-20.json", 29)
    nested = aged(archive / "keep" / "2026-01-01.json", 300)
    (archive / "link.json").symlink_to(old_dump)
    old_mail = aged(outbox / "a@example.org.eml", 8, b"m" * 50)
    new_mail = aged(outbox / "b@example.org.eml", 6)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PAPERBOY, "--config", str(path), "prune", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    preview = run("--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert "archive: would remove 1 file (100 bytes) older than" in preview.stdout
    assert "outbox: would remove 1 file (50 bytes)" in preview.stdout
    assert "ledger: kept forever (retention.deliveries_days = 0)" in preview.stdout
    assert old_dump.exists() and old_mail.exists()

    done = run("--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["dry_run"], report["deliveries"], report["sent_papers"]) == (False, None, None)
    assert report["archive"]["names"] == ["2026-05-01.json"]
    assert report["outbox"]["names"] == ["a@example.org.eml"]
    assert not old_dump.exists() and not old_mail.exists()
    assert new_dump.exists() and new_mail.exists() and nested.exists()
    assert (archive / "link.json").is_symlink()


def test_retention_shorter_than_what_matching_reads_is_a_config_error(tmp_path: Path) -> None:
    """deliveries_days and sent_papers_days are 0 or at least 14; the error names the key."""
    for key in ("deliveries_days", "sent_papers_days"):
        path = write_config(tmp_path, "sqlite:///var/paperboy.db", f"[retention]\n{key} = 5\n")
        with pytest.raises(ConfigError, match=rf"retention\.{key} = 5: must be 0 \(keep"):
            load_config(path, env={})
    path = write_config(
        tmp_path, "sqlite:///var/paperboy.db", "[retention]\ndeliveries_days = 14\n"
    )
    assert load_config(path, env={}).retention.deliveries_days == 14


def test_the_service_prunes_on_its_schedule(tmp_path: Path) -> None:
    """The scheduler's prune job removes an old outbox file without anyone running prune."""
    path = write_config(
        tmp_path,
        "sqlite:///var/paperboy.db",
        "[retention]\noutbox_days = 1\nprune_every_hours = 0.0001\n",
    )
    live = LiveConfig(path)
    old_mail = aged(live.config.paths.outbox / "old.eml", 2)
    with open_store(live.config):
        pass  # migrated before the job opens it

    def job(config: Config) -> None:
        prune_step(config, dt.datetime.now(dt.UTC))

    scheduler = build_scheduler(live, lambda c: None, prune=job)
    scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while old_mail.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert not old_mail.exists()


def test_a_config_edit_restarts_the_prune_clock_only_when_its_interval_changes(
    tmp_path: Path,
) -> None:
    """Reloading an edited config leaves the daily prune job's next run alone, unless the
    edit changed retention.prune_every_hours."""
    path = write_config(tmp_path, "sqlite:///var/paperboy.db", "[retention]\noutbox_days = 1\n")
    live = LiveConfig(path)
    scheduler = build_scheduler(live, lambda c: None, prune=lambda c: None)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job("prune")
        first = job.next_run_time
        reload = scheduler.get_job("reload").func
        path.write_text(path.read_text() + "[schedule]\ningest_every_seconds = 30.0\n")
        reload()
        assert live.config.schedule.ingest_every_seconds == 30.0
        assert scheduler.get_job("prune").next_run_time == first
        text = path.read_text().replace(
            "outbox_days = 1\n", "outbox_days = 1\nprune_every_hours = 12.0\n"
        )
        path.write_text(text)
        reload()
        later = scheduler.get_job("prune").next_run_time
        assert later > dt.datetime.now(dt.UTC) + dt.timedelta(hours=11)
        assert scheduler.get_job("prune").trigger.interval == dt.timedelta(hours=12)
    finally:
        scheduler.shutdown(wait=False)
