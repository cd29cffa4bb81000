"""Retention: remove what ``[retention]`` no longer keeps (old ledger rows, sent-paper records
no edition can need, old archive and outbox files), for ``paperboy prune`` and the service.

"Never the same paper twice" holds after pruning: an edition only picks papers first seen
within ``editions.PAPER_HORIZON``, and a sent-paper record goes only once its paper is older
than that (``store.retention.prune_sent_papers``), so no pruned record can be looked up again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from pathlib import Path

from pipeline.config import Config
from pipeline.editions import PAPER_HORIZON
from pipeline.models import Frozen
from pipeline.store import Store, open_store

log = logging.getLogger("paperboy.prune")

DAY = dt.timedelta(days=1)


class PrunedFiles(Frozen):
    """Files removed (or, in a dry run, to remove) from one folder."""

    folder: str
    before: dt.datetime  # files last modified before this went
    names: tuple[str, ...] = ()
    bytes: int = 0
    errors: tuple[str, ...] = ()  # one line per file that could not be removed


class PruneReport(Frozen):
    """What one prune removed; a part is None when its retention is 0 (kept forever)."""

    dry_run: bool
    deliveries: int | None = None
    deliveries_before: dt.date | None = None
    sent_papers: int | None = None
    sent_papers_before: dt.datetime | None = None
    archive: PrunedFiles | None = None
    outbox: PrunedFiles | None = None

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(e for part in (self.archive, self.outbox) if part for e in part.errors)

    def lines(self) -> list[str]:
        """The report as the CLI prints it: one line per part."""
        verb = "would remove" if self.dry_run else "removed"
        out = []
        if self.deliveries is None:
            out.append("ledger: kept forever (retention.deliveries_days = 0)")
        else:
            out.append(
                f"ledger: {verb} {_count(self.deliveries, 'finished row')} "
                f"of editions before {self.deliveries_before}"
            )
        if self.sent_papers is None:
            out.append("sent papers: kept forever (retention.sent_papers_days = 0)")
        else:
            out.append(
                f"sent papers: {verb} {_count(self.sent_papers, 'record')} "
                f"sent before {self.sent_papers_before:%Y-%m-%d %H:%M} UTC"
            )
        for label, files in (("archive", self.archive), ("outbox", self.outbox)):
            if files is None:
                out.append(f"{label}: kept forever (retention.{label}_days = 0)")
                continue
            out.append(
                f"{label}: {verb} {_count(len(files.names), 'file')} ({files.bytes} bytes) "
                f"older than {files.before:%Y-%m-%d %H:%M} UTC from {files.folder}"
            )
            out.extend(f"{label}: {error}" for error in files.errors)
        return out

    def summary(self) -> str:
        """What went, in one line: "3 ledger rows, 2 outbox files"."""
        parts = [
            _count(self.deliveries or 0, "ledger row"),
            _count(self.sent_papers or 0, "sent-paper record"),
            _count(len(self.archive.names) if self.archive else 0, "archive file"),
            _count(len(self.outbox.names) if self.outbox else 0, "outbox file"),
        ]
        return ", ".join(p for p in parts if not p.startswith("0 "))

    def removed_anything(self) -> bool:
        files = [f for f in (self.archive, self.outbox) if f is not None]
        return bool(self.deliveries or self.sent_papers or any(f.names for f in files))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def prune(config: Config, store: Store, now: dt.datetime, *, dry_run: bool = False) -> PruneReport:
    """Remove (or with ``dry_run`` count) everything older than ``config.retention`` keeps."""
    keep = config.retention
    report = PruneReport(dry_run=dry_run)
    if keep.deliveries_days:
        before = now.date() - keep.deliveries_days * DAY
        gone = store.retention.prune_deliveries(before, dry_run=dry_run)
        report = report.model_copy(update={"deliveries": gone, "deliveries_before": before})
    if keep.sent_papers_days:
        sent_before = now - keep.sent_papers_days * DAY
        # A day beyond the horizon: a run replaying a recent ``--now`` still finds its records.
        seen_before = now - PAPER_HORIZON - DAY
        gone = store.retention.prune_sent_papers(sent_before, seen_before, dry_run=dry_run)
        report = report.model_copy(update={"sent_papers": gone, "sent_papers_before": sent_before})
    if keep.archive_days:
        archive = prune_files(config.paths.archive, now - keep.archive_days * DAY, dry_run)
        report = report.model_copy(update={"archive": archive})
    if keep.outbox_days:
        outbox = prune_files(config.paths.outbox, now - keep.outbox_days * DAY, dry_run)
        report = report.model_copy(update={"outbox": outbox})
    return report


def prune_files(folder: Path, before: dt.datetime, dry_run: bool) -> PrunedFiles:
    """Regular files directly in ``folder`` last modified before ``before`` (subfolders and
    symbolic links are left alone); a missing folder has nothing to prune."""
    cutoff = before.timestamp()
    names: list[str] = []
    errors: list[str] = []
    size = 0
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        entries = []
    except OSError as e:
        errors.append(f"cannot list {folder}: {e.strerror}")
        entries = []
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
                continue
            if not dry_run:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue  # removed meanwhile (another service's prune): nothing left to do
        except OSError as e:
            errors.append(f"cannot remove {entry.path}: {e.strerror}")
            continue
        names.append(entry.name)
        size += info.st_size
    return PrunedFiles(
        folder=str(folder), before=before, names=tuple(names), bytes=size, errors=tuple(errors)
    )


def prune_step(config: Config, now: dt.datetime, store: Store | None = None) -> PruneReport:
    """The service's prune job: prune, and log one line when something went (quiet otherwise).
    Opens the configured store unless given one."""
    if store is None:
        with open_store(config) as opened:
            return prune_step(config, now, opened)
    report = prune(config, store, now)
    if report.removed_anything():
        log.info("pruned %s", report.summary())
    for error in report.errors:
        log.error("prune: %s", error)
    return report
