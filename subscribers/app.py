"""The subscriber web app: ``create_app(config)`` is its one composition root.

Routes: ``/`` sign-up, ``/c/T`` confirm, ``/p/T`` preferences, ``/u/T`` unsubscribe (RFC 8058
one-click POST), ``/f/T`` feedback, ``/e/T`` web view of an edition, ``/healthz``, and
``/outbox`` (local requests only, while mail goes to the outbox folder). Every GET
only shows a page; state changes on POST. Handlers are plain functions run in the thread
pool (the store is synchronous); mails go out after the response, on the event loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import BackgroundTasks, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.config import Config
from pipeline.errors import PaperboyError, StoreError, TokenError
from pipeline.links import Links
from pipeline.models import (
    Subscriber,
    SubscriberStatus,
)
from pipeline.render import Renderer
from pipeline.send import sender_for
from pipeline.store import Store, open_store, utcnow
from pipeline.topics import load_catalog
from subscribers import outbox
from subscribers.forms import (
    WEEKDAYS,
    TopicChoice,
    parse_preferences,
    parse_signup,
    preference_values,
    schedule_text,
    timezones,
    topic_choices,
)
from subscribers.guard import Guard
from subscribers.notices import Mailer
from subscribers.ratelimit import SignupLimiter
from subscribers.signup import INVALID_LINK, Notice, SubscriberService

log = logging.getLogger("paperboy.web")

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "web"
CSRF_MAX_AGE = 24 * 3600.0
DONE_MESSAGES = {
    "saved": "Saved. Your next digest uses these settings.",
    "paused": "Paused. No digests until you resume.",
    "resumed": "Welcome back: digests are on again.",
}
# The web view is the email's own HTML: inline styles, no scripts, no forms.
EDITION_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)

Fields = dict[str, list[str]]


@dataclass
class Runtime:
    """What the handlers share while the app runs; built in the lifespan."""

    config: Config
    store: Store
    service: SubscriberService
    limiter: SignupLimiter
    mailer: Mailer
    renderer: Renderer
    links: Links
    topics: tuple[TopicChoice, ...]


def create_app(config: Config) -> FastAPI:
    """The subscriber app for ``config``; the store and sender open when it starts."""
    holder: dict[str, Runtime] = {}
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["schedule_text"] = schedule_text
    hours = config.web.confirmation_resend_hours
    env.globals["resend_hours"] = (
        "" if hours <= 0 else "day" if hours == 24 else f"{hours:g} hour{'s' if hours != 1 else ''}"
    )
    zones = sorted(timezones())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        topics = topic_choices(load_catalog(config.topics))
        renderer = Renderer(config)
        links = Links.for_config(config)
        sender = sender_for(config)
        with open_store(config) as store:
            holder["rt"] = Runtime(
                config=config,
                store=store,
                service=SubscriberService(config, store, links),
                limiter=SignupLimiter(store, config.web.signups_per_ip_per_hour),
                mailer=Mailer(config, renderer, sender),
                renderer=renderer,
                links=links,
                topics=topics,
            )
            try:
                yield
            finally:
                holder.pop("rt", None)
                await sender.close()

    app = FastAPI(
        title="paperboy", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.add_middleware(Guard)
    app.mount("/static", StaticFiles(directory=TEMPLATES / "static"), name="static")

    def rt() -> Runtime:
        return holder["rt"]

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(
            brand=config.email.from_name or "paperboy",
            postal_address=config.email.postal_address,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def signup_page(
        status: int, values: Mapping[str, Any], errors: Mapping[str, str], autofill: bool = False
    ) -> Response:
        return page(
            "signup.html",
            status,
            values=values,
            errors=errors,
            topics=rt().topics,
            zones=zones,
            weekdays=WEEKDAYS,
            autofill=autofill,
        )

    def send_later(background: BackgroundTasks, notice: Notice | None, release: bool) -> None:
        if notice is not None:
            background.add_task(deliver_notice, rt(), notice, release)

    # --- errors ------------------------------------------------------------------------------

    @app.exception_handler(TokenError)
    async def token_error(_request: Request, _exc: TokenError) -> Response:
        return page("error.html", 400, title="This link does not work", message=INVALID_LINK)

    @app.exception_handler(StoreError)
    async def store_error(_request: Request, exc: StoreError) -> Response:
        log.error("store error: %s", exc)
        return page(
            "error.html",
            503,
            title="Please try again in a minute",
            message="paperboy cannot reach its database right now. Nothing was changed.",
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Page not found", 405: "Use the button on the page", 413: "Too much"}
        messages = {
            404: "There is nothing at this address.",
            405: "This address only takes the form on its page.",
        }
        response = page(
            "error.html",
            exc.status_code,
            title=titles.get(exc.status_code, "Something is wrong with this request"),
            message=messages.get(exc.status_code, str(exc.detail)),
        )
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    # --- sign-up -----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def signup_form() -> Response:
        fresh = {"timezone": "UTC", "send_hour": "7", "frequency": "daily"}
        return signup_page(200, fresh, {}, autofill=True)

    @app.post("/", response_class=HTMLResponse)
    def signup(
        request: Request, background: BackgroundTasks, fields: Annotated[Fields, Depends(posted)]
    ) -> Response:
        r = rt()
        host = client_host(request)
        now = utcnow()
        if not r.limiter.allow(host, now):
            response = page(
                "error.html",
                429,
                title="Too many sign-ups",
                message="Too many sign-ups from your network in the last hour. "
                "Please try again later.",
            )
            response.headers["Retry-After"] = "3600"
            return response
        if any(v.strip() for v in fields.get("website", ())):
            # The honeypot is filled: a bot. Answer exactly as for a person, do nothing.
            r.limiter.record(host, False, now)
            return page("check_inbox.html", email=fields.get("email", [""])[0][:254])
        parsed = parse_signup(fields, (t.slug for t in r.topics))
        r.limiter.record(host, parsed.data is not None, now)
        if parsed.data is None:
            return signup_page(400, parsed.values, parsed.errors)
        notice = r.service.sign_up(parsed.data, ip=host, now=now)
        send_later(background, notice, release=True)
        return page("check_inbox.html", email=parsed.data.email)

    # --- confirm -----------------------------------------------------------------------------

    @app.get("/c/{token}", response_class=HTMLResponse)
    def confirm_page(token: str) -> Response:
        rt().service.confirmable(token)
        return page("confirm.html")

    @app.post("/c/{token}", response_class=HTMLResponse)
    def confirm(token: str, request: Request, background: BackgroundTasks) -> Response:
        r = rt()
        sub, notice = r.service.confirm(token, ip=client_host(request))
        send_later(background, notice, release=False)
        return page("confirmed.html", preferences_url=r.links.preferences(sub.id))

    # --- preferences -------------------------------------------------------------------------

    def preferences_page(
        sub: Subscriber,
        token: str,
        *,
        status: int = 200,
        values: Mapping[str, Any] | None = None,
        errors: Mapping[str, str] | None = None,
        message: str = "",
        problem: str = "",
    ) -> Response:
        r = rt()
        return page(
            "preferences.html",
            status,
            sub=sub,
            token=token,
            csrf=r.service.csrf_token(sub),
            values=values if values is not None else preference_values(sub),
            errors=errors or {},
            message=message,
            problem=problem,
            topics=r.topics,
            zones=zones,
            weekdays=WEEKDAYS,
            Status=SubscriberStatus,
        )

    def stale_form(sub: Subscriber, token: str, fields: Fields) -> Response | None:
        csrf = (fields.get("csrf") or [""])[0]
        if rt().service.check_csrf(sub, csrf, CSRF_MAX_AGE):
            return None
        return preferences_page(
            sub,
            token,
            status=400,
            values=preference_values(sub),
            problem="This page was open too long or was sent from somewhere else, so nothing "
            "was changed. Check the settings below and try again.",
        )

    @app.get("/p/{token}", response_class=HTMLResponse)
    def preferences(token: str, done: str = "") -> Response:
        sub, _ = rt().service.subscriber_for("preferences", token)
        return preferences_page(sub, token, message=DONE_MESSAGES.get(done, ""))

    @app.post("/p/{token}", response_class=HTMLResponse)
    def save_preferences(token: str, fields: Annotated[Fields, Depends(posted)]) -> Response:
        r = rt()
        sub, _ = r.service.subscriber_for("preferences", token)
        if (refused := stale_form(sub, token, fields)) is not None:
            return refused
        parsed = parse_preferences(fields, (t.slug for t in r.topics))
        if parsed.data is None:
            return preferences_page(
                sub,
                token,
                status=400,
                values=parsed.values,
                errors=parsed.errors,
                problem="Some settings need another look; nothing was saved yet.",
            )
        r.service.save_preferences(sub, parsed.data)
        return RedirectResponse(f"/p/{token}?done=saved", status_code=303)

    @app.post("/p/{token}/pause", response_class=HTMLResponse)
    def pause(token: str, fields: Annotated[Fields, Depends(posted)]) -> Response:
        sub, _ = rt().service.subscriber_for("preferences", token)
        if (refused := stale_form(sub, token, fields)) is not None:
            return refused
        rt().service.pause(sub)
        return RedirectResponse(f"/p/{token}?done=paused", status_code=303)

    @app.post("/p/{token}/resume", response_class=HTMLResponse)
    def resume(token: str, fields: Annotated[Fields, Depends(posted)]) -> Response:
        sub, _ = rt().service.subscriber_for("preferences", token)
        if (refused := stale_form(sub, token, fields)) is not None:
            return refused
        rt().service.resume(sub)
        return RedirectResponse(f"/p/{token}?done=resumed", status_code=303)

    @app.post("/p/{token}/export")
    def export(token: str, fields: Annotated[Fields, Depends(posted)]) -> Response:
        sub, _ = rt().service.subscriber_for("preferences", token)
        if (refused := stale_form(sub, token, fields)) is not None:
            return refused
        data = rt().service.export(sub)
        return Response(
            json.dumps(data, indent=2, ensure_ascii=False),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="paperboy-my-data.json"'},
        )

    @app.post("/p/{token}/delete", response_class=HTMLResponse)
    def erase(token: str, fields: Annotated[Fields, Depends(posted)]) -> Response:
        sub, _ = rt().service.subscriber_for("preferences", token)
        if (refused := stale_form(sub, token, fields)) is not None:
            return refused
        if (fields.get("sure") or [""])[0] != "yes":
            return preferences_page(
                sub,
                token,
                status=400,
                problem="Tick the box next to the delete button to confirm; nothing was deleted.",
            )
        rt().service.erase(sub)
        return page("erased.html")

    # --- unsubscribe -------------------------------------------------------------------------

    @app.get("/u/{token}", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> Response:
        sub, _ = rt().service.subscriber_for("unsubscribe", token)
        return page("unsubscribe.html", done=sub.status == SubscriberStatus.UNSUBSCRIBED)

    @app.post("/u/{token}", response_class=HTMLResponse)
    def unsubscribe(
        token: str, background: BackgroundTasks, _fields: Annotated[Fields, Depends(posted)]
    ) -> Response:
        # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" without cookies; the
        # signed token is the only authority needed, and the answer is a 200, not a redirect.
        r = rt()
        sub, _ = r.service.subscriber_for("unsubscribe", token)
        notice = r.service.unsubscribe(sub)
        send_later(background, notice, release=False)
        return page("unsubscribed.html", preferences_url=r.links.preferences(sub.id))

    # --- feedback ----------------------------------------------------------------------------

    @app.get("/f/{token}", response_class=HTMLResponse)
    def feedback_page(token: str) -> Response:
        _sub, paper, vote = rt().service.vote_target(token)
        return page("feedback.html", paper=paper, vote=vote)

    @app.post("/f/{token}", response_class=HTMLResponse)
    def feedback(token: str) -> Response:
        r = rt()
        sub, paper, vote = r.service.vote(token)
        other = r.links.feedback(sub.id, paper.id, -vote)
        return page(
            "voted.html",
            paper=paper,
            vote=vote,
            other_url=other,
            liked=sub.profile.liked_terms[:12],
            disliked=sub.profile.disliked_terms[:12],
            preferences_url=r.links.preferences(sub.id),
        )

    # --- web view, health --------------------------------------------------------------------

    @app.get("/e/{token}", response_class=HTMLResponse)
    def edition(token: str) -> Response:
        r = rt()
        sub, selection, links = r.service.edition(token)
        titles = {t.slug: t.title for t in r.topics}
        html = r.renderer.web_edition(selection, sub, links, topics=titles)
        return HTMLResponse(html, headers={"Content-Security-Policy": EDITION_CSP})

    @app.get("/outbox", response_class=HTMLResponse)
    def outbox_list(request: Request) -> Response:
        if not outbox.allowed(request, config.delivery.backend):
            raise StarletteHTTPException(404)
        folder = config.paths.outbox
        return page("outbox.html", folder=str(folder), entries=outbox.entries(folder))

    @app.get("/outbox/{name}", response_class=HTMLResponse)
    def outbox_message(name: str, request: Request) -> Response:
        path = outbox.find(config.paths.outbox, name)
        if not outbox.allowed(request, config.delivery.backend) or path is None:
            raise StarletteHTTPException(404)
        message = outbox.read(path)
        html = outbox.body_html(message)
        if html is not None:
            return HTMLResponse(html, headers={"Content-Security-Policy": EDITION_CSP})
        return page(
            "outbox_text.html",
            subject=str(message.get("Subject", "")),
            to=str(message.get("To", "")),
            text=outbox.body_text(message),
        )

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            version = rt().store.schema_version()
        except PaperboyError as e:
            log.error("health check: %s", e)
            return JSONResponse({"status": "error", "db": "error"}, status_code=503)
        return JSONResponse({"status": "ok", "db": "ok", "schema_version": version})

    return app


# --- helpers -----------------------------------------------------------------------------------


async def posted(request: Request) -> Fields:
    """The posted form fields as ``{name: [values]}``; uploads are refused."""
    # Starlette answers a malformed or file-bearing body with a 400 itself.
    form = await request.form(max_files=0, max_fields=300)
    return {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}


def client_host(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def deliver_notice(rt: Runtime, notice: Notice, release: bool) -> None:
    """Send one notice after the response; a failure is logged, and for a sign-up the resend
    limit is released so the reader can simply post the form again."""
    try:
        reply = await rt.mailer.send(notice)
    except PaperboyError as e:
        log.error(
            "could not send the %s mail to subscriber %s: %s", notice.kind, notice.subscriber_id, e
        )
        if release:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(rt.service.release_confirmation, notice.subscriber_id)
        return
    log.info("sent the %s mail to subscriber %s: %s", notice.kind, notice.subscriber_id, reply)
