"""Emails from data: Jinja2 (autoescape) → MJML compiled once per template → HTML, text, MIME.

MRML costs about half a millisecond per document, so a template is compiled once, not per
email. The MJML template is rendered once with *slots* for every per-email value, compiled,
and the compiled HTML becomes a small Jinja template that fills the slots (escaped) per email:

    digest.mjml.j2 ──Jinja, slots──▶ MJML ──mjml2html (once)──▶ HTML with slots ──▶ Jinja
                                                              per email: fill ──▶ HTML

Conditions and loops over per-email values are written with the ``when``/``each`` call blocks
(see ``templates/email/base.mjml.j2``), which leave markers in the compiled HTML that become
``{% if %}``/``{% for %}``. ``tests/test_render.py`` proves the result is byte-identical to
rendering and compiling each email. Everything here is pure apart from reading the template
files (once) and the DKIM key (once).
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.policy
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, formataddr
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import jinja2
import mjml
from markupsafe import Markup
from pydantic import Field

from pipeline.config import Config
from pipeline.errors import ConfigError, RenderError
from pipeline.models import Frozen, Paper, ScoredPaper, Selection, Subscriber
from pipeline.topics import load_catalog

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
NoticeKind = Literal["confirm", "welcome", "goodbye"]
NOTICE_LINKS: dict[str, tuple[str, ...]] = {
    "confirm": ("confirm",),
    "welcome": ("preferences", "unsubscribe"),
    "goodbye": ("home",),
}
# Headers are written pre-folded (set_raw) and must go out as written: the default policy would
# RFC 2047-encode a long List-Unsubscribe URL, which breaks it.
POLICY = email.policy.SMTP.clone(refold_source="none")
POLICY_UTF8 = POLICY.clone(utf8=True)  # for a message to or from a non-ASCII address
DKIM_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
)  # fmt: skip


# --- contracts --------------------------------------------------------------------------------


class RenderedEmail(Frozen):
    """One email's content, before it becomes a MIME message."""

    subject: str
    preheader: str
    html: str
    text: str
    paper_ids: tuple[str, ...] = ()  # the papers the email shows (the size budget may cut some)


class FeedbackLinks(Frozen):
    up: str
    down: str


class DigestLinks(Frozen):
    """The signed URLs one digest needs; built by the caller so rendering stays pure."""

    web: str
    preferences: str
    unsubscribe: str
    feedback: dict[str, FeedbackLinks] = Field(default_factory=dict)


# --- cleaning values --------------------------------------------------------------------------

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+")
_MESSAGE_ID = re.compile(r"<[^\s<>@]+@[^\s<>@]+>")
_URL_UNSAFE = re.compile(r"[\s<>\"'`\\\x00-\x1f\x7f]")


def one_line(value: str | None, limit: int = 300) -> str:
    """Text as one clean line: control characters dropped, whitespace collapsed, cut at a word."""
    if not value:
        return ""
    cap = limit * 2 + 200  # a 300 KB abstract is cut before it is cleaned, not after
    text = value[:cap]
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if _CONTROLS.search(text):
        text = _CONTROLS.sub("", text)
    text = " ".join(text.split())
    if len(value) > cap and len(text) <= limit:
        return text + "…"
    return cut_words(text, limit)


