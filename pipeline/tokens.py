"""Signed, per-purpose tokens for every link paperboy mails out.

One salt per purpose, so a confirmation token can never unsubscribe and an unsubscribe token
can never change preferences. Payloads carry ids, never an email address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from itsdangerous import BadData, URLSafeTimedSerializer

from pipeline.config import Config
from pipeline.errors import ExpiredTokenError, TokenError

Purpose = Literal["confirm", "unsubscribe", "preferences", "feedback", "edition", "csrf", "bounce"]
PURPOSES: tuple[Purpose, ...] = (
    "confirm",
    "unsubscribe",
    "preferences",
    "feedback",
    "edition",
    "csrf",
    "bounce",
)
# How far the signer's clock may be off from the reader's: a token "signed in the future" by
# up to this much (another host, a clock step) is fine, and so is one this much past max_age.
LEEWAY = dt.timedelta(seconds=120)


class Tokens:
    """Make and check tokens; ``read`` raises TokenError and never says more than 'invalid'."""

    def __init__(self, secret: str, previous: Sequence[str] = ()) -> None:
        """``secret`` signs; ``previous`` keys (from before a rotation) only verify."""
        if any(len(key) < 16 for key in (secret, *previous)):
            raise TokenError("the token secret must be at least 16 characters")
        self._secret = secret.encode("utf-8")
        self._previous = tuple(key.encode("utf-8") for key in previous)
        # itsdangerous tries every key when loading and signs with the last one.
        keys = [*previous, secret]
        self._serializers = {
            purpose: URLSafeTimedSerializer(keys, salt=f"paperboy.{purpose}")
            for purpose in PURPOSES
        }

    def make(self, purpose: Purpose, **payload: Any) -> str:
        return str(self._serializers[purpose].dumps(payload))

    def read(
        self,
        purpose: Purpose,
        token: str,
        max_age: float | None = None,
        now: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """The payload of a valid token for ``purpose``; TokenError otherwise, and
        ExpiredTokenError for a genuine one older than ``max_age`` seconds (give or take
        ``LEEWAY``)."""
        payload, issued = self.read_dated(purpose, token, now)
        if max_age is not None:
            age = (now or dt.datetime.now(dt.UTC)) - issued
            if age > dt.timedelta(seconds=max_age) + LEEWAY:
                raise ExpiredTokenError("this link has expired")
        return payload

    def read_dated(
        self, purpose: Purpose, token: str, now: dt.datetime | None = None
    ) -> tuple[dict[str, Any], dt.datetime]:
        """A genuine token's payload and when it was signed, however old; TokenError if it
        is forged, for another purpose, or signed more than ``LEEWAY`` in the future."""
        if not token or len(token) > 2048:
            raise TokenError("invalid or expired link")
        try:
            # No max_age here: itsdangerous refuses any token whose age is negative, and a
            # clock a second behind the signer's must not break a fresh link.
            payload, issued = self._serializers[purpose].loads(token, return_timestamp=True)
        except BadData:
            raise TokenError("invalid or expired link") from None
        if not isinstance(payload, dict) or not isinstance(issued, dt.datetime):
            raise TokenError("invalid or expired link")
        if issued - (now or dt.datetime.now(dt.UTC)) > LEEWAY:
            raise TokenError("invalid or expired link")
        return payload, issued

    def mac(self, purpose: Purpose, message: str, length: int = 20) -> str:
        """A short lowercase hex HMAC of ``message`` for ``purpose``, for places a serialized
        token does not fit (an address's local part is at most 64 characters, and some mail
        servers fold its case)."""
        return _mac(self._secret, purpose, message, length)

    def check_mac(self, purpose: Purpose, message: str, mac: str, length: int = 20) -> bool:
        """Whether ``mac`` is ``mac(purpose, message)`` (any case) under the signing key or a
        previous one, compared in constant time."""
        given = mac.lower()
        found = False
        for key in (self._secret, *self._previous):
            # Every key is tried, so the time taken does not tell which one matched.
            found |= hmac.compare_digest(_mac(key, purpose, message, length), given)
        return found

    @staticmethod
    def digest(token: str) -> str:
        """What the store remembers of a single-use token."""
        return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _mac(secret: bytes, purpose: Purpose, message: str, length: int) -> str:
    key = hmac.new(secret, f"paperboy.{purpose}.mac".encode(), hashlib.sha256).digest()
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()[:length]


def secret_key(config: Config) -> str:
    """``web.secret_key`` (or $PAPERBOY_SECRET_KEY); else one generated once under ``var/``."""
    configured = config.web.secret_key.get_secret_value()
    if configured:
        return configured
    path = Path(config.paths.var) / "secret.key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once must agree on one key, not overwrite each other.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return value


def tokens_for(config: Config) -> Tokens:
    """Tokens signed with the configured key that also accept ``web.previous_secret_keys``."""
    previous = [key.get_secret_value() for key in config.web.previous_secret_keys]
    return Tokens(secret_key(config), previous)
