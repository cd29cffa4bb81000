"""The admin app over real HTTP: off without a token, login, sessions, CSRF, Bearer, limits."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from pipeline.models import DeliveryStatus
from pipeline.store import open_store
from subscribers.web import create_app
from subscribers.web.admin.auth import COOKIE, LOGIN_FAILURES, TOKEN_ENV, from_env
from tests.admin_world import TOKEN, AdminServed, seed, write_mail

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def login(client: httpx.Client, token: str = TOKEN) -> httpx.Response:
    form = client.get("/admin/login")
    csrf = CSRF.search(form.text)
    assert csrf is not None
    return client.post(
        "/admin/login", data={"csrf": csrf.group(1), "token": token, "next": "/admin"}
    )


def test_admin_is_404_when_the_token_is_unset(tmp_path: Path) -> None:
    """Without PAPERBOY_ADMIN_TOKEN every /admin address answers a plain 404."""
    with AdminServed(tmp_path, token="") as app, httpx.Client(base_url=app.base) as client:
        for path in ("/admin", "/admin/login", "/admin/deliveries", "/admin/config"):
            assert client.get(path).status_code == 404, path
        bearer = client.get("/admin", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 404
        assert client.post("/admin/login", data={"token": TOKEN}).status_code == 404


def test_a_short_token_leaves_the_admin_app_off(caplog: pytest.LogCaptureFixture) -> None:
    """A token under 16 characters is refused with a logged reason, not half-enabled."""
    assert from_env("short-token") is None
    assert "shorter than 16 characters" in caplog.text
    assert from_env("") is None and from_env(None) is None
    assert from_env(TOKEN) is not None


def test_login_with_the_token_gives_a_strict_session_cookie(tmp_path: Path) -> None:
    """The right token logs in: an HttpOnly, SameSite=Strict cookie, and Today shows."""
    with AdminServed(tmp_path) as app, httpx.Client(base_url=app.base) as client:
        first = client.get("/admin", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"].startswith("/admin/login")
        done = login(client)
        assert done.status_code == 303 and done.headers["location"] == "/admin"
        cookie = done.headers["set-cookie"]
        assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie and "Secure" not in cookie  # http base_url
        today = client.get("/admin")
        assert today.status_code == 200 and "Today" in today.text and "Health" in today.text


def test_the_cookie_is_secure_when_base_url_is_https(tmp_path: Path) -> None:
    """Behind TLS (an https base_url) the session cookie is only ever sent over https."""
    served = AdminServed(tmp_path, public_url="https://papers.example.org")
    with served as app, httpx.Client(base_url=app.base) as client:
        done = login(client)
    assert done.status_code == 303 and "Secure" in done.headers["set-cookie"]


def test_a_wrong_token_shows_the_login_again_and_is_rate_limited(tmp_path: Path) -> None:
    """A wrong token re-renders the login form; after the limit even the right one waits."""
    with AdminServed(tmp_path) as app, httpx.Client(base_url=app.base) as client:
        wrong = login(client, "not-the-admin-token-at-all")
        assert wrong.status_code == 401 and "That is not the admin token" in wrong.text
        assert COOKIE not in wrong.headers.get("set-cookie", "")
        for _ in range(LOGIN_FAILURES - 1):
            assert login(client, "still-not-the-admin-token").status_code == 401
        limited = login(client)
        assert limited.status_code == 429 and "Too many wrong tokens" in limited.text
        assert client.get("/admin", follow_redirects=False).status_code == 303  # not logged in


def test_a_post_without_csrf_is_refused(tmp_path: Path) -> None:
    """A logged-in browser's POST without the form's CSRF token changes nothing (403)."""
    now = dt.datetime.now(dt.UTC)
    with AdminServed(tmp_path) as app, open_store(app.config) as store:
        ids = seed(store, app.config, now)
        with httpx.Client(base_url=app.base) as client:
            login(client)
            bob = ids["bob@example.org"]
            refused = client.post(
                "/admin/deliveries/retry", data={"subscriber": bob, "date": now.date()}
            )
            assert refused.status_code == 403 and "nothing was changed" in refused.text
            forged = client.post(
                f"/admin/subscribers/{bob}/pause", data={"csrf": "forged-token-value"}
            )
            assert forged.status_code == 403
        row = store.ledger.get(bob, now.date())
        assert row is not None and row.status == DeliveryStatus.DEFERRED
        assert store.subscribers.get(bob).status.value == "active"  # type: ignore[union-attr]


def test_a_script_uses_the_bearer_token_without_csrf(tmp_path: Path) -> None:
    """``Authorization: Bearer TOKEN`` reads pages and posts without a cookie or CSRF; a wrong
    one gets 401."""
    now = dt.datetime.now(dt.UTC)
    with AdminServed(tmp_path) as app, open_store(app.config) as store:
        ids = seed(store, app.config, now)
        bob = ids["bob@example.org"]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=app.base, headers=auth) as script:
            page = script.get("/admin/deliveries", params={"status": "deferred"})
            assert page.status_code == 200 and "bob@example.org" in page.text
            retried = script.post(
                "/admin/deliveries/retry",
                data={"subscriber": bob, "date": now.date().isoformat()},
                follow_redirects=False,
            )
            assert retried.status_code == 303 and "done=retried" in retried.headers["location"]
        row = store.ledger.get(bob, now.date())
        assert row is not None and row.status == DeliveryStatus.QUEUED
        with httpx.Client(base_url=app.base) as stranger:
            wrong = stranger.get("/admin", headers={"Authorization": "Bearer nope-nope-nope-nope"})
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"


class Aged(TimestampSigner):
    """Signs as if 13 hours ago: a session cookie past its 12 hours."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 13 * 3600


