"""``/u/T``: one-click unsubscribe (RFC 8058), and the page a clicked link opens."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks
from fastapi.responses import HTMLResponse, Response

from pipeline.models import SubscriberStatus
from subscribers.web.deps import Form, PagesDep, RuntimeDep
from subscribers.web.runtime import send_later

router = APIRouter()


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, pages: PagesDep, rt: RuntimeDep) -> Response:
    sub, _ = rt.service.subscriber_for("unsubscribe", token)
    return pages.render("unsubscribe.html", done=sub.status == SubscriberStatus.UNSUBSCRIBED)


@router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(
    token: str, background: BackgroundTasks, _fields: Form, pages: PagesDep, rt: RuntimeDep
) -> Response:
    # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" without cookies; the
    # signed token is the only authority needed, and the answer is a 200, not a redirect.
    sub, _ = rt.service.subscriber_for("unsubscribe", token)
    notice = rt.service.unsubscribe(sub)
    send_later(background, rt, notice, release=False)
    return pages.render("unsubscribed.html", preferences_url=rt.links.preferences(sub.id))
