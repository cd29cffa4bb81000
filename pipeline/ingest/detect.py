"""Decoding dump bytes to text and telling the three dump formats apart by their content."""

from __future__ import annotations

import codecs
import re
from pathlib import PurePath

from pipeline.errors import IngestError
from pipeline.models import ParseWarning, SourceFormat

BINARY = "binary content, not a text dump"
# C0 controls other than \t \n \f \r, DEL and C1 controls: rare in any text, common in binaries.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_SAMPLE_CHARS = 1_000_000  # enough to judge; keeps a 50 MB file from being scanned twice
_MAX_CONTROL_PER_MILLE = 10
# "[" or "{" followed by what JSON allows next; "[Re] A title" or "{{ 7*7 }}" is page text.
_JSON_START = re.compile(r"""(?:\[\s*(?:$|[\[{"\]\-\d]|true|false|null)|\{\s*(?:$|["}]))""")
# Skips the XML declaration, processing instructions, comments and a DOCTYPE to the root tag.
_XML_PROLOG = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)", re.DOTALL | re.IGNORECASE
)
_CONTENT = re.compile(r"[^\s\ufeff]")  # the first character that is not blank or a BOM
_XML_ROOT = re.compile(r"\s*<(?:[\w.\-]+:)?([A-Za-z_][\w.\-]*)")


def decode(data: bytes) -> tuple[str, list[ParseWarning]]:
    """UTF-8 text with newlines normalised to ``\\n``, and warnings for any repair.

    Bytes that are not UTF-8 but read as Windows-1252/Latin-1 text are decoded that way with a
    warning, because such dumps come from hand-saved pages and are still worth reading.
    """
    warnings: list[ParseWarning] = []
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Editors on Windows save "Unicode" as UTF-16, which is full of NUL bytes.
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise IngestError(BINARY) from None
        warnings.append(ParseWarning(where="file", message="UTF-16 text decoded; prefer UTF-8"))
    elif data.count(b"\x00") * 1000 > len(data) * _MAX_CONTROL_PER_MILLE:
        raise IngestError(BINARY)  # a stray NUL is damage to one entry; many mean a binary
    else:
        body = data.removeprefix(codecs.BOM_UTF8)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            text, warning = _decode_not_utf8(body, e.start)
            warnings.append(warning)
    if looks_binary(text):
        raise IngestError(BINARY)
    # Universal newlines, as Python's text mode: \r\n, and any stray \r, end a line.
    return text.replace("\r\n", "\n").replace("\r", "\n"), warnings


def _decode_not_utf8(body: bytes, offset: int) -> tuple[str, ParseWarning]:
    line = body.count(b"\n", 0, offset) + 1
    where = f"line {line}"
    replaced = body.decode("utf-8", errors="replace")
    bad = replaced.count("\ufffd") - body.count("\ufffd".encode())
    ascii_chars = len(replaced.encode("ascii", errors="ignore"))
    good = len(replaced) - ascii_chars - replaced.count("\ufffd")
    if good > 0 and good >= bad:
        # Mostly UTF-8 with a few broken bytes: re-reading it all as Latin-1 would garble
        # every correct accent, so only the broken bytes are replaced.
        message = f"{bad} invalid UTF-8 byte sequence(s) replaced with U+FFFD"
        return replaced, ParseWarning(where=where, message=message)
    try:
        text, codec = body.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        text, codec = body.decode("latin-1"), "Latin-1"
    message = f"not UTF-8 (byte 0x{body[offset]:02x}); decoded as {codec}, check accented letters"
    return text, ParseWarning(where=where, message=message)


def looks_binary(text: str) -> bool:
    """Whether more than 1% of the text's first million characters are control characters."""
    sample = text[:_SAMPLE_CHARS]
    return len(_CONTROL.findall(sample)) * 1000 > len(sample) * _MAX_CONTROL_PER_MILLE


def detect_format(data: bytes | str, name: str) -> SourceFormat:
    """The dump's format from its content; the file extension only breaks ties.

    JSON array/object → ``hf_api``; XML whose root is an Atom ``<feed>`` → ``arxiv_atom``;
    other text → ``hf_page``. Raises IngestError for binary, empty, HTML or other XML.
    """
    text = decode(data)[0] if isinstance(data, bytes) else data
    content = _CONTENT.search(text)
    if content is None:
        raise IngestError("empty file: no papers to read")
    head = text[content.start() : content.start() + 4096]
    ext = PurePath(name).suffix.lower()
    first = head[0]
    if first in "[{":
        if _JSON_START.match(head):
            return "hf_api"
        return "hf_api" if ext == ".json" else "hf_page"
    if first == "<":
        return _markup_format(head, ext)
    return "hf_page"


def _markup_format(head: str, ext: str) -> SourceFormat:
    rest = head
    while (prolog := _XML_PROLOG.match(rest)) is not None:
        rest = rest[prolog.end() :]  # every alternative consumes at least "<?" or "<!"
    root_match = _XML_ROOT.match(rest)
    root = root_match.group(1).lower() if root_match else None
    if root == "feed":
        return "arxiv_atom"
    if root == "html":
        raise IngestError(
            "an HTML page, not a text dump: save the Daily Papers page as text or use the API JSON"
        )
    if ext in (".atom", ".xml"):
        return "arxiv_atom"  # the Atom parser names what is wrong with it
    if head.startswith("<?xml"):
        raise IngestError(f"an XML document with root <{root or '?'}>, not an Atom <feed>")
    # A page dump may start with a title such as "<script> Considered Harmful".
    return "hf_page"
