"""The delivery engine: claim → send → mark over the ledger, with backoff, and who is due when.

Per row (DESIGN.md, "Delivery is at-least-once with nothing lost"):

    claim (commit: sending) ──send──▶ 250            → mark_sent (commit, papers recorded)
                                 ├─▶ 4xx/421/552/drop → deferred, retry after backoff + jitter,
                                 │                     failed once give_up_after_hours passed
                                 ├─▶ 5xx at RCPT      → failed, address suppressed
                                 ├─▶ 5xx at DATA      → failed (the content, not the address)
                                 └─▶ auth/TLS failure, sender refused at MAIL
                                                      → claim released, run aborted

Only a crash between the server's 250 and the ``sent`` commit can send an edition twice; the
resend carries the same Message-ID. Scheduling helpers here are pure; ``run.deliver_due``
wires them to the store, the matcher and the renderer.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import logging
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.config import Config
from pipeline.config import Delivery as DeliveryConfig
from pipeline.errors import (
    PermanentSendError,
    RenderError,
    SendAbort,
    StoreError,
    TemporarySendError,
)
from pipeline.ledger import MORE_KEPT, digest_links, recorded_selection
from pipeline.links import Links
from pipeline.models import (
    Delivery,
    Frequency,
    Paper,
    Selection,
    Subscriber,
    SubscriberStatus,
)
from pipeline.render import Renderer, build_message
from pipeline.send import RecipientRefused, Sender
from pipeline.store import Store

log = logging.getLogger("paperboy.deliver")

Status = Literal["sent", "deferred", "failed", "skipped"]
Clock = Callable[[], dt.datetime]
Compose = Callable[[Delivery, Subscriber, dt.datetime], EmailMessage]


# --- who is due -------------------------------------------------------------------------------


def local_now(subscriber: Subscriber, now: dt.datetime) -> dt.datetime:
    """``now`` on the subscriber's wall clock (UTC, with a warning, if their zone is unknown)."""
    try:
        zone = ZoneInfo(subscriber.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning(
            "subscriber %s has unknown timezone %r; using UTC", subscriber.id, subscriber.timezone
        )
        zone = ZoneInfo("UTC")
    return now.astimezone(zone)


def due_edition(subscriber: Subscriber, now: dt.datetime) -> dt.date | None:
    """The local date of the edition due at ``now``, or None when nothing is due.

    Due means: active, past the send hour on their local date, and a day their frequency
    mails on. Whether that edition exists already is the ledger's business, not this one's.
    """
    if subscriber.status != SubscriberStatus.ACTIVE:
        return None
    local = local_now(subscriber, now)
    if local.hour < subscriber.send_hour:
        return None
    day = local.date()
    if subscriber.frequency == Frequency.WEEKDAYS and day.weekday() >= 5:
        return None
    if subscriber.frequency == Frequency.WEEKLY and day.weekday() != subscriber.weekly_day:
        return None
    return day


def reading_window(subscriber: Subscriber) -> dt.timedelta:
    """How far back a first edition looks for papers (later ones start at the last edition)."""
    days = {Frequency.DAILY: 1, Frequency.WEEKDAYS: 3, Frequency.WEEKLY: 7}[subscriber.frequency]
    return dt.timedelta(days=days, hours=12)


def retry_delay(
    attempts: int, config: DeliveryConfig, rng: random.Random | None = None
) -> dt.timedelta:
    """Exponential backoff with jitter: base·2^(n-1), capped, then scaled by 0.5–1.0."""
    rng = rng or random.Random()
    seconds = min(config.retry_base_seconds * 2 ** max(0, attempts - 1), config.retry_max_seconds)
    return dt.timedelta(seconds=seconds * rng.uniform(0.5, 1.0))


# --- the engine -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    subscriber_id: int
    edition: dt.date
    status: Status
    detail: str


@dataclass
class Tally:
    """What one run did; ``aborted`` says why it stopped early, if it did."""

    queued: int = 0
    due: int = 0  # dry run: editions that would be sent now
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    aborted: str | None = None
    busy: bool = False
    failures: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        if outcome.status == "failed":
            self.failures.append(f"{outcome.subscriber_id} {outcome.edition}: {outcome.detail}")

    def as_dict(self) -> dict[str, object]:
        return {
            "queued": self.queued,
            "due": self.due,
            "sent": self.sent,
            "deferred": self.deferred,
            "failed": self.failed,
            "skipped": self.skipped,
            "aborted": self.aborted,
            "busy": self.busy,
            "failures": list(self.failures),
        }


class Engine:
    """Sends due ledger rows through one sender, ``concurrency`` at a time."""

    def __init__(
        self,
        config: Config,
        store: Store,
        sender: Sender,
        compose: Compose,
        clock: Clock,
        *,
        concurrency: int = 1,
        keep_lease: Callable[[], bool] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.sender = sender
        self.compose = compose
        self.clock = clock
        self.concurrency = max(1, concurrency)
        self.keep_lease = keep_lease
        self.on_outcome = on_outcome
        self.rng = rng or random.Random()
        self.stale = dt.timedelta(minutes=config.delivery.sending_stale_minutes)
        self.tally = Tally()
        self.attempted: set[tuple[int, dt.date]] = set()

    @property
    def stopped(self) -> bool:
        return self.tally.aborted is not None

    async def run(self, rows: Sequence[Delivery]) -> None:
        """Deliver ``rows`` (each at most once per run); stops early on an abort."""
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        for row in rows:
            key = (row.subscriber_id, row.edition_date)
            if key not in self.attempted:
                self.attempted.add(key)
                queue.put_nowait(row)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()

    async def _worker(self, queue: asyncio.Queue[Delivery]) -> None:
        while not self.stopped and not queue.empty():
            row = queue.get_nowait()
            if self.keep_lease is not None and not self.keep_lease():
                self.tally.aborted = "lost the delivery lease to another runner; stopping"
                return
            try:
                outcome = await self.deliver_one(row)
            except StoreError as e:
                self.tally.aborted = f"database error, stopping the run: {e}"
                return
            if outcome is not None:
                self.tally.add(outcome)
                if self.on_outcome is not None:
                    self.on_outcome(outcome)

    async def deliver_one(self, row: Delivery) -> Outcome | None:
        """Claim, send and record one edition; None if another runner has it."""
        sid, edition = row.subscriber_id, row.edition_date
        claimed = self.store.ledger.claim(sid, edition, self.clock(), self.stale)
        if claimed is None:
            return None
        subscriber = self.store.subscribers.get(sid)
        if subscriber is None or subscriber.status != SubscriberStatus.ACTIVE:
            # Unsubscribed (or paused, suppressed) after the edition was queued: never send it.
            status = subscriber.status.value if subscriber else "erased"
            self.store.ledger.release(sid, edition, self.clock())
            self.store.ledger.cancel(sid, f"not sent: subscriber is {status}", self.clock())
            return Outcome(sid, edition, "skipped", f"subscriber is {status}")
        try:
            message = self.compose(claimed, subscriber, self.clock())
        except RenderError as e:
            return self._failed(claimed, f"could not render: {e}")
        except StoreError:
            self.store.ledger.release(sid, edition, self.clock())
            raise
        except Exception as e:  # a bug for one subscriber must not stop everyone else's mail
            log.exception("internal error composing edition %s for subscriber %s", edition, sid)
            return self._failed(
                claimed, f"internal error while rendering: {e.__class__.__name__}: {e}"
            )
        try:
            reply = await self.sender.send(message)
        except SendAbort as e:
            self.store.ledger.release(sid, edition, self.clock())
            self.tally.aborted = str(e)
            return None
        except RecipientRefused as e:
            return self._failed(claimed, str(e), suppress=subscriber.email)
        except PermanentSendError as e:
            return self._failed(claimed, str(e))
        except TemporarySendError as e:
            return self._deferred(claimed, str(e))
        except Exception as e:  # unknown: the server may or may not have it; retry, never lose
            log.exception("unexpected error sending edition %s to subscriber %s", edition, sid)
            return self._deferred(claimed, f"unexpected {e.__class__.__name__}: {e}")
        self.store.ledger.mark_sent(sid, edition, reply, self.clock())
        return Outcome(sid, edition, "sent", reply)

    def _failed(self, row: Delivery, error: str, suppress: str | None = None) -> Outcome:
        self.store.ledger.mark_failed(
            row.subscriber_id, row.edition_date, error, suppress_email=suppress, now=self.clock()
        )
        detail = f"{error} (address suppressed)" if suppress else error
        return Outcome(row.subscriber_id, row.edition_date, "failed", detail)

    def _deferred(self, row: Delivery, error: str) -> Outcome:
        now = self.clock()
        first = row.first_attempt_at or now
        give_up = dt.timedelta(hours=self.config.delivery.give_up_after_hours)
        if now - first >= give_up:
            hours = self.config.delivery.give_up_after_hours
            return self._failed(row, f"gave up after {hours:g} h of retries; last error: {error}")
        retry_at = now + retry_delay(row.attempts, self.config.delivery, self.rng)
        self.store.ledger.mark_deferred(row.subscriber_id, row.edition_date, error, retry_at, now)
        return Outcome(
            row.subscriber_id,
            row.edition_date,
            "deferred",
            f"{error}; retry at {retry_at:%Y-%m-%d %H:%M} UTC",
        )


# --- composing editions -----------------------------------------------------------------------

SelectFn = Callable[
    [
        Sequence[Subscriber],
        Sequence[Paper],
        dt.date,
        Mapping[int, set[str]],
        Mapping[int, set[str]],
    ],
    list[Selection],
]


def match_selector(config: Config) -> SelectFn:
    """``pipeline.match.select`` bound to the configured catalog and weights.

    Each selection also carries up to ``MORE_KEPT`` further matches (``more_papers``) with
    their scores and reasons, for the web view.
    """
    from pipeline import match  # numpy and the index: loaded only when matching is needed

    catalog = match.load_catalog(config.topics)

    def select(
        subscribers: Sequence[Subscriber],
        papers: Sequence[Paper],
        edition: dt.date,
        sent: Mapping[int, set[str]],
        eligible: Mapping[int, set[str]],
    ) -> list[Selection]:
        return match.select(
            papers,
            subscribers,
            catalog,
            config.match,
            edition_date=edition,
            sent=sent,
            eligible=eligible,
            more=MORE_KEPT,
        )

    return select


# Active subscribers read, matched and queued together: bounds memory (the subscribers and
# their selections) however many there are, while each page still shares one paper index and
# one scoring of every distinct topic set.
PLAN_PAGE = 20_000


def plan_editions(
    store: Store, now: dt.datetime, page: int = PLAN_PAGE
) -> Iterator[tuple[dt.date, list[Subscriber]]]:
    """Active subscribers due at ``now`` whose edition has no ledger row yet: for each page
    of subscribers, one group per edition date, earliest first."""
    for subscribers in store.subscribers.pages([SubscriberStatus.ACTIVE], page=page):
        due: dict[dt.date, list[Subscriber]] = {}
        for sub in subscribers:
            day = due_edition(sub, now)
            if day is not None:
                due.setdefault(day, []).append(sub)
        for day, group in sorted(due.items()):
            existing = store.ledger.with_edition(day, [sub.id for sub in group])
            fresh = [sub for sub in group if sub.id not in existing]
            if fresh:
                yield day, fresh


def select_editions(
    store: Store,
    select: SelectFn,
    subscribers: Sequence[Subscriber],
    edition: dt.date,
    now: dt.datetime,
) -> list[Selection]:
    """Each subscriber's papers: first seen since their last edition, never sent before."""
    ids = [sub.id for sub in subscribers]
    last = store.ledger.last_sent_at(ids)
    oldest = now - dt.timedelta(days=8)  # after a long pause, no stale papers
    since = {
        sub.id: max(oldest, last[sub.id] - dt.timedelta(hours=1))
        if sub.id in last
        else now - reading_window(sub)
        for sub in subscribers
    }
    seen = store.papers.seen_since(min(since.values()))
    papers = [p for p, _ in seen]
    sent = store.ledger.sent_paper_ids(ids, among=[p.id for p in papers])
    # A reader's new papers are a suffix of the papers in first-seen order, so readers whose
    # start falls between the same two papers share one set (a handful of sets, not one each).
    by_time = sorted(seen, key=lambda pair: pair[1])
    times = [at for _, at in by_time]
    suffixes: dict[int, set[str]] = {}
    eligible: dict[int, set[str]] = {}
    for sid, start in since.items():
        cut = bisect.bisect_right(times, start)  # the first paper seen after ``start``
        if cut not in suffixes:
            suffixes[cut] = {p.id for p, _ in by_time[cut:]}
        eligible[sid] = suffixes[cut]
    return select(subscribers, papers, edition, sent, eligible)


class Composer:
    """Ledger row → EmailMessage: from this run's rendering, else rebuilt from the ledger.

    A retried or crash-recovered edition is rendered again from what its row recorded at
    queue time (``recorded``): the same papers, reasons and "N more" line, the same Message-ID.
    """

    def __init__(self, config: Config, store: Store, renderer: Renderer, links: Links) -> None:
        self.config = config
        self.store = store
        self.renderer = renderer
        self.links = links
        self.ready: dict[tuple[int, dt.date], EmailMessage] = {}

    def render(
        self, selection: Selection, subscriber: Subscriber, now: dt.datetime, message_id: str
    ) -> tuple[EmailMessage, tuple[str, ...]]:
        """The digest for ``selection`` and the ids of the papers it shows."""
        ids = [sp.paper.id for sp in selection.papers]
        links = digest_links(self.links, subscriber.id, selection.edition_date, ids)
        rendered = self.renderer.digest(selection, subscriber, links)
        message = build_message(
            rendered,
            to=subscriber.email,
            config=self.config,
            message_id=message_id,
            unsubscribe_url=links.unsubscribe,
            date=now,
        )
        return message, rendered.paper_ids

    def from_ledger(self, row: Delivery, subscriber: Subscriber, now: dt.datetime) -> EmailMessage:
        selection = recorded_selection(row, self.store.papers.by_ids(row.paper_ids))
        if not selection.papers:
            raise RenderError("none of this edition's papers is in the store any more")
        return self.render(selection, subscriber, now, row.message_id)[0]

    def __call__(self, row: Delivery, subscriber: Subscriber, now: dt.datetime) -> EmailMessage:
        ready = self.ready.pop((row.subscriber_id, row.edition_date), None)
        return ready if ready is not None else self.from_ledger(row, subscriber, now)