def cut_words(text: str, limit: int) -> str:
    """``text`` if it fits, else cut at the last word boundary before ``limit``, plus '…'."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—\u200c\u200d") + "…"  # a joiner cut from its pair joins nothing


def header_text(value: str, limit: int = 200) -> str:
    """A header-safe line: no CR/LF or other controls, no invisible format characters
    (bidi overrides that fake a subject, soft hyphens, zero-width spaces), but the joiners
    that emoji sequences (👩‍🔬) and Persian words need, and subdivision flags."""
    text = one_line(value, limit)
    if text.isascii():
        return text
    # Subdivision flags (🏴 + tag letters + cancel tag, e.g. Scotland's) are whole; tag
    # characters anywhere else are invisible and go with the rest.
    pieces, start = [], 0
    for flag in _SUBDIVISION_FLAG.finditer(text):
        pieces += [_visible(text[start : flag.start()]), flag.group()]
        start = flag.end()
    kept = "".join([*pieces, _visible(text[start:])])
    return kept.strip(" " + "".join(_JOINERS))  # a joiner at either end joins nothing


def _visible(text: str) -> str:
    return "".join(c for c in text if c in _JOINERS or unicodedata.category(c) not in _INVISIBLE)


_INVISIBLE = frozenset(("Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"))
# ZWNJ and ZWJ (both Cf) only say whether neighbouring characters join up; unlike bidi
# overrides they cannot reorder or hide text, so a subject keeps them.
_JOINERS = frozenset("\u200c\u200d")
# The subdivision flags emoji fonts draw (England, Scotland, Wales): 🏴 + tag letters +
# cancel tag. Only these, so a made-up tag run cannot smuggle invisible text into a header.
_SUBDIVISION_FLAG = re.compile(
    "|".join(
        "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in code) + "\U000e007f"
        for code in ("gbeng", "gbsct", "gbwls")
    )
)


def safe_url(value: str | None) -> str | None:
    """``value`` if it is an absolute http(s) URL that is safe in an attribute, else None."""
    if not value:
        return None
    url = value.strip()
    if len(url) > 2048 or _URL_UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


# --- view models: every value the templates print, precomputed --------------------------------

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
def reasons_text(reasons: tuple[str, ...]) -> str:
    return " · ".join(one_line(r, 160) for r in reasons[:3] if r.strip())


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


# --- the two-stage template compiler ----------------------------------------------------------

_MARK = re.compile(r"@@pb:(v|for|if|ifnot|end)(?::([A-Za-z_][\w.]*))?(?::([A-Za-z_][\w.]*))?@@")


class _Slot:
    """Stands for a per-email value while a template is compiled: prints as a marker."""

    __slots__ = ("_pb_path",)

    def __init__(self, path: str) -> None:
        self._pb_path = path

    def __getattr__(self, name: str) -> _Slot:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Slot(f"{self._pb_path}.{name}")

    def __html__(self) -> str:
        return f"@@pb:v:{self._pb_path}@@"

    __str__ = __html__

    def __bool__(self) -> bool:
        raise RenderError(f"template tests {self._pb_path} with `if`; use a `when` call block")

    def __iter__(self) -> Any:
        raise RenderError(f"template loops over {self._pb_path} with `for`; use `each`")


Caller = Callable[..., Markup]


def _reference_helpers() -> dict[str, Callable[..., Markup]]:
    """``when``/``each`` evaluated directly: what rendering each email from scratch does."""

    def each(items: Iterable[Any], caller: Caller) -> Markup:
        return Markup("").join(caller(item) for item in items)

    def when(value: Any, caller: Caller) -> Markup:
        return caller() if value else Markup("")

    def unless(value: Any, caller: Caller) -> Markup:
        return Markup("") if value else caller()

    return {"each": each, "when": when, "unless": unless, **_mj_aliases(each, when, unless)}


def _skeleton_helpers() -> dict[str, Callable[..., Markup]]:
    """``when``/``each`` that leave markers for the compiled template to turn into if/for."""
    count = iter(range(1, 1_000_000))

    def each(items: _Slot, caller: Caller) -> Markup:
        var = f"item{next(count)}"
        body = caller(_Slot(var))
        return Markup("@@pb:for:{}:{}@@{}@@pb:end@@").format(var, items._pb_path, body)

    def when(value: _Slot, caller: Caller) -> Markup:
        return Markup("@@pb:if:{}@@{}@@pb:end@@").format(value._pb_path, caller())

    def unless(value: _Slot, caller: Caller) -> Markup:
        return Markup("@@pb:ifnot:{}@@{}@@pb:end@@").format(value._pb_path, caller())

    def raw(helper: Callable[..., Markup]) -> Callable[..., Markup]:
        # Between MJML elements a marker must sit in <mj-raw>, which compiles to its content.
        def wrapped(value: Any, caller: Caller) -> Markup:
            head, body, end = _split_outer(helper(value, caller))
            return Markup("<mj-raw>{}</mj-raw>{}<mj-raw>{}</mj-raw>").format(head, body, end)

        return wrapped

    return {
        "each": each,
        "when": when,
        "unless": unless,
        "mj_each": raw(each),
        "mj_when": raw(when),
        "mj_unless": raw(unless),
    }


def _split_outer(out: Markup) -> tuple[Markup, Markup, Markup]:
    """(opening marker, body, closing marker) of a skeleton helper's output."""
    head_end = out.index("@@", 2) + 2
    tail = len("@@pb:end@@")
    return out[:head_end], out[head_end:-tail], out[-tail:]


