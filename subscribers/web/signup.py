"""Sign-up and confirmation: ``/`` takes the form, ``/c/T`` spends a confirmation link and
``/c/T/renew`` mails a fresh one for an expired link."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from pipeline.models import Subscriber
from pipeline.store import utcnow
from subscribers.forms import WEEKDAYS, parse_signup
from subscribers.linkstate import CONFIRMS, LinkState
from subscribers.web.deps import Fields, Form, PagesDep, RuntimeDep, client_host
from subscribers.web.pages import Pages
from subscribers.web.runtime import Runtime, send_later

router = APIRouter()
# Every sign-up post answers after at least this long. New and known addresses run the same
# statements, but a commit that wrote rows still takes longer than one that did not; padding
# to a floor well above the work hides that difference (benchmarks/signup_timing.py).
SIGNUP_FLOOR_SECONDS = 0.1


def signup_page(
    pages: Pages,
    rt: Runtime,
    status: int,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    autofill: bool = False,
) -> Response:
    return pages.render(
        "signup.html",
        status,
        values=values,
        errors=errors,
        topics=rt.topics,
        zones=pages.zones,
        weekdays=WEEKDAYS,
        autofill=autofill,
    )


def too_many(pages: Pages) -> Response:
    response = pages.render(
        "error.html",
        429,
        title="Too many sign-ups",
        message="Too many sign-ups from your network in the last hour. Please try again later.",
    )
    response.headers["Retry-After"] = "3600"
    return response


@router.get("/", response_class=HTMLResponse)
def signup_form(pages: PagesDep, rt: RuntimeDep) -> Response:
    fresh = {"timezone": "UTC", "send_hour": "7", "frequency": "daily"}
    return signup_page(pages, rt, 200, fresh, {}, autofill=True)


@router.post("/", response_class=HTMLResponse)
async def signup(
    request: Request, background: BackgroundTasks, fields: Form, pages: PagesDep, rt: RuntimeDep
) -> Response:
    """Take the form in the thread pool (the store is synchronous), then wait out the rest of
    ``SIGNUP_FLOOR_SECONDS`` so the time taken says nothing about the address."""
    started = time.monotonic()
    response = await run_in_threadpool(take_signup, request, background, fields, pages, rt)
    await asyncio.sleep(SIGNUP_FLOOR_SECONDS - (time.monotonic() - started))
    return response


def take_signup(
    request: Request, background: BackgroundTasks, fields: Fields, pages: Pages, rt: Runtime
) -> Response:
    host = client_host(request)
    now = utcnow()
    if not rt.limiter.allow(host, now):
        return too_many(pages)
    if any(v.strip() for v in fields.get("website", ())):
        # The honeypot is filled: a bot. Answer exactly as for a person, do nothing.
        rt.limiter.record(host, False, now)
        return pages.render("check_inbox.html", email=fields.get("email", [""])[0][:254])
    parsed = parse_signup(fields, (t.slug for t in rt.topics))
    rt.limiter.record(host, parsed.data is not None, now)
    if parsed.data is None:
        return signup_page(pages, rt, 400, parsed.values, parsed.errors)
    notice = rt.service.sign_up(parsed.data, ip=host, now=now)
    send_later(background, rt, notice, release=True)
    return pages.render("check_inbox.html", email=parsed.data.email)


# What each confirmation-link state that confirms nothing answers: status and title.
STATE_PAGES = {
    LinkState.ACTIVE: (200, "You're already subscribed"),
    LinkState.STALE: (410, "This link is no longer valid"),
    LinkState.EXPIRED: (410, "This link has expired"),
}


def state_page(
    pages: Pages, rt: Runtime, token: str, state: LinkState, sub: Subscriber
) -> Response:
    """The one answer for ``state`` (subscribers.linkstate): the confirm button for the
    states that confirm, a page of its own for each other."""
    if state in CONFIRMS:
        return pages.render("confirm.html")
    status, title = STATE_PAGES[state]
    return pages.render(
        "link_state.html",
        status,
        state=state.value,
        title=title,
        preferences_url=rt.links.preferences(sub.id) if state == LinkState.ACTIVE else "",
        renew_url=f"/c/{token}/renew",
    )


@router.get("/c/{token}", response_class=HTMLResponse)
def confirm_page(token: str, pages: PagesDep, rt: RuntimeDep) -> Response:
    state, sub = rt.service.link_state(token)
    return state_page(pages, rt, token, state, sub)


@router.post("/c/{token}", response_class=HTMLResponse)
def confirm(
    token: str, request: Request, background: BackgroundTasks, pages: PagesDep, rt: RuntimeDep
) -> Response:
    done = rt.service.confirm(token, ip=client_host(request))
    if not done.confirmed:
        return state_page(pages, rt, token, done.state, done.subscriber)
    send_later(background, rt, done.notice, release=False)
    return pages.render(
        "confirmed.html",
        preferences_url=rt.links.preferences(done.subscriber.id),
        first_digest=done.notice.first_digest if done.notice else "",
    )


@router.post("/c/{token}/renew", response_class=HTMLResponse)
def renew(
    token: str, request: Request, background: BackgroundTasks, pages: PagesDep, rt: RuntimeDep
) -> Response:
    """A fresh confirmation link for an expired one: a POST (mail scanners only GET), limited
    like the sign-up form, per network and per address (web.confirmation_resend_hours)."""
    host = client_host(request)
    now = utcnow()
    if not rt.limiter.allow(host, now):
        return too_many(pages)
    rt.limiter.record(host, True, now)
    state, sub = rt.service.link_state(token, now)
    if state != LinkState.EXPIRED:
        return state_page(pages, rt, token, state, sub)
    notice = rt.service.renew(token, now)
    send_later(background, rt, notice, release=True)
    return pages.render("check_inbox.html", email=sub.email)
