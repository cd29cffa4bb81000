"""Parser for the Hugging Face Daily Papers API JSON: an array of items, each with a ``paper``.

Fields are read from ``item["paper"]`` first and from the item itself second, because the API
has moved some of them (``ai_summary``, ``ai_keywords``, ``organization``) between the two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping

from pipeline.ingest import json_items
from pipeline.ingest.common import (
    Collector,
    ParsedEntries,
    as_count,
    clean_text,
    combine,
    make_paper,
    parse_iso_date,
    shorten,
)
from pipeline.ingest.json_items import kind
from pipeline.papers import bare_arxiv_id

# Wrappers seen around the array when a dump was saved from another endpoint or a script.
LIST_KEYS = ("papers", "items", "data", "results", "dailyPapers")


def parse(text: str, dump_date: dt.date) -> ParsedEntries:
    """Every usable item; bad items are skipped or repaired with a warning naming ``item N``."""
    return combine(chunks([text], dump_date, size=None))


def chunks(blocks: Iterable[str], dump_date: dt.date, size: int | None) -> Iterator[ParsedEntries]:
    """The items of the text in ``blocks``, ``size`` entries at a time (all at once if None)."""
    del dump_date  # every date this format needs is in the items themselves
    out = Collector()
    for item in json_items.items(blocks, LIST_KEYS):
        where = f"item {item.number}"
        if item.bad is not None:
            named = f" (id {shorten(item.hint, 40)!r})" if item.hint else ""
            out.skip(where, f"{item.bad}{named}")
        elif item.nul:
            out.skip(where, f"{_name(item.value)} contains a NUL byte (a damaged entry)")
        else:
            _item(out, where, item.value)
        if size is not None and out.entries >= size:
            yield out.result()
            out = Collector()
    yield out.result()


def count(blocks: Iterable[str]) -> int:
    """How many items the text holds; raises IngestError if it is not usable JSON."""
    return sum(1 for _ in json_items.items(blocks, LIST_KEYS))


def _name(value: object) -> str:
    """An item as a warning names it: its paper's id or title when it has one."""
    if isinstance(value, dict):
        inner = value.get("paper")
        fields = _Fields(inner if isinstance(inner, dict) else {}, value)
        for key in ("id", "title"):
            found = fields.get(key)
            if isinstance(found, str) and found.strip():
                return f"{key} {shorten(found, 40)!r}"
    return "the item"


class _Fields:
    """``paper.<key>`` when set, else the item's own ``<key>``."""

    def __init__(self, paper: Mapping[str, object], item: Mapping[str, object]) -> None:
        self._paper = paper
        self._item = item

    def get(self, key: str) -> object:
        value = self._paper.get(key)
        return self._item.get(key) if value is None else value


def _item(out: Collector, where: str, item: object) -> None:
    if not isinstance(item, dict):
        out.skip(where, f"is a JSON {kind(item)}, not an object")
        return
    paper = item.get("paper")
    if paper is not None and not isinstance(paper, dict):
        out.warn(where, f"'paper' is a {kind(paper)}, not an object; using the item's fields")
    fields = _Fields(paper if isinstance(paper, dict) else {}, item)

    raw_id = fields.get("id")
    arxiv_id: str | None = None
    if isinstance(raw_id, str):
        arxiv_id = bare_arxiv_id(raw_id)
        if arxiv_id is None and raw_id.strip():
            out.warn(where, f"id {shorten(raw_id, 40)!r} is not an arXiv id; identified by title")
    elif raw_id is not None:
        # A numeric 2607.01010 has already lost its trailing zero: never guess the digits.
        out.warn(where, f"id is a {kind(raw_id)}, not a string; identified by title")
    raw_title = fields.get("title")
    title = clean_text(raw_title) if isinstance(raw_title, str) else ""
    if not title:
        if raw_id is None and raw_title is None:
            reason = "'paper' is null and the item has" if paper is None else "has"
            out.skip(where, f"{reason} neither an id nor a title")
        else:
            out.skip(where, f"{_label(raw_id)} has no title")
        return
    withdrawn = fields.get("withdrawnAt")
    if withdrawn:
        when = parse_iso_date(withdrawn) if isinstance(withdrawn, str) else None
        out.skip(where, f"{shorten(title)!r} was withdrawn{f' on {when}' if when else ''}")
        return

    authors = _authors(out, where, fields.get("authors"))
    paper_out = make_paper(
        source_format="hf_api",
        arxiv_id=arxiv_id,
        title=title,
        abstract=_text(out, where, fields, "summary") or "",
        authors=authors,
        authors_count=len(authors) if authors else None,
        organization=_organization(fields.get("organization")),
        published=_date(out, where, fields.get("publishedAt")),
        upvotes=_count(out, where, fields, "upvotes") or 0,
        code_url=_url(out, where, fields, "githubRepo"),
        project_url=_url(out, where, fields, "projectPage"),
        github_stars=_count(out, where, fields, "githubStars"),
        keywords=_keywords(out, where, fields.get("ai_keywords")),
        ai_summary=_text(out, where, fields, "ai_summary"),
    )
    out.add(paper_out, where)


def _label(raw_id: object) -> str:
    return f"paper {shorten(raw_id, 40)!r}" if isinstance(raw_id, str) else "the item"


def _text(out: Collector, where: str, fields: _Fields, key: str) -> str | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        out.warn(where, f"{key} is a {kind(value)}, not a string; ignored")
        return None
    return clean_text(value) or None


def _count(out: Collector, where: str, fields: _Fields, key: str) -> int | None:
    value, problem = as_count(fields.get(key))
    if problem:
        out.warn(where, f"{key} {problem}")
    return value


def _url(out: Collector, where: str, fields: _Fields, key: str) -> str | None:
    value = _text(out, where, fields, key)
    if value is None:
        return None
    if not value.lower().startswith(("https://", "http://")) or " " in value:
        out.warn(where, f"{key} {shorten(value, 40)!r} is not an http(s) URL; ignored")
        return None
    return value


def _date(out: Collector, where: str, value: object) -> dt.date | None:
    if value is None:
        return None
    parsed = parse_iso_date(value) if isinstance(value, str) else None
    if parsed is None:
        out.warn(where, f"publishedAt {shorten(str(value), 40)!r} is not an ISO date; left empty")
    return parsed


def _authors(out: Collector, where: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        out.warn(where, f"authors is a {kind(value)}, not an array; ignored")
        return ()
    names: list[str] = []
    for author in value:
        name = author.get("name") if isinstance(author, dict) else author
        if isinstance(name, str) and (cleaned := clean_text(name)):
            names.append(cleaned)
    if len(names) < len(value):
        out.warn(where, f"{len(value) - len(names)} author(s) without a name ignored")
    return tuple(names)


def _keywords(out: Collector, where: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        out.warn(where, f"ai_keywords is a {kind(value)}, not an array; ignored")
        return ()
    keywords = (clean_text(k) for k in value if isinstance(k, str))
    return tuple(dict.fromkeys(k for k in keywords if k))


def _organization(value: object) -> str | None:
    if isinstance(value, dict):
        for key in ("fullname", "name"):
            name = value.get(key)
            if isinstance(name, str) and (cleaned := clean_text(name)):
                return cleaned
        return None
    return (clean_text(value) or None) if isinstance(value, str) else None
