"""Who may use ``/admin``: the admin token, a signed session cookie, CSRF, a login limit.

The admin app is on only when ``PAPERBOY_ADMIN_TOKEN`` holds a token of at least
``MIN_TOKEN`` characters; otherwise every ``/admin`` address answers 404. A person logs in
with the token (compared in constant time) and gets a session cookie signed with a key
derived from the token, valid ``SESSION_HOURS`` (HttpOnly, SameSite=Strict, Secure when
``web.base_url`` is https); changing the token ends every session. Every form carries a
CSRF token bound to the session. A script sends ``Authorization: Bearer TOKEN`` instead:
no cookie, no CSRF (a browser never adds that header by itself). Failed logins are limited
per client network, in this process's memory.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from itsdangerous import BadData, URLSafeTimedSerializer

from subscribers.web.deps import Form, client_host
from subscribers.web.ratelimit import network_key

log = logging.getLogger("paperboy.web")

TOKEN_ENV = "PAPERBOY_ADMIN_TOKEN"  # noqa: S105 (the variable's name, not a token)
MIN_TOKEN = 16
COOKIE = "paperboy_admin"
SESSION_HOURS = 12.0
# Failed logins a client network may make per window before it has to wait.
LOGIN_FAILURES = 5
LOGIN_WINDOW_SECONDS = 15 * 60.0


class LoginNeeded(Exception):
    """The request has no valid session; the handler sends the browser to the login form."""


@dataclass(frozen=True)
class Session:
    """An authenticated admin request: from the browser (``nonce`` names its session) or a
    script that sent the token as a Bearer header (``nonce`` is None)."""

    nonce: str | None
    csrf: str


class AdminAuth:
    """The token, the signers derived from it, and the failed-login counts."""

    def __init__(self, token: str, session_hours: float = SESSION_HOURS) -> None:
        self._token = token.encode("utf-8")
        self.max_age = session_hours * 3600
        self._sessions = URLSafeTimedSerializer(token, salt="paperboy.admin.session")
        self._forms = URLSafeTimedSerializer(token, salt="paperboy.admin.csrf")
        self._login_forms = URLSafeTimedSerializer(token, salt="paperboy.admin.login")
        self._failures: dict[str, deque[float]] = {}
        self._ended: set[str] = set()  # sessions logged out before they expired
        self._lock = threading.Lock()

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8"), self._token)

    # --- sessions -----------------------------------------------------------------------

    def new_session(self) -> str:
        """A fresh session cookie value."""
        return str(self._sessions.dumps({"n": secrets.token_hex(16)}))

    def session_nonce(self, cookie: str) -> str | None:
        """The session a cookie names; None when it is forged, expired or logged out."""
        try:
            payload = self._sessions.loads(cookie, max_age=int(self.max_age))
        except BadData:
            return None
        nonce = payload.get("n") if isinstance(payload, dict) else None
        if not isinstance(nonce, str) or nonce in self._ended:
            return None
        return nonce

    def end(self, nonce: str) -> None:
        self._ended.add(nonce)

    # --- forms --------------------------------------------------------------------------

    def csrf(self, nonce: str) -> str:
        return str(self._forms.dumps({"n": nonce}))

    def csrf_ok(self, nonce: str, value: str) -> bool:
        try:
            payload = self._forms.loads(value, max_age=int(self.max_age))
        except BadData:
            return False
        return isinstance(payload, dict) and hmac.compare_digest(str(payload.get("n", "")), nonce)

    def login_form(self) -> str:
        """The login form's token: the form came from this app, within the hour."""
        return str(self._login_forms.dumps({"l": 1}))

    def login_form_ok(self, value: str) -> bool:
        try:
            self._login_forms.loads(value, max_age=3600)
        except BadData:
            return False
        return True

    # --- the login limit ----------------------------------------------------------------

    def may_try(self, host: str) -> bool:
        """Whether this client's network may try the token again now."""
        with self._lock:
            return len(self._recent(network_key(host))) < LOGIN_FAILURES

    def failed(self, host: str) -> None:
        key = network_key(host)
        with self._lock:
            self._recent(key).append(time.monotonic())
        log.warning("admin login failed from %s", key)

    def succeeded(self, host: str) -> None:
        with self._lock:
            self._failures.pop(network_key(host), None)

    def _recent(self, key: str) -> deque[float]:
        seen = self._failures.setdefault(key, deque())
        while seen and time.monotonic() - seen[0] > LOGIN_WINDOW_SECONDS:
            seen.popleft()
        return seen


def from_env(value: str | None) -> AdminAuth | None:
    """The admin app's guard for ``PAPERBOY_ADMIN_TOKEN``'s value; None (admin off) when it
    is unset, or too short (then an error is logged, so the operator knows why)."""
    if not value:
        return None
    if len(value) < MIN_TOKEN:
        log.error(
            "%s is shorter than %d characters: the admin app stays off (make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))')",
            TOKEN_ENV,
            MIN_TOKEN,
        )
        return None
    log.info("admin app on at /admin (%s is set)", TOKEN_ENV)
    return AdminAuth(value)


def admin_auth(request: Request) -> AdminAuth:
    """The admin guard; a plain 404 when the admin app is off."""
    auth: AdminAuth | None = request.app.state.admin
    if auth is None:
        raise HTTPException(404)
    return auth


AuthDep = Annotated[AdminAuth, Depends(admin_auth)]


def session(request: Request, auth: AuthDep) -> Session:
    """The admin behind this request; LoginNeeded when there is none. A wrong Bearer token
    gets 401 (a script wants a status, not a login form) and counts as a failed login."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, given = header.partition(" ")
        host = client_host(request)
        if scheme.lower() != "bearer" or not auth.may_try(host) or not auth.token_ok(given.strip()):
            auth.failed(host)
            raise HTTPException(
                401,
                "Send the admin token as: Authorization: Bearer TOKEN",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Session(nonce=None, csrf="")
    nonce = auth.session_nonce(request.cookies.get(COOKIE, ""))
    if nonce is None:
        raise LoginNeeded()
    return Session(nonce=nonce, csrf=auth.csrf(nonce))


SessionDep = Annotated[Session, Depends(session)]


def checked(sess: SessionDep, fields: Form, auth: AuthDep) -> Session:
    """A state-changing POST's session, once its CSRF token checks out (Bearer needs none)."""
    if sess.nonce is None:
        return sess
    if not auth.csrf_ok(sess.nonce, (fields.get("csrf") or [""])[0]):
        raise HTTPException(
            403,
            "This form expired or was sent from another site, so nothing was changed. "
            "Go back, reload the page and try again.",
        )
    return sess


Checked = Annotated[Session, Depends(checked)]
