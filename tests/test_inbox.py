"""The inbox: every complete file is ingested in one transaction, then archived or quarantined."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sqlalchemy import text

from pipeline.config import Config
from pipeline.run import inbox_candidates, ingest_inbox
from pipeline.store import Store

PAGE = """Daily Papers

byAK and the research community

Jul 3

Sparse Experts for Keyword Spotting on Hearing Aids

We route audio frames to tiny experts so that a hearing aid can spot keywords all day.

  • 3 authors
·
Jul 1, 2026 12

Tidal Forecasting with Neural Operators

A neural operator predicts coastal tides from sparse gauges. Code: https://github.com/example-org/tides

ExampleLab Example Lab
·
Jun 30 4
"""

API = [
    {
        "paper": {
            "id": "2607.07001",
            "title": "Quantized Draft Models for Speculative Decoding",
            "summary": "Four-bit draft models keep acceptance rates while halving memory.",
            "upvotes": 40,
            "publishedAt": "2026-07-01T10:00:00.000Z",
            "authors": [{"name": "Ada Byron"}],
        }
    }
]


def drop(config: Config, name: str, data: bytes | str, age: float = 60.0) -> Path:
    """Put a file in the inbox, back-dated so it counts as completely written."""
    config.paths.inbox.mkdir(parents=True, exist_ok=True)
    path = config.paths.inbox / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    past = time.time() - age
    os.utime(path, (past, past))
    return path


def test_good_files_are_stored_and_archived(instance: Config, store: Store) -> None:
    """Each good dump's papers land in the store and the file moves to archive/."""
    drop(instance, "hf_daily_papers_2026-07-03.txt", PAGE)
    drop(instance, "daily_2026-07-02.json", json.dumps(API))
    outcomes = ingest_inbox(instance, store)
    assert sorted((o.name, o.new, o.error) for o in outcomes) == [
        ("daily_2026-07-02.json", 1, None),
        ("hf_daily_papers_2026-07-03.txt", 2, None),
    ]
    assert store.papers.count() == 3
    assert sorted(p.name for p in instance.paths.archive.iterdir()) == [
        "daily_2026-07-02.json",
        "hf_daily_papers_2026-07-03.txt",
    ]
    assert list(instance.paths.inbox.iterdir()) == []


def test_bad_file_is_quarantined_with_reason_and_others_proceed(
    instance: Config, store: Store
) -> None:
    """A broken file goes to quarantine/ with <name>.error.txt; the good one is still ingested."""
    drop(instance, "a_2026-07-02.json", '[{"paper": {"id": "2607.0')
    drop(instance, "b_2026-07-02.json", json.dumps(API))
    outcomes = {o.name: o for o in ingest_inbox(instance, store)}
    assert outcomes["a_2026-07-02.json"].error
    assert outcomes["b_2026-07-02.json"].new == 1
    note = instance.paths.quarantine / "a_2026-07-02.json.error.txt"
    assert (instance.paths.quarantine / "a_2026-07-02.json").exists()
    reason = note.read_text()
    assert reason.startswith("a_2026-07-02.json: ") and len(reason.strip().splitlines()) == 1
    assert store.papers.count() == 1


def test_binary_and_empty_files_are_quarantined(instance: Config, store: Store) -> None:
    """Binary garbage and empty files are quarantined, never crash the scan."""
    drop(instance, "garbage.bin", bytes(range(256)) * 8)
    drop(instance, "empty.txt", b"")
    outcomes = ingest_inbox(instance, store)
    assert all(o.error for o in outcomes) and len(outcomes) == 2
    assert sorted(p.name for p in instance.paths.quarantine.iterdir()) == [
        "empty.txt",
        "empty.txt.error.txt",
        "garbage.bin",
        "garbage.bin.error.txt",
    ]


def test_oversized_file_is_quarantined_unread(instance: Config, store: Store) -> None:
    """A file over ingest.max_file_bytes is quarantined with a message naming the cap."""
    path = drop(instance, "huge_2026-07-02.txt", b"")
    with path.open("r+b") as f:
        f.truncate(100 * 2**20)  # sparse: 100 MB without writing 100 MB
    past = time.time() - 60
    os.utime(path, (past, past))
    (outcome,) = ingest_inbox(instance, store)
    assert outcome.error and "max_file_bytes" in outcome.error
    assert (instance.paths.quarantine / "huge_2026-07-02.txt").exists()


def test_files_still_being_written_are_left_alone(instance: Config) -> None:
    """Dotfiles, temp names and files modified a moment ago are not picked up."""
    drop(instance, ".hidden.json", "[]")
    drop(instance, "upload.json.part", "[]")
    drop(instance, "upload.tmp", "[]")
    drop(instance, "fresh_2026-07-02.json", "[]", age=0)
    ready = drop(instance, "ready_2026-07-02.json", "[]")
    assert inbox_candidates(instance.paths.inbox, settle_seconds=2.0) == [ready]


def test_same_bytes_again_is_a_no_op(instance: Config, store: Store) -> None:
    """Re-dropping a file already ingested stores nothing new and is archived again."""
    drop(instance, "daily_2026-07-02.json", json.dumps(API))
    ingest_inbox(instance, store)
    drop(instance, "daily_2026-07-02.json", json.dumps(API))
    (again,) = ingest_inbox(instance, store)
    assert again.already_ingested and again.new == 0
    assert store.papers.count() == 1
    assert sorted(p.name for p in instance.paths.archive.iterdir()) == [
        "daily_2026-07-02.1.json",
        "daily_2026-07-02.json",
    ]


def test_database_failure_rolls_back_and_keeps_file_in_inbox(
    instance: Config, store: Store
) -> None:
    """A write that fails half-way leaves no papers behind and the file stays for a retry."""
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE dump_papers"))  # papers insert works, the link insert fails
    path = drop(instance, "daily_2026-07-02.json", json.dumps(API))
    (outcome,) = ingest_inbox(instance, store)
    assert outcome.error and "database error" in outcome.error
    assert path.exists()
    assert store.papers.count() == 0
