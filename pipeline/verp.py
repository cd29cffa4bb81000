"""VERP envelope senders: one signed Return-Path per edition, and reading it back from mail.

``bounces+42-20260703-<mac>@bounces.example.org`` names subscriber 42's edition of 3 July
2026. The mac (``Tokens.mac``, purpose "bounce") makes the address unforgeable: returned mail
only counts against a reader when it carries an address paperboy itself made for them. The
address holds an id and a date, never the reader's address; it is lowercase hex and digits
(some mail servers fold a local part's case) and at most 64 characters before the @.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pipeline.tokens import Tokens

PREFIX = "bounces"
_VERP = re.compile(
    rf"(?<![\w.+-]){PREFIX}\+(\d{{1,12}})-(\d{{8}})-([0-9a-fA-F]{{20}})@[A-Za-z0-9.-]+",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Returned:
    """The delivery a returned message is about."""

    subscriber_id: int
    edition: dt.date


def return_path(tokens: Tokens, domain: str, subscriber_id: int, edition: dt.date) -> str:
    """The envelope sender for one edition: ``bounces+<id>-<yyyymmdd>-<mac>@domain``."""
    body = f"{subscriber_id}-{edition:%Y%m%d}"
    return f"{PREFIX}+{body}-{tokens.mac('bounce', body)}@{domain}"


def find_delivery(tokens: Tokens, text: str) -> Returned | None:
    """The first delivery named by a correctly signed VERP address anywhere in ``text``
    (headers of the returned mail and of the original it quotes); None if there is none."""
    for match in _VERP.finditer(text):
        sid, day, mac = match.groups()
        if not tokens.check_mac("bounce", f"{sid}-{day}", mac):
            continue
        try:
            edition = dt.datetime.strptime(day, "%Y%m%d").date()
        except ValueError:
            continue
        return Returned(int(sid), edition)
    return None
