"""View models: every value the email templates print, precomputed and cleaned (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from pipeline.cleantext import one_line, safe_url
from pipeline.models import Frozen, Paper, Reason, ScoredPaper, Subscriber

NOTICE_LINKS: dict[str, tuple[str, ...]] = {
    "confirm": ("confirm",),
    "welcome": ("preferences", "unsubscribe"),
    "goodbye": ("home",),
}


class FeedbackLinks(Frozen):
    up: str
    down: str


class DigestLinks(Frozen):
    """The signed URLs one digest needs; built by the caller so rendering stays pure."""

    web: str
    preferences: str
    unsubscribe: str
    feedback: dict[str, FeedbackLinks] = Field(default_factory=dict)


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS_LONG = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class LinkView:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class CardView:
    n: int
    anchor: str  # the card's id, which the contents list links to
    top: str  # "Top pick" on the first card of a digest with more than one
    title: str
    url: str | None
    url_label: str  # set when the title's link is a search, not the paper's page
    kicker: str
    byline: str
    upvotes: str
    summary: str
    reasons: str
    links: tuple[LinkView, ...]
    like_url: str | None
    dislike_url: str | None


@dataclass(frozen=True, slots=True)
class DigestView:
    subject: str
    title: str
    preheader: str
    brand: str
    kicker: str
    greeting: str
    intro: str
    contents: tuple[CardView, ...]  # the cards again, for the contents list (3 or more)
    cards: tuple[CardView, ...]
    more_text: str
    more_url: str
    further_title: str  # the web view's "more papers" section; empty in the email
    further_note: str
    further: tuple[CardView, ...]
    why: str
    preferences_url: str
    unsubscribe_url: str
    web_url: str
    postal_address: str


@dataclass(frozen=True, slots=True)
class NoticeView:
    subject: str
    title: str
    preheader: str
    brand: str
    kicker: str
    to: str
    site: str
    postal_address: str
    confirm_url: str = ""
    preferences_url: str = ""
    unsubscribe_url: str = ""
    home_url: str = ""
    first_digest: str = ""  # the welcome mail's when-it-comes: "today at 08:00, UTC"


def long_date(day: dt.date) -> str:
    return f"{DAYS[day.weekday()]} {day.day} {MONTHS_LONG[day.month - 1]} {day.year}"


def short_date(day: dt.date) -> str:
    return f"{DAYS[day.weekday()][:3]} {day.day} {MONTHS[day.month - 1]}"


def paper_date(day: dt.date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def byline(paper: Paper) -> str:
    names = [one_line(a, 80) for a in paper.authors[:3] if a.strip()]
    if names:
        total = max(paper.authors_count or 0, len(paper.authors))
        shown = ", ".join(names[:3])
        return shown if total <= 3 else f"{shown} and {total - 3} more"
    if paper.organization:
        return one_line(paper.organization, 120)
    if paper.authors_count:
        return f"{paper.authors_count} authors"
    return ""


HF_PAPERS = "https://huggingface.co/papers"
SEARCH_LABEL = "Search on Hugging Face"


def title_search_url(title: str) -> str:
    """A search for the paper's exact title on the Daily Papers site."""
    return f"{HF_PAPERS}?{urlencode({'q': title}, quote_via=quote)}"


def paper_links(paper: Paper) -> tuple[str | None, tuple[LinkView, ...]]:
    """The title's link and the Code / Project / PDF / arXiv links, http(s) only.

    Every paper with a title gets a title link: its own page, its Hugging Face page, or, for
    a paper known only by its title (page dumps), a search for that title (see ``is_search``)."""
    arxiv = quote(paper.arxiv_id, safe=".") if paper.arxiv_id else None
    abs_url = f"https://arxiv.org/abs/{arxiv}" if arxiv else None
    title = one_line(paper.title, 1000)  # the search wants the whole title
    title_url = (
        safe_url(paper.url)
        or (f"{HF_PAPERS}/{arxiv}" if arxiv else None)
        or (title_search_url(title) if title else None)
    )
    code = safe_url(paper.code_url)
    stars = f" ★ {_compact(paper.github_stars)}" if code and paper.github_stars else ""
    candidates = (
        ("Code" + stars, code),
        ("Project", safe_url(paper.project_url)),
        ("PDF", safe_url(paper.pdf_url) or (f"https://arxiv.org/pdf/{arxiv}" if arxiv else None)),
        ("arXiv", abs_url),
    )
    links = tuple(LinkView(label, url) for label, url in candidates if url)
    return title_url, links


def is_search(url: str | None) -> bool:
    return bool(url) and str(url).startswith(f"{HF_PAPERS}?")


def _compact(n: int) -> str:
    return f"{n / 1000:.1f}k".replace(".0k", "k") if n >= 1000 else str(n)


@dataclass(frozen=True, slots=True)
class _PaperParts:
    title: str
    url: str | None
    url_label: str
    kicker: str
    byline: str
    upvotes: str
    summary: str
    links: tuple[LinkView, ...]


@lru_cache(maxsize=4096)
def paper_parts(paper: Paper) -> _PaperParts:
    """What a card shows of a paper; cached, as one day's papers recur in many digests."""
    url, links = paper_links(paper)
    return _PaperParts(
        title=one_line(paper.title, 300) or "(untitled)",
        url=url,
        url_label=SEARCH_LABEL if is_search(url) else "",
        kicker=f"Published {paper_date(paper.published)}" if paper.published else "",
        byline=byline(paper),
        upvotes=str(paper.upvotes) if paper.upvotes > 0 else "",
        summary=one_line(paper.ai_summary or paper.abstract, 320),
        links=links,
    )