def _mj_aliases(*helpers: Callable[..., Markup]) -> dict[str, Callable[..., Markup]]:
    each, when, unless = helpers
    return {"mj_each": each, "mj_when": when, "mj_unless": unless}


_FILL_ENV = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)


def _fill_template(html: str) -> jinja2.Template:
    """The compiled HTML as a Jinja template: literal text, with markers as if/for/values."""
    parts: list[str] = []
    open_blocks: list[str] = []
    pos = 0
    for match in _MARK.finditer(html):
        literal = html[pos : match.start()]
        if literal:
            if "{% endraw" in literal or "{%- endraw" in literal:
                raise RenderError("compiled template contains '{% endraw'; cannot build it")
            parts.append("{% raw %}" + literal + "{% endraw %}")
        kind, first, second = match.groups()
        if kind == "v":
            parts.append("{{ " + first + " }}")
        elif kind == "for":
            parts.append(f"{{% for {first} in {second} %}}")
            open_blocks.append("endfor")
        elif kind in ("if", "ifnot"):
            parts.append(f"{{% if {'not ' if kind == 'ifnot' else ''}{first} %}}")
            open_blocks.append("endif")
        else:
            parts.append("{% " + open_blocks.pop() + " %}")
        pos = match.end()
    if open_blocks:
        raise RenderError("unbalanced when/each markers in a compiled template")
    parts.append("{% raw %}" + html[pos:] + "{% endraw %}")
    return _FILL_ENV.from_string("".join(parts))


def compile_mjml(source: str) -> str:
    try:
        html: str = mjml.mjml2html(source, fonts={})
    except Exception as e:  # MRML raises plain exceptions with the parser's message
        raise RenderError(f"MJML did not compile: {e}") from e
    return _title_as_label(html)


_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_BODY_LABEL = re.compile(r'(<div aria-label=")((?:[^"\\]|\\.)*)(" aria-roledescription="email")')


def _title_as_label(html: str) -> str:
    """MRML copies <mj-title> verbatim into <title> but through Rust's debug escaping into the
    body's aria-label (``\\`` doubled, combining marks and joiners as ``\\u{…}``), which
    mangles Devanagari, emoji sequences and backslashes; label the body with the title as
    written instead. The title is escaped text, so it is safe in the attribute too."""
    title = _TITLE.search(html)
    if title is None:
        return html
    label = title.group(1).replace('"', "&#34;")
    return _BODY_LABEL.sub(lambda m: m.group(1) + label + m.group(3), html, count=1)


