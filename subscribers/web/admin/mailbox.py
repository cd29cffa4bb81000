"""``/admin/outbox``: the mail catcher behind the admin login, a page of messages at a time.

The public ``/outbox`` stays for ``make run`` on a laptop (loopback only, see
``subscribers.web.outbox``); on a server this page is the way to read the outbox folder.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from subscribers.web import outbox
from subscribers.web.admin.auth import SessionDep
from subscribers.web.admin.common import render
from subscribers.web.deps import RuntimeDep
from subscribers.web.pages import EDITION_CSP

router = APIRouter(prefix="/admin/outbox")

PER_PAGE = 50


@router.get("", response_class=HTMLResponse)
def mail_list(sess: SessionDep, rt: RuntimeDep, page: int = 1) -> Response:
    page = max(page, 1)
    folder = rt.config.paths.outbox
    shown, total = outbox.listing(folder, (page - 1) * PER_PAGE, PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    return render(
        rt,
        sess,
        "outbox.html",
        "outbox",
        folder=str(folder),
        entries=shown,
        total=total,
        page=page,
        pages=pages,
        backend=rt.config.delivery.backend,
    )


@router.get("/{name}", response_class=HTMLResponse)
def mail(name: str, sess: SessionDep, rt: RuntimeDep) -> Response:
    path = outbox.find(rt.config.paths.outbox, name)
    if path is None:
        raise HTTPException(404, "No such message in the outbox folder (pruned or erased?).")
    message = outbox.read(path)
    return render(
        rt,
        sess,
        "mail.html",
        "outbox",
        mail_name=name,
        sender=str(message.get("From", "")),
        to=str(message.get("To", "")),
        subject=str(message.get("Subject", "")),
        date=str(message.get("Date", "")),
        text=outbox.body_text(message),
        has_html=outbox.body_html(message) is not None,
    )


@router.get("/{name}/html", response_class=HTMLResponse)
def mail_html(name: str, sess: SessionDep, rt: RuntimeDep) -> Response:
    """The HTML part on its own, under the edition view's strict policy (no scripts)."""
    path = outbox.find(rt.config.paths.outbox, name)
    html = outbox.body_html(outbox.read(path)) if path is not None else None
    if html is None:
        raise HTTPException(404, "That message has no HTML part.")
    return HTMLResponse(html, headers={"Content-Security-Policy": EDITION_CSP})
