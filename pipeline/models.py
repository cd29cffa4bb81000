"""Frozen pydantic models: the only contracts that cross stage boundaries."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

SourceFormat = Literal["hf_page", "hf_api", "arxiv_atom"]


class Frozen(BaseModel):
    """Base for every contract model: immutable, and unknown fields are a bug."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Paper(Frozen):
    """One paper as paperboy knows it, whatever dump it came from."""

    id: str
    arxiv_id: str | None = None
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    authors_count: int | None = None
    organization: str | None = None
    published: dt.date | None = None
    upvotes: int = 0
    url: str | None = None
    pdf_url: str | None = None
    code_url: str | None = None
    project_url: str | None = None
    github_stars: int | None = None
    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    ai_summary: str | None = None
    source_format: SourceFormat

    def public_dict(self) -> dict[str, object]:
        """The JSON shape of ``paperboy ingest --json`` (dates as ISO strings, lists not tuples)."""
        return self.model_dump(mode="json")


class ParseWarning(Frozen):
    """A part of a dump that was skipped or repaired, and where it was."""

    where: str  # "line 42", "item 3", "entry 7"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class Dump(Frozen):
    """A parsed dump file: its identity, date, format, papers and what was skipped."""

    id: str
    name: str
    format: SourceFormat
    dump_date: dt.date
    papers: tuple[Paper, ...]
    warnings: tuple[ParseWarning, ...] = ()
    skipped: int = 0  # entries dropped by the parser (each has a warning)


class DumpHead(Frozen):
    """A dump file opened for streaming: what is known before its papers are read."""

    id: str
    name: str
    format: SourceFormat
    dump_date: dt.date
    records: int  # entries counted in the file (an upper bound for page text)
    warnings: tuple[ParseWarning, ...] = ()  # about the whole file (its encoding)


class IngestOutcome(Frozen):
    """What storing one dump did: counted per paper."""

    dump_id: str
    name: str
    format: SourceFormat | None
    new: int = 0
    merged: int = 0
    skipped: int = 0
    already_ingested: bool = False
    warnings: tuple[str, ...] = ()
    error: str | None = None
    moved_to: str | None = None  # archive/… or quarantine/… for inbox files


class SubscriberStatus(StrEnum):
    PENDING = "pending"  # signed up, not yet confirmed
    ACTIVE = "active"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"  # the mail server refused the address for good


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKDAYS = "weekdays"
    WEEKLY = "weekly"


Hour = Annotated[int, Field(ge=0, le=23)]
Weekday = Annotated[int, Field(ge=0, le=6)]  # Monday = 0, as datetime.weekday()


class Profile(Frozen):
    """What a subscriber wants to read about."""

    topics: tuple[str, ...] = ()
    interests: str = Field(default="", max_length=2000)
    authors: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_upvotes: int = Field(default=0, ge=0)
    max_papers: int = Field(default=10, ge=1, le=50)
    liked_terms: tuple[str, ...] = ()
    disliked_terms: tuple[str, ...] = ()
    # Terms the reader removed from the two lists above: never learned again from any vote.
    dismissed_terms: tuple[str, ...] = ()


class TermCounts(Frozen):
    """How many of the store's papers contain each asked-for term: its document frequency."""

    papers: int = Field(default=0, ge=0)  # how many papers were counted
    counts: dict[str, int] = Field(default_factory=dict)  # term (casefolded) → papers with it


class Subscriber(Frozen):
    """A reader and when they want their edition."""

    id: int
    email: str
    status: SubscriberStatus = SubscriberStatus.PENDING
    timezone: str = "UTC"
    send_hour: Hour = 7
    frequency: Frequency = Frequency.DAILY
    weekly_day: Weekday = 0
    profile: Profile = Profile()
    created_at: dt.datetime
    confirmed_at: dt.datetime | None = None
    last_edition: dt.date | None = None
    confirm_epoch: int = 0  # how many times the reader left; confirmation links carry it


ReasonKind = Literal["topic", "interest", "meaning", "liked", "author", "trending", "text"]


