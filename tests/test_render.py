"""Rendering: a template compiled once gives the same HTML as compiling each email."""

from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import Config
from pipeline.errors import RenderError
from pipeline.models import Paper, Selection
from pipeline.render import Renderer, cut_words, one_line
from pipeline.resources import email_templates
from tests.delivery_world import EDITION, links_for, make_paper, reader, scored

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer.from_config(Config())


def selection(papers: list[Paper], more: int = 0, sid: int = 42) -> Selection:
    return Selection(
        subscriber_id=sid, edition_date=EDITION, papers=scored(papers), more_count=more
    )


class Audit(HTMLParser):
    """Collects what a mail client would execute or follow."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.handlers: list[tuple[str, str]] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name))
            if name in ("href", "src", "action", "formaction", "background", "xlink:href"):
                self.links.append(value or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def audit(html: str) -> Audit:
    parser = Audit()
    parser.feed(html)
    parser.close()
    return parser


HOSTILE = [
    "<script>alert('x')</script> Attention is all you need",
    '<img src=x onerror="alert(1)"> Diffusion',
    "{{ 7*7 }} and {% for x in range(3) %}loop{% endfor %}",
    '<mj-include path="/etc/passwd" /> MJML injection',
    "</mj-text></mj-column></mj-section><mj-raw><script>x()</script></mj-raw>",
    "\u202etxt.exe — RTL override",
    "🚀🧠 Emoji-only breakthroughs",
    "@@pb:v:v.unsubscribe_url@@ looks like a fill-in marker",
    '" onmouseover="alert(1)',
]


def hostile_papers() -> list[Paper]:
    urls = [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        'https://ok.example/" onmouseover="alert(1)',
        "vbscript:msgbox",
        "//no-scheme.example/x",
        "https://fine.example/paper",
        None,
        "http://fine.example/code",
    ]
    return [
        make_paper(
            i,
            title=title,
            abstract=title + " " + title,
            authors=(title[:40], '"><script>alert(2)</script>'),
            url=urls[i % len(urls)],
            code_url=urls[(i + 1) % len(urls)],
            project_url=urls[(i + 2) % len(urls)],
            pdf_url=urls[(i + 3) % len(urls)],
            arxiv_id=None,
            id=f"t:{i:016x}",
        )
        for i, title in enumerate(HOSTILE)
    ]


def test_fast_path_html_equals_compiling_each_email(renderer: Renderer) -> None:
    """HTML filled into the once-compiled template is byte-identical to compiling per email."""
    cases = [
        selection([make_paper(i) for i in range(10)], more=4),
        selection([make_paper(1, authors=(), organization="Sakana AI", upvotes=0)]),
        selection([make_paper(2, url=None, arxiv_id=None, code_url=None, project_url=None)]),
        selection([]),
        selection(hostile_papers(), more=1),
    ]
    for sel in cases:
        ids = [sp.paper.id for sp in sel.papers]
        sub = reader()
        fast = renderer.digest(sel, sub, links_for(42, ids)).html
        view = renderer.digest_view(sel, sub, links_for(42, ids))
        assert fast == renderer.digest_html_reference(view)
    # The web view, with further matches (hostile ones too) listed after the mailed papers.
    further = selection([make_paper(1)], more=len(HOSTILE)).model_copy(
        update={"more_papers": scored(hostile_papers())}
    )
    ids = [p.id for p in [make_paper(1), *hostile_papers()]]
    web = renderer.web_edition(further, reader(), links_for(42, ids))
    view = renderer.digest_view(further, reader(), links_for(42, ids), web=True)
    assert web == renderer.digest_html_reference(view)
    assert not audit(web).tags & {"script", "img", "iframe", "form"} and not audit(web).handlers


def test_notice_fast_path_equals_compiling_each_email(renderer: Renderer) -> None:
    """Confirm, welcome and goodbye mails are the same through both paths."""
    links = {
        "confirm": "https://papers.example.org/c/tok",
        "preferences": "https://papers.example.org/p/tok",
        "unsubscribe": "https://papers.example.org/u/tok",
        "home": "https://papers.example.org/",
    }
    for kind in ("confirm", "welcome", "goodbye"):
        rendered = renderer.notice(kind, to="a&b@example.org", links=links)
        view = renderer.notice_view(kind, to="a&b@example.org", links=links)
        assert rendered.html == renderer.notice_html_reference(kind, view)
        assert "a&amp;b@example.org" in rendered.html
        assert links[{"confirm": "confirm", "welcome": "preferences", "goodbye": "home"}[kind]] in (
            rendered.html
        )


texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=60)
urls = st.one_of(
    st.none(), st.sampled_from(["https://a.example/x?y=1&z=2", "javascript:x", "http://b.example"])
)


@settings(
    max_examples=int(os.environ.get("PB_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    papers=st.lists(
        st.builds(
            lambda i, title, abstract, authors, org, url, code, up, summary: make_paper(
                i,
                title=title,
                abstract=abstract,
                authors=tuple(authors),
                organization=org,
                url=url,
                code_url=code,
                upvotes=up,
                ai_summary=summary,
            ),
            i=st.integers(0, 9999),
            title=texts,
            abstract=texts,
            authors=st.lists(texts, max_size=4),
            org=st.one_of(st.none(), texts),
            url=urls,
            code=urls,
            up=st.integers(0, 5000),
            summary=st.one_of(st.none(), texts),
        ),
        max_size=4,
        unique_by=lambda p: p.id,
    ),
    more=st.integers(0, 3),
    hour=st.integers(0, 23),
)
def test_fast_path_equals_compiling_for_any_text(
    renderer: Renderer, papers: list[Paper], more: int, hour: int
) -> None:
    """Whatever the dump text, the fast path and per-email compilation agree."""
    sel = selection(papers, more)
    sub = reader(send_hour=hour)
    links = links_for(42, [p.id for p in papers])
    assert renderer.digest(sel, sub, links).html == renderer.digest_html_reference(
        renderer.digest_view(sel, sub, links)
    )


def test_hostile_titles_stay_literal_text(renderer: Renderer) -> None:
    """Markup, template syntax and script URLs in dump text never become code or links."""
    papers = hostile_papers()
    rendered = renderer.digest(selection(papers), reader(), links_for(42, [p.id for p in papers]))
    found = audit(rendered.html)
    assert not found.tags & {"script", "img", "iframe", "object", "embed", "form", "mj-include"}
    assert not [t for t in found.tags if t.startswith("mj-")]
    assert found.handlers == []
    # Links leave for http(s) pages, or jump to a card of this digest (the contents list).
    assert found.links and all(
        link.startswith(("https://", "http://")) or re.fullmatch(r"#p\d+", link)
        for link in found.links
    )
    assert not any('"' in link or " " in link for link in found.links)
    text = "".join(found.text)
    for title in HOSTILE:
        assert one_line(title) in text  # shown, literally
    assert "{{ 7*7 }}" in text and "49" not in text
    assert "{{ 7*7 }}" in rendered.text and "javascript:" not in rendered.text.lower()


class Title(HTMLParser):
    """The <title> text and the body's aria-label, as a mail client or screen reader reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.labels: list[str] = []
        self.tags: set[str] = set()
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_title = tag == "title"
        self.labels += [value or "" for name, value in attrs if name == "aria-label"]

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)


