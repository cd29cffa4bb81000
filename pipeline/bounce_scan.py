"""Read a Maildir or an mbox of returned mail and apply each report to the store: the I/O
edge of ``returned.py``, used by ``paperboy bounces`` and the service's scheduled scan.

What a report does is the table of ``pipeline.bounces``: gone (5.1.1 …) and ARF complaints
suppress the address at once; a "bounce" adds 1 to its bounce score (3 within 14 days
suppress); policy, busy, temporary and rejected failures are counted and never suppress.

A Maildir message that was read moves to the Maildir's ``.processed`` folder (flagged seen),
so a rescan never counts it twice; unparseable mail stays where it is. An mbox is only read;
reading it again changes nothing, since a bounce is counted once per returned message and an
address is suppressed once.
"""

from __future__ import annotations

import contextlib
import logging
import mailbox
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.bounces import BOUNCE_LIMIT, BOUNCE_WINDOW, Bounce
from pipeline.config import Config
from pipeline.errors import ConfigError, ReturnedMailError
from pipeline.models import SubscriberStatus
from pipeline.returned import Report, read_report
from pipeline.store import Store, open_store
from pipeline.tokens import Tokens, tokens_for

log = logging.getLogger("paperboy.bounces")

PROCESSED = ".processed"  # a Maildir++ subfolder of the scanned Maildir


@dataclass
class ScanTally:
    """What one scan found and did (in a dry run: would do)."""

    read: int = 0
    suppressed: int = 0  # addresses suppressed by this scan (gone, complaints, bounce scores)
    bounces: int = 0  # bounce scores raised by 1
    complaints: int = 0  # ARF complaints (each suppresses)
    soft: int = 0  # policy, busy, temporary, rejected: counted, never suppress
    ignored: int = 0  # delayed or delivered reports, other feedback, no such delivery
    duplicates: int = 0  # already counted, or the address was already suppressed
    unparseable: int = 0  # left in place: not a report about a delivery of ours
    problems: list[str] = field(default_factory=list)  # "name: why", one per unparseable

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Item:
    name: str  # for messages: the file name, or "mbox message N"
    data: bytes
    path: Path | None  # a Maildir file, moved once read
    error: str | None = None  # why the file could not be read at all


def scan(path: Path, store: Store, tokens: Tokens, *, dry_run: bool = False) -> ScanTally:
    """Read every message under ``path`` (a Maildir or an mbox file) and apply it."""
    tally = ScanTally()
    for item in _messages(path):
        tally.read += 1
        if item.error is not None:
            tally.unparseable += 1
            tally.problems.append(f"{item.name}: {item.error}")
            continue
        try:
            report = read_report(item.data, tokens)
        except ReturnedMailError as e:
            tally.unparseable += 1
            tally.problems.append(f"{item.name}: {e}")
            continue
        _apply(report, store, tally, dry_run)
        if item.path is not None and not dry_run:
            _move_processed(item.path, path)
    return tally


def _messages(path: Path) -> Iterator[_Item]:
    if path.is_dir():
        if not ((path / "new").is_dir() or (path / "cur").is_dir()):
            raise ReturnedMailError(f"{path}: a folder without new/ or cur/ is not a Maildir")
        for sub in ("new", "cur"):
            folder = path / sub
            names = sorted(os.listdir(folder)) if folder.is_dir() else []
            for name in names:
                if name.startswith("."):
                    continue
                file = folder / name
                try:
                    data = file.read_bytes()
                except FileNotFoundError:
                    continue  # another scan took it meanwhile
                except OSError as e:  # one unreadable file must not stop the others
                    yield _Item(f"{sub}/{name}", b"", None, f"cannot read it ({e.strerror})")
                    continue
                yield _Item(f"{sub}/{name}", data, file)
        return
    if not path.is_file():
        raise ReturnedMailError(f"{path}: no such Maildir or mbox file")
    with path.open("rb") as f:
        if f.read(5) not in (b"From ", b""):
            raise ReturnedMailError(f"{path}: not an mbox file (it does not start with 'From ')")
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield _Item(f"mbox message {number}", box.get_bytes(key), None)
    finally:
        box.close()


def _move_processed(file: Path, maildir: Path) -> None:
    """Into ``.processed/cur`` with the seen flag: one rename, so a crash never half-moves."""
    target = maildir / PROCESSED
    for sub in ("tmp", "new", "cur"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    base = file.name.split(":2,", 1)[0]
    # Another scan may have moved it first; the store counted it once (per message key).
    with contextlib.suppress(FileNotFoundError):
        os.replace(file, target / "cur" / f"{base}:2,S")


def _apply(report: Report, store: Store, tally: ScanTally, dry_run: bool) -> None:
    """Do what ``report`` says to its reader (or count what it would do, ``dry_run``)."""
    sub = store.subscribers.get(report.subscriber_id)
    # An erased reader's id can come back on another reader: only a delivery in the ledger
    # for that id and edition makes the report theirs.
    if sub is None or store.ledger.get(sub.id, report.edition) is None:
        tally.ignored += 1
        return
    reason = f"returned mail about the {report.edition} edition: {report.status} {report.detail}"
    gone = report.kind == "complaint" or report.bounce is Bounce.GONE
    if report.kind not in ("failed", "complaint"):
        tally.ignored += 1
        return
    if report.kind == "failed" and report.bounce not in (Bounce.GONE, Bounce.BOUNCE):
        tally.soft += 1
        return
    already = sub.status == SubscriberStatus.SUPPRESSED or store.subscribers.is_suppressed(
        sub.email
    )
    if already:
        tally.duplicates += 1
        return
    if gone:
        if report.kind == "complaint":
            tally.complaints += 1
        if not dry_run:
            what = "complaint" if report.kind == "complaint" else "address gone"
            store.subscribers.suppress(sub.email, f"{what}: {reason}"[:1000])
        tally.suppressed += 1
        return
    if dry_run:
        tally.bounces += 1
        if store.subscribers.bounce_score(sub.email, BOUNCE_WINDOW) + 1 >= BOUNCE_LIMIT:
            tally.suppressed += 1
        return
    outcome = store.subscribers.record_returned_bounce(
        sub.email, report.key, reason, limit=BOUNCE_LIMIT, window=BOUNCE_WINDOW
    )
    if outcome == "duplicate":
        tally.duplicates += 1
        return
    tally.bounces += 1
    if outcome == "suppressed":
        tally.suppressed += 1


def scan_configured(config: Config, store: Store | None = None) -> ScanTally | None:
    """The service's scan of ``bounces.maildir`` (None when it is not set), logged in a line."""
    folder = config.bounces.maildir
    if folder is None:
        return None
    if not ((folder / "new").is_dir() or (folder / "cur").is_dir()):
        raise ConfigError(
            f"bounces.maildir = {str(folder)!r}: not a Maildir (no new/ or cur/); create it "
            "(mkdir -p DIR/new DIR/cur DIR/tmp) or unset the key"
        )
    if store is None:
        with open_store(config) as opened:
            tally = scan(folder, opened, tokens_for(config))
    else:
        tally = scan(folder, store, tokens_for(config))
    if tally.read:
        log.info(
            "returned mail: %d read, %d suppressed, %d bounces, %d complaints, %d soft, "
            "%d ignored, %d unparseable",
            tally.read,
            tally.suppressed,
            tally.bounces,
            tally.complaints,
            tally.soft,
            tally.ignored,
            tally.unparseable,
        )
    for problem in tally.problems:
        log.warning("returned mail left in %s: %s", folder, problem)
    return tally
