"""Dump ingestion: bytes → papers. ``parse_dump`` is pure; the file I/O is in ``source``.

    open_dump(path)  scan bytes (size cap, hash, encoding) → detect_format → count entries
                     (record cap) → OpenDump, whose ``chunks(n)`` parses n entries at a time
    read_dump(path)  the same file read whole into one Dump (small files: ``paperboy match``)
    parse_dump(data) decode → detect_format → hf_page | hf_api | arxiv_atom .parse → Dump

A whole file that cannot be used raises IngestError (one line, no file name: callers prefix
it); ``open_dump`` finds every such fault before the first chunk, so a refused file leaves
nothing stored. A bad entry inside a usable file is skipped or repaired with a ParseWarning.
Memory is bounded by the chunk, not the file: a 50 MB dump streams in a few dozen megabytes.
"""

from __future__ import annotations

import datetime as dt
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath

from pipeline.errors import DumpTooLarge, IngestError, TooManyRecords
from pipeline.ingest import arxiv_atom, hf_api, hf_page
from pipeline.ingest.common import ParsedEntries
from pipeline.ingest.detect import decode, detect_format
from pipeline.ingest.source import Source, scan, too_large
from pipeline.models import Dump, DumpHead, SourceFormat
from pipeline.papers import dump_id

__all__ = [
    "FORMAT_NAMES",
    "OpenDump",
    "ParsedEntries",
    "decode",
    "detect_format",
    "dump_date_for",
    "open_dump",
    "parse_dump",
    "read_dump",
]

PARSERS: dict[SourceFormat, Callable[[str, dt.date], ParsedEntries]] = {
    "hf_page": hf_page.parse,
    "hf_api": hf_api.parse,
    "arxiv_atom": arxiv_atom.parse,
}
FORMAT_NAMES: dict[SourceFormat, str] = {
    "hf_page": "Daily Papers page dump",
    "hf_api": "Daily Papers API JSON",
    "arxiv_atom": "arXiv Atom feed",
}
COUNTERS: dict[SourceFormat, Callable[[Source], int]] = {
    "hf_page": lambda source: hf_page.count(source.lines()),
    "hf_api": lambda source: hf_api.count(source.blocks()),
    "arxiv_atom": lambda source: arxiv_atom.count(source.blocks()),
}
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


def dump_date_for(name: str, explicit: dt.date | None, mtime: float) -> dt.date:
    """The file name's ISO date (``…_2026-07-03.txt``), else ``explicit``, else mtime's UTC date.

    Only the base name counts, and of several dates the last valid one, the suffix convention.
    """
    for year, month, day in reversed(_NAME_DATE.findall(PurePath(name).name)):
        try:
            return dt.date(int(year), int(month), int(day))
        except ValueError:
            continue
    if explicit is not None:
        return explicit
    return dt.datetime.fromtimestamp(mtime, tz=dt.UTC).date()


def parse_dump(data: bytes, name: str, dump_date: dt.date) -> Dump:
    """Parse one dump's bytes; raise IngestError only when the whole file is unusable."""
    text, warnings = decode(data)
    if not text.strip():
        raise IngestError("empty file: no papers to read")
    source_format = detect_format(text, name)
    parsed = PARSERS[source_format](text, dump_date)
    if not parsed.papers and not parsed.skipped:
        raise IngestError(f"no paper entries found in this {FORMAT_NAMES[source_format]}")
    return Dump(
        id=dump_id(data),
        name=PurePath(name).name,
        format=source_format,
        dump_date=dump_date,
        papers=parsed.papers,
        warnings=(*warnings, *parsed.warnings),
        skipped=parsed.skipped,
    )


class OpenDump:
    """A dump file checked whole and counted; ``chunks`` parses its entries a few at a time."""

    def __init__(self, source: Source, head: DumpHead) -> None:
        self.source = source
        self.head = head

    def chunks(self, size: int) -> Iterator[ParsedEntries]:
        """The entries, at most ``size`` per result; raises IngestError at the end when the
        file held no paper entry at all (nothing was stored from it, then)."""
        found = False
        for part in self._parts(size):
            found = found or bool(part.papers or part.skipped)
            yield part
        if not found:
            name = FORMAT_NAMES[self.head.format]
            raise IngestError(f"no paper entries found in this {name}")

    def _parts(self, size: int) -> Iterator[ParsedEntries]:
        day = self.head.dump_date
        if self.head.format == "hf_page":
            return hf_page.chunks(self.source.lines(), day, size)
        if self.head.format == "hf_api":
            return hf_api.chunks(self.source.blocks(), day, size)
        return arxiv_atom.chunks(self.source.blocks(), day, size)


def open_dump(
    path: Path, *, max_bytes: int, max_records: int, date: dt.date | None = None
) -> OpenDump:
    """Check a dump file whole — size, encoding, format, syntax, entry count — without
    keeping it in memory; raise IngestError (TooManyRecords past ``max_records``)."""
    source = scan(path, max_bytes)
    if not source.sample.strip() and not any(block.strip() for block in source.blocks()):
        raise IngestError("empty file: no papers to read")
    source_format = detect_format(source.sample, path.name)
    records = COUNTERS[source_format](source)
    if records > max_records:
        raise TooManyRecords(
            f"the dump holds {records:,} entries, over the {max_records:,}-entry cap "
            "(ingest.max_records); nothing of it was stored"
        )
    head = DumpHead(
        id=source.sha256,
        name=path.name,
        format=source_format,
        dump_date=dump_date_for(path.name, date, source.mtime),
        records=records,
        warnings=tuple(source.warnings),
    )
    return OpenDump(source, head)


def read_dump(path: Path, *, max_bytes: int, date: dt.date | None = None) -> Dump:
    """Read and parse one dump file, refusing files over ``max_bytes`` before reading them."""
    try:
        info = path.stat()
    except OSError as e:
        raise IngestError(f"cannot read the file: {e.strerror or e}") from e
    if not stat.S_ISREG(info.st_mode):
        raise IngestError("not a regular file")
    if info.st_size > max_bytes:
        raise DumpTooLarge(too_large(f"{info.st_size:,}", max_bytes))
    try:
        with path.open("rb") as file:
            # One byte past the cap tells a file that grew after stat() from one that fits.
            data = file.read(max_bytes + 1)
    except OSError as e:
        raise IngestError(f"cannot read the file: {e.strerror or e}") from e
    if len(data) > max_bytes:
        raise DumpTooLarge(too_large(f"more than {max_bytes:,}", max_bytes))
    return parse_dump(data, path.name, dump_date_for(path.name, date, info.st_mtime))