@pytest.mark.parametrize(
    "title",
    [
        "हिन्दी भाषा मॉडल",  # virama and vowel signs: combining marks
        "C:\\models\\new & <b>bold</b> \"quoted\" 'single'",
        "Café ünïcode 🚀 — Zürich",
        "Vie\u0301t Nam, composed by NFC; e\u0308\u0301 is not",
        "</title><script>alert(1)</script> breakout",
    ],
)
def test_the_html_title_is_the_subject_as_written(renderer: Renderer, title: str) -> None:
    """<title> and the body's aria-label read exactly as the subject: no character dropped,
    replaced or shown as an escape sequence, and no markup; both render paths agree."""
    papers = [make_paper(0, title=title)]
    links = links_for(42, [papers[0].id])
    out = renderer.digest(selection(papers), reader(), links)
    parsed = Title()
    parsed.feed(out.html)
    parsed.close()
    assert out.subject == f"Fri 3 Jul: {one_line(title)}"
    assert "".join(parsed.title) == out.subject
    assert parsed.labels == [out.subject]
    assert "script" not in parsed.tags
    view = renderer.digest_view(selection(papers), reader(), links)
    assert out.html == renderer.digest_html_reference(view)


def test_ten_paper_digest_is_under_60_kb(renderer: Renderer) -> None:
    """A full 10-paper digest (every field and link present) stays well below Gmail's clip."""
    papers = [make_paper(i, abstract="word " * 400) for i in range(10)]
    html = renderer.digest(selection(papers, 5), reader(), links_for(42, [p.id for p in papers]))
    assert len(html.html.encode()) <= 60_000
    assert html.paper_ids == tuple(p.id for p in papers)


