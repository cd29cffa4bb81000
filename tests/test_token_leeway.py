"""Token clocks: a link signed a little in the future (another host's clock, a clock step) or
a little past its max age still works; beyond the leeway it does not."""

from __future__ import annotations

import datetime as dt

import pytest
from itsdangerous import TimestampSigner

from pipeline.errors import ExpiredTokenError, TokenError
from pipeline.links import Links
from pipeline.models import SubscriberStatus
from pipeline.tokens import LEEWAY, Tokens
from tests.test_web import SECRET, Site, make_site, site

__all__ = ["make_site", "site"]  # fixtures shared with test_web.py

NOW = dt.datetime(2026, 7, 3, 6, 0, tzinfo=dt.UTC)


def signed_at(monkeypatch: pytest.MonkeyPatch, when: dt.datetime, make: object) -> str:
    """A token made while the signer's clock reads ``when``."""
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: int(when.timestamp()))
    try:
        token = make()  # type: ignore[operator]
    finally:
        monkeypatch.undo()
    return str(token)


def test_a_token_signed_a_minute_ahead_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """itsdangerous alone refuses any negative age; within LEEWAY it is fine."""
    tokens = Tokens(SECRET)
    ahead = signed_at(
        monkeypatch, NOW + dt.timedelta(seconds=60), lambda: tokens.make("confirm", s=1)
    )
    assert tokens.read("confirm", ahead, max_age=3600, now=NOW) == {"s": 1}
    payload, issued = tokens.read_dated("confirm", ahead, now=NOW)
    assert payload == {"s": 1} and issued == NOW + dt.timedelta(seconds=60)


def test_a_token_signed_beyond_the_leeway_ahead_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = Tokens(SECRET)
    far = signed_at(
        monkeypatch, NOW + LEEWAY + dt.timedelta(seconds=5), lambda: tokens.make("confirm", s=1)
    )
    with pytest.raises(TokenError) as raised:
        tokens.read("confirm", far, now=NOW)
    assert not isinstance(raised.value, ExpiredTokenError)


def test_max_age_gets_the_same_leeway_then_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """A day-long token read a day and a minute later works; a day and ten minutes, expired."""
    tokens = Tokens(SECRET)
    token = signed_at(monkeypatch, NOW, lambda: tokens.make("csrf", s=2))
    day = 86400
    assert tokens.read("csrf", token, max_age=day, now=NOW + dt.timedelta(days=1, minutes=1))
    with pytest.raises(ExpiredTokenError):
        tokens.read("csrf", token, max_age=day, now=NOW + dt.timedelta(days=1, minutes=10))


def test_a_confirmation_link_signed_a_minute_ahead_confirms(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web app's clock runs a minute behind the one that signed the mail: it confirms."""
    site.signup("ahead@example.org")
    sub = site.sub("ahead@example.org")
    links = Links.for_config(site.config)
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    url = signed_at(monkeypatch, ahead, lambda: links.confirm(sub.id))
    response = site.client.post(url.removeprefix("http://testserver"))
    assert response.status_code == 200 and "You're subscribed" in response.text
    assert site.sub("ahead@example.org").status == SubscriberStatus.ACTIVE
