"""The subscriber web app's composition root: ``create_app(config)``.

Routes, one router module each: ``/`` sign-up and ``/c/T`` confirm (``signup``), ``/p/T``
preferences, ``/u/T`` one-click unsubscribe (RFC 8058), ``/f/T`` feedback, ``/e/T`` the web
view of an edition, ``/outbox`` (local requests only, while mail goes to the outbox folder;
see ``outbox``), ``/healthz``, ``/metrics`` for Prometheus (local scrapers, or the admin
token; see ``metrics``), and the admin app under ``/admin`` when ``PAPERBOY_ADMIN_TOKEN`` is
set (``subscribers.web.admin``). Every GET only shows a page; state changes on POST. Handlers
are plain functions run in the thread pool (the store is synchronous); mails go out after the
response, on the event loop.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pipeline.config import Config
from pipeline.embedding.runtime import SentenceModel
from subscribers.web import (
    admin,
    edition,
    errors,
    feedback,
    health,
    metrics,
    outbox,
    preferences,
    sample,
    signup,
    unsubscribe,
)
from subscribers.web.admin.auth import TOKEN_ENV, from_env
from subscribers.web.guard import Guard
from subscribers.web.pages import TEMPLATES
from subscribers.web.peers import ProxyHint
from subscribers.web.runtime import ConfigSource, opened

ROUTERS = (
    signup.router,
    sample.router,
    preferences.router,
    unsubscribe.router,
    feedback.router,
    edition.router,
    outbox.router,
    health.router,
    metrics.router,
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the store and the sender for as long as the app serves."""
    async with opened(app.state.source, app.state.sentences) as live:
        app.state.live = live
        try:
            yield
        finally:
            del app.state.live


def create_app(
    config: Config | Callable[[], Config],
    sentences: SentenceModel | None = None,
    *,
    admin_token: str | None = None,
    config_path: Path | None = None,
) -> FastAPI:
    """The subscriber app for ``config``; the store and sender open when it starts.

    ``config`` may be a function returning the config in force (``paperboy run`` passes its
    reloading one): a new config object is taken up by the next request. ``sentences``: the
    sentence model (default the process's, shared with the scheduler). ``admin_token``: the
    admin app's token (default ``$PAPERBOY_ADMIN_TOKEN``; empty or unset: no admin app);
    ``config_path``: the file the admin Config page edits (None: it only shows)."""
    app = FastAPI(
        title="paperboy", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    source: ConfigSource = config if callable(config) else (lambda: config)
    app.state.source = source
    app.state.sentences = sentences
    app.state.proxy_hint = ProxyHint()
    app.add_middleware(Guard)
    app.mount("/static", StaticFiles(directory=TEMPLATES / "static"), name="static")
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    token = os.environ.get(TOKEN_ENV, "") if admin_token is None else admin_token
    auth = from_env(token)  # None when unset or too short: no admin app, local scrapes only
    metrics.install(app, token if auth is not None else None)
    admin.install(app, auth, config_path)
    return app