def test_size_budget_moves_papers_into_more_count() -> None:
    """Past email.max_html_bytes the last papers are left out and counted as 'N more'."""
    config = Config()
    config.email.max_html_bytes = 20_000
    small = Renderer.from_config(config)
    papers = [make_paper(i) for i in range(10)]
    out = small.digest(selection(papers, more=2), reader(), links_for(42, [p.id for p in papers]))
    assert len(out.html.encode()) <= 20_000
    kept = len(out.paper_ids)
    assert 1 <= kept < 10
    assert out.paper_ids == tuple(p.id for p in papers[:kept])
    assert f"{10 - kept + 2} more papers matched" in out.html
    one_more = small.digest(
        selection(papers[: kept + 1], more=10 - kept - 1 + 2),
        reader(),
        links_for(42, [p.id for p in papers]),
    )
    assert len(one_more.paper_ids) == kept  # the budget really was the limit


def test_summary_prefers_ai_summary_else_abstract_cut_at_a_word(renderer: Renderer) -> None:
    """ai_summary is shown when present; a long abstract is cut at a word boundary with '…'."""
    long = "Spiking networks " * 60
    with_summary = make_paper(1, ai_summary="A one-line summary.", abstract=long)
    without = make_paper(2, ai_summary=None, abstract=long)
    view = renderer.digest_view(
        selection([with_summary, without]), reader(), links_for(42, ["2607.00001", "2607.00002"])
    )
    assert view.cards[0].summary == "A one-line summary."
    cut = view.cards[1].summary
    assert cut.endswith("…") and len(cut) <= 321
    assert long.startswith(cut[:-1]) and cut[-2] != " " and cut[:-1].split()[-1] in long.split()
    assert cut_words("short text", 100) == "short text"


def test_card_shows_authors_or_organisation_and_known_links_only(renderer: Renderer) -> None:
    """Authors (3, then 'and N more') or the organisation; Code/Project/PDF/arXiv when known."""
    org = make_paper(1, authors=(), organization="SakanaAI Sakana AI", code_url=None)
    view = renderer.digest_view(
        selection([make_paper(0), org]), reader(), links_for(42, ["2607.00000", "2607.00001"])
    )
    first, second = view.cards
    assert first.byline == "Ada Lovelace, Alan Turing, Grace Hopper and 1 more"
    assert [link.label for link in first.links] == ["Code ★ 1.2k", "Project", "PDF", "arXiv"]
    assert first.links[2].url == "https://arxiv.org/pdf/2607.00000"
    assert second.byline == "SakanaAI Sakana AI"
    assert [link.label for link in second.links] == ["Project", "PDF", "arXiv"]
    # The why-line says the upvotes in words, so the ▲ badge does not repeat them.
    assert first.upvotes == "" and "200 upvotes on Hugging Face" in first.reasons
    assert first.kicker == "Published 1 Jul 2026"


def test_digest_has_greeting_date_footer_and_feedback_links(renderer: Renderer) -> None:
    """Greeting by send hour, long date, topics, postal address, 👍/👎 and unsubscribe links."""
    papers = [make_paper(0)]
    links = links_for(42, ["2607.00000"])
    out = renderer.digest(selection(papers, more=3), reader(send_hour=19), links)
    text = "".join(audit(out.html).text)
    assert "Good evening" in text and "Friday 3 July 2026" in text
    assert "3 more papers matched your interests" in text
    assert Config().email.postal_address in text
    for url in (links.unsubscribe, links.preferences, links.web, links.feedback["2607.00000"].up):
        assert url in out.html and url in out.text
    assert 'lang="en"' in out.html and 'name="color-scheme" content="light dark"' in out.html
    assert "<img" not in out.html  # nothing to block: it reads the same without images
    assert "fonts.googleapis.com" not in out.html  # and it fetches nothing when opened
    assert out.subject == "Fri 3 Jul: " + papers[0].title + " (+3 more)"


def test_every_email_and_the_web_view_declare_one_language(renderer: Renderer) -> None:
    """<html> and the body's role="article" element both say lang="en" (MRML writes "und"
    on both when the template gives no language), in digests, the web view and notices."""
    papers = [make_paper(0)]
    links = links_for(42, [papers[0].id])
    sel = selection(papers, more=1).model_copy(update={"more_papers": scored([make_paper(1)])})
    pages = {
        "digest": renderer.digest(sel, reader(), links).html,
        "web view": renderer.web_edition(sel, reader(), links),
    }
    urls = {
        k: f"https://papers.example.org/{k}"
        for k in ("confirm", "preferences", "unsubscribe", "home")
    }
    for kind in ("confirm", "welcome", "goodbye"):
        pages[kind] = renderer.notice(kind, to="a@example.org", links=urls).html
    for name, html in pages.items():
        found = re.findall(r'<(html|div)\b[^>]*?\blang="([^"]*)"', html)
        assert [tag for tag, _ in found] == ["html", "div"], name
        assert {lang for _, lang in found} == {"en"}, name


