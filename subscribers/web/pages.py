"""The subscriber app's HTML pages: templates/web rendered with autoescape, in one place."""

from __future__ import annotations

from typing import Any

import jinja2
from fastapi.responses import HTMLResponse

from pipeline.config import Config
from pipeline.resources import web_templates
from subscribers.forms import schedule_text, timezones, topic_groups

TEMPLATES = web_templates()
# The web view is the email's own HTML: inline styles, no scripts, no forms.
EDITION_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


class Pages:
    """Renders a page of templates/web with the deployment's brand and postal address."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["schedule_text"] = schedule_text
        self.env.globals["topic_groups"] = topic_groups
        self.env.globals["resend_hours"] = resend_text(config.web.confirmation_resend_hours)
        self.zones = sorted(timezones())

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(
            brand=self.config.email.from_name or "paperboy",
            postal_address=self.config.email.postal_address,
            **context,
        )
        return HTMLResponse(html, status_code=status)


def resend_text(hours: float) -> str:
    """How the sign-up pages name the confirmation resend limit ("day", "6 hours")."""
    if hours <= 0:
        return ""
    if hours == 24:
        return "day"
    return f"{hours:g} hour{'s' if hours != 1 else ''}"
