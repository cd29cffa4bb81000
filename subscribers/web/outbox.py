"""``/outbox``: read the ``.eml`` files the outbox sender wrote, from the same machine.

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

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from subscribers.web.deps import PagesDep, RuntimeDep
from subscribers.web.pages import EDITION_CSP

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+=-]{0,200}\.eml")
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")
SHOWN = 200

router = APIRouter()


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
    if not isinstance(message, EmailMessage):  # the default policy always makes one
        raise TypeError(f"{path.name} did not parse as an EmailMessage")
    return message


def body_html(message: EmailMessage) -> str | None:
    part = message.get_body(("html",))
    return None if part is None else str(part.get_content())


def body_text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return "" if part is None else str(part.get_content())


@router.get("/outbox", response_class=HTMLResponse)
def outbox_list(request: Request, pages: PagesDep, rt: RuntimeDep) -> Response:
    if not allowed(request, rt.config.delivery.backend):
        raise HTTPException(404)
    folder = rt.config.paths.outbox
    return pages.render("outbox.html", folder=str(folder), entries=entries(folder))


@router.get("/outbox/{name}", response_class=HTMLResponse)
def outbox_message(name: str, request: Request, pages: PagesDep, rt: RuntimeDep) -> Response:
    path = find(rt.config.paths.outbox, name)
    if not allowed(request, rt.config.delivery.backend) or path is None:
        raise HTTPException(404)
    message = read(path)
    html = body_html(message)
    if html is not None:
        return HTMLResponse(html, headers={"Content-Security-Policy": EDITION_CSP})
    return pages.render(
        "outbox_text.html",
        subject=str(message.get("Subject", "")),
        to=str(message.get("To", "")),
        text=body_text(message),
    )
