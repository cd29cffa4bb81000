"""The outbox viewer: read the ``.eml`` files the outbox sender wrote, from the same machine.

With ``delivery.backend = "outbox"`` (the embedded default) nothing leaves the machine, so a
reader trying the app needs another way to see their confirmation mail: ``/outbox`` lists the
messages and ``/outbox/NAME`` shows one, links working. The mails carry live signed links, so
the viewer answers only requests from a loopback address that came through no proxy; anyone
else, and every request when mail goes over SMTP, gets a plain 404.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from starlette.requests import Request

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+=-]{0,200}\.eml")
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")
SHOWN = 200


@dataclass(frozen=True)
class Entry:
    name: str
    to: str
    subject: str
    date: str


def allowed(request: Request, backend: str) -> bool:
    """True for a loopback client talking to us directly while mail goes to the outbox."""
    if backend != "outbox" or request.client is None:
        return False
    if any(h in request.headers for h in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def entries(folder: Path) -> list[Entry]:
    """The newest messages first, at most ``SHOWN`` of them."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if NAME.fullmatch(p.name) and p.is_file()]
    files.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    shown = []
    for path in files[:SHOWN]:
        message = read(path)
        shown.append(
            Entry(
                name=path.name,
                to=str(message.get("To", "")),
                subject=str(message.get("Subject", "")),
                date=str(message.get("Date", "")),
            )
        )
    return shown


def find(folder: Path, name: str) -> Path | None:
    """The message file called ``name`` directly in ``folder``, or None."""
    if not NAME.fullmatch(name):
        return None
    path = folder / name
    return path if path.is_file() else None


def read(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body_html(message: EmailMessage) -> str | None:
    part = message.get_body(("html",))
    return None if part is None else str(part.get_content())


def body_text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return "" if part is None else str(part.get_content())