def source_environment(folder: Path) -> jinja2.Environment:
    """Templates from ``folder``; autoescape on for everything but the ``.txt.j2`` parts."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        # The .txt.j2 parts are text/plain: escaping would show "&amp;" to the reader.
        autoescape=lambda name: name is None or not name.endswith(".txt.j2"),  # noqa: S701
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


_COMPILED: dict[tuple[str, str], jinja2.Template] = {}


def compiled_html(env: jinja2.Environment, name: str, version: str) -> jinja2.Template:
    """The fill-in template for ``name``, compiled once per template version (process-wide)."""
    key = (name, version)
    if key not in _COMPILED:
        try:
            skeleton = env.get_template(name).render(v=_Slot("v"), **_skeleton_helpers())
        except jinja2.TemplateError as e:
            raise RenderError(f"template {name}: {e}") from e
        _COMPILED[key] = _fill_template(compile_mjml(skeleton))
    return _COMPILED[key]


def reference_html(env: jinja2.Environment, name: str, view: object) -> str:
    """The slow path: render the MJML template for this one email and compile it."""
    try:
        source = env.get_template(name).render(v=view, **_reference_helpers())
    except jinja2.TemplateError as e:
        raise RenderError(f"template {name}: {e}") from e
    return compile_mjml(source)


def templates_version(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.j2")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


# --- the renderer -----------------------------------------------------------------------------


class Renderer:
    """Renders digests and notices; construct once, reuse for every email."""

    KINDS = ("digest", "confirm", "welcome", "goodbye")

    def __init__(self, config: Config, templates: Path | None = None) -> None:
        self.config = config
        self.folder = templates or TEMPLATES
        self.env = source_environment(self.folder)
        self.version = templates_version(self.folder)
        self._html = {k: compiled_html(self.env, f"{k}.mjml.j2", self.version) for k in self.KINDS}
        self._text = {k: self._get(f"{k}.txt.j2") for k in self.KINDS}
        self.brand = header_text(config.email.from_name, 60) or "paperboy"
        self.site = urlsplit(config.web.base_url).netloc or config.web.base_url
        self.postal = one_line(config.email.postal_address, 300)
        catalog = load_catalog(config.topics)
        self.topic_titles = {slug: catalog[slug].title for slug in catalog}

    @classmethod
    def from_config(cls, config: Config) -> Renderer:
        return cls(config)

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
    ) -> RenderedEmail:
        """The edition's email; papers past ``email.max_html_bytes`` move into "N more"."""
        papers = selection.papers
        view = self.digest_view(selection, subscriber, links, topics=topics)
        html = self._html["digest"].render(v=view)
        budget = self.config.email.max_html_bytes
        if len(html.encode("utf-8")) > budget and len(papers) > 1:
            html, view = self._fit(selection, subscriber, links, topics, budget)
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
            view = self.digest_view(capped, subscriber, links, topics=topics)
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
    ) -> DigestView:
        """Everything the digest templates print, computed (and cleaned) here.

        ``web``: the edition's web view, which lists ``selection.more_papers`` under a heading
        of their own where the email only links to them."""
        day = selection.edition_date
        cards = tuple(card_view(i, sp, links) for i, sp in enumerate(selection.papers, 1))
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
            greeting=greeting(subscriber.send_hour),
            intro=intro(len(cards)),
            cards=cards,
            more_text=more_text if more > 0 and not web else "",
            more_url=_require_url(links.web, "web"),
            further_title=more_text if more > 0 and web else "",
            further_note=further_note(len(further), more),
            further=further,
            why=why(self.site, chosen, web=web),
            preferences_url=_require_url(links.preferences, "preferences"),
            unsubscribe_url=_require_url(links.unsubscribe, "unsubscribe"),
            web_url="" if web else _require_url(links.web, "web"),  # the page is the web view
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

    def notice(self, kind: NoticeKind, *, to: str, links: Mapping[str, str]) -> RenderedEmail:
        """A confirm / welcome / goodbye email. ``links`` keys: see ``NOTICE_LINKS``."""
        view = self.notice_view(kind, to=to, links=links)
        return RenderedEmail(
            subject=view.subject,
            preheader=view.preheader,
            html=self._html[kind].render(v=view),
            text=self._text[kind].render(v=view),
        )

    def notice_view(self, kind: NoticeKind, *, to: str, links: Mapping[str, str]) -> NoticeView:
        if kind not in NOTICE_LINKS:
            raise RenderError(f"unknown notice {kind!r}; expected one of {sorted(NOTICE_LINKS)}")
        urls = {}
        for key in NOTICE_LINKS[kind]:
            if key not in links:
                raise RenderError(f"the {kind} email needs a {key!r} link")
            urls[f"{key}_url"] = _require_url(links[key], key)
        b = self.brand
        subject, preheader = {
            "confirm": (
                f"Confirm your {b} subscription",
                "One click and your first digest is on its way.",
            ),
            "welcome": (f"Welcome to {b}", "Your first digest arrives at the hour you picked."),
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
            **urls,
        )

    def notice_html_reference(self, kind: NoticeKind, view: NoticeView) -> str:
        return reference_html(self.env, f"{kind}.mjml.j2", view)


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


