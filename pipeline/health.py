"""What each process notes in the health record: the last run, matching, the config.

    breaker   the circuit breaker's pause (``store.pauses``): degraded until a run sends
    run       the last delivery run was aborted (auth/TLS failure, database error, lease lost)
    matching  meaning is on but the model could not load: matching fell back to lexical
    config    the service's last config reload failed; the last good config is in force
    dump      no dump was ingested within ``schedule.dump_stale_hours`` (read, not stored:
              every edition would be "skipped: no new papers")

A failure to write the record is logged, never raised: health must not stop delivery.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from pipeline.config import Config, Meaning
from pipeline.embedding.runtime import SentenceModel, shared
from pipeline.errors import StoreError
from pipeline.models import HealthReason, HealthReport

if TYPE_CHECKING:  # the delivery engine and the store, for the annotations only
    from pipeline.deliver import Tally
    from pipeline.store import Store

log = logging.getLogger("paperboy.health")

RUN, MATCHING, CONFIG, DUMP = "run", "matching", "config", "dump"


def stale_dump(store: Store, stale_hours: float, now: dt.datetime) -> HealthReason | None:
    """The ``dump`` condition: the last dump is older than ``stale_hours``. Before the first
    dump there is nothing to be late yet, so a new instance stays ok."""
    last = store.reports.last_dump()
    if last is None or now - last.ingested_at <= dt.timedelta(hours=stale_hours):
        return None
    age = (now - last.ingested_at).total_seconds() / 3600
    return HealthReason(
        name=DUMP,
        reason=(
            f"no dump ingested for {age:.0f} hours (schedule.dump_stale_hours = "
            f"{stale_hours:g}); the last was {last.name}"
        ),
        since=last.ingested_at + dt.timedelta(hours=stale_hours),
    )


def report(store: Store, config: Config, now: dt.datetime) -> HealthReport:
    """The stored record plus the conditions read from the data (a stale dump)."""
    recorded = store.health.report(now)
    stale = stale_dump(store, config.schedule.dump_stale_hours, now)
    return recorded if stale is None else HealthReport(reasons=(*recorded.reasons, stale))


def note(store: Store, name: str, reason: str | None, now: dt.datetime) -> None:
    """Set condition ``name`` with ``reason``, or clear it when ``reason`` is None."""
    try:
        if reason is None:
            store.health.clear(name)
        else:
            store.health.set(name, reason, now)
    except StoreError as e:
        log.error("could not record health (%s): %s", name, e)


def note_run(store: Store, tally: Tally, now: dt.datetime) -> None:
    """A delivery run ended: aborted degrades health, any other ending clears that."""
    if tally.busy:
        return  # another runner had the lease: this run did nothing to judge
    reason = f"last delivery run aborted: {tally.aborted}" if tally.aborted else None
    note(store, RUN, reason, now)


def matching_reason(sentences: SentenceModel, meaning: Meaning) -> str | None:
    """Why matching is lexical against the config's wishes; None when it is as configured."""
    status = sentences.status(meaning)
    if status.startswith("unavailable"):
        return f"matching fell back to lexical: the sentence model is {status}"
    return None


def note_matching(
    store: Store, sentences: SentenceModel, meaning: Meaning, now: dt.datetime
) -> None:
    """Whether this process's matching fell back to lexical (a model not yet loaded says
    nothing either way)."""
    if sentences.status(meaning) == "not loaded yet":
        return
    note(store, MATCHING, matching_reason(sentences, meaning), now)


def note_config(store: Store, error: str | None, now: dt.datetime) -> None:
    """The service's last config reload: ``error`` when it failed, None when it took."""
    reason = f"config reload failed, the last good config is in force: {error}" if error else None
    note(store, CONFIG, reason, now)


def note_service(config: Config, config_error: str | None) -> None:
    """The service's part of the record, on its own schedule: its last config reload, and
    whether its matching fell back to lexical. A store it cannot open is logged, not raised."""
    from pipeline.store import open_store  # SQLAlchemy: only where the record is written

    try:
        with open_store(config) as store:
            now = dt.datetime.now(dt.UTC)
            note_config(store, config_error, now)
            note_matching(store, shared(), config.meaning, now)
    except StoreError as e:
        log.error("could not record health: %s", e)