def test_the_web_view_lists_further_matches_the_email_only_counts(renderer: Renderer) -> None:
    """The email says "2 more papers matched" and links to the web view; the web view shows
    them as cards with reasons under that heading, and its footer neither links to itself nor
    calls itself an email. Both render paths agree."""
    papers = [make_paper(i) for i in range(3)]
    ranked = scored(papers)
    sel = Selection(
        subscriber_id=42,
        edition_date=EDITION,
        papers=ranked[:1],
        more_count=2,
        more_papers=ranked[1:],
    )
    links = links_for(42, [p.id for p in papers])
    mail = renderer.digest(sel, reader(), links)
    assert "2 more papers matched your interests" in mail.html
    assert papers[1].title not in mail.html and papers[1].title not in mail.text
    web = renderer.web_edition(sel, reader(), links)
    text = "".join(audit(web).text)
    heading = text.index("2 more papers matched your interests")
    assert text.index(papers[0].title) < heading < text.index(papers[1].title)
    assert text.index(papers[1].title) < text.index(papers[2].title)
    assert "198 upvotes on Hugging Face" in text[heading:]
    # No link to itself ("N more →", "View in browser"), and the footer speaks of the page.
    assert links.web not in web and "View in browser" not in web
    assert "View in browser" in mail.html and links.web in mail.html
    assert "You get this email" in mail.html and "You get this email" not in text
    assert "This edition was picked for you because" in text
    view = renderer.digest_view(sel, reader(), links, web=True)
    assert web == renderer.digest_html_reference(view)


def test_empty_selection_renders_a_nothing_new_digest(renderer: Renderer) -> None:
    """An edition with no papers still renders (for preview); it says so."""
    out = renderer.digest(selection([]), reader(), links_for(42, []))
    assert "no new trending papers matched" in out.text
    assert out.paper_ids == ()


def test_notices_need_their_links_and_only_http_links(renderer: Renderer) -> None:
    """A notice without its link, or with a non-http(s) one, is a RenderError."""
    with pytest.raises(RenderError, match="confirm"):
        renderer.notice("confirm", to="a@example.org", links={})
    with pytest.raises(RenderError, match="not an http"):
        renderer.notice("goodbye", to="a@example.org", links={"home": "javascript:alert(1)"})


def test_a_template_testing_values_with_if_is_refused(tmp_path: Path) -> None:
    """Conditions must use `when`: a plain `if` on a per-email value fails at compile time."""
    folder = tmp_path / "email"
    shutil.copytree(email_templates(), folder)
    (folder / "goodbye.mjml.j2").write_text(
        '{% extends "base.mjml.j2" %}{% block content %}<mj-section><mj-column><mj-text>'
        "{% if v.home_url %}x{% endif %}</mj-text></mj-column></mj-section>{% endblock %}"
    )
    with pytest.raises(RenderError, match="use a `when` call block"):
        Renderer.from_config(Config(), templates=folder)


def test_golden_digest(renderer: Renderer) -> None:
    """One digest's HTML and text match tests/golden/ (PAPERBOY_REGEN_GOLDEN=1 rewrites them)."""
    papers = [make_paper(i) for i in range(3)] + [
        make_paper(3, authors=(), organization="Example Lab", code_url=None, github_stars=None)
    ]
    topics = {"snn": "Spiking neural networks", "llm-inference": "LLM inference"}
    links = links_for(42, [p.id for p in papers])
    out = renderer.digest(selection(papers, more=2), reader(), links, topics=topics)
    GOLDEN.mkdir(exist_ok=True)
    for name, content in (("digest.html", out.html), ("digest.txt", out.text)):
        path = GOLDEN / name
        if os.environ.get("PAPERBOY_REGEN_GOLDEN") == "1":
            path.write_text(content, encoding="utf-8")
        assert path.read_text(encoding="utf-8") == content, f"{name} changed; see {path}"


def test_compiled_once_per_template_version(renderer: Renderer) -> None:
    """A second renderer reuses the compiled templates; MJML is not compiled again."""
    from pipeline.render import compiler

    before = dict(compiler._COMPILED)
    again = Renderer.from_config(Config())
    assert before == compiler._COMPILED
    assert again._html["digest"] is renderer._html["digest"]