def _require_url(value: str, what: str) -> str:
    url = safe_url(value)
    if url is None:
        raise RenderError(f"the {what} link {value!r} is not an http(s) URL")
    return url


# --- MIME -------------------------------------------------------------------------------------


def message_id_for(subscriber_id: int, edition: dt.date, config: Config) -> str:
    """``<digest.20260703.42.ab12cd34@example.org>``: the same for every resend of an edition."""
    domain = _ascii_domain(config.email.from_address.rpartition("@")[2] or "localhost")
    tag = hashlib.sha256(config.email.list_id.encode("utf-8")).hexdigest()[:8]
    return f"<digest.{edition:%Y%m%d}.{subscriber_id}.{tag}@{domain}>"


def build_message(
    rendered: RenderedEmail,
    *,
    to: str,
    config: Config,
    message_id: str,
    unsubscribe_url: str | None,
    date: dt.datetime,
) -> EmailMessage:
    """multipart/alternative (text + HTML), UTF-8, quoted-printable, list headers, DKIM."""
    e = config.email
    if date.tzinfo is None:
        raise RenderError("the Date of an email must be timezone-aware")
    if not _MESSAGE_ID.fullmatch(message_id):
        raise RenderError(f"invalid Message-ID {message_id!r}")
    msg = EmailMessage(policy=POLICY)
    msg.set_raw(
        "From", formataddr((header_text(e.from_name, 80), address(e.from_address)), "utf-8")
    )
    msg.set_raw("To", address(to))
    if e.reply_to:
        msg.set_raw("Reply-To", address(e.reply_to))
    msg.set_raw("Subject", encode_header("Subject", rendered.subject))
    msg.set_raw("Date", format_datetime(date))
    msg.set_raw("Message-ID", message_id)
    list_name = header_text(e.from_name, 80)
    msg.set_raw("List-Id", formataddr((list_name, header_text(e.list_id, 200)), "utf-8"))
    if unsubscribe_url is not None:
        targets = [f"<{_require_url(unsubscribe_url, 'unsubscribe')}>"]
        if e.unsubscribe_mailto:
            mailbox = address(e.unsubscribe_mailto)
            if not mailbox.isascii():  # a URL carries UTF-8 percent-encoded (RFC 6068)
                mailbox = quote(mailbox, safe="@")
            targets.append(f"<mailto:{mailbox}?subject=unsubscribe>")
        msg.set_raw("List-Unsubscribe", ",\r\n ".join(targets))
        msg.set_raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    msg.set_raw("MIME-Version", "1.0")
    # QP escapes '=', so a boundary starting with '=_' can never occur inside a part.
    boundary = "=_pb_" + hashlib.sha256(message_id.encode()).hexdigest()[:24]
    msg.set_raw("Content-Type", f'multipart/alternative;\r\n boundary="{boundary}"')
    msg.set_payload([_text_part("plain", rendered.text), _text_part("html", rendered.html)])
    if e.dkim_selector and e.dkim_domain and e.dkim_private_key_file:
        msg = dkim_sign(msg, config)
    return msg


