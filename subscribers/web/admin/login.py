"""``/admin/login`` and ``/admin/logout``: the token in, a session cookie out, and back."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from subscribers.web.admin.auth import COOKIE, AuthDep, Checked, LoginNeeded
from subscribers.web.admin.common import field
from subscribers.web.deps import Form, RuntimeDep, client_host
from subscribers.web.runtime import Runtime

router = APIRouter(prefix="/admin")

TOO_MANY = "Too many wrong tokens from your network. Wait a quarter of an hour and try again."


def safe_next(value: str) -> str:
    """Where to go after logging in: an admin path on this site, never another site."""
    if value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin"


def login_page(
    rt: Runtime, auth: AuthDep, next_url: str, problem: str = "", status: int = 200
) -> Response:
    return rt.pages.render(
        "admin/login.html",
        status,
        csrf=auth.login_form(),
        next_url=safe_next(next_url),
        problem=problem,
        nav=(),
        section="",
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(rt: RuntimeDep, auth: AuthDep, next: str = "/admin") -> Response:
    return login_page(rt, auth, next)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, fields: Form, rt: RuntimeDep, auth: AuthDep) -> Response:
    host = client_host(request)
    next_url = field(fields, "next")
    if not auth.may_try(host):
        return login_page(rt, auth, next_url, TOO_MANY, 429)
    if not auth.login_form_ok(field(fields, "csrf")):
        return login_page(rt, auth, next_url, "The form expired; enter the token again.", 400)
    if not auth.token_ok(field(fields, "token")):
        auth.failed(host)
        return login_page(rt, auth, next_url, "That is not the admin token.", 401)
    auth.succeeded(host)
    response = RedirectResponse(safe_next(next_url), status_code=303)
    response.set_cookie(
        COOKIE,
        auth.new_session(),
        max_age=int(auth.max_age),
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=rt.config.web.base_url.startswith("https://"),
    )
    return response


@router.post("/logout")
def logout(sess: Checked, auth: AuthDep) -> Response:
    if sess.nonce is not None:
        auth.end(sess.nonce)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path="/admin")
    return response


async def login_needed(request: Request, _exc: LoginNeeded) -> Response:
    """Send the browser to the login form, and back here afterwards (GET pages only)."""
    back = request.url.path if request.method == "GET" else "/admin"
    if request.url.query and request.method == "GET":
        back += "?" + request.url.query
    return RedirectResponse(f"/admin/login?next={quote(back, safe='/')}", status_code=303)
