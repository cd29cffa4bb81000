"""A dump file read in blocks: one pass of bytes for its identity and encoding, then text.

    scan(path)   stat (size cap) → sha256, NUL share, UTF-8 validity, a sample → Source
    Source.blocks()  the text again, decoded block by block with the codec the scan chose

Nothing here holds the whole file: a 50 MB dump costs a few megabytes of buffers.
"""

from __future__ import annotations

import codecs
import hashlib
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import DumpTooLarge, IngestError
from pipeline.ingest.detect import BINARY, looks_binary
from pipeline.models import ParseWarning

BLOCK = 1 << 20  # bytes read at a time
SAMPLE = 1 << 20  # decoded characters kept for format detection and the binary check
_REPLACEMENT = "\ufffd".encode()
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_MAX_NUL_PER_MILLE = 10  # a few NUL bytes are damage; more than 1% is a binary file


@dataclass
class Source:
    """What one pass over the bytes found; ``blocks()`` reads the text again."""

    path: Path
    size: int
    mtime: float
    sha256: str
    codec: str  # "utf-16", "utf-8-sig", "cp1252" or "latin-1"
    sample: str  # the first decoded characters, newlines normalised
    warnings: list[ParseWarning] = field(default_factory=list)

    def blocks(self) -> Iterator[str]:
        """The text in blocks, with ``\\r\\n`` and a lone ``\\r`` made ``\\n``."""
        decoder = codecs.getincrementaldecoder(self.codec)(errors="replace")
        pending_cr = False
        try:
            with self.path.open("rb") as file:
                while data := file.read(BLOCK):
                    text = decoder.decode(data)
                    if pending_cr:
                        text = "\r" + text
                    pending_cr = text.endswith("\r")
                    if pending_cr:
                        text = text[:-1]  # its \n may start the next block
                    yield text.replace("\r\n", "\n").replace("\r", "\n")
        except OSError as e:
            raise IngestError(f"cannot read the file: {e.strerror or e}") from e
        tail = decoder.decode(b"", final=True)
        yield (("\r" if pending_cr else "") + tail).replace("\r\n", "\n").replace("\r", "\n")

    def lines(self) -> Iterator[str]:
        """The text line by line, without line ends."""
        carry = ""
        for block in self.blocks():
            parts = (carry + block).split("\n")
            carry = parts.pop()
            yield from parts
        yield carry


def scan(path: Path, max_bytes: int) -> Source:
    """Read ``path`` once in blocks; refuse a file over ``max_bytes`` before reading it."""
    try:
        info = path.stat()
    except OSError as e:
        raise IngestError(f"cannot read the file: {e.strerror or e}") from e
    if not stat.S_ISREG(info.st_mode):
        raise IngestError("not a regular file")
    if info.st_size > max_bytes:
        raise DumpTooLarge(too_large(f"{info.st_size:,}", max_bytes))
    digest = hashlib.sha256()
    check = _Utf8Check()
    size = nul = 0
    first = b""
    try:
        with path.open("rb") as file:
            while data := file.read(BLOCK):
                if not first:
                    first = data
                size += len(data)
                if size > max_bytes:  # it grew after stat()
                    raise DumpTooLarge(too_large(f"more than {max_bytes:,}", max_bytes))
                digest.update(data)
                nul += data.count(b"\x00")
                check.feed(data)
    except OSError as e:
        raise IngestError(f"cannot read the file: {e.strerror or e}") from e
    source = Source(path, size, info.st_mtime, digest.hexdigest(), "utf-8-sig", "")
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Editors on Windows save "Unicode" as UTF-16, which is full of NUL bytes.
        source.codec = "utf-16"
        try:
            first[: len(first) // 2 * 2].decode("utf-16")
        except UnicodeDecodeError:
            raise IngestError(BINARY) from None
        source.warnings.append(
            ParseWarning(where="file", message="UTF-16 text decoded; prefer UTF-8")
        )
    else:
        if nul * 1000 > size * _MAX_NUL_PER_MILLE:
            raise IngestError(BINARY)
        if check.bad:
            source.codec, warning = check.verdict()
            source.warnings.append(warning)
    source.sample = _sample(source)
    if looks_binary(source.sample):
        raise IngestError(BINARY)
    return source


def too_large(size: str, max_bytes: int) -> str:
    return f"file is {size} bytes, over the {max_bytes:,}-byte cap (ingest.max_file_bytes)"


def _sample(source: Source) -> str:
    parts: list[str] = []
    length = 0
    for block in source.blocks():
        parts.append(block)
        length += len(block)
        if length >= SAMPLE:
            break
    return "".join(parts)[:SAMPLE]


class _Utf8Check:
    """Counts broken UTF-8 sequences against good non-ASCII characters, block by block."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.bad = 0
        self.good = 0
        self.first_line: int | None = None
        self.first_byte = 0
        self._lines = 0
        self.cp1252 = True  # False once a byte Windows-1252 leaves undefined is seen

    def feed(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        bad = text.count("\ufffd") - data.count(_REPLACEMENT)
        if bad > 0 and self.first_line is None:
            at = text.index("\ufffd")
            self.first_line = self._lines + text.count("\n", 0, at) + 1
            self.first_byte = self._first_bad_byte(data)
        self.bad += max(bad, 0)
        if not text.isascii():
            ascii_chars = len(text.encode("ascii", errors="ignore"))
            self.good += len(text) - ascii_chars - text.count("\ufffd")
        self._lines += text.count("\n")
        if self.cp1252 and any(b in data for b in _CP1252_UNDEFINED):
            self.cp1252 = False

    @staticmethod
    def _first_bad_byte(data: bytes) -> int:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            return data[e.start]
        return 0

    def verdict(self) -> tuple[str, ParseWarning]:
        """UTF-8 with replacements when it is mostly UTF-8, else Windows-1252 (or Latin-1)."""
        where = f"line {self.first_line or 1}"
        if self.good > 0 and self.good >= self.bad:
            # Mostly UTF-8 with a few broken bytes: re-reading it all as Latin-1 would garble
            # every correct accent, so only the broken bytes are replaced.
            message = f"{self.bad} invalid UTF-8 byte sequence(s) replaced with U+FFFD"
            return "utf-8-sig", ParseWarning(where=where, message=message)
        # cp1252 leaves five bytes undefined; those files are read as Latin-1, which has none.
        codec, name = ("cp1252", "Windows-1252") if self.cp1252 else ("latin-1", "Latin-1")
        message = (
            f"not UTF-8 (byte 0x{self.first_byte:02x}); decoded as {name}, check accented letters"
        )
        return codec, ParseWarning(where=where, message=message)
