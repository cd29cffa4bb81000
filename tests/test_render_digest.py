"""What a digest says: a link for every paper, the header, contents, top pick, plain-word
reasons, the greeting for the reader's hour, and when a new reader's first digest comes."""

from __future__ import annotations

import datetime as dt
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from pipeline.config import Config
from pipeline.editions import first_digest, first_edition_at
from pipeline.models import (
    Frequency,
    Paper,
    Reason,
    RenderedEmail,
    ScoredPaper,
    Selection,
    Subscriber,
    SubscriberStatus,
)
from pipeline.render import Renderer
from pipeline.render.views import (
    SEARCH_LABEL,
    first_digest_words,
    greeting,
    local_hour,
    reason_words,
    title_search_url,
)
from tests.delivery_world import EDITION, NOW, links_for, make_paper, reader, scored
from tests.served import Served
from tests.test_confirm_states import form, sign_up

TITLE_ONLY = "Scaling laws for sparse & spiking models: what 10× buys?"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer.from_config(Config())


def page_paper(i: int) -> Paper:
    """A paper from a page dump: known by its title only (a ``t:`` id), no links at all."""
    return make_paper(
        i,
        id=f"t:{i:016x}",
        arxiv_id=None,
        url=None,
        pdf_url=None,
        code_url=None,
        project_url=None,
        github_stars=None,
        title=TITLE_ONLY,
    )


def digest_of(renderer: Renderer, papers: list[Paper]) -> RenderedEmail:
    selection = Selection(subscriber_id=42, edition_date=EDITION, papers=scored(papers))
    return renderer.digest(selection, reader(), links_for(42, [p.id for p in papers]))


