"""What every admin page shares: rendering with the session's CSRF token, and form fields."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse

from subscribers.web.admin.auth import Session
from subscribers.web.deps import Fields
from subscribers.web.guard import PAGE_CSP
from subscribers.web.runtime import Runtime

# The admin pages may frame the app's own previews (sandboxed iframes); nothing else changes.
ADMIN_CSP = PAGE_CSP + "; frame-src 'self'"
NAV = (
    ("today", "/admin", "Today"),
    ("deliveries", "/admin/deliveries", "Deliveries"),
    ("subscribers", "/admin/subscribers", "Subscribers"),
    ("outbox", "/admin/outbox", "Outbox"),
    ("config", "/admin/config", "Config"),
)


def render(
    rt: Runtime, sess: Session, template: str, section: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """An admin page (``templates/web/admin/TEMPLATE``) with the navigation and CSRF token."""
    response = rt.pages.render(
        f"admin/{template}", status, csrf=sess.csrf, nav=NAV, section=section, **context
    )
    response.headers["Content-Security-Policy"] = ADMIN_CSP
    return response


def field(fields: Fields, name: str) -> str:
    """One posted field's first value, trimmed; empty when absent."""
    return (fields.get(name) or [""])[0].strip()
