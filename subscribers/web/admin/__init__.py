"""The admin web app at ``/admin``: Today, Deliveries, Subscribers, Outbox and Config.

On only when ``PAPERBOY_ADMIN_TOKEN`` is set (see ``auth``); one router per page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from subscribers.web.admin import deliveries, login, mailbox, readers, settings, today
from subscribers.web.admin.auth import AdminAuth, LoginNeeded

ROUTERS = (
    login.router,
    today.router,
    deliveries.router,
    readers.router,
    mailbox.router,
    settings.router,
)


def install(app: FastAPI, auth: AdminAuth | None, config_path: Path | None) -> None:
    """Add the admin routes to ``app``; they answer 404 while ``auth`` is None."""
    app.state.admin = auth
    app.state.config_path = config_path
    app.add_exception_handler(LoginNeeded, login.login_needed)  # type: ignore[arg-type]
    for router in ROUTERS:
        app.include_router(router)