class Titles(HTMLParser):
    """Each card title's link (href and inline style) and the contents list's anchors."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.titles: list[tuple[str, str]] = []
        self.anchors: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "pb-title" in a.get("class", ""):
            self.titles.append((a["href"], a.get("style", "")))
        elif tag == "a" and a.get("href", "").startswith("#"):
            self.anchors.append(a["href"])
        if tag == "h2" and a.get("id"):
            self.ids.append(a["id"])


def parsed(html: str) -> Titles:
    found = Titles()
    found.feed(html)
    return found


# --- 1. every paper has a link ------------------------------------------------------------


def test_a_title_only_paper_links_a_search_for_its_exact_title(renderer: Renderer) -> None:
    papers = [make_paper(0), page_paper(1)]
    out = digest_of(renderer, papers)
    titles = parsed(out.html).titles
    assert titles[0][0] == "https://huggingface.co/papers/2607.00000"
    search = titles[1][0]
    parts = urlsplit(search)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "huggingface.co", "/papers")
    assert parse_qs(parts.query) == {"q": [TITLE_ONLY]}  # the exact title, encoded
    assert search == title_search_url(TITLE_ONLY)
    # Labelled as a search in both parts.
    assert f'href="{search.replace("&", "&amp;")}"' in out.html and SEARCH_LABEL in out.html
    assert f"{SEARCH_LABEL}: {search}" in out.text


def test_every_title_is_visibly_a_link(renderer: Renderer) -> None:
    out = digest_of(renderer, [make_paper(0), page_paper(1), make_paper(2)])
    titles = parsed(out.html).titles
    assert len(titles) == 3
    for _, style in titles:
        assert "text-decoration:underline" in style and "color:#c2410c" in style


# --- 2. header, contents, top pick, reasons -----------------------------------------------


def test_header_says_the_date_and_how_many_papers(renderer: Renderer) -> None:
    out = digest_of(renderer, [make_paper(i) for i in range(4)])
    assert "Friday 3 July 2026 · 4 papers for you" in out.html
    assert "Friday 3 July 2026 · 4 papers for you" in out.text
    one = digest_of(renderer, [make_paper(0)])
    assert "1 paper for you" in one.text


def test_contents_list_links_each_card_from_three_papers_on(renderer: Renderer) -> None:
    out = digest_of(renderer, [make_paper(i) for i in range(5)])
    found = parsed(out.html)
    assert found.anchors == [f"#p{n}" for n in range(1, 6)]
    assert found.ids == [f"p{n}" for n in range(1, 6)]  # each anchor has its card
    assert "In this digest:" in out.text
    two = digest_of(renderer, [make_paper(0), make_paper(1)])
    assert parsed(two.html).anchors == [] and "In this digest" not in two.text


def test_top_pick_comes_first_with_its_full_ai_summary(renderer: Renderer) -> None:
    summary = "An AI summary that runs long. " * 15  # past a normal card's 320 characters
    papers = [make_paper(0, ai_summary=summary), make_paper(1, ai_summary=summary)]
    out = digest_of(renderer, papers)
    view = renderer.digest_view(
        Selection(subscriber_id=42, edition_date=EDITION, papers=scored(papers)),
        reader(),
        links_for(42, [p.id for p in papers]),
    )
    first, second = view.cards
    assert first.top == "Top pick" and second.top == ""
    assert len(first.summary) > 400 and len(second.summary) <= 320
    assert out.text.index("[Top pick] " + papers[0].title) < out.text.index(papers[1].title)
    assert out.html.index(">Top pick <") < out.html.index(f">{papers[1].title}</a></h2>")


def test_reasons_read_in_plain_words() -> None:
    topic = Reason(kind="topic", label="Spiking neural networks", terms=("spiking", "SNN"))
    assert reason_words(topic) == "Matches your topic Spiking neural networks (spiking, SNN)"
    title_only = Reason(
        kind="topic", label="Spiking neural networks", terms=("spiking neural networks",)
    )
    assert reason_words(title_only) == "Matches your topic Spiking neural networks"
    both = Reason(kind="topic", label="Robotics", terms=("robotics", "quadruped"))
    assert reason_words(both) == "Matches your topic Robotics (quadruped)"
    assert reason_words(Reason(kind="trending", upvotes=131)) == "131 upvotes on Hugging Face"
    assert reason_words(Reason(kind="trending", upvotes=1)) == "1 upvote on Hugging Face"
    assert reason_words(Reason(kind="interest", terms=("event cameras",))) == (
        "Matches your interest “event cameras”"
    )
    assert reason_words(Reason(kind="meaning", label="robot hands")) == (
        "Close in meaning to your interest “robot hands”"
    )
    assert reason_words(Reason(kind="liked", terms=("mamba",))) == (
        "Shares mamba with papers you liked"
    )
    assert reason_words(Reason(kind="author", label="Ada Lovelace")) == (
        "By Ada Lovelace, an author you follow"
    )
    assert reason_words(Reason(kind="text", label='topic: SNN — "spiking"')) == (
        'topic: SNN — "spiking"'  # recorded before reasons were data: as recorded
    )


def test_why_line_in_both_parts_and_no_repeated_upvote_badge(renderer: Renderer) -> None:
    paper = make_paper(0, upvotes=131)
    reasons = (
        Reason(kind="topic", label="Spiking neural networks", terms=("spiking", "SNN")),
        Reason(kind="trending", upvotes=131),
    )
    selection = Selection(
        subscriber_id=42,
        edition_date=EDITION,
        papers=(ScoredPaper(paper=paper, score=1.0, reasons=reasons),),
    )
    out = renderer.digest(selection, reader(), links_for(42, [paper.id]))
    line = "Matches your topic Spiking neural networks (spiking, SNN) · 131 upvotes on Hugging Face"
    assert line in out.html and f"Why: {line}" in out.text
    assert "&#9650;" not in out.html and "▲" not in out.html and "▲" not in out.text
    assert "topic:" not in out.text and "trending:" not in out.text


def test_text_part_keeps_the_html_order_and_links(renderer: Renderer) -> None:
    papers = [make_paper(3), page_paper(7), make_paper(1)]
    out = digest_of(renderer, papers)
    titles = parsed(out.html).titles
    cards = out.text.split("In this digest:")[1]
    positions = [cards.index(href) for href, _ in titles]
    assert positions == sorted(positions)  # the same links, in the same order
    html_order = [out.html.index(f">{escape(p.title, quote=False)}</a></h2>") for p in papers]
    assert html_order == sorted(html_order)


# --- the greeting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "words"),
    [(5, "Good morning"), (11, "Good morning"), (12, "Good afternoon"), (17, "Good afternoon"),
     (18, "Good evening"), (23, "Good evening"), (2, "Good evening")],
)  # fmt: skip
def test_greeting_fits_the_hour(hour: int, words: str) -> None:
    assert greeting(hour) == words


def test_greeting_uses_the_readers_clock_at_the_send(renderer: Renderer) -> None:
    berlin = reader(timezone="Europe/Berlin", send_hour=7)
    sent = dt.datetime(2026, 7, 3, 17, 30, tzinfo=dt.UTC)  # 19:30 in Berlin (summer time)
    assert local_hour(berlin, sent) == 19
    assert local_hour(berlin, None) == 7  # no send time: the reader's send hour
    selection = Selection(subscriber_id=42, edition_date=EDITION, papers=scored([make_paper(0)]))
    links = links_for(42, [make_paper(0).id])
    evening = renderer.digest(selection, berlin, links, sent_at=sent)
    assert evening.text.splitlines()[2] == "Good evening!"
    morning = renderer.digest(selection, berlin, links)
    assert morning.text.splitlines()[2] == "Good morning!"


# --- when the first digest comes ----------------------------------------------------------

SIX = dt.timedelta(hours=6)


def active(**fields: object) -> Subscriber:
    return reader(42, status=SubscriberStatus.ACTIVE, **fields)


def at(hour: int, minute: int = 0, day: int = 3) -> dt.datetime:
    return dt.datetime(2026, 7, day, hour, minute, tzinfo=dt.UTC)


def test_first_digest_before_the_send_hour_is_today() -> None:
    sub = active(timezone="Europe/Berlin", send_hour=8)
    assert first_digest(sub, at(4), SIX) == "today at 08:00, Europe/Berlin"  # 06:00 there


def test_first_digest_after_the_cutoff_is_tomorrow() -> None:
    sub = active(timezone="Europe/Berlin", send_hour=8)
    assert first_digest(sub, at(20), SIX) == "tomorrow at 08:00, Europe/Berlin"  # 22:00 there


def test_first_digest_owed_today_goes_out_shortly() -> None:
    sub = active(timezone="UTC", send_hour=7)
    assert first_edition_at(sub, at(9), SIX) == at(7).astimezone(dt.UTC)
    assert first_digest(sub, at(9), SIX) == "today, shortly (the 07:00 edition, UTC)"


def test_first_digest_of_a_weekly_reader_names_the_day() -> None:
    sub = active(timezone="UTC", send_hour=9, frequency=Frequency.WEEKLY, weekly_day=0)
    assert first_digest(sub, at(12), SIX) == "on Monday 6 July at 09:00, UTC"  # Fri 3 July


def test_first_digest_words_are_empty_without_a_moment() -> None:
    assert first_digest_words(NOW, None, "UTC") == ""
    pending = reader(status=SubscriberStatus.PENDING)
    assert first_digest(pending, NOW, SIX) == ""


def test_welcome_mail_says_when_the_first_digest_comes(renderer: Renderer) -> None:
    links = {"preferences": "https://x.example/p/t", "unsubscribe": "https://x.example/u/t"}
    when = "tomorrow at 08:00, Europe/Berlin"
    mail = renderer.notice("welcome", to="a@example.org", links=links, first_digest=when)
    assert f"Your first digest arrives {when}," in mail.text
    assert f"<strong>{when}</strong>" in mail.html
    assert mail.preheader == f"Your first digest arrives {when}."


def test_confirmed_page_and_welcome_mail_say_when_over_http(
    tmp_path: Path, backend_url: str
) -> None:
    """Confirming over real HTTP: the page and the welcome mail name the same moment."""
    with (
        Served(tmp_path, backend_url) as app,
        httpx.Client(base_url=app.base, timeout=30) as client,
    ):
        assert form("when@example.org")["timezone"] == "UTC"
        link = sign_up(app, client, "when@example.org")
        page = client.post(link)
        assert page.status_code == 200
        said = re.search(r"Your first digest arrives <strong>([^<]+)</strong>", page.text)
        assert said is not None, page.text
        moments = (
            "today at 07:00, UTC",
            "tomorrow at 07:00, UTC",
            "today, shortly (the 07:00 edition, UTC)",
        )
        assert said[1] in moments
        app.wait_for_links("when@example.org", "p", 1)
        welcome = [m for m in app.mails() if "Welcome" in str(m["Subject"])]
        body = welcome[0].get_body(("plain",))
        assert body is not None and f"arrives {said[1]}," in str(body.get_content())
