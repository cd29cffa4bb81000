"""Non-ASCII addresses (RFC 6531): sent with SMTPUTF8 when offered, failed clearly when not."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import PermanentSendError, RecipientRefused
from pipeline.mime import message_bytes
from pipeline.render import Renderer
from pipeline.send import OutboxSender
from tests.smtp_server import SmtpServer
from tests.test_send import mail, send_all, smtp

CONFIG = Config()
RENDERER = Renderer.from_config(CONFIG)
JOERG = "jörg@example.org"


async def test_a_non_ascii_address_goes_with_smtputf8_when_offered() -> None:
    """MAIL carries SMTPUTF8, RCPT and To carry the address as UTF-8; ASCII mail is unchanged."""
    with SmtpServer(smtputf8=True) as server:
        message = mail(JOERG, 1)
        replies = await send_all(smtp(server.port), [message, mail("anna@example.org", 2)])
        assert all(isinstance(r, str) and r.startswith("250") for r in replies), replies
        utf8, plain = server.messages
    assert utf8.rcpt_tos == [JOERG] and utf8.smtputf8
    assert utf8.data == message_bytes(message)
    assert utf8.message["To"] == JOERG
    assert plain.rcpt_tos == ["anna@example.org"] and not plain.smtputf8


async def test_without_smtputf8_it_fails_clearly_and_the_session_goes_on() -> None:
    """A server without SMTPUTF8 gets nothing for that address (a failure, not a refusal of
    the address); the next message still goes over the same session."""
    with SmtpServer() as server:
        failed, sent = await send_all(
            smtp(server.port), [mail(JOERG, 1), mail("anna@example.org", 2)]
        )
        assert isinstance(failed, PermanentSendError)
        assert not isinstance(failed, RecipientRefused)  # the address is fine: not suppressed
        assert "SMTPUTF8" in str(failed) and repr(JOERG) in str(failed)
        assert isinstance(sent, str) and server.recipients() == ["anna@example.org"]
        assert len(server.sessions) == 1


async def test_the_outbox_keeps_a_non_ascii_address(tmp_path: Path) -> None:
    """The .eml carries the address in a UTF-8 To header (RFC 6532) that parses back."""
    outbox = OutboxSender(tmp_path)
    await outbox.send(mail(JOERG, 1))
    [eml] = tmp_path.iterdir()
    parsed = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert parsed["To"] == JOERG
    assert parsed.get_body(("plain",)).get_content().count(JOERG) == 1  # type: ignore[union-attr]
