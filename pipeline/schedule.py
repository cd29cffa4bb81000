"""When things happen: APScheduler 3 interval jobs that call ``run.py``; no business logic.

Triggers run in UTC. Each job is coalesced and limited to one instance, so a slow run is
never stacked on itself; subscribers' local send times are decided inside ``run.deliver_due``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from pipeline import metrics
from pipeline.config import Config, load_config
from pipeline.errors import ConfigError, PaperboyError

log = logging.getLogger("paperboy.schedule")


class LiveConfig:
    """The daemon's config: reloaded when the file changes, kept as is when the edit is bad."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config: Config = load_config(path)
        self._stamp = self._file_stamp()
        self.last_error: str | None = None

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def reload(self) -> bool:
        """Load the file again if it changed; True when a new config took effect."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.config = load_config(self.path)
        except ConfigError as e:
            self.last_error = str(e)
            metrics.config_reload_failed()
            log.error("config error, keeping the last good config: %s", e)
            return False
        self.last_error = None
        log.info("config reloaded from %s", self.path)
        return True


def _guarded(name: str, step: Callable[[], object]) -> Callable[[], None]:
    """Run a step; its failure is logged in one line and the next trigger tries again."""

    def job() -> None:
        try:
            step()
        except PaperboyError as e:
            log.error("%s failed: %s", name, e)
        except Exception:
            log.exception("%s crashed; will try again at the next trigger", name)

    return job


def build_scheduler(
    live: LiveConfig,
    ingest: Callable[[Config], object],
    deliver: Callable[[Config, dt.datetime], object] | None = None,
    embed: Callable[[Config], object] | None = None,
    bounces: Callable[[Config], object] | None = None,
    elect: tuple[Callable[[], object], float] | None = None,
    prune: Callable[[Config], object] | None = None,
) -> BackgroundScheduler:
    """A scheduler with the reload, ingest and (optionally) deliver, embed, bounces, election
    and prune jobs, not yet started. The embed job (the bounded vector step) runs at the ingest
    job's interval; the bounces job (returned mail) every ``bounces.scan_every_seconds``; the
    prune job (retention) a minute after the start (sooner for a shorter interval), then every
    ``retention.prune_every_hours``.

    ``elect`` is the planner election and its interval: a job of its own, so the planner
    keeps its role while a long delivery run holds the deliver job, and a standby takes the
    role over soon after its holder stopped or died."""
    schedule = live.config.schedule
    scheduler = BackgroundScheduler(
        timezone=dt.UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    now = dt.datetime.now(dt.UTC)
    prune_seconds = [live.config.retention.prune_every_hours * 3600]

    def reload() -> None:
        if live.reload():
            # New intervals take effect without a restart.
            fresh = live.config.schedule
            scheduler.reschedule_job(
                "ingest", trigger="interval", seconds=fresh.ingest_every_seconds
            )
            if embed is not None:
                scheduler.reschedule_job(
                    "embed", trigger="interval", seconds=fresh.ingest_every_seconds
                )
            if deliver is not None:
                scheduler.reschedule_job(
                    "deliver", trigger="interval", seconds=fresh.deliver_every_seconds
                )
            if bounces is not None:
                scheduler.reschedule_job(
                    "bounces", trigger="interval", seconds=live.config.bounces.scan_every_seconds
                )
            seconds = live.config.retention.prune_every_hours * 3600
            # Only a new interval restarts the prune job's clock: a daily job rescheduled
            # at every edit of the file would never come round.
            if prune is not None and seconds != prune_seconds[0]:
                prune_seconds[0] = seconds
                scheduler.reschedule_job("prune", trigger="interval", seconds=seconds)

    def every(
        job_id: str, name: str, job: Callable[[], object], seconds: float, start: float | None
    ) -> None:
        """An interval job with its errors logged (``_guarded``); it first runs ``start``
        seconds from now, or after one interval when ``start`` is None."""
        # APScheduler reads next_run_time=None as "paused": leave it out instead.
        first = {} if start is None else {"next_run_time": now + dt.timedelta(seconds=start)}
        scheduler.add_job(
            _guarded(name, job), "interval", seconds=seconds, id=job_id, name=name, **first
        )

    every("reload", "config reload", reload, schedule.config_reload_seconds, None)
    every("ingest", "ingest", lambda: ingest(live.config), schedule.ingest_every_seconds, 0)
    if embed is not None:
        every("embed", "embed", lambda: embed(live.config), schedule.ingest_every_seconds, 2)
    if elect is not None:
        keep, seconds = elect
        every("elect", "planner election", keep, seconds, 0)
    if deliver is not None:
        seconds = schedule.deliver_every_seconds
        every(
            "deliver", "deliver", lambda: deliver(live.config, dt.datetime.now(dt.UTC)), seconds, 5
        )
    if bounces is not None:
        seconds = live.config.bounces.scan_every_seconds
        every("bounces", "bounces", lambda: bounces(live.config), seconds, 3)
    if prune is not None:
        first = min(60.0, prune_seconds[0])
        every("prune", "prune", lambda: prune(live.config), prune_seconds[0], first)
    return scheduler
