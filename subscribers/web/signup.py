"""Sign-up and confirmation: ``/`` takes the form, ``/c/T`` spends a confirmation link."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.store import utcnow
from subscribers.forms import WEEKDAYS, parse_signup
from subscribers.web.deps import Form, PagesDep, RuntimeDep, client_host
from subscribers.web.pages import Pages
from subscribers.web.runtime import Runtime, send_later

router = APIRouter()


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


@router.get("/", response_class=HTMLResponse)
def signup_form(pages: PagesDep, rt: RuntimeDep) -> Response:
    fresh = {"timezone": "UTC", "send_hour": "7", "frequency": "daily"}
    return signup_page(pages, rt, 200, fresh, {}, autofill=True)


@router.post("/", response_class=HTMLResponse)
def signup(
    request: Request, background: BackgroundTasks, fields: Form, pages: PagesDep, rt: RuntimeDep
) -> Response:
    host = client_host(request)
    now = utcnow()
    if not rt.limiter.allow(host, now):
        response = pages.render(
            "error.html",
            429,
            title="Too many sign-ups",
            message="Too many sign-ups from your network in the last hour. Please try again later.",
        )
        response.headers["Retry-After"] = "3600"
        return response
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


@router.get("/c/{token}", response_class=HTMLResponse)
def confirm_page(token: str, pages: PagesDep, rt: RuntimeDep) -> Response:
    rt.service.confirmable(token)
    return pages.render("confirm.html")


@router.post("/c/{token}", response_class=HTMLResponse)
def confirm(
    token: str, request: Request, background: BackgroundTasks, pages: PagesDep, rt: RuntimeDep
) -> Response:
    sub, notice = rt.service.confirm(token, ip=client_host(request))
    send_later(background, rt, notice, release=False)
    return pages.render("confirmed.html", preferences_url=rt.links.preferences(sub.id))
