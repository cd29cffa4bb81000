"""The orchestrator: each step is idempotent and reads like the data flow in DESIGN.md.

inbox files ──ingest_inbox──▶ papers in the store (files archived or quarantined)
due subscribers ──deliver_due──▶ match → render → ledger → send
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import IngestError, StoreError
from pipeline.ingest import read_dump
from pipeline.models import IngestOutcome
from pipeline.store import Store, open_store

log = logging.getLogger("paperboy.run")

# Names that writers use while a file is still being written.
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")


def inbox_candidates(inbox: Path, settle_seconds: float, now: float | None = None) -> list[Path]:
    """Files in the inbox that look complete: no dotfiles, temp names or fresh writes."""
    if not inbox.is_dir():
        return []
    now = time.time() if now is None else now
    ready = []
    for path in sorted(inbox.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name.endswith(PARTIAL_SUFFIXES):
            continue
        if path.name.endswith(".error.txt"):
            continue
        if now - path.stat().st_mtime < settle_seconds:
            continue  # modified moments ago: the writer may not be done
        ready.append(path)
    return ready


def ingest_inbox(
    config: Config,
    store: Store | None = None,
    *,
    on_file: Callable[[IngestOutcome], None] | None = None,
    now: float | None = None,
) -> list[IngestOutcome]:
    """Ingest every complete file in ``paths.inbox``; archive or quarantine each.

    One file is one transaction. A bad file is quarantined with ``<name>.error.txt`` and
    never stops the others; a database failure leaves the file in the inbox for next time.
    """
    with using_store(config, store) as opened:
        outcomes = []
        for path in inbox_candidates(config.paths.inbox, config.ingest.settle_seconds, now):
            outcome = ingest_file(config, opened, path)
            if outcome is None:
                continue
            outcomes.append(outcome)
            if on_file:
                on_file(outcome)
        return outcomes


def ingest_file(config: Config, store: Store, path: Path) -> IngestOutcome | None:
    """Ingest one inbox file and move it; None when it changed or vanished while being read."""
    try:
        before = path.stat()
    except FileNotFoundError:
        return None  # taken away by someone else between the scan and now
    try:
        dump = read_dump(path, max_bytes=config.ingest.max_file_bytes)
    except IngestError as e:
        if not path.exists():
            return None
        target = quarantine(config, path, str(e))
        log.warning("quarantined %s: %s", path.name, e)
        return IngestOutcome(
            dump_id="", name=path.name, format=None, error=str(e), moved_to=str(target)
        )
    except Exception as e:
        # A parser bug must not take the other files down with it; keep the file and the reason.
        log.exception("internal error while parsing %s", path.name)
        reason = f"internal error while parsing ({e.__class__.__name__}: {e}); please report it"
        target = quarantine(config, path, reason)
        return IngestOutcome(
            dump_id="", name=path.name, format=None, error=reason, moved_to=str(target)
        )
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        log.info("%s changed while being read; will retry on the next scan", path.name)
        return None
    try:
        outcome = store.ingest(dump)
    except StoreError as e:
        log.error("could not store %s, leaving it in the inbox: %s", path.name, e)
        return IngestOutcome(dump_id=dump.id, name=path.name, format=dump.format, error=str(e))
    # The move comes after the commit: a crash in between re-reads the file, a no-op by dump id.
    target = move_unique(path, config.paths.archive)
    return outcome.model_copy(update={"moved_to": str(target)})


def quarantine(config: Config, path: Path, reason: str) -> Path:
    """Move a bad file aside with a ``<name>.error.txt`` that says why."""
    target = move_unique(path, config.paths.quarantine)
    note = target.with_name(target.name + ".error.txt")
    note.write_text(f"{path.name}: {reason}\n", encoding="utf-8")
    return target


def move_unique(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` without overwriting an earlier file of the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.stem}.{n}{path.suffix}"
        n += 1
    try:
        os.replace(path, target)
    except OSError:
        shutil.move(str(path), str(target))  # across file systems
    return target


@contextmanager
def using_store(config: Config, store: Store | None) -> Iterator[Store]:
    """The caller's store, or one opened (and closed) from the config."""
    if store is not None:
        yield store
    else:
        with open_store(config) as opened:
            yield opened
