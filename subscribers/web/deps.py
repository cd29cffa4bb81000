"""The handlers' dependencies: the runtime, the pages, the posted form, and the CSRF check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pipeline.errors import StaleFormError
from pipeline.models import Subscriber
from subscribers.web.pages import Pages
from subscribers.web.peers import ProxyHint
from subscribers.web.runtime import LiveRuntime, Runtime

CSRF_MAX_AGE = 24 * 3600.0

Fields = dict[str, list[str]]


async def runtime(request: Request) -> Runtime:
    """The runtime for the config in force (rebuilt first if the config was reloaded)."""
    live: LiveRuntime = request.app.state.live
    rt = await live.get()
    hint: ProxyHint = request.app.state.proxy_hint
    hint.see(request, rt.config.web)
    return rt


def current_pages(request: Request) -> Pages:
    """The pages of the runtime in force, for error handlers that run outside a route."""
    live: LiveRuntime = request.app.state.live
    return live.current.pages


async def posted(request: Request) -> Fields:
    """The posted form fields as ``{name: [values]}``; uploads are refused."""
    # Starlette answers a malformed or file-bearing body with a 400 itself.
    form = await request.form(max_files=0, max_fields=300)
    return {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}


def client_host(request: Request) -> str:
    return request.client.host if request.client else "unknown"


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def pages(rt: RuntimeDep) -> Pages:
    return rt.pages


PagesDep = Annotated[Pages, Depends(pages)]
Form = Annotated[Fields, Depends(posted)]


def preferences_subscriber(token: str, rt: RuntimeDep) -> Subscriber:
    """The subscriber a preferences link names; TokenError (an error page) otherwise."""
    sub, _ = rt.service.subscriber_for("preferences", token)
    return sub


def csrf_checked(token: str, fields: Form, rt: RuntimeDep) -> Subscriber:
    """The subscriber a preferences form is for, once its CSRF token checks out.

    A form left open too long, or posted from another site, raises StaleFormError, which
    shows the settings again and changes nothing.
    """
    sub = preferences_subscriber(token, rt)
    csrf = (fields.get("csrf") or [""])[0]
    if not rt.service.check_csrf(sub, csrf, CSRF_MAX_AGE):
        raise StaleFormError("the form's CSRF token is missing, expired or for someone else")
    return sub


PreferencesSubscriber = Annotated[Subscriber, Depends(preferences_subscriber)]
CheckedSubscriber = Annotated[Subscriber, Depends(csrf_checked)]
