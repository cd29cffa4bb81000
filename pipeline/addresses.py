"""The key every spelling of one email address shares (subscribers are unique by it)."""

from __future__ import annotations

import contextlib

import idna


def email_key(email: str) -> str:
    """The one form every spelling of an address shares: trimmed, its domain in IDNA
    (punycode), the whole lower-cased.

    The local part is lower-cased too, although RFC 5321 lets a server tell ``Ada@`` from
    ``ada@``: no mail service in use does, and two readers for one mailbox are worse. A domain
    IDNA refuses keys as its lower-cased self (no server would take mail for it anyway).
    """
    local, at, domain = email.strip().rpartition("@")
    if at and not domain.isascii():
        # A domain IDNA refuses is keyed as written: still one key per spelling, never mailed.
        with contextlib.suppress(idna.IDNAError):
            domain = idna.encode(domain, uts46=True).decode("ascii")
    return f"{local}{at}{domain}".lower()
