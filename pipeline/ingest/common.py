"""Helpers shared by the dump parsers: text cleaning, URL sorting and the result collector."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable

from pipeline.models import Frozen, Paper, ParseWarning, SourceFormat
from pipeline.papers import bare_arxiv_id, paper_id

# Control characters that are not whitespace (str.split() already treats \t\n\v\f\r and
# \x1c-\x1f as whitespace). They have no place in a title and can break mail headers.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNCLEAN = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x9f\ud800-\udfff]")  # one scan for both
# Deliberately simple: no nested quantifiers, so a 300 KB abstract is scanned in linear time.
_URL = re.compile(r"https?://[^\s<>\"'`{}|\\^]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}'\""
# huggingface.co/papers/<id> is the paper page of an arXiv paper on the Hub.
_HF_PAPER = re.compile(r"huggingface\.co/papers/(\d{4}\.\d{4,5})", re.IGNORECASE)
_ISO_DATE = re.compile(r"\s*(\d{4}-\d{2}-\d{2})")
# Counts beyond a signed 32-bit integer are corrupt data, and would not fit every database.
MAX_COUNT = 2**31 - 1


class ParsedEntries(Frozen):
    """What one format parser made of a dump: good papers, warnings, entries dropped."""

    papers: tuple[Paper, ...] = ()
    warnings: tuple[ParseWarning, ...] = ()
    skipped: int = 0


def combine(parts: Iterable[ParsedEntries]) -> ParsedEntries:
    """The chunks of one parse as one result (papers, warnings and skips in order)."""
    papers: list[Paper] = []
    warnings: list[ParseWarning] = []
    skipped = 0
    for part in parts:
        papers.extend(part.papers)
        warnings.extend(part.warnings)
        skipped += part.skipped
    return ParsedEntries(papers=tuple(papers), warnings=tuple(warnings), skipped=skipped)


class Collector:
    """Accumulates one parse's papers and warnings; keeps the first of duplicate ids."""

    def __init__(self) -> None:
        self._papers: dict[str, Paper] = {}
        self._warnings: list[ParseWarning] = []
        self._skipped = 0

    def warn(self, where: str, message: str) -> None:
        self._warnings.append(ParseWarning(where=where, message=message))

    def skip(self, where: str, message: str) -> None:
        """Drop one entry, saying why; every skip is counted in ``Dump.skipped``."""
        self._skipped += 1
        self.warn(where, message + "; skipped")

    def add(self, paper: Paper, where: str) -> None:
        if paper.id in self._papers:
            # Two copies in one dump would reach the store as one merge anyway; dropping the
            # second keeps the dump's own list free of duplicates for the pure stages.
            self.skip(where, f"duplicate of an earlier entry with id {paper.id}")
            return
        self._papers[paper.id] = paper

    @property
    def entries(self) -> int:
        """Entries seen so far: papers kept and entries skipped."""
        return len(self._papers) + self._skipped

    def result(self) -> ParsedEntries:
        return ParsedEntries(
            papers=tuple(self._papers.values()),
            warnings=tuple(self._warnings),
            skipped=self._skipped,
        )


def clean_text(value: str) -> str:
    """Whitespace collapsed, control characters and lone surrogates removed; nothing else."""
    if _UNCLEAN.search(value):
        # JSON may carry "\ud800" escapes; an unpaired surrogate cannot be encoded to UTF-8.
        value = _CONTROL.sub("", _SURROGATE.sub("\ufffd", value))
    return " ".join(value.split())


def shorten(value: str, limit: int = 60) -> str:
    """A title as quoted in a warning: cleaned and cut to ``limit`` characters."""
    text = clean_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_iso_date(value: str) -> dt.date | None:
    """``2026-07-01T17:59:58.000Z`` → 2026-07-01; None when there is no valid date."""
    match = _ISO_DATE.match(value)
    if not match:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None


def as_count(value: object) -> tuple[int | None, str | None]:
    """A JSON count as an int ≥ 0, plus why it had to be repaired (None if it was fine).

    ``None`` stays None (absent); ``"12"`` becomes 12 and anything non-numeric becomes 0, each
    with a reason, because one badly typed field should not cost the reader the paper.
    """
    if value is None:
        return None, None
    if isinstance(value, bool):
        return 0, f"{value!r} is not a number; using 0"
    if isinstance(value, int):
        if 0 <= value <= MAX_COUNT:
            return value, None
        return 0, f"{shorten(str(value), 30)} is out of range; using 0"
    if isinstance(value, float):
        if math.isfinite(value) and 0 <= value <= MAX_COUNT and value.is_integer():
            return int(value), None
        return 0, f"{value!r} is not a whole number in range; using 0"
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        if (
            text.isascii()
            and text.isdigit()
            and len(text.lstrip("0")) <= 10
            and int(text) <= MAX_COUNT
        ):
            return int(text), f"{value!r} is a string; read as {int(text)}"
        return 0, f"{shorten(value, 30)!r} is not a number; using 0"
    return 0, f"a {type(value).__name__} is not a number; using 0"


def sort_urls(text: str) -> tuple[str | None, str | None, str | None]:
    """(arXiv id, code URL, project URL) from the links in free text; first of each wins."""
    arxiv_id: str | None = None
    code_url: str | None = None
    project_url: str | None = None
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_URL_TRAILING)
        host = url.split("/", 3)[2].lower() if url.count("/") >= 2 else ""
        host = host.rsplit("@", 1)[-1].split(":", 1)[0]
        if host == "arxiv.org" or host.endswith(".arxiv.org"):
            arxiv_id = arxiv_id or bare_arxiv_id(url)
        elif host in ("github.com", "www.github.com"):
            code_url = code_url or url
        elif (hub_paper := _HF_PAPER.search(url)) is not None:
            arxiv_id = arxiv_id or hub_paper.group(1)
        else:
            project_url = project_url or url
    return arxiv_id, code_url, project_url


def arxiv_links(arxiv_id: str | None) -> tuple[str | None, str | None]:
    """The canonical abstract and PDF URLs of an arXiv id (version-less, https)."""
    if not arxiv_id:
        return None, None
    return f"https://arxiv.org/abs/{arxiv_id}", f"https://arxiv.org/pdf/{arxiv_id}"


def make_paper(
    *,
    source_format: SourceFormat,
    arxiv_id: str | None,
    title: str,
    url: str | None = None,
    pdf_url: str | None = None,
    **fields: object,
) -> Paper:
    """A Paper with the id contract applied: arXiv links win over links the source gave."""
    abs_url, abs_pdf = arxiv_links(arxiv_id)
    return Paper.model_validate(
        {
            "id": paper_id(arxiv_id, title),
            "arxiv_id": arxiv_id,
            "title": title,
            "url": abs_url or url,
            "pdf_url": abs_pdf or pdf_url,
            "source_format": source_format,
            **fields,
        }
    )
