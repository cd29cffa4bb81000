"""``/f/T``: a 👍 or 👎 on one paper. The GET page posts itself with JavaScript (a button
without it), the POST counts the vote, ``/f/T/undo`` takes it back."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from subscribers.web.deps import PagesDep, RuntimeDep

router = APIRouter()


@router.get("/f/{token}", response_class=HTMLResponse)
def feedback_page(token: str, pages: PagesDep, rt: RuntimeDep) -> Response:
    """Changes nothing: a mail scanner fetching the link casts no vote."""
    _sub, paper, vote = rt.service.vote_target(token)
    return pages.render("feedback.html", paper=paper, vote=vote)


@router.post("/f/{token}", response_class=HTMLResponse)
def feedback(token: str, pages: PagesDep, rt: RuntimeDep) -> Response:
    sub, paper, vote = rt.service.vote(token)
    return pages.render(
        "voted.html",
        paper=paper,
        vote=vote,
        undo_url=f"/f/{token}/undo",
        other_url=rt.links.feedback(sub.id, paper.id, -vote),
        liked=sub.profile.liked_terms[:12],
        disliked=sub.profile.disliked_terms[:12],
        preferences_url=rt.links.preferences(sub.id),
    )


@router.post("/f/{token}/undo", response_class=HTMLResponse)
def undo(token: str, pages: PagesDep, rt: RuntimeDep) -> Response:
    sub, paper, vote, removed = rt.service.undo_vote(token)
    return pages.render(
        "unvoted.html",
        paper=paper,
        vote=vote,
        removed=removed,
        vote_url=f"/f/{token}",
        preferences_url=rt.links.preferences(sub.id),
    )
