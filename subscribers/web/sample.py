"""``/sample``: what a digest looks like, rendered from the latest stored papers for a
generic reader, so a visitor can see it before signing up. Read-only: nothing is matched,
recorded or sent."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from pipeline.models import (
    Paper,
    Profile,
    Reason,
    ScoredPaper,
    Selection,
    Subscriber,
    SubscriberStatus,
)
from pipeline.render.views import DigestLinks
from pipeline.store import utcnow
from subscribers.web.deps import PagesDep, RuntimeDep
from subscribers.web.pages import EDITION_CSP
from subscribers.web.runtime import Runtime

router = APIRouter()
SAMPLE_PAPERS = 10


def sample_reader(rt: Runtime, now: dt.datetime) -> Subscriber:
    """A reader who picked the catalog's popular topics; never stored."""
    popular = tuple(t.slug for t in rt.topics if t.popular)
    return Subscriber(
        id=0,
        email="reader@example.org",
        status=SubscriberStatus.ACTIVE,
        profile=Profile(topics=popular),
        created_at=now,
    )


def sample_selection(papers: list[Paper], today: dt.date) -> Selection:
    """The papers, most upvoted first, each picked for being what the community reads."""
    picked = tuple(
        ScoredPaper(
            paper=p,
            score=1.0 - i / (len(papers) + 1),
            reasons=(Reason(kind="trending", upvotes=p.upvotes),) if p.upvotes else (),
        )
        for i, p in enumerate(papers)
    )
    return Selection(subscriber_id=0, edition_date=today, papers=picked)


@router.get("/sample", response_class=HTMLResponse)
def sample(pages: PagesDep, rt: RuntimeDep) -> Response:
    papers = rt.store.papers.latest(SAMPLE_PAPERS)
    if not papers:
        return pages.render("sample_empty.html")
    now = utcnow()
    home = rt.links.home()
    links = DigestLinks(web=f"{home}sample", preferences=home, unsubscribe=home)
    html = rt.renderer.web_edition(
        sample_selection(papers, now.date()),
        sample_reader(rt, now),
        links,
        topics={t.slug: t.title for t in rt.topics},
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": EDITION_CSP})
