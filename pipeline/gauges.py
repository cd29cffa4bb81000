"""The store's counts as Prometheus gauges, read afresh at every scrape.

What any process did (``paperboy send`` from cron, a second service, a worker) is in the
store, so these read it rather than count: subscribers, editions and ledger rows by status,
papers, dumps ingested and quarantined, the last dump's age, how far delivery runs behind
the send hour, and the health record. This process's own counters are ``pipeline.metrics``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from pipeline import health, metrics
from pipeline.config import Config
from pipeline.errors import StoreError
from pipeline.models import DeliveryStatus, SubscriberStatus
from pipeline.store import Store
from pipeline.store.reports import PendingGroup

log = logging.getLogger("paperboy.metrics")

# Conditions always exported (0 while they do not hold), so an alert can name them.
CONDITIONS = ("breaker", health.RUN, health.MATCHING, health.CONFIG, health.DUMP)

Source = Callable[[], tuple[Store, Config]]
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StoreCollector:
    """A Prometheus collector over the store and config that ``source`` returns at each
    scrape (the web app's runtime in force). A store that does not answer is reported as
    ``paperboy_store_up 0`` and logged; the scrape itself still succeeds."""

    def __init__(self, source: Source, clock: Clock = utc_now) -> None:
        self.source = source
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        store, config = self.source()
        up = GaugeMetricFamily("paperboy_store_up", "1 when the store answered this scrape")
        try:
            found = list(read(store, config, self.clock()))
        except StoreError as e:
            log.error("metrics: could not read the store: %s", e)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from found


def read(store: Store, config: Config, now: dt.datetime) -> Iterator[Metric]:
    """Every store gauge as of ``now``."""
    reports = store.reports
    yield _by_status(
        "paperboy_subscribers",
        "Subscribers by status",
        reports.subscribers_by_status(),
        [s.value for s in SubscriberStatus],
    )
    yield _by_status(
        "paperboy_editions_today",
        "Ledger rows of today's edition date (UTC), by status",
        reports.editions_by_status(now.astimezone(dt.UTC).date()),
        [s.value for s in DeliveryStatus],
    )
    yield _by_status(
        "paperboy_ledger_rows",
        "Ledger rows of every edition date still kept, by status",
        reports.ledger_by_status(),
        [s.value for s in DeliveryStatus],
    )
    yield GaugeMetricFamily("paperboy_papers", "Papers in the store", store.papers.count())
    yield GaugeMetricFamily(
        "paperboy_dumps_ingested", "Dumps ingested (records kept)", reports.dump_count()
    )
    yield GaugeMetricFamily(
        "paperboy_dumps_quarantined",
        "Files in the quarantine folder (paths.quarantine)",
        quarantined(config.paths.quarantine),
    )
    last = reports.last_dump()
    if last is not None:  # before the first dump there is no age to report
        yield GaugeMetricFamily(
            "paperboy_last_dump_age_seconds",
            "Seconds since the newest dump was ingested",
            max(0.0, (now - last.ingested_at).total_seconds()),
        )
    overdue, lag = behind(reports.pending_editions(), now)
    yield GaugeMetricFamily(
        "paperboy_delivery_lag_seconds",
        "How long the oldest edition not yet sent (queued, sending, deferred) is past its "
        "reader's send hour; 0 when none is",
        lag,
    )
    yield GaugeMetricFamily(
        "paperboy_editions_overdue",
        "Editions not yet sent (queued, sending, deferred) past their reader's send hour",
        overdue,
    )
    yield from _health(store, config, now)


def behind(groups: list[PendingGroup], now: dt.datetime) -> tuple[int, float]:
    """How many pending editions are past their due moment, and the oldest one's lateness
    in seconds."""
    overdue, lag = 0, 0.0
    for group in groups:
        late = (now - due_moment(group)).total_seconds()
        if late > 0:
            overdue += group.editions
            lag = max(lag, late)
    return overdue, lag


def due_moment(group: PendingGroup) -> dt.datetime:
    """The send hour on the edition's date in the reader's zone (UTC for an unknown zone,
    as ``editions.zone_of`` does)."""
    try:
        zone = ZoneInfo(group.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return dt.datetime.combine(group.edition_date, dt.time(group.send_hour), tzinfo=zone)


def quarantined(folder: Path) -> int:
    """The quarantined files, not counting their ``.error.txt`` notes."""
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.is_file() and not p.name.endswith(".error.txt"))


def _by_status(
    name: str, documentation: str, counts: dict[str, int], known: list[str]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status in [*known, *sorted(set(counts) - set(known))]:
        family.add_metric([status], counts.get(status, 0))
    return family


def _health(store: Store, config: Config, now: dt.datetime) -> Iterator[Metric]:
    reasons = health.report(store, config, now).reasons
    holding = {r.name for r in reasons}
    ok = GaugeMetricFamily("paperboy_health_ok", "1 when health is ok, 0 when degraded")
    ok.add_metric([], 0 if reasons else 1)
    yield ok
    family = GaugeMetricFamily(
        "paperboy_health_reason",
        "1 while the condition degrades health (see paperboy status), else 0",
        labels=["reason"],
    )
    for name in [*CONDITIONS, *sorted(holding - set(CONDITIONS))]:
        family.add_metric([name], 1 if name in holding else 0)
    yield family


def registry(source: Source, clock: Clock = utc_now) -> CollectorRegistry:
    """A registry of its own (never the global one) with this process's counters and the
    store's gauges."""
    found = CollectorRegistry(auto_describe=False)
    for collector in metrics.PROCESS:
        found.register(collector)
    found.register(StoreCollector(source, clock))
    return found


def exposition(store: Store, config: Config, now: dt.datetime) -> str:
    """The scrape text for ``store`` as of ``now``, without a web app (the benchmarks)."""
    return generate_latest(registry(lambda: (store, config), lambda: now)).decode()
