"""The renderer: digests, their web view and the notices, from view models and templates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import jinja2

from pipeline.cleantext import cut_words, header_text, one_line, require_url
from pipeline.config import Config, Email, Topic, Web
from pipeline.errors import RenderError
from pipeline.matching.topics import load_catalog
from pipeline.models import RenderedEmail, Selection, Subscriber
from pipeline.render.compiler import (
    compiled_html,
    reference_html,
    source_environment,
    templates_version,
)
from pipeline.render.views import (
    NOTICE_LINKS,
    CardView,
    DigestLinks,
    DigestView,
    NoticeView,
    card_view,
    further_note,
    greeting,
    intro,
    local_hour,
    long_date,
    short_date,
    why,
)
from pipeline.resources import email_templates

CONTENTS_FROM = 3  # digests with this many papers or more open with a contents list
NoticeKind = Literal["confirm", "welcome", "goodbye"]


class Renderer:
    """Renders digests and notices; construct once, reuse for every email."""

    KINDS = ("digest", "confirm", "welcome", "goodbye")

    def __init__(
        self,
        email: Email,
        web: Web,
        topics: Mapping[str, Topic] | None = None,
        templates: Path | None = None,
    ) -> None:
        self.email = email
        self.folder = templates or email_templates()
        self.env = source_environment(self.folder)
        self.version = templates_version(self.folder)
        self._html = {k: compiled_html(self.env, f"{k}.mjml.j2", self.version) for k in self.KINDS}
        self._text = {k: self._get(f"{k}.txt.j2") for k in self.KINDS}
        self.brand = header_text(email.from_name, 60) or "paperboy"
        self.site = urlsplit(web.base_url).netloc or web.base_url
        self.postal = one_line(email.postal_address, 300)
        catalog = load_catalog(topics)
        self.topic_titles = {slug: catalog[slug].title for slug in catalog}

    @classmethod
    def from_config(cls, config: Config, templates: Path | None = None) -> Renderer:
        """For composition roots: the sections of ``config`` a renderer reads."""
        return cls(config.email, config.web, config.topics, templates)

    def _get(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateError as e:
            raise RenderError(f"template {name}: {e}") from e

    # digests

    def digest(
        self,
        selection: Selection,
        subscriber: Subscriber,
        links: DigestLinks,
        *,
        topics: Mapping[str, str] = {},
        sent_at: dt.datetime | None = None,
    ) -> RenderedEmail:
        """The edition's email; papers past ``email.max_html_bytes`` move into "N more".

        ``sent_at``: when it goes out, for the greeting (default: the reader's send hour)."""
        papers = selection.papers
        view = self.digest_view(selection, subscriber, links, topics=topics, sent_at=sent_at)
        html = self._html["digest"].render(v=view)
        budget = self.email.max_html_bytes
        if len(html.encode("utf-8")) > budget and len(papers) > 1:
            html, view = self._fit(selection, subscriber, links, topics, budget, sent_at)
        return RenderedEmail(
            subject=view.subject,
            preheader=view.preheader,
            html=html,
            text=self._text["digest"].render(v=view),
            paper_ids=tuple(sp.paper.id for sp in papers[: len(view.cards)]),
        )

    def _fit(
        self,
        selection: Selection,
        subscriber: Subscriber,
        links: DigestLinks,
        topics: Mapping[str, str],
        budget: int,
        sent_at: dt.datetime | None,
    ) -> tuple[str, DigestView]:
        """The most papers whose HTML fits the budget (binary search; at least one)."""
        papers = selection.papers

        def attempt(keep: int) -> tuple[str, DigestView]:
            capped = selection.model_copy(
                update={
                    "papers": papers[:keep],
                    "more_count": selection.more_count + len(papers) - keep,
                }
            )
            view = self.digest_view(capped, subscriber, links, topics=topics, sent_at=sent_at)
            return self._html["digest"].render(v=view), view

        best: tuple[str, DigestView] | None = None
        low, high = 1, len(papers) - 1  # all of them were already too many
        while low <= high:
            keep = (low + high) // 2
            html, view = attempt(keep)
            if len(html.encode("utf-8")) <= budget:
                best, low = (html, view), keep + 1
            else:
                high = keep - 1
        return best or attempt(1)

    def digest_view(
        self,
        selection: Selection,
        subscriber: Subscriber,
        links: DigestLinks,
        *,
        topics: Mapping[str, str] = {},
        web: bool = False,
        sent_at: dt.datetime | None = None,
    ) -> DigestView:
        """Everything the digest templates print, computed (and cleaned) here.

        ``web``: the edition's web view, which lists ``selection.more_papers`` under a heading
        of their own where the email only links to them."""
        day = selection.edition_date
        many = len(selection.papers) > 1
        cards = tuple(
            card_view(i, sp, links, top=many and i == 1) for i, sp in enumerate(selection.papers, 1)
        )
        more = selection.more_count
        further = (
            tuple(
                card_view(i, sp, links)
                for i, sp in enumerate(selection.more_papers, len(cards) + 1)
            )
            if web
            else ()
        )
        more_text = f"{more} more paper{'s' if more != 1 else ''} matched your interests"
        names = topics or self.topic_titles
        chosen = [one_line(names.get(slug, slug), 80) for slug in subscriber.profile.topics]
        subject = self._subject(cards, more, day)
        return DigestView(
            subject=subject,
            title=subject,
            preheader=self._preheader(cards, more),
            brand=self.brand,
            kicker=long_date(day),
            greeting=greeting(local_hour(subscriber, sent_at)),
            intro=intro(len(cards), day),
            contents=cards if len(cards) >= CONTENTS_FROM else (),
            cards=cards,
            more_text=more_text if more > 0 and not web else "",
            more_url=require_url(links.web, "web"),
            further_title=more_text if more > 0 and web else "",
            further_note=further_note(len(further), more),
            further=further,
            why=why(self.site, chosen, web=web),
            preferences_url=require_url(links.preferences, "preferences"),
            unsubscribe_url=require_url(links.unsubscribe, "unsubscribe"),
            web_url="" if web else require_url(links.web, "web"),  # the page is the web view
            postal_address=self.postal,
        )

    def web_edition(
        self,
        selection: Selection,
        subscriber: Subscriber,
        links: DigestLinks,
        *,
        topics: Mapping[str, str] = {},
    ) -> str:
        """The edition's web view: the email's HTML, every paper it showed (no size budget),
        then the further matches it counted in "N more", with their reasons."""
        view = self.digest_view(selection, subscriber, links, topics=topics, web=True)
        return self._html["digest"].render(v=view)

    def _subject(self, cards: Sequence[CardView], more: int, day: dt.date) -> str:
        if not cards:
            return f"{short_date(day)}: no new papers for you today"
        others = len(cards) - 1 + more
        top = cut_words(header_text(cards[0].title, 300), 90)
        return f"{short_date(day)}: {top}" + (f" (+{others} more)" if others else "")

    def _preheader(self, cards: Sequence[CardView], more: int) -> str:
        if len(cards) > 1:
            text = "Also: " + " · ".join(c.title for c in cards[1:4])
        elif cards:
            text = cards[0].reasons or cards[0].summary
        else:
            text = "Nothing matched your interests today; your next digest will."
        return cut_words(text, 140)

    def digest_html_reference(self, view: DigestView) -> str:
        """The same HTML by rendering and compiling MJML for this email (tests, debugging)."""
        return reference_html(self.env, "digest.mjml.j2", view)

    # notices

    def notice(
        self, kind: NoticeKind, *, to: str, links: Mapping[str, str], first_digest: str = ""
    ) -> RenderedEmail:
        """A confirm / welcome / goodbye email. ``links`` keys: see ``NOTICE_LINKS``;
        ``first_digest``: the welcome mail's when-it-comes (e.g. "tomorrow at 08:00, UTC")."""
        view = self.notice_view(kind, to=to, links=links, first_digest=first_digest)
        return RenderedEmail(
            subject=view.subject,
            preheader=view.preheader,
            html=self._html[kind].render(v=view),
            text=self._text[kind].render(v=view),
        )

    def notice_view(
        self, kind: NoticeKind, *, to: str, links: Mapping[str, str], first_digest: str = ""
    ) -> NoticeView:
        if kind not in NOTICE_LINKS:
            raise RenderError(f"unknown notice {kind!r}; expected one of {sorted(NOTICE_LINKS)}")
        urls = {}
        for key in NOTICE_LINKS[kind]:
            if key not in links:
                raise RenderError(f"the {kind} email needs a {key!r} link")
            urls[f"{key}_url"] = require_url(links[key], key)
        b = self.brand
        when = one_line(first_digest, 120) if kind == "welcome" else ""
        arrives = f"Your first digest arrives {when}." if when else ""
        subject, preheader = {
            "confirm": (
                f"Confirm your {b} subscription",
                "One click and your first digest is on its way.",
            ),
            "welcome": (
                f"Welcome to {b}",
                arrives or "Your first digest arrives at the hour you picked.",
            ),
            "goodbye": (f"You are unsubscribed from {b}", "No more digests. Come back any time."),
        }[kind]
        return NoticeView(
            subject=subject,
            title=subject,
            preheader=preheader,
            brand=b,
            kicker=self.site,
            to=header_text(to, 254),
            site=self.site,
            postal_address=self.postal,
            first_digest=when,
            **urls,
        )

    def notice_html_reference(self, kind: NoticeKind, view: NoticeView) -> str:
        return reference_html(self.env, f"{kind}.mjml.j2", view)
