"""``/e/T``: the web view of a mailed edition, rebuilt from its ledger row."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from subscribers.web.deps import RuntimeDep
from subscribers.web.pages import EDITION_CSP

router = APIRouter()


@router.get("/e/{token}", response_class=HTMLResponse)
def edition(token: str, rt: RuntimeDep) -> Response:
    sub, selection, links = rt.service.edition(token)
    titles = {t.slug: t.title for t in rt.topics}
    html = rt.renderer.web_edition(selection, sub, links, topics=titles)
    return HTMLResponse(html, headers={"Content-Security-Policy": EDITION_CSP})
