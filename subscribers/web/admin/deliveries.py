"""``/admin/deliveries``: one edition date's ledger rows, "retry now", the edition as mailed."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipeline.ledger import digest_links, recorded_selection
from pipeline.models import DeliveryStatus
from subscribers.web.admin.auth import Checked, SessionDep
from subscribers.web.admin.common import field, render
from subscribers.web.deps import Form, RuntimeDep
from subscribers.web.pages import EDITION_CSP

router = APIRouter(prefix="/admin/deliveries")

RETRYABLE = (DeliveryStatus.DEFERRED, DeliveryStatus.FAILED)
# Rows listed at most; a big day is narrowed with the status filter (or `paperboy deliveries`).
SHOWN = 500
DONE = {
    "retried": "Queued again: the next delivery run sends it.",
    "not-retried": "Nothing to retry: that edition is no longer deferred or failed.",
}


def parse_day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


@router.get("", response_class=HTMLResponse)
def deliveries_page(
    sess: SessionDep,
    rt: RuntimeDep,
    date: str = "",
    status: list[str] = Query(default=[]),  # noqa: B008 (FastAPI's way to take a repeated key)
    done: str = "",
) -> Response:
    problems = []
    day = parse_day(date) if date else dt.datetime.now(dt.UTC).date()
    if day is None:
        problems.append(f"{date!r} is not a date like 2026-07-03; showing today.")
        day = dt.datetime.now(dt.UTC).date()
    known = {s.value: s for s in DeliveryStatus}
    chosen = [known[s] for s in status if s in known]
    problems += [f"{s!r} is not a delivery status; ignored." for s in status if s not in known]
    rows = rt.store.ledger.all(chosen or None, day)
    listed = rows[:SHOWN]
    emails = {
        sid: sub.email
        for sid in {d.subscriber_id for d in listed}
        if (sub := rt.store.subscribers.get(sid)) is not None
    }
    return render(
        rt,
        sess,
        "deliveries.html",
        "deliveries",
        day=day,
        rows=listed,
        total=len(rows),
        emails=emails,
        chosen={s.value for s in chosen},
        statuses=[s.value for s in DeliveryStatus],
        retryable={s.value for s in RETRYABLE},
        problems=problems,
        message=DONE.get(done, ""),
    )


@router.post("/retry")
def retry(sess: Checked, fields: Form, rt: RuntimeDep) -> Response:
    """Set one deferred or failed edition back to queued; the delivery run does the rest."""
    day = parse_day(field(fields, "date"))
    sid = field(fields, "subscriber")
    if day is None or not sid.isdigit():
        raise HTTPException(400, "The retry form needs a subscriber id and an edition date.")
    done = rt.store.ledger.retry_now(int(sid), day)
    query = urlencode({"date": day.isoformat(), "done": "retried" if done else "not-retried"})
    return RedirectResponse(f"/admin/deliveries?{query}", status_code=303)


@router.get("/{subscriber_id}/{date}/mailed", response_class=HTMLResponse)
def as_mailed(subscriber_id: int, date: str, sess: SessionDep, rt: RuntimeDep) -> Response:
    """The HTML part of an edition as it went out, rebuilt from its ledger row."""
    day = parse_day(date)
    row = rt.store.ledger.get(subscriber_id, day) if day else None
    sub = rt.store.subscribers.get(subscriber_id)
    if row is None or sub is None or not row.paper_ids:
        raise HTTPException(404, "No mailed edition there (never queued with papers, or erased).")
    selection = recorded_selection(row, rt.store.papers.by_ids(row.paper_ids))
    links = digest_links(rt.links, sub.id, row.edition_date, row.paper_ids)
    titles = {t.slug: t.title for t in rt.topics}
    html = rt.renderer.digest(selection, sub, links, topics=titles).html
    return HTMLResponse(html, headers={"Content-Security-Policy": EDITION_CSP})
