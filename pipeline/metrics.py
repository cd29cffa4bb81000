"""This process's Prometheus counters, and the hooks the steps call to count.

    ingest_inbox   ──ingested(outcome)──▶  paperboy_ingest_files_total{outcome}
    SmtpSender     ──smtp_reply(error)──▶  paperboy_smtp_replies_total{class}
    Engine         ──send_took(seconds)─▶  paperboy_send_seconds (histogram)
    LiveConfig     ──config_reload_failed()▶ paperboy_config_reload_failures_total

The counters belong to no registry: each web app registers ``PROCESS`` in a registry of its
own, next to the store's gauges (``pipeline.gauges``), so two apps in one process (tests) never
clash over names. They count what this process did since it started; what every process did
is in the store, and ``pipeline.gauges`` reads that at each scrape. The hooks only classify
and add, so they are cheap and cannot raise.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics
from prometheus_client.registry import Collector

from pipeline.errors import DeliveryUncertain, SendError, TemporarySendError
from pipeline.models import IngestOutcome

# Without this every counter also exports a ``_created`` timestamp series, which nobody
# alerts on and which doubles the scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client 0.26

INGEST_OUTCOMES = ("ingested", "duplicate", "quarantined", "failed")
REPLY_CLASSES = ("2xx", "4xx", "5xx", "connection", "other")

INGESTS = Counter(
    "paperboy_ingest_files",
    "Inbox files this process handled: ingested, duplicate (already ingested), quarantined, "
    "or failed (the store refused; left in the inbox)",
    ["outcome"],
    registry=None,
)
SMTP_REPLIES = Counter(
    "paperboy_smtp_replies",
    "SMTP transactions this process ended, by the server's reply class; connection: refused, "
    "dropped or timed out; other: refused before the server answered (TLS, SMTPUTF8)",
    ["class"],
    registry=None,
)
SEND_SECONDS = Histogram(
    "paperboy_send_seconds",
    "Time the sender took per edition this process sent, accepted or not",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=None,
)
CONFIG_RELOAD_FAILURES = Counter(
    "paperboy_config_reload_failures",
    "Edits of the config file this process refused (the last good config stayed in force)",
    registry=None,
)
PROCESS: tuple[Collector, ...] = (INGESTS, SMTP_REPLIES, SEND_SECONDS, CONFIG_RELOAD_FAILURES)

# Every label value from the start, so a rate() over a class that has not happened yet is 0,
# not absent.
for _outcome in INGEST_OUTCOMES:
    INGESTS.labels(_outcome)
for _class in REPLY_CLASSES:
    SMTP_REPLIES.labels(_class)


def ingest_outcome(outcome: IngestOutcome) -> str:
    if outcome.error:
        return "quarantined" if outcome.moved_to else "failed"
    return "duplicate" if outcome.already_ingested else "ingested"


def reply_class(error: SendError | None) -> str:
    """The class of the reply that ended an SMTP transaction (None: it was accepted)."""
    if error is None:
        return "2xx"
    code = error.code
    if code is not None and 200 <= code < 600:
        return f"{code // 100}xx"
    if isinstance(error, DeliveryUncertain | TemporarySendError):
        return "connection"  # no reply at all: refused, dropped, or timed out
    return "other"


def ingested(outcome: IngestOutcome) -> None:
    INGESTS.labels(ingest_outcome(outcome)).inc()


def smtp_reply(error: SendError | None) -> None:
    SMTP_REPLIES.labels(reply_class(error)).inc()


def send_took(seconds: float) -> None:
    SEND_SECONDS.observe(max(0.0, seconds))


def config_reload_failed() -> None:
    CONFIG_RELOAD_FAILURES.inc()