def _text_part(subtype: str, content: str) -> MIMEPart:
    """A UTF-8 text part: quoted-printable for text/plain; 7-bit HTML (base64 if it must)."""
    part = MIMEPart(policy=POLICY)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    if "\r" in content:
        content = content.replace("\r\n", "\n").replace("\r", "\n")
    if subtype == "plain":
        part.set_raw("Content-Transfer-Encoding", "quoted-printable")
        part.set_payload(binascii.b2a_qp(content.encode("utf-8"), istext=True).decode("ascii"))
        return part
    seven_bit = html_7bit(content)
    if seven_bit is not None:
        part.set_raw("Content-Transfer-Encoding", "7bit")
        part.set_payload(seven_bit)
    else:
        part.set_raw("Content-Transfer-Encoding", "base64")
        part.set_payload(base64_lines(content.encode("utf-8")))
    return part


HTML_LINE = 900  # well under SMTP's 998, so nothing downstream rewraps it


def html_7bit(html: str) -> str | None:
    """The same document as ASCII in short lines, or None if it cannot be broken safely.

    Non-ASCII characters become character references (``&#220;``), and long lines are
    broken where a newline means exactly what a space means: between a tag's attributes
    (``" style="`` only occurs inside tags, text being escaped) or, failing that, at a space.
    Sending HTML this way is smaller than base64 and lets SMTP clients stream it untouched.
    """
    text = html.encode("ascii", "xmlcharrefreplace").decode("ascii")
    if len(text) <= HTML_LINE and "\n" not in text:
        return text + "\n"
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > HTML_LINE:
            cut = line.rfind(' style="', 0, HTML_LINE)
            if cut <= 0:
                cut = line.rfind(" ", 0, HTML_LINE)
            if cut <= 0:
                return None
            out.append(line[:cut])
            line = line[cut + 1 :]
        out.append(line)
    return "\n".join(out) + ("" if text.endswith("\n") else "\n")


def base64_lines(data: bytes) -> str:
    """Base64 in lines of 76 characters, each ending in a newline (RFC 2045)."""
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii")
    return "".join(encoded[i : i + 76] + "\n" for i in range(0, len(encoded), 76))


def message_bytes(message: EmailMessage) -> bytes:
    """The message as it goes on the wire: CRLF line ends, headers exactly as written.

    The same bytes as ``message.as_bytes(policy=POLICY)`` (``POLICY_UTF8`` for a non-ASCII
    address; a test holds them equal), written directly for the shape ``build_message`` makes;
    anything else goes through the generator.
    """
    fast = _flat(message, top=True)
    if fast is not None:
        return fast
    utf8 = any(isinstance(v, str) and not v.isascii() for _, v in message.raw_items())
    return message.as_bytes(policy=POLICY_UTF8 if utf8 else POLICY)


_BOUNDARY = re.compile(r'boundary="([^"\r\n]+)"')


def _flat(part: MIMEPart, top: bool = False) -> bytes | None:
    raw = part.raw_items()
    headers = []
    content_type = ""
    for name, value in raw:
        if not isinstance(value, str):
            return None
        if name.lower() == "content-type":
            content_type = value
        headers.append(f"{name}: " + "\r\n".join(value.splitlines()) + "\r\n")
    payload: Any = part.get_payload()
    if isinstance(payload, list):
        match = _BOUNDARY.search(content_type)
        if not content_type.startswith("multipart/") or match is None or not payload:
            return None
        boundary = match.group(1)
        chunks = []
        for sub in payload:
            flat = _flat(sub) if isinstance(sub, MIMEPart) else None
            if flat is None:
                return None
            chunks.append(flat)
        sep = f"\r\n--{boundary}\r\n".encode("ascii")
        body = (
            f"--{boundary}\r\n".encode("ascii")
            + sep.join(chunks)
            + f"\r\n--{boundary}--\r\n".encode("ascii")
        )
    elif isinstance(payload, str) and payload.isascii() and content_type.startswith("text/"):
        if "\r" in payload:
            payload = payload.replace("\r\n", "\n").replace("\r", "\n")
        body = payload.replace("\n", "\r\n").encode("ascii")
    else:
        return None
    if part.preamble is not None or part.epilogue is not None:
        return None
    # Headers are ASCII but for an internationalised address (RFC 6532), sent as UTF-8.
    return "".join(headers).encode("utf-8") + b"\r\n" + body


