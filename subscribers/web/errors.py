"""How the web app answers paperboy's errors: each one becomes a page with a status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from pipeline.errors import StaleFormError, StoreError, TokenError
from subscribers.signup import INVALID_LINK
from subscribers.web.deps import current_pages as pages
from subscribers.web.deps import preferences_subscriber, runtime
from subscribers.web.preferences import STALE_FORM, preferences_page

log = logging.getLogger("paperboy.web")

TITLES = {404: "Page not found", 405: "Use the button on the page", 413: "Too much"}
MESSAGES = {
    404: "There is nothing at this address.",
    405: "This address only takes the form on its page.",
}


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(TokenError, token_error)  # type: ignore[arg-type]
    app.add_exception_handler(StoreError, store_error)  # type: ignore[arg-type]
    app.add_exception_handler(StaleFormError, stale_form)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]


async def token_error(request: Request, _exc: TokenError) -> Response:
    return pages(request).render(
        "error.html", 400, title="This link does not work", message=INVALID_LINK
    )


async def store_error(request: Request, exc: StoreError) -> Response:
    log.error("store error: %s", exc)
    return pages(request).render(
        "error.html",
        503,
        title="Please try again in a minute",
        message="paperboy cannot reach its database right now. Nothing was changed.",
    )


async def stale_form(request: Request, _exc: StaleFormError) -> Response:
    """The settings form again, unchanged, with a note saying why nothing was saved."""
    token = str(request.path_params["token"])
    rt = await runtime(request)
    sub = await run_in_threadpool(preferences_subscriber, token, rt)
    return preferences_page(rt.pages, rt, sub, token, status=400, problem=STALE_FORM)


async def http_error(request: Request, exc: HTTPException) -> Response:
    response = pages(request).render(
        "error.html",
        exc.status_code,
        title=TITLES.get(exc.status_code, "Something is wrong with this request"),
        message=MESSAGES.get(exc.status_code, str(exc.detail)),
    )
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response