class Reason(Frozen):
    """Why a paper was picked, as data; ``text`` words it, and is the one place that does.

    The ledger records reasons in this form, so their wording can change without touching
    editions already recorded. What each kind holds, and how it reads:

        kind      label                  terms                          text
        topic     the topic's title      catalog keywords the paper     topic: T — "a", "b"
                                         holds, as the paper writes them
        interest  —                      the reader's items it met      interest: "a", "b"
        meaning   the reader's item      —                              close to your interest "a"
        liked     —                      liked terms the paper holds,   you liked: "a"
                                         as the paper writes them
        author    the author, as named   —                              author: A
        trending  —                      —  (``upvotes``)               trending: 12 upvotes
        text      a reason recorded as text before reasons were data: shown as recorded
    """

    kind: ReasonKind
    label: str = ""
    terms: tuple[str, ...] = ()
    upvotes: int = 0

    @property
    def text(self) -> str:
        quoted = ", ".join(f'"{t}"' for t in self.terms)
        match self.kind:
            case "topic":
                return f"topic: {self.label} — {quoted}" if quoted else f"topic: {self.label}"
            case "interest":
                return f"interest: {quoted}"
            case "meaning":
                return f'close to your interest "{self.label}"'
            case "liked":
                return f"you liked: {quoted}"
            case "author":
                return f"author: {self.label}"
            case "trending":
                return f"trending: {self.upvotes} upvote{'s' if self.upvotes != 1 else ''}"
            case "text":
                return self.label

    def __str__(self) -> str:
        return self.text


def _recorded_reasons(value: object) -> object:
    """Reasons as recorded: a plain string is a reason recorded before reasons were data."""
    if isinstance(value, list | tuple):
        return tuple(Reason(kind="text", label=v) if isinstance(v, str) else v for v in value)
    return value


# Reads both forms: Reason objects (or their JSON) and the strings of older ledger rows.
Reasons = Annotated[tuple[Reason, ...], BeforeValidator(_recorded_reasons)]


class ScoredPaper(Frozen):
    """A paper picked for one subscriber, with its score and the reasons it was picked."""

    paper: Paper
    score: float
    reasons: Reasons = ()


class Selection(Frozen):
    """One subscriber's edition: the papers to send, best first. Empty is a valid result."""

    subscriber_id: int
    edition_date: dt.date
    papers: tuple[ScoredPaper, ...] = ()
    more_count: int = 0  # matched but cut by max_papers or the size budget
    # The best of those ``more_count``, when the caller asked for them: shown on the edition's
    # web view under "more papers", never in the email, never recorded as sent.
    more_papers: tuple[ScoredPaper, ...] = ()


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    # The connection was lost after DATA's final dot, before the reply: perhaps delivered,
    # counted as a possible duplicate, never resent.
    SENT_AMBIGUOUS = "sent_ambiguous"
    DEFERRED = "deferred"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing matched: recorded so the edition is not reconsidered
    MISSED = "missed"  # not sent by its send hour + delivery.late_cutoff_hours: never sent


class Pick(Frozen):
    """One paper of a queued edition as it was picked, kept so that a resend shows the same."""

    paper_id: str
    score: float
    reasons: Reasons = ()  # older rows hold strings: read as kind "text"


class Delivery(Frozen):
    """A row of the deliveries ledger: one edition for one subscriber.

    ``paper_ids`` are the papers the first rendering showed, ``picks`` their scores and
    reasons, and ``more_count`` how many more matched: what a resend is rendered from.
    ``more_picks`` are the best of those further matches (capped), for the web view only:
    they were not sent, so ``mark_sent`` leaves them free for a later edition.
    """

    subscriber_id: int
    edition_date: dt.date
    status: DeliveryStatus
    message_id: str
    attempts: int = 0
    next_attempt_at: dt.datetime | None = None
    first_attempt_at: dt.datetime | None = None
    last_error: str | None = None
    server_reply: str | None = None
    paper_ids: tuple[str, ...] = ()
    picks: tuple[Pick, ...] = ()
    more_count: int = 0
    more_picks: tuple[Pick, ...] = ()
    updated_at: dt.datetime | None = None
    claim_id: str | None = None  # the claim that holds the row; its marks must carry it


class Pause(Frozen):
    """The circuit breaker's pause: no delivery before ``until``; ``trips`` is how many runs in
    a row tripped it (each doubles the pause), ``reason`` the one line saying why."""

    until: dt.datetime
    trips: int
    reason: str
    tripped_at: dt.datetime


class HealthReason(Frozen):
    """One condition that degrades health: ``name`` is breaker, run, matching or config."""

    name: str
    reason: str
    since: dt.datetime


class HealthReport(Frozen):
    """The health record: ``ok``, or ``degraded`` with one reason per condition."""

    reasons: tuple[HealthReason, ...] = ()

    @property
    def status(self) -> str:
        return "degraded" if self.reasons else "ok"


class RenderedEmail(Frozen):
    """One email's content from the renderer, before the message writer makes it MIME."""

    subject: str
    preheader: str
    html: str
    text: str
    paper_ids: tuple[str, ...] = ()  # the papers the email shows (the size budget may cut some)
