"""Parser for a text dump of the Hugging Face Daily Papers page (the page saved or copied as text).

An entry is a title, an abstract paragraph and a footer::

    Title line

    Abstract paragraph …

      • 7 authors            (or an organisation line: "SakanaAI Sakana AI")
    ·
    Mar 14, 2025 12          (or "Jun 2"; the trailing number is the upvote count)

The footer's date line is the anchor: everything between two footers belongs to one entry, so
missing blank lines, unknown lines or a lost footer damage one entry, never the whole dump.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pipeline.ingest.common import (
    Collector,
    ParsedEntries,
    clean_text,
    combine,
    make_paper,
    shorten,
    sort_urls,
)

CHROME = frozenset(
    {
        "new",
        "Get trending papers in your email inbox!",
        "Subscribe",
        "Daily Papers",
        "byAK and the research community",
    }
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE = re.compile(
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]{0,6}\.?\s+(\d{1,2})"
    r"(?:,\s*(\d{4}))?(?:\s+(\d{1,9}))?"
)
_DATE_INITIALS = frozenset(m[0] for m in _MONTHS)
_AUTHORS = re.compile(r"(?:[•·*\-]\s*)?(\d{1,6})\s+authors?", re.IGNORECASE)
_SEPARATOR = "·"
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_MAX_TITLE = 500  # longer than any real title: such a "title" is an abstract whose title is lost
_MAX_ORGANIZATION = 100
_GLUED_TITLE_ABSTRACT = 250
_MAX_LINK_LINE_TEXT = 24  # "Code: https://…", "Project page: https://…"
_MAX_LINK_LINE = 2048
_STEP = 4096  # lines read between two scans of a streamed page dump


@dataclass(frozen=True)
class _Footer:
    byline: int  # index of the first footer line (byline or separator)
    date_line: int
    end: int  # index after the footer
    authors_count: int | None
    organization: str | None
    published: dt.date | None
    upvotes: int


Paragraph = tuple[int, tuple[str, ...]]  # (index of its first line, its lines)


class _Page(Collector):
    """A collector that knows which line of the file its window starts at."""

    def __init__(self, base: int = 0) -> None:
        super().__init__()
        self.base = base

    def line(self, index: int) -> str:
        return f"line {self.base + index + 1}"


def parse(text: str, dump_date: dt.date) -> ParsedEntries:
    """Every entry of a page dump; chrome dropped, broken entries skipped with a warning."""
    return combine(chunks(text.split("\n"), dump_date, size=None))


def chunks(lines: Iterable[str], dump_date: dt.date, size: int | None) -> Iterator[ParsedEntries]:
    """The entries of the page text, ``size`` at a time (all at once if None).

    Lines are kept from the end of the last footer on; an entry never spans two results.
    """
    out = _Page()
    window: list[str] = []
    start = index = 0
    for line in lines:
        window.append(line.strip())
        if size is None or len(window) - index < _STEP:
            continue
        start, index = _scan(out, window, start, index, dump_date, final=False)
        if start:
            del window[:start]
            out.base += start
            index -= start
            start = 0
        if out.entries >= size:
            yield out.result()
            out = _Page(out.base)
    start, index = _scan(out, window, start, index, dump_date, final=True)
    _trailing(out, window, start)
    yield out.result()


def count(lines: Iterable[str]) -> int:
    """An upper bound of the entries: lines that look like a footer's date line."""
    dated = (line.strip() for line in lines)
    return sum(1 for line in dated if line and line[0] in _DATE_INITIALS and _DATE.fullmatch(line))


def _scan(
    out: _Page, lines: list[str], start: int, index: int, dump_date: dt.date, *, final: bool
) -> tuple[int, int]:
    """Read the entries whose footers lie in ``lines[index:]``; (entry start, index) after.

    Unless ``final``, the last line is left for later: a footer may go on below it.
    """
    stop = len(lines) if final else len(lines) - 1
    while index < stop:
        line = lines[index]
        if line and line[0] in _DATE_INITIALS and (date := _DATE.fullmatch(line)):
            footer = _footer_at(lines, index, start, date, dump_date, out)
            if footer is not None:
                _entry(out, lines, start, footer)
                start = index = footer.end
                continue
        index += 1
    return start, index


def _is_chrome(line: str) -> bool:
    return line in CHROME or line.startswith("Submitted by")


def _previous(lines: list[str], index: int, start: int) -> int | None:
    """The nearest line above ``index`` (not above ``start``) that is neither blank nor chrome."""
    for j in range(index - 1, start - 1, -1):
        if lines[j] and not _is_chrome(lines[j]):
            return j
    return None


def _footer_at(
    lines: list[str],
    index: int,
    start: int,
    date: re.Match[str],
    dump_date: dt.date,
    out: _Page,
) -> _Footer | None:
    """The footer ending in the date line at ``index``, or None if that line is not one.

    A date counts only after a "·" or an "N authors" line: the page's own date ("Jul 3")
    near the top has neither, and is chrome.
    """
    above = _previous(lines, index, start)
    if above is None:
        return None
    separator = lines[above] == _SEPARATOR
    byline = _previous(lines, above, start) if separator else above
    first = above
    authors_count: int | None = None
    organization: str | None = None
    if byline is not None and (authors := _AUTHORS.fullmatch(lines[byline])):
        authors_count, first = int(authors.group(1)), byline
    elif not separator:
        return None
    elif byline is not None and _is_organization(lines, byline, start):
        # "SakanaAI Sakana AI": the handle, then the display name readers know.
        handle_and_name = lines[byline].split(None, 1)
        organization, first = clean_text(handle_and_name[-1]), byline
    end = index + 1
    upvotes = int(date.group(4) or 0)
    # Some copies put the upvote count on a line of its own under the date.
    if date.group(4) is None and end < len(lines) and _is_count(lines[end]):
        upvotes, end = int(lines[end]), end + 1
    published = _resolve_date(date, dump_date)
    if published is None:
        out.warn(out.line(index), f"{lines[index]!r} is not a valid date; published left empty")
    return _Footer(first, index, end, authors_count, organization, published, upvotes)