def test_an_expired_session_cookie_goes_back_to_login(tmp_path: Path) -> None:
    """A genuine session cookie older than its 12 hours is refused: the login form again."""
    old = URLSafeTimedSerializer(TOKEN, salt="paperboy.admin.session", signer=Aged)
    fresh = URLSafeTimedSerializer(TOKEN, salt="paperboy.admin.session")
    with AdminServed(tmp_path) as app, httpx.Client(base_url=app.base) as client:
        client.cookies.set(COOKIE, str(fresh.dumps({"n": "abc"})), path="/admin")
        assert client.get("/admin", follow_redirects=False).status_code == 200
        client.cookies.clear()
        client.cookies.set(COOKIE, str(old.dumps({"n": "abc"})), path="/admin")
        expired = client.get("/admin", follow_redirects=False)
        assert expired.status_code == 303 and expired.headers["location"].startswith("/admin/login")


def test_logout_ends_the_session(tmp_path: Path) -> None:
    """After logging out, the old cookie no longer opens the admin pages."""
    with AdminServed(tmp_path) as app, httpx.Client(base_url=app.base) as client:
        login(client)
        cookie = client.cookies.get(COOKIE)
        page = client.get("/admin")
        csrf = CSRF.search(page.text)
        assert csrf is not None
        out = client.post("/admin/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
        assert out.status_code == 303
        client.cookies.clear()
        client.cookies.set(COOKIE, str(cookie), path="/admin")
        assert client.get("/admin", follow_redirects=False).status_code == 303


def test_a_refused_config_edit_leaves_the_file_alone(tmp_path: Path) -> None:
    """A key outside the online list is refused; a bad value re-renders with the problem."""
    with (
        AdminServed(tmp_path) as app,
        httpx.Client(base_url=app.base, headers={"Authorization": f"Bearer {TOKEN}"}) as script,
    ):
        before = app.path.read_text()
        secret = script.post("/admin/config", data={"key": "storage.url", "value": '"x"'})
        assert secret.status_code == 400 and "cannot be changed online" in secret.text
        bad = script.post("/admin/config", data={"key": "match.trending_weight", "value": "9"})
        assert bad.status_code == 400 and "match.trending_weight = 9" in bad.text
        assert app.path.read_text() == before
        good = script.post(
            "/admin/config",
            data={"key": "match.trending_weight", "value": "0.5"},
            follow_redirects=False,
        )
        assert good.status_code == 303
        text = app.path.read_text()
        assert "trending_weight = 0.5" in text and "# The match weights: tuned by hand." in text


def test_the_admin_outbox_pages_through_the_folder(tmp_path: Path) -> None:
    """Fifty mails a page, newest first, with From / To / Subject; one mail shows its text
    part and a link back; an unknown name is 404."""
    with (
        AdminServed(tmp_path) as app,
        httpx.Client(base_url=app.base, headers={"Authorization": f"Bearer {TOKEN}"}) as script,
    ):
        folder = app.config.paths.outbox
        for n in range(51):
            write_mail(folder, f"m{n:02d}.eml", f"r{n}@example.org", f"Mail number {n}")
            stamp = 1_700_000_000 + n
            os.utime(folder / f"m{n:02d}.eml", (stamp, stamp))
        first = script.get("/admin/outbox")
        assert first.status_code == 200 and "51 messages" in first.text
        assert "Mail number 50" in first.text and "Mail number 0<" not in first.text
        assert "paperboy &lt;paperboy@example.org&gt;" in first.text
        assert 'href="/admin/outbox?page=2"' in first.text
        second = script.get("/admin/outbox", params={"page": 2})
        assert "Mail number 0<" in second.text and "Mail number 1<" not in second.text
        mail = script.get("/admin/outbox/m07.eml")
        assert "Hello r7@example.org, this is the text part." in mail.text
        assert 'href="/admin/outbox"' in mail.text
        assert script.get("/admin/outbox/nope.eml").status_code == 404
        assert script.get("/admin/outbox/..%2Fconfig.toml").status_code == 404


def test_with_the_admin_app_on_the_public_outbox_is_behind_its_login(tmp_path: Path) -> None:
    """Once PAPERBOY_ADMIN_TOKEN is set, /outbox (even from this machine) is the admin
    Outbox page: a redirect there, and without a session the login page."""
    with AdminServed(tmp_path) as app, httpx.Client(base_url=app.base) as client:
        write_mail(app.config.paths.outbox, "m1.eml", "r1@example.org", "Confirm please")
        listing = client.get("/outbox", follow_redirects=False)
        assert listing.status_code == 303 and listing.headers["location"] == "/admin/outbox"
        one = client.get("/outbox/m1.eml", follow_redirects=False)
        assert one.status_code == 303 and one.headers["location"] == "/admin/outbox/m1.eml"
        landed = client.get("/outbox", follow_redirects=True)
        assert "/admin/login" in str(landed.url) and "Confirm please" not in landed.text
        login(client)
        assert "Confirm please" in client.get("/outbox", follow_redirects=True).text


def test_create_app_reads_the_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``paperboy run`` passes no token: the app takes $PAPERBOY_ADMIN_TOKEN, and stays off
    without it."""
    config = AdminServed(tmp_path).config
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert create_app(config).state.admin is not None
    monkeypatch.delenv(TOKEN_ENV)
    assert create_app(config).state.admin is None
    monkeypatch.setenv(TOKEN_ENV, "too-short")
    assert create_app(config).state.admin is None
