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
    scheduler = BackgroundScheduler(
        timezone=dt.UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    now = dt.datetime.now(dt.UTC)
    periods: dict[str, float] = {}  # each interval job's period, as last scheduled

    def reload() -> None:
        if not live.reload():
            return
        for job_id, seconds in _periods(live.config).items():
            # Only a new interval restarts a job's clock: a daily prune rescheduled at every
            # edit of the file would never come round.
            if job_id in periods and periods[job_id] != seconds:
                scheduler.reschedule_job(job_id, trigger="interval", seconds=seconds)
                periods[job_id] = seconds

    def every(
        job_id: str,
        name: str,
        job: Callable[[], object],
        start: float | None,
        fixed: float | None = None,
    ) -> None:
        """An interval job with its errors logged (``_guarded``); it first runs ``start``
        seconds from now (None: after one period). Its period follows the config
        (``_periods``) unless ``fixed`` sets one for the process's life."""
        if fixed is None:
            seconds = periods[job_id] = _periods(live.config)[job_id]
        else:
            seconds = fixed
        # APScheduler reads next_run_time=None as "paused": leave it out instead.
        first = {} if start is None else {"next_run_time": now + dt.timedelta(seconds=start)}
        scheduler.add_job(
            _guarded(name, job), "interval", seconds=seconds, id=job_id, name=name, **first
        )

    # The reload job keeps its own interval until a restart.
    every("reload", "config reload", reload, None, live.config.schedule.config_reload_seconds)
    every("ingest", "ingest", lambda: ingest(live.config), 0)
    if embed is not None:
        every("embed", "embed", lambda: embed(live.config), 2)
    if elect is not None:
        keep, seconds = elect  # fixed: the lease's life decides it
        every("elect", "planner election", keep, 0, seconds)
    if deliver is not None:
        every("deliver", "deliver", lambda: deliver(live.config, dt.datetime.now(dt.UTC)), 5)
    if bounces is not None:
        every("bounces", "bounces", lambda: bounces(live.config), 3)
    if prune is not None:
        first = min(60.0, _periods(live.config)["prune"])
        every("prune", "prune", lambda: prune(live.config), first)
    return scheduler


def _periods(config: Config) -> dict[str, float]:
    """The period in seconds of each interval job that follows the config."""
    schedule = config.schedule
    return {
        "ingest": schedule.ingest_every_seconds,
        "embed": schedule.ingest_every_seconds,  # the bounded vector step follows each ingest
        "deliver": schedule.deliver_every_seconds,
        "bounces": config.bounces.scan_every_seconds,
        "prune": config.retention.prune_every_hours * 3600,
    }
