"""View models: every value the email templates print, precomputed and cleaned (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from pydantic import Field

from pipeline.cleantext import one_line, safe_url
from pipeline.models import Frozen, Paper, Reason, ScoredPaper

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
    title: str
    url: str | None
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


def paper_links(paper: Paper) -> tuple[str | None, tuple[LinkView, ...]]:
    """The title's link and the Code / Project / PDF / arXiv links, http(s) only."""
    arxiv = quote(paper.arxiv_id, safe=".") if paper.arxiv_id else None
    abs_url = f"https://arxiv.org/abs/{arxiv}" if arxiv else None
    title_url = safe_url(paper.url) or (f"https://huggingface.co/papers/{arxiv}" if arxiv else None)
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


def _compact(n: int) -> str:
    return f"{n / 1000:.1f}k".replace(".0k", "k") if n >= 1000 else str(n)


@dataclass(frozen=True, slots=True)
class _PaperParts:
    title: str
    url: str | None
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
        kicker=f"Published {paper_date(paper.published)}" if paper.published else "",
        byline=byline(paper),
        upvotes=str(paper.upvotes) if paper.upvotes > 0 else "",
        summary=one_line(paper.ai_summary or paper.abstract, 320),
        links=links,
    )


@lru_cache(maxsize=4096)
def reasons_text(reasons: tuple[Reason, ...]) -> str:
    """The first three reasons as one line; each reads as ``Reason.text`` words it (a reason
    recorded as a string before reasons were data reads as recorded)."""
    return " · ".join(one_line(r.text, 160) for r in reasons[:3] if r.text.strip())


def card_view(n: int, scored: ScoredPaper, links: DigestLinks) -> CardView:
    parts = paper_parts(scored.paper)
    feedback = links.feedback.get(scored.paper.id)
    return CardView(
        n=n,
        title=parts.title,
        url=parts.url,
        kicker=parts.kicker,
        byline=parts.byline,
        upvotes=parts.upvotes,
        summary=parts.summary,
        reasons=reasons_text(scored.reasons),
        links=parts.links,
        like_url=safe_url(feedback.up) if feedback else None,
        dislike_url=safe_url(feedback.down) if feedback else None,
    )


def greeting(send_hour: int) -> str:
    return (
        "Good morning" if send_hour < 12 else "Good afternoon" if send_hour < 18 else "Good evening"
    )


def intro(count: int) -> str:
    if count == 0:
        return "No new trending papers matched your interests today."
    noun = "paper" if count == 1 else "papers"
    return f"{count} trending {noun} picked for you, best match first."


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
