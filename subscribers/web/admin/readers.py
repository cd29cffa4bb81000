"""``/admin/subscribers``: find a reader by address, see their profile, pause / resume /
unsubscribe / erase them, and preview their next edition with the reasons for each paper."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipeline.ledger import digest_links
from pipeline.models import Selection, Subscriber
from pipeline.preview import next_edition
from subscribers.web.admin.auth import Checked, Session, SessionDep
from subscribers.web.admin.common import field, render
from subscribers.web.deps import Form, RuntimeDep
from subscribers.web.pages import EDITION_CSP
from subscribers.web.runtime import Runtime

router = APIRouter(prefix="/admin/subscribers")

RECENT_EDITIONS = 10
DONE = {
    "paused": "Paused: no editions until resumed; anything queued was cancelled.",
    "resumed": "Resumed: editions are on again.",
    "unsubscribed": "Unsubscribed: nothing more is sent; anything queued was cancelled.",
    "unchanged": "Nothing changed: the subscriber was not in a state that allows it.",
}
# The preview frame may show only what the app itself serves, in a sandbox (no scripts).
PREVIEW_CSP = EDITION_CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'")


def subscriber(rt: Runtime, subscriber_id: int) -> Subscriber:
    sub = rt.store.subscribers.get(subscriber_id)
    if sub is None:
        raise HTTPException(404, "No subscriber with that id (erased, or never there).")
    return sub


@router.get("", response_class=HTMLResponse)
def search(sess: SessionDep, rt: RuntimeDep, q: str = "", done: str = "") -> Response:
    found = rt.store.subscribers.search(q) if q.strip() else []
    message = "Erased: the subscriber and their history are gone." if done == "erased" else ""
    return render(rt, sess, "subscribers.html", "subscribers", q=q, found=found, message=message)


def profile_page(
    rt: Runtime, sess: Session, sub: Subscriber, message: str = "", status: int = 200
) -> Response:
    record = rt.store.subscribers.record(sub.id) or {}
    editions: list[dict[str, Any]] = sorted(
        record.get("deliveries", []), key=lambda d: d["edition_date"], reverse=True
    )[:RECENT_EDITIONS]
    titles = {t.slug: t.title for t in rt.topics}
    return render(
        rt,
        sess,
        "subscriber.html",
        "subscribers",
        status,
        sub=sub,
        editions=editions,
        topic_titles=titles,
        message=message,
    )


@router.get("/{subscriber_id}", response_class=HTMLResponse)
def profile(subscriber_id: int, sess: SessionDep, rt: RuntimeDep, done: str = "") -> Response:
    return profile_page(rt, sess, subscriber(rt, subscriber_id), DONE.get(done, ""))


def _done(subscriber_id: int, changed: bool, what: str) -> Response:
    outcome = what if changed else "unchanged"
    return RedirectResponse(f"/admin/subscribers/{subscriber_id}?done={outcome}", status_code=303)


@router.post("/{subscriber_id}/pause")
def pause(subscriber_id: int, sess: Checked, rt: RuntimeDep) -> Response:
    return _done(subscriber_id, rt.service.pause(subscriber(rt, subscriber_id)), "paused")


@router.post("/{subscriber_id}/resume")
def resume(subscriber_id: int, sess: Checked, rt: RuntimeDep) -> Response:
    return _done(subscriber_id, rt.service.resume(subscriber(rt, subscriber_id)), "resumed")


@router.post("/{subscriber_id}/unsubscribe")
def unsubscribe(subscriber_id: int, sess: Checked, rt: RuntimeDep) -> Response:
    """Unsubscribe for the reader (no goodbye mail: they did not ask here themselves)."""
    sub = subscriber(rt, subscriber_id)
    before = sub.status
    rt.service.unsubscribe(sub)
    after = subscriber(rt, subscriber_id).status
    return _done(subscriber_id, before != after, "unsubscribed")


@router.get("/{subscriber_id}/erase", response_class=HTMLResponse)
def erase_form(subscriber_id: int, sess: SessionDep, rt: RuntimeDep) -> Response:
    """The confirmation step: erasing cannot be undone, so it asks first."""
    sub = subscriber(rt, subscriber_id)
    return render(rt, sess, "erase.html", "subscribers", sub=sub, problem="")


@router.post("/{subscriber_id}/erase", response_class=HTMLResponse)
def erase(subscriber_id: int, sess: Checked, fields: Form, rt: RuntimeDep) -> Response:
    sub = subscriber(rt, subscriber_id)
    if field(fields, "confirm").lower() != sub.email.lower():
        problem = "Type the subscriber's address exactly to confirm; nothing was erased."
        return render(rt, sess, "erase.html", "subscribers", 400, sub=sub, problem=problem)
    rt.service.erase(sub, "erased by an admin")
    return RedirectResponse("/admin/subscribers?done=erased", status_code=303)


def preview_of(rt: Runtime, sub: Subscriber) -> tuple[dt.date, Selection]:
    return next_edition(rt.store, rt.config, sub, dt.datetime.now(dt.UTC), rt.sentences)


@router.get("/{subscriber_id}/preview", response_class=HTMLResponse)
def preview(subscriber_id: int, sess: SessionDep, rt: RuntimeDep) -> Response:
    """The next edition's papers with their scores and reasons, and the mail in a frame."""
    sub = subscriber(rt, subscriber_id)
    edition, selection = preview_of(rt, sub)
    return render(
        rt,
        sess,
        "preview.html",
        "subscribers",
        sub=sub,
        edition=edition,
        selection=selection,
        recorded=rt.store.ledger.get(sub.id, edition) is not None,
    )


@router.get("/{subscriber_id}/preview.html", response_class=HTMLResponse)
def preview_html(subscriber_id: int, sess: SessionDep, rt: RuntimeDep) -> Response:
    """The next edition's HTML part, for the preview page's sandboxed frame."""
    sub = subscriber(rt, subscriber_id)
    edition, selection = preview_of(rt, sub)
    ids = [sp.paper.id for sp in selection.papers]
    links = digest_links(rt.links, sub.id, edition, ids)
    titles = {t.slug: t.title for t in rt.topics}
    html = rt.renderer.digest(selection, sub, links, topics=titles).html
    return HTMLResponse(
        html,
        headers={"Content-Security-Policy": PREVIEW_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )
