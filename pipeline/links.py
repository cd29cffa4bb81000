"""The URLs paperboy mails out, each carrying a token signed for exactly one purpose.

Routes of the subscriber app: ``/c/T`` confirm, ``/p/T`` preferences, ``/u/T`` unsubscribe
(RFC 8058 one-click POST), ``/f/T`` feedback, ``/e/T`` web view of an edition.
"""

from __future__ import annotations

import datetime as dt
import secrets

from pipeline.config import Config
from pipeline.tokens import Tokens, tokens_for


class Links:
    """Builds signed links for one deployment (``web.base_url``)."""

    def __init__(self, base_url: str, tokens: Tokens) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens

    @classmethod
    def for_config(cls, config: Config) -> Links:
        return cls(config.web.base_url, tokens_for(config))

    def confirm(self, subscriber_id: int, epoch: int = 0) -> str:
        # The nonce makes each confirmation link distinct, so it can be spent once; the epoch
        # (the reader's unsubscribes so far) voids it once the reader leaves.
        token = self.tokens.make("confirm", s=subscriber_id, n=secrets.token_hex(8), e=epoch)
        return f"{self.base_url}/c/{token}"

    def preferences(self, subscriber_id: int) -> str:
        return f"{self.base_url}/p/{self.tokens.make('preferences', s=subscriber_id)}"

    def unsubscribe(self, subscriber_id: int) -> str:
        return f"{self.base_url}/u/{self.tokens.make('unsubscribe', s=subscriber_id)}"

    def feedback(self, subscriber_id: int, paper_id: str, vote: int) -> str:
        token = self.tokens.make("feedback", s=subscriber_id, p=paper_id, v=vote)
        return f"{self.base_url}/f/{token}"

    def edition(self, subscriber_id: int, edition_date: dt.date) -> str:
        token = self.tokens.make("edition", s=subscriber_id, d=edition_date.isoformat())
        return f"{self.base_url}/e/{token}"

    def home(self) -> str:
        return f"{self.base_url}/"
