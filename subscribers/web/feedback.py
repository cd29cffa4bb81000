"""``/f/T``: a 👍 or 👎 on one paper; the GET shows a button, the POST counts the vote."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from subscribers.web.deps import PagesDep, RuntimeDep

router = APIRouter()


@router.get("/f/{token}", response_class=HTMLResponse)
def feedback_page(token: str, pages: PagesDep, rt: RuntimeDep) -> Response:
    _sub, paper, vote = rt.service.vote_target(token)
    return pages.render("feedback.html", paper=paper, vote=vote)


@router.post("/f/{token}", response_class=HTMLResponse)
def feedback(token: str, pages: PagesDep, rt: RuntimeDep) -> Response:
    sub, paper, vote = rt.service.vote(token)
    return pages.render(
        "voted.html",
        paper=paper,
        vote=vote,
        other_url=rt.links.feedback(sub.id, paper.id, -vote),
        liked=sub.profile.liked_terms[:12],
        disliked=sub.profile.disliked_terms[:12],
        preferences_url=rt.links.preferences(sub.id),
    )
