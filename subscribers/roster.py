"""Subscriber lists as CSV or JSON: read and check every row, or write the current list.

Import is all-or-nothing: ``check_rows`` returns either the entries to store or one message
per bad row, each with the line it starts on, and the caller stores nothing when there is any.
Export writes the same columns, so an exported file imports into another instance.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pipeline.errors import AddressError
from pipeline.models import Frozen, Profile, Subscriber, SubscriberStatus
from subscribers.forms import normalize_email, parse_preferences

Format = Literal["csv", "json"]
COLUMNS = (
    "email",
    "status",
    "topics",
    "interests",
    "authors",
    "exclude",
    "timezone",
    "send_hour",
    "frequency",
    "weekly_day",
    "max_papers",
    "min_upvotes",
)
# Written by export for the reader's benefit; ignored on import.
INFO_COLUMNS = ("id", "created_at", "confirmed_at")
LIST_COLUMNS = ("topics", "authors", "exclude")
IMPORTABLE = (
    SubscriberStatus.PENDING,
    SubscriberStatus.ACTIVE,
    SubscriberStatus.PAUSED,
    SubscriberStatus.UNSUBSCRIBED,
)
S = SubscriberStatus


class RowError(Frozen):
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def read_rows(text: str, fmt: Format) -> list[tuple[int, dict[str, Any]]]:
    """(line, row) pairs; ValueError (with a line) when the file itself cannot be read."""
    return _read_csv(text) if fmt == "csv" else _read_json(text)


def _read_csv(text: str) -> list[tuple[int, dict[str, Any]]]:
    text = text.removeprefix("\ufeff")
    reader = csv.DictReader(
        io.StringIO(text, newline=""), restkey="__extra__", delimiter=_delimiter(text)
    )
    if reader.fieldnames is None:
        return []
    reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
    if "email" not in reader.fieldnames:
        found = ", ".join(repr(name) for name in reader.fieldnames)
        raise ValueError(
            f"line 1: the header has no 'email' column (it has {found}); "
            f"the first line names the columns, from: {', '.join(COLUMNS)}"
        )
    rows = []
    start = reader.line_num + 1
    for row in reader:
        rows.append((start, {k: _unguard(v) for k, v in row.items()}))
        start = reader.line_num + 1
    return rows


def _delimiter(text: str) -> str:
    """The header's separator: ',' unless the header has none and has ';' or a tab instead, as
    spreadsheets write CSV in locales where the comma is the decimal sign."""
    header = text.partition("\n")[0]
    if "," in header:
        return ","
    for candidate in (";", "\t"):
        if candidate in header:
            return candidate
    return ","


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection), so
# export quotes such cells with a leading ' (OWASP's advice) and import takes it off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _guard(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _unguard(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def _read_json(text: str) -> list[tuple[int, dict[str, Any]]]:
    """A JSON array of objects, each with the line its object starts on."""
    decoder = json.JSONDecoder()

    def line_at(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    pos = skip(0)
    if not text.startswith("[", pos):
        raise ValueError(f"line {line_at(pos)}: expected a JSON array of subscriber objects")
    pos = skip(pos + 1)
    rows: list[tuple[int, dict[str, Any]]] = []
    if text.startswith("]", pos):
        return rows
    while True:
        try:
            item, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise ValueError(f"line {e.lineno}: not valid JSON ({e.msg})") from None
        rows.append((line_at(pos), item if isinstance(item, dict) else {"__not_object__": item}))
        pos = skip(end)
        if text.startswith("]", pos):
            break
        if not text.startswith(",", pos):
            raise ValueError(f"line {line_at(pos)}: expected ',' or ']' after an object")
        pos = skip(pos + 1)
    if skip(pos + 1) != len(text):
        raise ValueError(f"line {line_at(skip(pos + 1))}: unexpected text after the array")
    return rows


def check_rows(
    rows: Sequence[tuple[int, dict[str, Any]]],
    *,
    known_topics: Iterable[str],
    opt_in_skipped: bool,
    existing: Mapping[str, str],
    consent: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[RowError]]:
    """The ``Store.subscribers.add_many`` entries, or every problem found; never half of each.

    ``existing`` maps the lowercased addresses already stored or suppressed to why.
    """
    known = set(known_topics)
    entries: list[dict[str, Any]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        problems = _row_problems(row)
        email = ""
        try:
            email = normalize_email(str(row.get("email") or ""))
        except AddressError as e:
            problems.append(f"email {str(row.get('email'))[:80]!r}: {e}")
        key = email.lower()
        if email and key in seen:
            problems.append(f"{email} is also on line {seen[key]}")
        elif email and key in existing:
            problems.append(f"{email} {existing[key]}")
        if email:
            seen.setdefault(key, line)
        status_raw = str(row.get("status") or "pending").strip().lower()
        try:
            status = SubscriberStatus(status_raw)
        except ValueError:
            status = S.PENDING
            problems.append(
                f"status {status_raw!r} is not one of pending, active, paused, unsubscribed"
            )
        if status not in IMPORTABLE:
            problems.append(f"status {status_raw!r} cannot be imported")
        elif status != S.PENDING and not opt_in_skipped:
            problems.append(
                f"status {status_raw!r} needs --no-opt-in (the address did not confirm here)"
            )
        parsed = parse_preferences(_as_fields(row), known)
        unknown = _unknown_topics(row, known)
        if unknown:  # named here, rather than the web form's "pick from the list"
            problems.append(
                f"topics: unknown topic {', '.join(map(repr, unknown))} "
                "(see `paperboy topics` for the slugs)"
            )
        problems.extend(
            f"{name}: {message}"
            for name, message in parsed.errors.items()
            if not (unknown and name == "topics")
        )
        if problems or parsed.data is None:
            errors.extend(RowError(line=line, message=p) for p in problems)
            continue
        d = parsed.data
        entries.append(
            {
                "email": email,
                "status": status,
                "profile": Profile(
                    topics=d.topics,
                    interests=d.interests,
                    authors=d.authors,
                    exclude=d.exclude,
                    max_papers=d.max_papers,
                    min_upvotes=d.min_upvotes,
                ),
                "timezone": d.timezone,
                "send_hour": d.send_hour,
                "frequency": d.frequency,
                "weekly_day": d.weekly_day,
                "consent": consent,
            }
        )
    return ([] if errors else entries), errors


def _row_problems(row: dict[str, Any]) -> list[str]:
    if "__not_object__" in row:
        return ['each item must be an object like {"email": "reader@example.org"}']
    if "__extra__" in row:
        return ["this row has more cells than the header has columns"]
    unknown = sorted(str(k) for k in row if k not in COLUMNS and k not in INFO_COLUMNS)
    if unknown:
        return [f"unknown column {', '.join(map(repr, unknown))}; columns are {', '.join(COLUMNS)}"]
    return []


def _unknown_topics(row: dict[str, Any], known: set[str]) -> list[str]:
    topics = _as_fields(row).get("topics", [])
    return [slug for slug in dict.fromkeys(topics) if slug not in known]


def _as_fields(row: dict[str, Any]) -> dict[str, list[str]]:
    """A row as the preferences form would post it; lists may be JSON lists or 'a; b' text."""
    fields: dict[str, list[str]] = {}
    for name in COLUMNS:
        value = row.get(name)
        if value is None or value == "":
            continue
        if name in LIST_COLUMNS:
            items = value if isinstance(value, list) else str(value).split(";")
            cleaned = [str(i).strip() for i in items if str(i).strip()]
            fields[name] = cleaned if name == "topics" else ["\n".join(cleaned)]
        else:
            fields[name] = [str(value)]
    fields.setdefault("max_papers", [str(Profile().max_papers)])
    fields.setdefault("send_hour", ["7"])
    return fields


def export_rows(subscribers: Iterable[Subscriber]) -> list[dict[str, Any]]:
    """One JSON-ready row per subscriber, in the import columns (plus id and dates)."""
    return [
        {
            "id": sub.id,
            "email": sub.email,
            "status": sub.status.value,
            "topics": list(sub.profile.topics),
            "interests": sub.profile.interests,
            "authors": list(sub.profile.authors),
            "exclude": list(sub.profile.exclude),
            "timezone": sub.timezone,
            "send_hour": sub.send_hour,
            "frequency": sub.frequency.value,
            "weekly_day": sub.weekly_day,
            "max_papers": sub.profile.max_papers,
            "min_upvotes": sub.profile.min_upvotes,
            "created_at": _iso(sub.created_at),
            "confirmed_at": _iso(sub.confirmed_at),
        }
        for sub in subscribers
    ]


def dump_rows(rows: list[dict[str, Any]], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*INFO_COLUMNS[:1], *COLUMNS, *INFO_COLUMNS[1:]])
    writer.writeheader()
    for row in rows:
        flat = {k: "; ".join(v) if isinstance(v, list) else v for k, v in row.items()}
        writer.writerow({k: "" if v is None else _guard(v) for k, v in flat.items()})
    return out.getvalue()


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def jsonable(value: Any) -> Any:
    """Dates as ISO strings, tuples as lists: what json.dumps takes."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
