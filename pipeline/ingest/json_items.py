"""The items of a JSON array, read from text blocks one item at a time.

Each item is decoded on its own (``json.JSONDecoder.raw_decode``), so memory holds one item
and a block or two of text, never the whole document. An item that does not decode — an
integer longer than Python converts, a broken string — is handed back as a ``bad`` item and
the reader resumes after it: one damaged item costs that item only. Damage between items
(a missing comma, a truncated file) makes the whole document unusable (``IngestError``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pipeline.errors import IngestError

LOOKAHEAD = 1 << 20  # characters kept ahead of the item being decoded
_DECODER = json.JSONDecoder(strict=False)  # a raw tab or newline in a string is harmless
_BLANK = re.compile(r"[ \t\n\r]*")
_STRING_STOP = re.compile(r'["\\]')
_VALUE_STOP = re.compile(r'["\[\]{},]')
_ID = re.compile(r'"id"\s*:\s*"([^"\\]{1,60})"')


@dataclass(frozen=True)
class Item:
    """One array element: its value, or why it could not be decoded."""

    number: int  # 1-based position in the array
    value: object = None
    bad: str | None = None  # the reason the item was not decoded
    nul: bool = False  # the item's text holds a NUL character
    hint: str | None = None  # a bad item's "id", when one can be seen in its text


class _Reader:
    """A sliding window over the text blocks, with the line count of what was dropped."""

    def __init__(self, blocks: Iterable[str]) -> None:
        self._blocks = iter(blocks)
        self.buf = ""
        self.pos = 0
        self.start = 0  # where the value last decoded began
        self.eof = False
        self.dropped = 0  # characters dropped from the front of ``buf`` so far
        self._lines_dropped = 0

    def more(self) -> bool:
        """Append the next block; False at the end of the text. Text before ``pos`` may be
        dropped: indexes into ``buf`` shift by ``dropped`` (``pos`` is kept up to date)."""
        block = next(self._blocks, None)
        if block is None:
            self.eof = True
            return False
        if self.pos > LOOKAHEAD:
            self._lines_dropped += self.buf.count("\n", 0, self.pos)
            self.dropped += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += block
        return True

    def fill(self) -> None:
        while len(self.buf) - self.pos < LOOKAHEAD and self.more():
            pass

    def skip_blank(self) -> str:
        """Move past whitespace; the next character, or "" at the end."""
        while True:
            self.pos = _BLANK.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos : self.pos + 1]

    def where(self, pos: int) -> str:
        line = self._lines_dropped + self.buf.count("\n", 0, pos) + 1
        column = pos - self.buf.rfind("\n", 0, pos)
        return f"line {line} column {column}"

    def value(self) -> object:
        """Decode the value at ``pos`` and move past it; raises what the decoder raised."""
        while True:
            self.fill()
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                cut = e.msg.startswith("Unterminated string") or e.pos >= len(self.buf) - 1
                if cut and self.more():
                    continue
                if cut:
                    raise _Truncated from None
                raise
            if end >= len(self.buf) and self.more():
                continue  # a number may go on in the next block
            self.start = self.pos
            self.pos = end
            return value

    def end_of_bad_value(self) -> int:
        """Where the damaged value at ``pos`` ends: the next "," or "]" outside strings at its
        own depth. Slow (a regex hop per token), but only damaged items take this path."""
        depth = 0
        i = self.pos
        in_string = False
        while True:
            pattern = _STRING_STOP if in_string else _VALUE_STOP
            match = pattern.search(self.buf, i)
            if match is None:
                before = self.dropped
                if not self.more():
                    raise _Truncated
                i -= self.dropped - before
                continue
            i = match.start()
            char = self.buf[i]
            if in_string:
                if char == "\\":
                    before = self.dropped
                    if i + 1 >= len(self.buf) and not self.more():
                        raise _Truncated
                    i += 2 - (self.dropped - before)
                    continue
                in_string = False
            elif char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
            elif depth == 0 and char in ",]":
                return i
            elif char in "]}":
                depth -= 1
            i += 1


class _Truncated(Exception):
    """The text ended inside a value."""


def items(blocks: Iterable[str], list_keys: tuple[str, ...]) -> Iterator[Item]:
    """The items of the top-level array, or of the first ``list_keys`` array in an object."""
    reader = _Reader(blocks)
    try:
        first = reader.skip_blank()
        if first == "[":
            reader.pos += 1
            yield from _array(reader)
            if reader.skip_blank() != "":
                raise IngestError(f"invalid JSON at {reader.where(reader.pos)}: Extra data")
        elif first == "{":
            reader.pos += 1
            _to_list(reader, list_keys)
            yield from _array(reader)  # what follows the list is not read
        else:
            value = reader.value()
            raise IngestError(
                f"JSON top level is a {kind(value)}, expected an array of Daily Papers items"
            )
    except _Truncated:
        line = reader._lines_dropped + reader.buf.rstrip().count("\n") + 1
        raise IngestError(
            f"truncated JSON: the file ends at line {line} before the data is complete"
        ) from None
    except json.JSONDecodeError as e:
        raise IngestError(f"invalid JSON at {reader.where(e.pos)}: {e.msg}") from None
    except RecursionError:
        raise IngestError("invalid JSON: nested too deeply to be a Daily Papers dump") from None


def _array(reader: _Reader) -> Iterator[Item]:
    """The items up to the closing "]", which is consumed."""
    if reader.skip_blank() == "]":
        reader.pos += 1
        return
    number = 0
    while True:
        number += 1
        try:
            value = reader.value()  # on success: buf[start:pos] is the item's text
        except ValueError as e:  # JSONDecodeError too; a nesting bomb is no entry: fatal
            reason = _reason(reader, e)
            end = reader.end_of_bad_value()  # the bad item starts at pos
            hint = _ID.search(reader.buf, reader.pos, end)
            reader.pos = end
            yield Item(number, bad=reason, hint=hint.group(1) if hint else None)
        else:
            yield Item(number, value, nul="\x00" in reader.buf[reader.start : reader.pos])
        after = reader.skip_blank()
        if after == ",":
            reader.pos += 1
            if reader.skip_blank() == "]":  # a trailing comma: lenient, nothing is lost
                reader.pos += 1
                return
        elif after == "]":
            reader.pos += 1
            return
        elif after == "":
            raise _Truncated
        else:
            raise IngestError(
                f"invalid JSON at {reader.where(reader.pos)}: Expecting ',' delimiter"
            )


def _reason(reader: _Reader, error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"invalid JSON at {reader.where(error.pos)} ({error.msg})"
    text = str(error)
    if "digits" in text:  # int(): "Exceeds the limit (4300 digits) for integer string conversion"
        return "holds a number with more digits than any count can have"
    return f"unreadable JSON ({text[:60]})"


def _to_list(reader: _Reader, list_keys: tuple[str, ...]) -> None:
    """Move to the first value under one of ``list_keys`` that is an array (past its "[")."""
    while True:
        char = reader.skip_blank()
        if char == "}" or char == "":
            keys = ", ".join(repr(k) for k in list_keys[:3])
            raise IngestError(
                f"JSON object without a list of papers under {keys}: "
                "expected an array of Daily Papers items"
            )
        if char == ",":
            reader.pos += 1
            continue
        key = reader.value()
        if reader.skip_blank() != ":":
            raise IngestError(f"invalid JSON at {reader.where(reader.pos)}: Expecting ':'")
        reader.pos += 1
        if reader.skip_blank() == "[" and key in list_keys:
            reader.pos += 1
            return
        reader.value()  # another member: decoded whole and dropped


def kind(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