def _is_count(line: str) -> bool:
    # isascii() first: str.isdigit() also accepts "²", which int() refuses.
    return line.isascii() and line.isdigit() and len(line) < 10


def _is_organization(lines: list[str], index: int, start: int) -> bool:
    line = lines[index]
    if len(line) > _MAX_ORGANIZATION or line.endswith(".") or _URL.search(line):
        return False
    # The entry's first line is its title, even when an abstract and a byline are missing.
    return _previous(lines, index, start) is not None


def _resolve_date(date: re.Match[str], dump_date: dt.date) -> dt.date | None:
    """``Mar 14, 2025`` as written; a year-less ``Jun 2`` is the latest one not after the dump."""
    month = _MONTHS.index(date.group(1)) + 1
    day = int(date.group(2))
    if date.group(3):
        try:
            return dt.date(int(date.group(3)), month, day)
        except ValueError:
            return None
    # Eight years back always reaches a leap year, so "Feb 29" resolves too.
    for year in range(dump_date.year, dump_date.year - 8, -1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            continue
        if candidate <= dump_date:
            return candidate
    return None


def _paragraphs(lines: list[str], start: int, stop: int) -> list[Paragraph]:
    """Runs of content lines; blank lines, chrome and a lone page date separate them."""
    paragraphs: list[Paragraph] = []
    current: list[str] = []
    first = start
    for index in range(start, stop):
        line = lines[index]
        separator = not line or _is_chrome(line) or line == _SEPARATOR
        if not separator and line[0] in _DATE_INITIALS and _DATE.fullmatch(line):
            separator = True  # the page's own date, e.g. "Jul 3" under the heading
        if separator:
            if current:
                paragraphs.append((first, tuple(current)))
                current = []
            continue
        if not current:
            first = index
        current.append(line)
    if current:
        paragraphs.append((first, tuple(current)))
    return paragraphs


def _is_link_paragraph(paragraph: Paragraph) -> bool:
    """A paragraph of link lines only ("Code: https://…"), as some copies put under abstracts."""
    return all(
        "://" in line
        and len(line) <= _MAX_LINK_LINE
        and len(_URL.sub("", line).strip()) <= _MAX_LINK_LINE_TEXT
        for line in paragraph[1]
    )


def _entry(out: _Page, lines: list[str], start: int, footer: _Footer) -> None:
    links: list[Paragraph] = []
    paragraphs: list[Paragraph] = []
    for paragraph in _paragraphs(lines, start, footer.byline):
        (links if _is_link_paragraph(paragraph) else paragraphs).append(paragraph)
    if not paragraphs:
        out.skip(out.line(footer.date_line), "author/date footer with no title above it")
        return
    extra, title_lines, abstract_lines = _split(paragraphs)
    if extra:
        where, text = out.line(extra[0][0]), shorten(extra[0][1][0])
        if len(extra) >= 2:
            out.skip(where, f"text {text!r} has no author/date footer (a lost entry?)")
        else:
            out.warn(where, f"unrecognised text {text!r} ignored")
    where = out.line(title_lines[0])
    title = clean_text(" ".join(title_lines[1]))
    if len(title) > _MAX_TITLE:
        out.skip(where, f"no title line (the first line is {len(title):,} characters long)")
        return
    if not title:
        out.skip(where, "entry has an empty title")
        return
    if any("\x00" in line for line in lines[start : footer.end]):
        out.skip(where, f"entry {shorten(title)!r} contains a NUL byte (a damaged entry)")
        return
    abstract = clean_text(" ".join(abstract_lines))
    link_text = " ".join(" ".join(p[1]) for p in links)
    arxiv_id, code_url, project_url = sort_urls(f"{abstract} {link_text}")
    paper = make_paper(
        source_format="hf_page",
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors_count=footer.authors_count,
        organization=footer.organization,
        published=footer.published,
        upvotes=footer.upvotes,
        code_url=code_url,
        project_url=project_url,
    )
    out.add(paper, where)


def _split(paragraphs: list[Paragraph]) -> tuple[list[Paragraph], Paragraph, tuple[str, ...]]:
    """(text before the entry, the title paragraph, the abstract's lines)."""
    if len(paragraphs) == 1:
        first, body = paragraphs[0]
        if len(body) > 1 and _glued(body):
            return [], (first, body[:1]), body[1:]
        return [], paragraphs[0], ()
    # The abstract is the paragraph right above the footer and the title the one above it;
    # anything higher is chrome we do not know or an entry that lost its footer.
    return paragraphs[:-2], paragraphs[-2], paragraphs[-1][1]


def _glued(body: tuple[str, ...]) -> bool:
    """Whether a paragraph of several lines is a title with its abstract glued on.

    The alternative is a title broken by a stray line end: titles are short and do not end in
    a full stop, abstracts are long and do.
    """
    if sum(len(line) for line in body) > _GLUED_TITLE_ABSTRACT:
        return True
    return body[-1].endswith(".") and not body[0].endswith(".")


def _trailing(out: _Page, lines: list[str], start: int) -> None:
    """Text after the last footer is an entry cut off by a truncated dump."""
    paragraphs = _paragraphs(lines, start, len(lines))
    if not paragraphs:
        return
    first, body = paragraphs[0]
    out.skip(
        out.line(first),
        f"entry {shorten(body[0])!r} is incomplete (no author/date footer; truncated dump?)",
    )
