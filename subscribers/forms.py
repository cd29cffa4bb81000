"""Read the subscriber app's forms: each bad field becomes a message, the user's input is kept.

``parse_signup`` and ``parse_preferences`` take the posted fields as ``{name: [values]}`` and
return a ``Parsed``: the validated model, or the per-field messages plus what the user typed so
the page can be shown again with their other inputs intact. ``normalize_email`` is shared with
the admin CLI.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from email_validator import EmailNotValidError, validate_email

from pipeline.errors import AddressError
from pipeline.matching.items import split_items
from pipeline.matching.topics import Catalog
from pipeline.models import Frequency, Frozen, Subscriber

# Bump when the sign-up page's wording changes: the consent record names the version agreed to.
FORM_VERSION = "signup-1"

MAX_EMAIL = 254  # RFC 5321 path limit
MAX_INTERESTS = 2000  # Profile.interests
MAX_ITEMS = 50  # excluded keywords, favourite authors
MAX_ITEM = 100
MAX_TIMEZONE = 64
MAX_MIN_UPVOTES = 999
# The one message for a profile that would match nothing: sign-up and settings alike.
EMPTY_PROFILE = "Pick at least one topic, or describe your interests below."
# Interests that name nothing to match: only framing words, or only what the reader does not
# want ("not LLMs"), which matching drops.
NO_SUBJECT = (
    "Name at least one subject you want to read about: this text gives none to match "
    "(subjects to leave out go under “Skip papers about” in your preferences)."
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

Fields = Mapping[str, Sequence[str]]
T = TypeVar("T")


class TopicChoice(Frozen):
    """One checkbox of the topic list."""

    slug: str
    title: str
    description: str = ""
    group: str = ""
    popular: bool = False


class SignupData(Frozen):
    """A valid sign-up form."""

    email: str
    topics: tuple[str, ...]
    interests: str
    timezone: str
    send_hour: int
    frequency: Frequency
    weekly_day: int


class PreferencesData(Frozen):
    """A valid preferences form."""

    topics: tuple[str, ...]
    interests: str
    authors: tuple[str, ...]
    exclude: tuple[str, ...]
    timezone: str
    send_hour: int
    frequency: Frequency
    weekly_day: int
    max_papers: int
    min_upvotes: int = 0


@dataclass
class Parsed(Generic[T]):
    """A parsed form: ``data`` when valid, else ``errors`` by field; ``values`` as typed."""

    data: T | None
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def topic_choices(catalog: Catalog) -> tuple[TopicChoice, ...]:
    """The catalog's topics as checkboxes, in catalog order."""
    return tuple(
        TopicChoice(
            slug=slug,
            title=catalog[slug].title,
            description=catalog[slug].description,
            group=catalog[slug].group,
            popular=catalog[slug].popular,
        )
        for slug in catalog
    )


OTHER_GROUP = "Other"
POPULAR_GROUP = "Popular"


def topic_groups(topics: Iterable[TopicChoice]) -> list[tuple[str, list[TopicChoice]]]:
    """The sign-up page's headings: "Popular" first, then each group in catalog order, then
    "Other" for topics without one. Each topic is listed once."""
    groups: dict[str, list[TopicChoice]] = {POPULAR_GROUP: []}
    for topic in topics:
        name = POPULAR_GROUP if topic.popular else (topic.group.strip() or OTHER_GROUP)
        groups.setdefault(name, []).append(topic)
    other = groups.pop(OTHER_GROUP, [])
    ordered = [(name, members) for name, members in groups.items() if members]
    return ordered + ([(OTHER_GROUP, other)] if other else [])


def normalize_email(raw: str) -> str:
    """The address in the one form paperboy stores; AddressError says what is wrong.

    Internationalised domains are kept in their ASCII (punycode) form, which every mail
    server accepts; no DNS lookups are made.
    """
    if any(ch in raw for ch in "\r\n\x00"):
        raise AddressError("an email address cannot contain line breaks")
    value = raw.strip()
    if not value:
        raise AddressError("enter your email address")
    if len(value) > MAX_EMAIL:
        raise AddressError(f"that address is too long (at most {MAX_EMAIL} characters)")
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError as e:
        reason = str(e).removeprefix("The email address is not valid. ")
        raise AddressError(
            f"that is not a valid email address ({reason[:1].lower()}{reason[1:].rstrip('.')})"
        ) from None
    return info.ascii_email or info.normalized


@functools.cache
def timezones() -> frozenset[str]:
    """Every IANA zone name the system knows."""
    return frozenset(zoneinfo.available_timezones())


def parse_signup(fields: Fields, known_topics: Iterable[str]) -> Parsed[SignupData]:
    """Validate a posted sign-up form."""
    form = _Form(fields)
    email_raw = form.one("email")
    values: dict[str, Any] = {"email": email_raw, **_schedule_values(form)}
    values["topics"] = form.many("topics")
    values["interests"] = form.one("interests")
    errors: dict[str, str] = {}
    try:
        email = normalize_email(email_raw)
    except AddressError as e:
        errors["email"] = _sentence(str(e))
        email = ""
    topics = _topics(form, set(known_topics), errors)
    interests = _interests(form, errors)
    if "topics" not in errors and "interests" not in errors and not topics and not interests:
        errors["topics"] = EMPTY_PROFILE
    schedule = _schedule(form, errors)
    if errors:
        return Parsed(None, errors, values)
    return Parsed(
        SignupData(email=email, topics=topics, interests=interests, **schedule), {}, values
    )


