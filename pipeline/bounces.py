"""Bounce classes (RFC 3463): what one refusal by the mail server means for the edition, the
address and the circuit breaker. Pure; ``send.py`` maps a reply to its class with ``classify``.

``RULES`` is the one table (first matching row wins; ``EFFECTS`` says what each class does,
and the README shows ``table_markdown()``).

A 5.1.x code outranks 554 (``554 5.1.1`` is a dead mailbox, not a block): the address codes
are the server's most specific statement. A policy refusal says more about the sender (a
blocklisted IP, a reputation limit) than about the reader, so it never costs a reader their
subscription; a storm of them pauses the run instead (``pipeline.breaker``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Stage = Literal["connect", "mail", "rcpt", "data"]

# A bounce score of this many within this window suppresses the address.
BOUNCE_LIMIT = 3
BOUNCE_WINDOW = dt.timedelta(days=14)

GONE_CODES = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.10", "5.2.1"})

_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


class Bounce(StrEnum):
    GONE = "gone"  # fail the edition, suppress the address at once
    BUSY = "busy"  # 421: defer; the breaker counts them per minute
    POLICY = "policy"  # defer; the breaker counts them among the last RCPTs
    TEMPORARY = "temporary"  # defer
    REJECTED = "rejected"  # fail the edition: the message, not the address
    BOUNCE = "bounce"  # fail the edition, +1 to the address's bounce score


@dataclass(frozen=True, slots=True)
class Reply:
    """One refusal: the reply code, its enhanced status code if any, and the stage."""

    code: int
    enhanced: str | None
    stage: Stage


@dataclass(frozen=True, slots=True)
class Rule:
    reply: str
    bounce: Bounce
    applies: Callable[[Reply], bool]


def _policy(r: Reply) -> bool:
    if r.code // 100 != 5:
        return False
    return (r.enhanced or "").startswith("5.7.") or (
        r.code == 554 and not (r.enhanced or "").startswith("5.1.")
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "5xx with 5.1.1, 5.1.2, 5.1.3, 5.1.10 or 5.2.1",
        Bounce.GONE,
        lambda r: r.code // 100 == 5 and r.enhanced in GONE_CODES,
    ),
    Rule("421, any enhanced code", Bounce.BUSY, lambda r: r.code == 421),
    Rule("5xx with 5.7.x, or 554 without 5.1.x", Bounce.POLICY, _policy),
    Rule(
        "any other 4xx, and 552 (mailbox full)",
        Bounce.TEMPORARY,
        lambda r: r.code // 100 == 4 or r.code == 552,
    ),
    Rule("any other 5xx at DATA", Bounce.REJECTED, lambda r: r.stage == "data"),
    Rule('any other 5xx at RCPT ("550 no such user")', Bounce.BOUNCE, lambda r: True),
)

# What each class does: (edition, address, breaker).
EFFECTS: dict[Bounce, tuple[str, str, str]] = {
    Bounce.GONE: ("failed", "suppressed at once", "—"),
    Bounce.BUSY: ("deferred", "never suppressed", "421s in 60 s"),
    Bounce.POLICY: ("deferred", "never suppressed", "policy refusals"),
    Bounce.TEMPORARY: ("deferred", "never suppressed", "—"),
    Bounce.REJECTED: ("failed", "never suppressed", "—"),
    Bounce.BOUNCE: (
        "failed",
        f"+1 bounce score; {BOUNCE_LIMIT} within {BOUNCE_WINDOW.days} days suppress",
        "—",
    ),
}


def enhanced_code(text: str) -> str | None:
    """The RFC 3463 status code at the start of a reply's text (``5.1.1 no such user``)."""
    first = text.strip().split(None, 1)
    if not first:
        return None
    match = _ENHANCED.fullmatch(first[0])
    return match.group(0) if match else None


def classify(code: int, text: str, stage: Stage) -> Bounce:
    """The class of a 4xx or 5xx reply ``code`` with ``text`` (without the code) at ``stage``."""
    reply = Reply(code, enhanced_code(text), stage)
    return next(rule.bounce for rule in RULES if rule.applies(reply))


def table_markdown() -> str:
    """The rules as the README's Markdown table."""
    lines = [
        "| reply | class | edition | address | breaker counts it as |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rule in RULES:
        edition, address, breaker = EFFECTS[rule.bounce]
        lines.append(f"| {rule.reply} | {rule.bounce} | {edition} | {address} | {breaker} |")
    return "\n".join(lines)