def encode_header(name: str, value: str) -> str:
    """One header value, cleaned of CR/LF, RFC 2047-encoded when not ASCII, folded at 78."""
    text = header_text(value, 250)
    first = 78 - len(name) - 2
    if text.isascii():
        return _fold_words(text.split(" "), first)
    # Base64 encoded-words of at most 75 characters, never splitting a character's bytes.
    words: list[str] = []
    chunk = bytearray()
    room = (first - 12) // 4 * 3
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > room:
            words.append(_encoded_word(chunk))
            chunk = bytearray()
            room = (78 - 1 - 12) // 4 * 3
        chunk += data
    words.append(_encoded_word(chunk))
    return "\r\n ".join(words)


def _encoded_word(data: bytes | bytearray) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(data, newline=False).decode("ascii") + "?="


def _fold_words(words: Sequence[str], first: int) -> str:
    """ASCII words joined by spaces, with a fold before any word that would pass column 78."""
    lines: list[str] = []
    line = ""
    room = first
    for word in words:
        if line and len(line) + 1 + len(word) > room:
            lines.append(line)
            line, room = word, 78 - 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def address(value: str) -> str:
    """A bare address safe for a header; RenderError when it is not exactly one address."""
    text = value.strip()
    if not _ADDRESS.fullmatch(text):
        raise RenderError(f"invalid email address {value!r}")
    local, _, domain = text.rpartition("@")
    if not local.isascii() and any(unicodedata.category(c) in _INVISIBLE for c in local):
        raise RenderError(f"invalid email address {value!r} (invisible characters)")
    # A non-ASCII local part (jörg@…) stays as it is (RFC 6532): the sender then needs SMTPUTF8.
    return f"{local}@{_ascii_domain(domain)}"


def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError as e:
        raise RenderError(f"invalid domain {domain!r}: {e}") from e


@lru_cache(maxsize=4)
def _dkim_key(path: str, mtime_ns: int) -> bytes:
    return Path(path).read_bytes()


def dkim_sign(message: EmailMessage, config: Config) -> EmailMessage:
    """A copy of ``message`` with a DKIM-Signature (relaxed/relaxed) over the list headers too."""
    import dkim

    e = config.email
    assert e.dkim_private_key_file is not None
    path = e.dkim_private_key_file
    try:
        key = _dkim_key(str(path), path.stat().st_mtime_ns)
    except OSError as err:
        raise ConfigError(
            f"email.dkim_private_key_file = {str(path)!r}: cannot read it ({err.strerror})"
        ) from err
    try:
        signature = dkim.sign(
            message_bytes(message),
            e.dkim_selector.encode("ascii"),
            e.dkim_domain.encode("ascii"),
            key,
            include_headers=list(DKIM_HEADERS),
            canonicalize=(b"relaxed", b"relaxed"),
            linesep=b"\r\n",
        )
    except (dkim.DKIMException, UnicodeError, ValueError) as err:
        raise ConfigError(f"email.dkim_*: cannot sign with this key and selector: {err}") from err
    name, _, value = signature.decode("ascii").partition(":")
    signed = EmailMessage(policy=POLICY)
    signed.set_raw(name, value.strip(" ").removesuffix("\r\n"))
    for header, raw in message.raw_items():
        signed.set_raw(header, raw)
    signed.set_payload(message.get_payload())
    return signed