TOP_SUMMARY_CHARS = 600


def _listed(terms: Sequence[str]) -> str:
    return ", ".join(one_line(t, 60) for t in terms[:4])


def reason_words(reason: Reason) -> str:
    """One reason in plain words for the reader (``Reason.text`` is the terse ledger form)."""
    terms = _listed(reason.terms)
    label = one_line(reason.label, 120)
    match reason.kind:
        case "topic":
            # The topic's own title quoted back ("Spiking neural networks (spiking neural
            # networks)") tells the reader nothing; the other terms found do.
            own = " ".join(reason.label.split()).casefold()
            found = _listed([t for t in reason.terms if " ".join(t.split()).casefold() != own])
            return f"Matches your topic {label}" + (f" ({found})" if found else "")
        case "interest":
            noun = "interest" if len(reason.terms) == 1 else "interests"
            return f"Matches your {noun} " + ", ".join(
                f"“{one_line(t, 60)}”" for t in reason.terms[:4]
            )
        case "meaning":
            return f"Close in meaning to your interest “{label}”"
        case "liked":
            return f"Shares {terms} with papers you liked"
        case "author":
            return f"By {label}, an author you follow"
        case "trending":
            n = reason.upvotes
            return f"{n} upvote{'s' if n != 1 else ''} on Hugging Face"
        case _:
            return one_line(reason.label, 160)


@lru_cache(maxsize=4096)
def reasons_text(reasons: tuple[Reason, ...]) -> str:
    """The first three reasons as one line, in plain words (a reason recorded as a string
    before reasons were data reads as recorded)."""
    return " · ".join(w for w in (reason_words(r) for r in reasons[:3]) if w.strip())


def card_view(n: int, scored: ScoredPaper, links: DigestLinks, *, top: bool = False) -> CardView:
    parts = paper_parts(scored.paper)
    feedback = links.feedback.get(scored.paper.id)
    says_upvotes = any(r.kind == "trending" for r in scored.reasons[:3])
    summary = parts.summary
    if top and scored.paper.ai_summary:
        summary = one_line(scored.paper.ai_summary, TOP_SUMMARY_CHARS)
    return CardView(
        n=n,
        anchor=f"p{n}",
        top="Top pick" if top else "",
        title=parts.title,
        url=parts.url,
        url_label=parts.url_label,
        kicker=parts.kicker,
        byline=parts.byline,
        upvotes="" if says_upvotes else parts.upvotes,  # the why-line says it in words
        summary=summary,
        reasons=reasons_text(scored.reasons),
        links=parts.links,
        like_url=safe_url(feedback.up) if feedback else None,
        dislike_url=safe_url(feedback.down) if feedback else None,
    )


def greeting(local_hour: int) -> str:
    """A greeting for the reader's wall-clock hour (0-23) when the digest is sent."""
    if 5 <= local_hour < 12:
        return "Good morning"
    if 12 <= local_hour < 18:
        return "Good afternoon"
    return "Good evening"


def local_hour(subscriber: Subscriber, sent_at: dt.datetime | None) -> int:
    """The reader's wall-clock hour at ``sent_at`` (their send hour when not given)."""
    if sent_at is None:
        return subscriber.send_hour
    try:
        zone = ZoneInfo(subscriber.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return sent_at.astimezone(zone).hour


def intro(count: int, day: dt.date) -> str:
    """The header line under the greeting: the date and how many papers."""
    if count == 0:
        return f"{long_date(day)}: no new trending papers matched your interests."
    noun = "paper" if count == 1 else "papers"
    return f"{long_date(day)} · {count} {noun} for you, best match first."


def first_digest_words(local_now: dt.datetime, due: dt.datetime | None, zone: str) -> str:
    """When the first digest comes, in words: "today at 08:00, Europe/Berlin", "tomorrow at
    …", or "on Monday 7 December at …"; ``due`` is on the reader's wall clock (the moment of
    an edition that is owed already may lie before ``local_now``: "today, shortly")."""
    if due is None:
        return ""
    hhmm = f"{due.hour:02d}:{due.minute:02d}"
    clock = f"{hhmm}, {zone}"
    days = (due.date() - local_now.date()).days
    if days == 0:
        return (
            f"today at {clock}"
            if due > local_now
            else f"today, shortly (the {hhmm} edition, {zone})"
        )
    if days == 1:
        return f"tomorrow at {clock}"
    return f"on {DAYS[due.weekday()]} {due.day} {MONTHS_LONG[due.month - 1]} at {clock}"


def further_note(listed: int, more: int) -> str:
    """The line under the web view's "N more papers matched" heading."""
    if more <= 0:
        return ""
    if listed == 0:
        return "They were not kept with this edition, so they cannot be listed here."
    if listed < more:
        return f"They did not fit in your email. Here are the best {listed}, best match first."
    return "They did not fit in your email. Here they are, best match first."


def why(site: str, topics: Sequence[str], *, web: bool = False) -> str:
    """The footer's reason for the mail (or, on the web view, for the edition)."""
    opening = "This edition was picked for you" if web else "You get this email"
    if not topics:
        return f"{opening} because you subscribed on {site} and told us your interests."
    listed = topics[0] if len(topics) == 1 else ", ".join(topics[:-1]) + " and " + topics[-1]
    return f"{opening} because you subscribed on {site} to {listed}."
