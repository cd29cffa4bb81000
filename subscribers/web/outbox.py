"""``/outbox``: read the ``.eml`` files the outbox sender wrote, from the same machine.

With ``delivery.backend = "outbox"`` (the embedded default) nothing leaves the machine, so a
reader trying the app needs another way to see their confirmation mail: ``/outbox`` lists the
messages and ``/outbox/NAME`` shows one, links working. The mails carry live signed links that
control every reader, so the viewer answers only when all of these hold, and gives a plain 404
otherwise:

- it is on: ``web.outbox_view = "auto"`` (the default) turns it on only while
  ``delivery.backend = "outbox"`` and ``web.base_url`` is a loopback URL; true or false
  decide outright;
- the TCP peer is a loopback address and is not a declared ``web.trusted_proxies`` entry;
- the request carries no forwarding header of any proxy, CDN or tunnel (``peers.forwarded``).
  uvicorn rewrites the client address only for a trusted peer that sent X-Forwarded-For, so a
  rewritten address never gets here;
- its ``Host`` is ``base_url``'s host or localhost / 127.0.0.1 / [::1], so a page whose
  domain was re-pointed at 127.0.0.1 (DNS rebinding) cannot read it from the operator's browser.

When the admin app is on (``PAPERBOY_ADMIN_TOKEN`` is set), the viewer lives behind its
login instead: ``/outbox`` redirects to the admin Outbox page (``/admin/outbox``), which reads
the folder with the functions here.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipeline.config import Config
from pipeline.config_view import is_loopback_url
from subscribers.web.deps import PagesDep, RuntimeDep
from subscribers.web.pages import EDITION_CSP
from subscribers.web.peers import LOCAL_NAMES, forwarded, host_name, is_loopback, trusted_proxy

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+=-]{0,200}\.eml")
SHOWN = 200

router = APIRouter()


@dataclass(frozen=True)
class Entry:
    name: str
    sender: str
    to: str
    subject: str
    date: str


def enabled(config: Config) -> bool:
    """Whether the viewer is on for ``config`` (``web.outbox_view``, see the module doc)."""
    view = config.web.outbox_view
    if view == "auto":
        return config.delivery.backend == "outbox" and is_loopback_url(config.web.base_url)
    return bool(view)


def allowed(request: Request, config: Config) -> bool:
    """True for a request from this machine, straight to us, naming a local or our own host."""
    if not enabled(config) or request.client is None:
        return False
    if forwarded(request.headers):
        return False
    peer = request.client.host
    if not is_loopback(peer) or trusted_proxy(peer, config.web.trusted_proxies):
        return False
    host = request.headers.get("host", "")
    return host_name(host) in {*LOCAL_NAMES, host_name(config.web.base_url, url=True)} - {""}


def entries(folder: Path) -> list[Entry]:
    """The newest messages first, at most ``SHOWN`` of them."""
    return listing(folder, 0, SHOWN)[0]


def listing(folder: Path, start: int, count: int) -> tuple[list[Entry], int]:
    """Messages ``start`` to ``start + count`` in newest-first order, and how many there are."""
    if not folder.is_dir():
        return [], 0
    files = [p for p in folder.iterdir() if NAME.fullmatch(p.name) and p.is_file()]
    files.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    shown = []
    for path in files[start : start + count]:
        message = read(path)
        shown.append(
            Entry(
                name=path.name,
                sender=str(message.get("From", "")),
                to=str(message.get("To", "")),
                subject=str(message.get("Subject", "")),
                date=str(message.get("Date", "")),
            )
        )
    return shown, len(files)


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


def admin_on(request: Request) -> bool:
    """Whether the admin app serves the outbox (behind its login) in this app."""
    return getattr(request.app.state, "admin", None) is not None


@router.get("/outbox", response_class=HTMLResponse)
def outbox_list(request: Request, pages: PagesDep, rt: RuntimeDep) -> Response:
    if admin_on(request):
        return RedirectResponse("/admin/outbox", status_code=303)
    if not allowed(request, rt.config):
        raise HTTPException(404)
    folder = rt.config.paths.outbox
    return pages.render("outbox.html", folder=str(folder), entries=entries(folder))


@router.get("/outbox/{name}", response_class=HTMLResponse)
def outbox_message(name: str, request: Request, pages: PagesDep, rt: RuntimeDep) -> Response:
    if admin_on(request) and NAME.fullmatch(name):
        return RedirectResponse(f"/admin/outbox/{name}", status_code=303)
    path = find(rt.config.paths.outbox, name)
    if not allowed(request, rt.config) or path is None:
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