def parse_preferences(fields: Fields, known_topics: Iterable[str]) -> Parsed[PreferencesData]:
    """Validate a posted preferences form."""
    form = _Form(fields)
    values: dict[str, Any] = {
        "topics": form.many("topics"),
        "interests": form.one("interests"),
        "authors": form.one("authors"),
        "exclude": form.one("exclude"),
        "max_papers": form.one("max_papers"),
        "min_upvotes": form.one("min_upvotes"),
        **_schedule_values(form),
    }
    errors: dict[str, str] = {}
    topics = _topics(form, set(known_topics), errors)
    interests = _interests(form, errors)
    authors = _items(form, "authors", "author", errors, split_commas=False)
    exclude = _items(form, "exclude", "keyword", errors, split_commas=True)
    max_papers = _int(form.one("max_papers"), 1, 50)
    if max_papers is None:
        errors["max_papers"] = "Choose between 1 and 50 papers."
    min_upvotes = _int(form.one("min_upvotes") or "0", 0, MAX_MIN_UPVOTES)
    if min_upvotes is None:
        errors["min_upvotes"] = f"Enter a whole number of upvotes from 0 to {MAX_MIN_UPVOTES}."
    schedule = _schedule(form, errors)
    if errors or max_papers is None or min_upvotes is None:
        return Parsed(None, errors, values)
    data = PreferencesData(
        topics=topics,
        interests=interests,
        authors=authors,
        exclude=exclude,
        max_papers=max_papers,
        min_upvotes=min_upvotes,
        **schedule,
    )
    return Parsed(data, {}, values)


class _Form:
    """Posted fields by name; a repeated single-value field keeps its first value."""

    def __init__(self, fields: Fields) -> None:
        self.fields = fields

    def one(self, name: str) -> str:
        got = self.fields.get(name) or ()
        return str(got[0]) if got else ""

    def many(self, name: str) -> list[str]:
        return [str(v) for v in self.fields.get(name) or ()]


def empty_profile(data: PreferencesData) -> bool:
    """True when the settings would match no paper at all: no topic, interest or author."""
    return not (data.topics or data.interests or data.authors)


def _schedule_values(form: _Form) -> dict[str, str]:
    return {k: form.one(k) for k in ("timezone", "send_hour", "frequency", "weekly_day")}


def _topics(form: _Form, known: set[str], errors: dict[str, str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(form.many("topics")))
    if any(slug not in known for slug in chosen):
        errors["topics"] = "Pick topics from the list."
        return ()
    return chosen


def _interests(form: _Form, errors: dict[str, str]) -> str:
    text = form.one("interests").replace("\r\n", "\n").replace("\x00", "").strip()
    if len(text) > MAX_INTERESTS:
        errors["interests"] = f"Keep it under {MAX_INTERESTS} characters (you wrote {len(text)})."
        return ""
    if text and not split_items(text):
        errors["interests"] = NO_SUBJECT
        return ""
    return text


def _items(
    form: _Form, name: str, noun: str, errors: dict[str, str], *, split_commas: bool
) -> tuple[str, ...]:
    """One entry per line (and per comma for keywords), trimmed, without duplicates."""
    text = form.one(name).replace("\x00", "")
    parts = text.replace(",", "\n").splitlines() if split_commas else text.splitlines()
    seen: dict[str, str] = {}
    for part in parts:
        item = " ".join(part.split())
        if item:
            seen.setdefault(item.casefold(), item)
    items = tuple(seen.values())
    if len(items) > MAX_ITEMS:
        errors[name] = f"At most {MAX_ITEMS} entries, please (you gave {len(items)})."
    elif any(len(item) > MAX_ITEM for item in items):
        errors[name] = f"Each {noun} must be at most {MAX_ITEM} characters."
    return items


def _schedule(form: _Form, errors: dict[str, str]) -> dict[str, Any]:
    tz = form.one("timezone").strip() or "UTC"
    if len(tz) > MAX_TIMEZONE or tz not in timezones():
        errors["timezone"] = "Use a time zone name from the list, like Europe/Berlin or UTC."
    hour = _int(form.one("send_hour"), 0, 23)
    if hour is None:
        errors["send_hour"] = "Pick an hour from 0 to 23."
    try:
        frequency = Frequency(form.one("frequency") or Frequency.DAILY.value)
    except ValueError:
        errors["frequency"] = "Choose daily, weekdays or weekly."
        frequency = Frequency.DAILY
    day_raw = form.one("weekly_day")
    day = _int(day_raw, 0, 6) if day_raw else 0
    if day is None:
        errors["weekly_day"] = "Pick a day of the week."
    return {
        "timezone": tz,
        "send_hour": hour or 0,
        "frequency": frequency,
        "weekly_day": day or 0,
    }


def _int(raw: str, low: int, high: int) -> int | None:
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 3:
        return None
    value = int(raw)
    return value if low <= value <= high else None


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def preference_values(sub: Subscriber) -> dict[str, Any]:
    p = sub.profile
    return {
        "topics": list(p.topics),
        "interests": p.interests,
        "authors": "\n".join(p.authors),
        "exclude": "\n".join(p.exclude),
        "max_papers": str(p.max_papers),
        "min_upvotes": str(p.min_upvotes),
        "timezone": sub.timezone,
        "send_hour": str(sub.send_hour),
        "frequency": sub.frequency.value,
        "weekly_day": str(sub.weekly_day),
    }


def schedule_text(sub: Subscriber) -> str:
    when = {
        Frequency.DAILY: "every day",
        Frequency.WEEKDAYS: "on weekdays",
        Frequency.WEEKLY: f"every {WEEKDAYS[sub.weekly_day]}",
    }[sub.frequency]
    return f"{when} at {sub.send_hour:02d}:00 ({sub.timezone})"
