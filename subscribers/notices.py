"""Turn a ``Notice`` (confirm, welcome, goodbye) into an email and hand it to the sender."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from pipeline.config import Config
from pipeline.errors import PaperboyError
from pipeline.mime import build_message
from pipeline.render import Renderer
from pipeline.send import Sender, sender_for
from subscribers.signup import Notice


def notice_message_id(notice: Notice, config: Config) -> str:
    """A fresh Message-ID per notice: a second confirmation is a different message."""
    domain = config.email.from_address.rpartition("@")[2] or "localhost"
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = "localhost"
    return f"<{notice.kind}.{notice.subscriber_id}.{secrets.token_hex(8)}@{domain}>"


class Mailer:
    """Renders notices with the email templates and sends them through one sender."""

    def __init__(self, config: Config, renderer: Renderer, sender: Sender) -> None:
        self.config = config
        self.renderer = renderer
        self.sender = sender

    async def send(self, notice: Notice, now: dt.datetime | None = None) -> str:
        """Hand the notice to the sender; its reply (e.g. the outbox file or '250 OK')."""
        rendered = self.renderer.notice(
            notice.kind, to=notice.to, links=notice.links, first_digest=notice.first_digest
        )
        message = build_message(
            rendered,
            to=notice.to,
            email=self.config.email,
            message_id=notice_message_id(notice, self.config),
            unsubscribe_url=notice.unsubscribe_url,
            date=now or dt.datetime.now(dt.UTC),
        )
        return await self.sender.send(message)


async def send_all(config: Config, notices: Sequence[Notice]) -> list[str | None]:
    """Send each notice with a sender opened for this batch; per notice, the error or None."""
    if not notices:
        return []
    sender = sender_for(config)
    mailer = Mailer(config, Renderer.from_config(config), sender)
    results: list[str | None] = []
    try:
        for notice in notices:
            try:
                await mailer.send(notice)
            except PaperboyError as e:
                results.append(str(e))
            else:
                results.append(None)
    finally:
        await sender.close()
    return results
