"""Parser for an arXiv API Atom feed (``export.arxiv.org/api/query`` results saved to a file)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from itertools import chain

import defusedxml
import defusedxml.ElementTree as SafeET

from pipeline.errors import IngestError
from pipeline.ingest.common import (
    Collector,
    ParsedEntries,
    clean_text,
    combine,
    make_paper,
    parse_iso_date,
    shorten,
    sort_urls,
)
from pipeline.papers import bare_arxiv_id

ARXIV_NS = "{http://arxiv.org/schemas/atom}"
_API_ERROR = "arxiv.org/api/errors"


def parse(text: str, dump_date: dt.date) -> ParsedEntries:
    """Every ``<entry>`` of the feed; ids lose their version, wrapped lines are joined."""
    return combine(chunks([text], dump_date, size=None))


def chunks(blocks: Iterable[str], dump_date: dt.date, size: int | None) -> Iterator[ParsedEntries]:
    """The feed's entries, ``size`` at a time (all at once if None), parsed as the text comes:
    each ``<entry>`` is built on its own and dropped once read."""
    del dump_date  # Atom entries carry full ISO dates
    target = _Entries(keep=True)
    parser = _parser(target)
    out = Collector()
    number = 0
    for block in chain(blocks, [None]):
        _feed(parser, block)
        for entry in target.take():
            number += 1
            if number == 1:
                _refuse_api_error(entry, target.ns)
            _entry(out, f"entry {number}", entry, target.ns)
            if size is not None and out.entries >= size:
                yield out.result()
                out = Collector()
    yield out.result()


def count(blocks: Iterable[str]) -> int:
    """How many entries the feed has; raises IngestError if it is not a usable feed."""
    target = _Entries(keep=False)
    parser = _parser(target)
    for block in chain(blocks, [None]):
        _feed(parser, block)
    return target.seen


class _Entries:
    """A parser target that builds each ``<entry>`` under the root on its own tree builder."""

    def __init__(self, *, keep: bool) -> None:
        self.keep = keep
        self.ns = ""
        self.seen = 0
        self._depth = 0
        self._builder: ET.TreeBuilder | None = None
        self._done: list[ET.Element] = []

    def take(self) -> list[ET.Element]:
        done, self._done = self._done, []
        return done

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        if self._depth == 1:
            self.ns = tag[: tag.index("}") + 1] if tag.startswith("{") else ""
            if tag != f"{self.ns}feed":
                raise IngestError(f"XML root is <{tag.removeprefix(self.ns)}>, not an Atom <feed>")
        elif self._depth == 2 and tag == f"{self.ns}entry":
            self.seen += 1
            if self.keep:
                self._builder = ET.TreeBuilder()
        if self._builder is not None:
            self._builder.start(tag, attrs)

    def end(self, tag: str) -> None:
        if self._builder is not None:
            self._builder.end(tag)
            if self._depth == 2:
                self._done.append(self._builder.close())
                self._builder = None
        self._depth -= 1

    def data(self, data: str) -> None:
        if self._builder is not None:
            self._builder.data(data)

    def close(self) -> None:
        return None


def _parser(target: _Entries) -> ET.XMLParser:
    # arXiv feeds never declare a DOCTYPE; refusing one (and any entity or external
    # reference) rules out expansion bombs ("billion laughs") and XXE before they expand.
    parser: ET.XMLParser = SafeET.DefusedXMLParser(target=target, forbid_dtd=True)
    return parser


def _feed(parser: ET.XMLParser, block: str | None) -> None:
    """Feed one block of text, or end the document when ``block`` is None."""
    try:
        if block is None:
            parser.close()
        else:
            parser.feed(block)
    except defusedxml.DTDForbidden:
        raise IngestError(
            "XML with a <!DOCTYPE> declaration is refused (entity expansion guard); "
            "arXiv feeds have none"
        ) from None
    except defusedxml.DefusedXmlException as e:  # entities or external references
        raise IngestError(
            f"XML refused by the entity expansion guard ({e.__class__.__name__}); "
            "arXiv feeds have no entity declarations"
        ) from None
    except ET.ParseError as e:
        raise IngestError(f"invalid or truncated XML: {e}") from None
    except (ValueError, LookupError) as e:  # e.g. an encoding declaration Python does not know
        raise IngestError(f"unreadable XML: {shorten(str(e), 80)}") from None


def _refuse_api_error(entry: ET.Element, ns: str) -> None:
    """A query the arXiv API rejected comes back as a feed whose entry is an "Error"."""
    if _API_ERROR in (entry.findtext(f"{ns}id") or ""):
        summary = clean_text(entry.findtext(f"{ns}summary") or "no detail")
        raise IngestError(f"the arXiv API returned an error instead of papers: {shorten(summary)}")


def _text(element: ET.Element, tag: str) -> str:
    found = element.find(tag)
    return clean_text("".join(found.itertext())) if found is not None else ""


def _entry(out: Collector, where: str, entry: ET.Element, ns: str) -> None:
    raw_id = _text(entry, f"{ns}id")
    arxiv_id = bare_arxiv_id(raw_id)
    title = _text(entry, f"{ns}title")
    if not title:
        out.skip(where, f"{shorten(raw_id, 50)!r} has no <title>" if raw_id else "no <title>")
        return
    if arxiv_id is None:
        # Old-style ids (hep-th/9901001) and foreign feeds: the title key identifies them.
        message = f"id {shorten(raw_id, 50)!r} is not a new-style arXiv id; identified by title"
        out.warn(where, message if raw_id else "no <id>; identified by title")
    abstract = _text(entry, f"{ns}summary")
    authors = tuple(name for a in entry.findall(f"{ns}author") if (name := _text(a, f"{ns}name")))
    published = _date(out, where, entry, ns)
    page_url: str | None = raw_id if raw_id.startswith(("http://", "https://")) else None
    pdf_url: str | None = None
    for link in entry.findall(f"{ns}link"):
        href = clean_text(link.get("href", ""))
        if not href.startswith(("http://", "https://")):
            continue
        if link.get("title") == "pdf" or link.get("type") == "application/pdf":
            pdf_url = pdf_url or href
        elif link.get("rel", "alternate") == "alternate":
            page_url = href
    comment = _text(entry, f"{ARXIV_NS}comment")
    # Code and project links hide in the abstract or the comment ("Code: https://github…");
    # arXiv links there point at other papers, so their ids are not this entry's.
    _, code_url, project_url = sort_urls(f"{abstract} {comment}")
    paper = make_paper(
        source_format="arxiv_atom",
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors=authors,
        authors_count=len(authors) if authors else None,
        published=published,
        url=page_url,
        pdf_url=pdf_url,
        code_url=code_url,
        project_url=project_url,
        categories=_categories(entry, ns),
    )
    out.add(paper, where)


def _date(out: Collector, where: str, entry: ET.Element, ns: str) -> dt.date | None:
    raw = _text(entry, f"{ns}published") or _text(entry, f"{ns}updated")
    if not raw:
        return None
    published = parse_iso_date(raw)
    if published is None:
        out.warn(where, f"published {shorten(raw, 40)!r} is not an ISO date; left empty")
    return published


def _categories(entry: ET.Element, ns: str) -> tuple[str, ...]:
    """The primary category first, then the others in feed order, each once."""
    primary = entry.find(f"{ARXIV_NS}primary_category")
    terms = [primary.get("term", "")] if primary is not None else []
    terms += [c.get("term", "") for c in entry.findall(f"{ns}category")]
    return tuple(dict.fromkeys(t for t in (clean_text(t) for t in terms) if t))
