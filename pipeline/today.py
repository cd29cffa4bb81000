"""How today went, for an operator: dumps ingested and quarantined, new papers, subscribers,
editions by status, the next editions due, and health. ``paperboy status`` prints it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import health
from pipeline.config import Config
from pipeline.editions import next_send
from pipeline.models import Frozen, HealthReport, SubscriberStatus
from pipeline.store.reports import DumpSeen

if TYPE_CHECKING:  # SQLAlchemy, for the annotation only
    from pipeline.store import Store

# The order an operator reads an edition's fate in; statuses not listed follow.
EDITION_STATUSES: tuple[str, ...] = ("queued", "sending", "sent", "sent_ambiguous", "deferred")
EDITION_STATUSES += ("failed", "missed", "skipped")


class Quarantined(Frozen):
    name: str
    at: dt.datetime
    reason: str | None  # from the ``<name>.error.txt`` note, when it is there


class NextRun(Frozen):
    at: dt.datetime
    subscribers: int  # how many editions fall due at that moment


class Today(Frozen):
    """Everything on the Today view, as of ``now`` (the day is the UTC date)."""

    now: dt.datetime
    health: HealthReport
    dumps: tuple[DumpSeen, ...]
    quarantined: tuple[Quarantined, ...]
    last_dump: DumpSeen | None
    dump_stale_hours: float
    papers_new: int
    subscribers: dict[str, int]
    editions: dict[str, int]
    next_runs: tuple[NextRun, ...]

    @property
    def last_dump_hours(self) -> float | None:
        if self.last_dump is None:
            return None
        return (self.now - self.last_dump.ingested_at).total_seconds() / 3600

    @property
    def dump_stale(self) -> bool:
        hours = self.last_dump_hours
        return hours is not None and hours > self.dump_stale_hours


def today(store: Store, config: Config, now: dt.datetime) -> Today:
    """Read the Today view from the store and the quarantine folder."""
    midnight = dt.datetime.combine(now.astimezone(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
    reports = store.reports
    return Today(
        now=now,
        health=health.report(store, config, now),
        dumps=tuple(reports.dumps_since(midnight)),
        quarantined=tuple(quarantined_since(config.paths.quarantine, midnight)),
        last_dump=reports.last_dump(),
        dump_stale_hours=config.schedule.dump_stale_hours,
        papers_new=reports.papers_since(midnight),
        subscribers=_ordered(reports.subscribers_by_status(), [s.value for s in SubscriberStatus]),
        editions=_ordered(reports.editions_by_status(midnight.date()), EDITION_STATUSES),
        next_runs=tuple(_next_runs(store, now)),
    )


def quarantined_since(folder: Path, since: dt.datetime) -> list[Quarantined]:
    """The files moved to quarantine at or after ``since``, each with its recorded reason."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".error.txt") or not path.is_file():
            continue
        # The move keeps the file's own mtime; the note is written when it is quarantined.
        note = path.with_name(path.name + ".error.txt")
        stamp = note if note.is_file() else path
        at = dt.datetime.fromtimestamp(stamp.stat().st_mtime, dt.UTC)
        if at < since:
            continue
        reason = None
        if note.is_file():
            text = note.read_text(encoding="utf-8", errors="replace").strip()
            reason = text.removeprefix(f"{path.name}: ") or None
        found.append(Quarantined(name=path.name, at=at, reason=reason))
    return found


def _next_runs(store: Store, now: dt.datetime, limit: int = 3) -> list[NextRun]:
    """The next few moments editions fall due, with how many readers each."""
    moments = Counter(
        at
        for sub in store.subscribers.all([SubscriberStatus.ACTIVE])
        if (at := next_send(sub, now)) is not None
    )
    return [NextRun(at=at, subscribers=n) for at, n in sorted(moments.items())[:limit]]


def _ordered(counts: dict[str, int], order: tuple[str, ...] | list[str]) -> dict[str, int]:
    known = {name: counts[name] for name in order if counts.get(name)}
    return known | {name: n for name, n in sorted(counts.items()) if name not in known}
