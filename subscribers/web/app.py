"""The subscriber web app's composition root: ``create_app(config)``.

Routes, one router module each: ``/`` sign-up and ``/c/T`` confirm (``signup``), ``/p/T``
preferences, ``/u/T`` one-click unsubscribe (RFC 8058), ``/f/T`` feedback, ``/e/T`` the web
view of an edition, ``/outbox`` (local requests only, while mail goes to the outbox folder)
and ``/healthz``. Every GET only shows a page; state changes on POST. Handlers are plain
functions run in the thread pool (the store is synchronous); mails go out after the
response, on the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pipeline.config import Config
from pipeline.embedding.runtime import SentenceModel
from subscribers.web import (
    edition,
    errors,
    feedback,
    health,
    outbox,
    preferences,
    signup,
    unsubscribe,
)
from subscribers.web.guard import Guard
from subscribers.web.pages import TEMPLATES, Pages
from subscribers.web.runtime import opened

ROUTERS = (
    signup.router,
    preferences.router,
    unsubscribe.router,
    feedback.router,
    edition.router,
    outbox.router,
    health.router,
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the store and the sender for as long as the app serves."""
    async with opened(app.state.config, app.state.sentences) as rt:
        app.state.runtime = rt
        try:
            yield
        finally:
            del app.state.runtime


def create_app(config: Config, sentences: SentenceModel | None = None) -> FastAPI:
    """The subscriber app for ``config``; the store and sender open when it starts.
    ``sentences``: the sentence model (default the process's, shared with the scheduler)."""
    app = FastAPI(
        title="paperboy", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.config = config
    app.state.sentences = sentences
    app.state.pages = Pages(config)
    app.add_middleware(Guard)
    app.mount("/static", StaticFiles(directory=TEMPLATES / "static"), name="static")
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
