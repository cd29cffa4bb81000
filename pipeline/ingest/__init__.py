"""Dump ingestion: bytes → Dump. ``parse_dump`` is pure; ``read_dump`` is the only file I/O.

    read_dump(path)  stat (size cap) → read bytes → dump_date_for → parse_dump
    parse_dump(data) decode → detect_format → hf_page | hf_api | arxiv_atom .parse → Dump

A whole file that cannot be used raises IngestError (one line, no file name: callers prefix
it). A bad entry inside a usable file is skipped or repaired with a ParseWarning instead.
"""

from __future__ import annotations

import datetime as dt
import re
import stat
from collections.abc import Callable
from pathlib import Path, PurePath

from pipeline.errors import DumpTooLarge, IngestError
from pipeline.ingest import arxiv_atom, hf_api, hf_page
from pipeline.ingest.common import ParsedEntries
from pipeline.ingest.detect import decode, detect_format
from pipeline.models import Dump, SourceFormat
from pipeline.papers import dump_id

__all__ = [
    "FORMAT_NAMES",
    "ParsedEntries",
    "decode",
    "detect_format",
    "dump_date_for",
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


def read_dump(path: Path, *, max_bytes: int, date: dt.date | None = None) -> Dump:
    """Read and parse one dump file, refusing files over ``max_bytes`` before reading them."""
    try:
        info = path.stat()
    except OSError as e:
        raise IngestError(f"cannot read the file: {e.strerror or e}") from e
    if not stat.S_ISREG(info.st_mode):
        raise IngestError("not a regular file")
    if info.st_size > max_bytes:
        raise DumpTooLarge(_too_large(f"{info.st_size:,}", max_bytes))
    try:
        with path.open("rb") as file:
            # One byte past the cap tells a file that grew after stat() from one that fits.
            data = file.read(max_bytes + 1)
    except OSError as e:
        raise IngestError(f"cannot read the file: {e.strerror or e}") from e
    if len(data) > max_bytes:
        raise DumpTooLarge(_too_large(f"more than {max_bytes:,}", max_bytes))
    return parse_dump(data, path.name, dump_date_for(path.name, date, info.st_mtime))


def _too_large(size: str, max_bytes: int) -> str:
    return f"file is {size} bytes, over the {max_bytes:,}-byte cap (ingest.max_file_bytes)"
