"""``/p/T``: a reader's settings, and pausing, resuming, exporting or erasing their data.

Every POST here goes through the one CSRF dependency (``deps.CheckedSubscriber``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipeline.models import Subscriber, SubscriberStatus
from subscribers.forms import (
    EMPTY_PROFILE,
    WEEKDAYS,
    empty_profile,
    parse_preferences,
    preference_values,
)
from subscribers.web.deps import (
    CheckedSubscriber,
    Form,
    PagesDep,
    PreferencesSubscriber,
    RuntimeDep,
)
from subscribers.web.pages import Pages
from subscribers.web.runtime import Runtime

router = APIRouter(prefix="/p/{token}")

DONE_MESSAGES = {
    "saved": "Saved. Your next digest uses these settings.",
    "paused": "Paused. No digests until you resume.",
    "resumed": "Welcome back: digests are on again.",
}
STALE_FORM = (
    "This page was open too long or was sent from somewhere else, so nothing "
    "was changed. Check the settings below and try again."
)


def preferences_page(
    pages: Pages,
    rt: Runtime,
    sub: Subscriber,
    token: str,
    *,
    status: int = 200,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    message: str = "",
    problem: str = "",
) -> Response:
    return pages.render(
        "preferences.html",
        status,
        sub=sub,
        token=token,
        csrf=rt.service.csrf_token(sub),
        values=values if values is not None else preference_values(sub),
        errors=errors or {},
        message=message,
        problem=problem,
        topics=rt.topics,
        zones=pages.zones,
        weekdays=WEEKDAYS,
        Status=SubscriberStatus,
    )


@router.get("", response_class=HTMLResponse)
def preferences(
    token: str, sub: PreferencesSubscriber, pages: PagesDep, rt: RuntimeDep, done: str = ""
) -> Response:
    return preferences_page(pages, rt, sub, token, message=DONE_MESSAGES.get(done, ""))


@router.post("", response_class=HTMLResponse)
def save_preferences(
    token: str, sub: CheckedSubscriber, fields: Form, pages: PagesDep, rt: RuntimeDep
) -> Response:
    parsed = parse_preferences(fields, (t.slug for t in rt.topics))
    if parsed.data is not None and empty_profile(parsed.data):
        # Saved, such a profile would silently match nothing: refuse it as sign-up does.
        parsed.errors["topics"] = EMPTY_PROFILE
        parsed.data = None
    if parsed.data is None:
        return preferences_page(
            pages,
            rt,
            sub,
            token,
            status=400,
            values=parsed.values,
            errors=parsed.errors,
            problem="Some settings need another look; nothing was saved yet.",
        )
    rt.service.save_preferences(sub, parsed.data)
    return RedirectResponse(f"/p/{token}?done=saved", status_code=303)


@router.post("/pause", response_class=HTMLResponse)
def pause(token: str, sub: CheckedSubscriber, rt: RuntimeDep) -> Response:
    rt.service.pause(sub)
    return RedirectResponse(f"/p/{token}?done=paused", status_code=303)


@router.post("/resume", response_class=HTMLResponse)
def resume(token: str, sub: CheckedSubscriber, rt: RuntimeDep) -> Response:
    rt.service.resume(sub)
    return RedirectResponse(f"/p/{token}?done=resumed", status_code=303)


@router.post("/terms/remove", response_class=HTMLResponse)
def remove_term(
    token: str, sub: CheckedSubscriber, fields: Form, pages: PagesDep, rt: RuntimeDep
) -> Response:
    """Forget one term learned from votes; the page comes back saying which."""
    term = (fields.get("term") or [""])[0]
    changed = rt.service.forget_term(sub, term)
    if changed is None:  # a second click, or a tab left open: the posted text is not echoed
        return preferences_page(
            pages, rt, sub, token, message="That term was already gone; nothing changed."
        )
    message = f"Removed “{term}”. Your votes will not teach it again."
    return preferences_page(pages, rt, changed, token, message=message)


@router.post("/export")
def export(sub: CheckedSubscriber, rt: RuntimeDep) -> Response:
    data = rt.service.export(sub)
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="paperboy-my-data.json"'},
    )


@router.post("/delete", response_class=HTMLResponse)
def erase(
    token: str, sub: CheckedSubscriber, fields: Form, pages: PagesDep, rt: RuntimeDep
) -> Response:
    if (fields.get("sure") or [""])[0] != "yes":
        return preferences_page(
            pages,
            rt,
            sub,
            token,
            status=400,
            problem="Tick the box next to the delete button to confirm; nothing was deleted.",
        )
    rt.service.erase(sub)
    return pages.render("erased.html")
