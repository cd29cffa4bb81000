"""Who is due when, what their edition holds, and queueing it: match → render → ledger.

    plan_editions ──▶ select_editions ──▶ Composer.render ──▶ queued ledger rows ──▶ Job batches

``run.deliver_due`` wires an ``EditionPlan`` and hands ``queue_editions``' batches to the
engine (``pipeline.deliver``). Each job carries the message rendered here, so nothing waits in
shared state between queueing and sending. Scheduling helpers here are pure.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.config import Email, Topic
from pipeline.config import Match as MatchConfig
from pipeline.deliver import Clock, Job, Outcome, Tally
from pipeline.embedding import Embedder, Vectors, interest_texts, topic_text
from pipeline.errors import RenderError
from pipeline.ledger import MORE_KEPT, digest_links, recorded, recorded_selection
from pipeline.links import Links
from pipeline.matching.topics import Catalog, load_catalog
from pipeline.mime import build_message, message_id_for
from pipeline.models import (
    Delivery,
    DeliveryStatus,
    Frequency,
    Paper,
    Selection,
    Subscriber,
    SubscriberStatus,
)
from pipeline.render import Renderer
from pipeline.render.views import first_digest_words
from pipeline.store import Store
from pipeline.verp import return_path

log = logging.getLogger("paperboy.deliver")


# --- who is due -------------------------------------------------------------------------------


LATE_CUTOFF_HOURS = 6.0  # delivery.late_cutoff_hours' default
LOOK_BACK_DAYS = 8  # how far back a reader's owed editions are looked for


def zone_of(subscriber: Subscriber) -> ZoneInfo:
    """The subscriber's time zone (UTC, with a warning, if it is unknown)."""
    try:
        return ZoneInfo(subscriber.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning(
            "subscriber %s has unknown timezone %r; using UTC", subscriber.id, subscriber.timezone
        )
        return ZoneInfo("UTC")


def local_now(subscriber: Subscriber, now: dt.datetime) -> dt.datetime:
    """``now`` on the subscriber's wall clock."""
    return now.astimezone(zone_of(subscriber))


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


def send_moment(subscriber: Subscriber, day: dt.date) -> dt.datetime:
    """When the edition of local date ``day`` is due: that day's send hour, in their zone."""
    return dt.datetime.combine(day, dt.time(subscriber.send_hour), tzinfo=zone_of(subscriber))


def owed_editions(
    subscriber: Subscriber, now: dt.datetime, cutoff: dt.timedelta
) -> list[tuple[dt.date, bool]]:
    """Editions owed at ``now`` that may lack a ledger row, each with whether it is late.

    An edition is owed from its send moment on, if the reader was active by then or became so
    within ``cutoff`` after it; it is late (recorded ``missed``, never sent) once ``now`` is
    past its send moment plus ``cutoff``. Days after the reader's last edition are looked at
    (up to ``LOOK_BACK_DAYS`` back); a reader who has had none is owed only today's.
    """
    today = due_edition(subscriber, now)
    local_today = local_now(subscriber, now).date()
    start = subscriber.confirmed_at or subscriber.created_at
    first = local_today if subscriber.last_edition is None else subscriber.last_edition
    first = max(first, local_today - dt.timedelta(days=LOOK_BACK_DAYS))
    out: list[tuple[dt.date, bool]] = []
    day = first
    while day <= local_today:
        if day != subscriber.last_edition and _mails_on(subscriber, day):
            moment = send_moment(subscriber, day)
            # A start after ``now`` is a run replaying an earlier date (``send --now``): owed.
            owed = moment <= now and (start is None or start > now or start <= moment + cutoff)
            if owed and (day != local_today or today is not None):
                out.append((day, now > moment + cutoff))
        day += dt.timedelta(days=1)
    return out


def next_send(subscriber: Subscriber, now: dt.datetime) -> dt.datetime | None:
    """When the subscriber's next edition falls due after ``now``; None unless active."""
    if subscriber.status != SubscriberStatus.ACTIVE:
        return None
    day = local_now(subscriber, now).date()
    for _ in range(8):  # a weekly reader's next day is at most a week away
        if _mails_on(subscriber, day) and send_moment(subscriber, day) > now:
            return send_moment(subscriber, day).astimezone(dt.UTC)
        day += dt.timedelta(days=1)
    return None


def first_edition_at(
    subscriber: Subscriber, now: dt.datetime, cutoff: dt.timedelta
) -> dt.datetime | None:
    """When a reader active at ``now`` gets their first edition, on their wall clock.

    Today's, if its send moment has passed less than ``cutoff`` ago (it is owed and goes out
    on the next delivery run; see ``owed_editions``), else the next send moment."""
    if subscriber.status != SubscriberStatus.ACTIVE:
        return None
    local = local_now(subscriber, now)
    today = send_moment(subscriber, local.date())
    if _mails_on(subscriber, local.date()) and today <= now <= today + cutoff:
        return today
    upcoming = next_send(subscriber, now)
    return upcoming.astimezone(zone_of(subscriber)) if upcoming else None


def first_digest(subscriber: Subscriber, now: dt.datetime, cutoff: dt.timedelta) -> str:
    """``first_edition_at`` in words for the welcome mail and page ("tomorrow at 08:00, UTC")."""
    zone = zone_of(subscriber)
    return first_digest_words(
        local_now(subscriber, now), first_edition_at(subscriber, now, cutoff), zone.key
    )


def _mails_on(subscriber: Subscriber, day: dt.date) -> bool:
    if subscriber.frequency == Frequency.WEEKDAYS:
        return day.weekday() < 5
    if subscriber.frequency == Frequency.WEEKLY:
        return day.weekday() == subscriber.weekly_day
    return True


def reading_window(subscriber: Subscriber) -> dt.timedelta:
    """How far back a first edition looks for papers (later ones start at the last edition)."""
    days = {Frequency.DAILY: 1, Frequency.WEEKDAYS: 3, Frequency.WEEKLY: 7}[subscriber.frequency]
    return dt.timedelta(days=days, hours=12)


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


# The stored vectors of some papers and texts (``store.vectors.for_matching`` of one model),
# or None when there is no model to match by meaning with.
VectorSource = Callable[[Sequence[Paper], Sequence[str]], Vectors | None]


def stored_vectors(store: Store, embedder: Callable[[], Embedder | None]) -> VectorSource:
    """Where the selector finds vectors: the store's, of the model ``embedder()`` returns.
    The model is asked for on the first match, so a run with nobody due never loads it."""

    def load(papers: Sequence[Paper], texts: Sequence[str]) -> Vectors | None:
        model = embedder()
        return None if model is None else store.vectors.for_matching(model.name, papers, texts)

    return load


def match_selector(
    weights: MatchConfig, topics: Mapping[str, Topic], vectors: VectorSource | None = None
) -> SelectFn:
    """``pipeline.matching.match.select`` bound to the catalog (with ``topics``) and weights,
    and to the stored vectors of the papers and the subscribers' texts, when given.

    Each selection also carries up to ``MORE_KEPT`` further matches (``more_papers``) with
    their scores and reasons, for the web view. Matching (numpy and the index) is loaded on
    the first call, so a run with nobody due never pays for it.
    """

    @cache
    def catalog() -> Catalog:
        return load_catalog(topics)

    def select(
        subscribers: Sequence[Subscriber],
        papers: Sequence[Paper],
        edition: dt.date,
        sent: Mapping[int, set[str]],
        eligible: Mapping[int, set[str]],
    ) -> list[Selection]:
        from pipeline.matching import match  # numpy and the index: only when someone is due

        found = None
        if vectors is not None:
            found = vectors(papers, profiles_texts(subscribers, catalog().topics))
        return match.select(
            papers,
            subscribers,
            catalog(),
            weights,
            edition_date=edition,
            sent=sent,
            eligible=eligible,
            more=MORE_KEPT,
            vectors=found,
        )

    return select


def profiles_texts(subscribers: Sequence[Subscriber], topics: Mapping[str, Topic]) -> list[str]:
    """Every distinct text of these subscribers' profiles that may have a vector: their
    topics' and their interest items' (``profile_texts``, each distinct interest parsed once)."""
    out: dict[str, None] = {}
    slugs: set[str] = set()
    interests: set[str] = set()
    for sub in subscribers:
        slugs.update(sub.profile.topics)
        interests.add(sub.profile.interests)
    for slug in sorted(slugs):
        if slug in topics:
            out[topic_text(topics[slug])] = None
    for text in sorted(interests):
        out.update(dict.fromkeys(interest_texts(text)))
    return list(out)


# The oldest a paper may be (by when it was first seen) to be picked for any edition: every
# reading window and every "since the last edition" is cut off here. A record that a paper
# was sent matters only while the paper is younger than this (``pipeline.prune``).
PAPER_HORIZON = dt.timedelta(days=8)

# Active subscribers read, matched and queued together: bounds memory (the subscribers and
# their selections) however many there are, while each page still shares one paper index and
# one scoring of every distinct topic set.
PLAN_PAGE = 20_000


def plan_editions(
    store: Store,
    now: dt.datetime,
    page: int = PLAN_PAGE,
    cutoff: dt.timedelta = dt.timedelta(hours=LATE_CUTOFF_HOURS),
) -> Iterator[tuple[dt.date, list[Subscriber], list[Subscriber]]]:
    """Active subscribers owed an edition at ``now`` that has no ledger row yet: for each page
    of subscribers, per edition date (earliest first), those to send it to and those for whom
    it is too late (``owed_editions``)."""
    for subscribers in store.subscribers.pages([SubscriberStatus.ACTIVE], page=page):
        owed: dict[dt.date, list[tuple[Subscriber, bool]]] = {}
        for sub in subscribers:
            for day, late in owed_editions(sub, now, cutoff):
                owed.setdefault(day, []).append((sub, late))
        for day, group in sorted(owed.items()):
            existing = store.ledger.with_edition(day, [sub.id for sub, _ in group])
            fresh = [(sub, late) for sub, late in group if sub.id not in existing]
            if fresh:
                yield day, [s for s, late in fresh if not late], [s for s, late in fresh if late]


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
    oldest = now - PAPER_HORIZON  # after a long pause, no stale papers
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
    """Selection → EmailMessage when an edition is queued; ledger row → the same again later.

    A retried or crash-recovered edition is rendered again from what its row recorded at
    queue time (``recorded``): the same papers, reasons and "N more" line, the same Message-ID.
    """

    def __init__(self, email: Email, store: Store, renderer: Renderer, links: Links) -> None:
        self.email = email
        self.store = store
        self.renderer = renderer
        self.links = links

    def render(
        self, selection: Selection, subscriber: Subscriber, now: dt.datetime, message_id: str
    ) -> tuple[EmailMessage, tuple[str, ...]]:
        """The digest for ``selection`` and the ids of the papers it shows."""
        ids = [sp.paper.id for sp in selection.papers]
        links = digest_links(self.links, subscriber.id, selection.edition_date, ids)
        rendered = self.renderer.digest(selection, subscriber, links, sent_at=now)
        message = build_message(
            rendered,
            to=subscriber.email,
            email=self.email,
            message_id=message_id,
            unsubscribe_url=links.unsubscribe,
            date=now,
            return_path=return_path(
                self.links.tokens, self.email.bounce_domain, subscriber.id, selection.edition_date
            )
            if self.email.bounce_domain
            else None,
        )
        return message, rendered.paper_ids

    def from_ledger(self, row: Delivery, subscriber: Subscriber, now: dt.datetime) -> EmailMessage:
        selection = recorded_selection(row, self.store.papers.by_ids(row.paper_ids))
        if not selection.papers:
            raise RenderError("none of this edition's papers is in the store any more")
        return self.render(selection, subscriber, now, row.message_id)[0]

    def __call__(self, row: Delivery, subscriber: Subscriber, now: dt.datetime) -> EmailMessage:
        return self.from_ledger(row, subscriber, now)


# --- queueing a run's editions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EditionPlan:
    """What one run queues: the editions due at ``now``, matched by ``select``, rendered and
    recorded ``batch_size`` at a time (``dry_run``: counted, nothing written or kept)."""

    now: dt.datetime
    clock: Clock  # ``now`` moving on: the Date of each message
    select: SelectFn
    email: Email  # the Message-ID derives from the sender's domain and the list id
    batch_size: int
    dry_run: bool = False
    late_cutoff: dt.timedelta = dt.timedelta(hours=LATE_CUTOFF_HOURS)  # then it is "missed"


def queue_editions(
    plan: EditionPlan, store: Store, composer: Composer, tally: Tally
) -> Iterator[list[Job]]:
    """Match, render and queue the due editions; yield each batch of queued jobs to send.

    Each job carries its rendered message; ``tally`` counts what was queued, skipped and failed.
    """
    now = plan.now
    for edition, subscribers, missed in plan_editions(store, now, cutoff=plan.late_cutoff):
        for sub in missed:
            if not plan.dry_run:
                store.ledger.record_missed(sub.id, edition, "not sent by its send hour", now)
            tally.missed += 1
        if not subscribers:
            continue
        by_id = {sub.id: sub for sub in subscribers}
        selections = select_editions(store, plan.select, subscribers, edition, now)
        for start in range(0, len(selections), plan.batch_size):
            queued: list[Job] = []
            failed: list[tuple[Delivery, str]] = []
            for selection in selections[start : start + plan.batch_size]:
                sub = by_id[selection.subscriber_id]
                if not selection.papers:
                    if not plan.dry_run:
                        store.ledger.record_skipped(sub.id, edition, "no new papers matched", now)
                    tally.skipped += 1
                    continue
                row = Delivery(
                    subscriber_id=sub.id,
                    edition_date=edition,
                    status=DeliveryStatus.QUEUED,
                    message_id=message_id_for(sub.id, edition, plan.email),
                    paper_ids=tuple(sp.paper.id for sp in selection.papers),
                )
                try:
                    message, shown = composer.render(selection, sub, plan.clock(), row.message_id)
                except RenderError as e:
                    failed.append((row, f"could not render: {e}"))
                    continue
                queued.append(Job(recorded(row, selection, shown), message))
            tally.queued += len(queued)
            for row, error in failed:
                tally.add(Outcome(row.subscriber_id, edition, "failed", error))
            if plan.dry_run:
                continue
            store.ledger.queue_many([job.row for job in queued] + [f for f, _ in failed], now)
            for row, error in failed:
                store.ledger.mark_failed(row.subscriber_id, edition, error, now=now)
            if queued:
                yield queued
