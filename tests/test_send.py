"""Senders against a real aiosmtpd server: replies classified, TLS strict, connections reused."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme

from pipeline.config import Config, Smtp
from pipeline.errors import (
    DeliveryUncertain,
    PermanentSendError,
    PolicyRefusal,
    RecipientBounced,
    RecipientRefused,
    SendAbort,
    TemporarySendError,
    Unreachable,
)
from pipeline.mime import build_message, message_bytes
from pipeline.render import Renderer
from pipeline.send import OutboxSender, SmtpSender, sender_for
from tests.smtp_server import SmtpServer, free_port

CONFIG = Config()
RENDERER = Renderer.from_config(CONFIG)


def mail(to: str, n: int = 0) -> EmailMessage:
    rendered = RENDERER.notice("confirm", to=to, links={"confirm": "https://x.example/c/t"})
    return build_message(
        rendered,
        to=to,
        email=CONFIG.email,
        message_id=f"<confirm.{n}@example.org>",
        unsubscribe_url=None,
        date=dt.datetime(2026, 7, 3, tzinfo=dt.UTC),
    )


def smtp(port: int, **kw: object) -> SmtpSender:
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "timeout_seconds": 5.0,
        "rate_per_second": 10_000.0,
    }
    settings.update(kw)
    return SmtpSender(Smtp.model_validate(settings), "paperboy@example.org", "client.test")


async def send_all(sender: SmtpSender, messages: list[EmailMessage]) -> list[str | Exception]:
    out: list[str | Exception] = []
    try:
        for message in messages:
            try:
                out.append(await sender.send(message))
            except Exception as e:
                out.append(e)
    finally:
        await sender.close()
    return out


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


# --- outbox -----------------------------------------------------------------------------------


async def test_outbox_writes_one_eml_per_message_atomically(tmp_path: Path) -> None:
    """Each message is one .eml named by its Message-ID; a resend replaces it; no temp files."""
    outbox = OutboxSender(tmp_path / "outbox")
    message = mail("a@example.org", 1)
    reply = await outbox.send(message)
    files = sorted((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == ["confirm.1@example.org.eml"]
    assert reply == "250 written to confirm.1@example.org.eml"
    assert files[0].read_bytes() == message_bytes(message)
    await outbox.send(message)
    await outbox.send(mail("b@example.org", 2))
    assert len(list((tmp_path / "outbox").iterdir())) == 2


def test_sender_for_follows_delivery_backend(tmp_path: Path) -> None:
    """The outbox is the default; delivery.backend = "smtp" selects SMTP."""
    assert isinstance(sender_for(Config()), OutboxSender)
    config = Config()
    config.delivery.backend = "smtp"
    assert isinstance(sender_for(config), SmtpSender)


# --- SMTP replies -----------------------------------------------------------------------------


async def test_delivers_and_returns_the_servers_reply(server: SmtpServer) -> None:
    """The server gets the exact wire bytes and the envelope; send returns its 250 line."""
    message = mail("a@example.org")
    [reply] = await send_all(smtp(server.port), [message])
    assert reply == "250 2.0.0 Ok: queued as test"
    [got] = server.messages
    assert got.rcpt_tos == ["a@example.org"] and got.mail_from == "paperboy@example.org"
    assert got.data == message_bytes(message)


async def test_connections_are_reused_across_messages(server: SmtpServer) -> None:
    """Ten messages in a row go over one SMTP session, not ten."""
    messages = [mail(f"r{i}@example.org", i) for i in range(10)]
    replies = await send_all(smtp(server.port, pool_size=2), messages)
    assert all(isinstance(r, str) for r in replies)
    assert server.count() == 10 and len(server.sessions) == 1


async def test_pool_sends_in_parallel_up_to_pool_size(server: SmtpServer) -> None:
    """Concurrent sends use at most smtp.pool_size sessions."""
    server.data_delay = 0.05
    sender = smtp(server.port, pool_size=3)
    try:
        await asyncio.gather(*(sender.send(mail(f"r{i}@example.org", i)) for i in range(9)))
    finally:
        await sender.close()
    assert server.count() == 9 and len(server.sessions) == 3


@pytest.mark.parametrize("code", ["450 4.2.0", "451 4.3.0", "452 4.2.2", "552 5.2.2"])
async def test_4xx_and_552_at_rcpt_are_temporary(server: SmtpServer, code: str) -> None:
    """450/451/452 and 552 (mailbox full) mean try again later; the next message still goes."""
    server.inject("rcpt", f"{code} try later", rcpt="a@example.org")
    first, second = await send_all(
        smtp(server.port), [mail("a@example.org", 1), mail("b@example.org", 2)]
    )
    assert isinstance(first, TemporarySendError) and first.code == int(code[:3])
    assert isinstance(second, str) and server.recipients() == ["b@example.org"]


@pytest.mark.parametrize("code", ["550 5.1.1", "553 5.1.3"])
async def test_5xx_at_rcpt_refuses_the_address(server: SmtpServer, code: str) -> None:
    """550/553 at RCPT refuse the address for good; the session goes on for the others."""
    server.inject("rcpt", f"{code} no such user", rcpt="a@example.org")
    first, second = await send_all(
        smtp(server.port), [mail("a@example.org", 1), mail("b@example.org", 2)]
    )
    assert isinstance(first, RecipientRefused) and first.code == int(code[:3])
    assert isinstance(second, str) and len(server.sessions) == 1


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("554 5.7.1 Service unavailable; client host [192.0.2.1] blocked", PolicyRefusal),
        ("550 5.7.1 rejected by policy", PolicyRefusal),
        ("554 rejected", PolicyRefusal),
        ("421 4.7.0 try again later", PolicyRefusal),
        ("550 5.1.10 recipient address rejected: null MX", RecipientRefused),
        ("554 5.2.1 mailbox disabled", RecipientRefused),
        ("550 no such user", RecipientBounced),
        ("551 5.1.6 user has moved", RecipientBounced),
    ],
)
async def test_a_refusal_at_rcpt_is_sorted_by_its_bounce_class(
    server: SmtpServer, reply: str, error: type[Exception]
) -> None:
    """A block on us (5.7.x, 554, 421) is a policy refusal, a dead mailbox (5.1.x, 5.2.1) is
    refused for good, and any other 5xx is a bounce that counts against the address."""
    server.inject("rcpt", reply, rcpt="a@example.org")
    [result] = await send_all(smtp(server.port), [mail("a@example.org")])
    assert type(result) is error and getattr(result, "code", None) == int(reply[:3])
    assert server.count() == 0


async def test_5xx_at_data_fails_the_message_not_the_address(server: SmtpServer) -> None:
    """A content rejection (550 5.6.0 at DATA) is permanent for the message but counts nothing
    against the address; a 554 5.7.1 at DATA is a policy refusal, retried later."""
    server.inject("data", "550 5.6.0 content rejected")
    server.inject("data", "554 5.7.1 message refused by policy")
    first, second = await send_all(
        smtp(server.port), [mail("a@example.org", 1), mail("a@example.org", 2)]
    )
    assert type(first) is PermanentSendError
    assert isinstance(second, PolicyRefusal)


async def test_421_and_dropped_connections_are_temporary_and_the_next_reconnects(
    server: SmtpServer,
) -> None:
    """421, a hang-up mid-session and a hang-up at the DATA command (before the message) defer;
    later messages use a new session."""
    server.inject("rcpt", "421 4.3.2 shutting down", rcpt="a@example.org")
    server.inject("rcpt", "drop", rcpt="b@example.org")
    server.inject("data-command", "drop", rcpt="c@example.org")
    results = await send_all(
        smtp(server.port),
        [mail(f"{x}@example.org", i) for i, x in enumerate("abcd")],
    )
    assert [type(r) for r in results[:3]] == [PolicyRefusal, TemporarySendError, TemporarySendError]
    assert "DATA: SMTPServerDisconnected" in str(results[2])
    assert isinstance(results[3], str)
    assert server.recipients() == ["d@example.org"]
    assert len(server.sessions) == 4


@pytest.mark.parametrize("fault", ["drop-after-data", "drop"])
async def test_a_drop_after_the_final_dot_is_uncertain_not_temporary(
    server: SmtpServer, fault: str
) -> None:
    """The connection lost after the message's final dot and before the reply (whether or not
    the server kept it): DeliveryUncertain, which is never retried; the next message goes."""
    server.inject("data", fault, rcpt="a@example.org")
    results = await send_all(smtp(server.port), [mail("a@example.org", 1), mail("b@example.org")])
    assert type(results[0]) is DeliveryUncertain
    assert "lost after the message was sent and before the server replied" in str(results[0])
    assert isinstance(results[1], str) and results[1].startswith("250")
    kept = ["a@example.org"] if fault == "drop-after-data" else []
    assert server.recipients() == [*kept, "b@example.org"]


async def test_a_timeout_waiting_for_the_reply_to_the_message_is_uncertain(
    server: SmtpServer,
) -> None:
    """A server that read the whole message but does not answer within the timeout may still
    deliver it: DeliveryUncertain, not a retry."""
    server.data_delay = 1.0
    [result] = await send_all(smtp(server.port, timeout_seconds=0.3), [mail("a@example.org")])
    assert type(result) is DeliveryUncertain
    assert "SMTPReadTimeoutError" in str(result)


async def test_a_stale_pooled_connection_is_replaced_transparently(server: SmtpServer) -> None:
    """A pooled session the server dropped while idle is reopened; the message is not lost."""
    sender = smtp(server.port)
    try:
        await sender.send(mail("a@example.org", 1))
        server.inject("mail", "drop")
        assert (await sender.send(mail("b@example.org", 2))).startswith("250")
    finally:
        await sender.close()
    assert server.recipients() == ["a@example.org", "b@example.org"]


async def test_server_down_is_temporary() -> None:
    """Nobody listening: a temporary failure, not an abort."""
    [result] = await send_all(smtp(free_port()), [mail("a@example.org")])
    assert isinstance(result, Unreachable)


async def test_rate_limit_spaces_the_messages(server: SmtpServer) -> None:
    """smtp.rate_per_second = 20: five messages take at least four intervals of 50 ms."""
    started = time.monotonic()
    await send_all(
        smtp(server.port, rate_per_second=20.0), [mail("a@example.org", i) for i in range(5)]
    )
    assert time.monotonic() - started >= 0.19


# --- TLS and AUTH -----------------------------------------------------------------------------


async def test_starttls_with_auth(server_tls: ssl.SSLContext, ca_file: Path) -> None:
    """security = "starttls": upgraded with the configured CA, then AUTH, then delivered."""
    with SmtpServer(starttls=server_tls, auth=("paperboy", "s3cret")) as server:
        [reply] = await send_all(
            smtp(
                server.port,
                security="starttls",
                ca_file=ca_file,
                username="paperboy",
                password="s3cret",
            ),
            [mail("a@example.org")],
        )
        assert isinstance(reply, str) and server.recipients() == ["a@example.org"]


async def test_implicit_tls(server_tls: ssl.SSLContext, ca_file: Path) -> None:
    """security = "tls": TLS from the first byte (port 465 style)."""
    with SmtpServer(implicit_tls=server_tls) as server:
        [reply] = await send_all(
            smtp(server.port, security="tls", ca_file=ca_file), [mail("a@x.org")]
        )
        assert isinstance(reply, str) and server.recipients() == ["a@x.org"]


async def test_auth_failure_535_aborts(server_tls: ssl.SSLContext, ca_file: Path) -> None:
    """A wrong password is SendAbort with a message that says what to check."""
    with SmtpServer(starttls=server_tls, auth=("paperboy", "s3cret")) as server:
        [result] = await send_all(
            smtp(
                server.port,
                security="starttls",
                ca_file=ca_file,
                username="paperboy",
                password="wrong",
            ),
            [mail("a@example.org")],
        )
        assert isinstance(result, SendAbort) and result.code == 535
        assert "PAPERBOY_SMTP__PASSWORD" in str(result) and server.count() == 0


async def test_starttls_is_never_skipped_when_not_offered(
    server: SmtpServer, ca_file: Path
) -> None:
    """A server without STARTTLS gets nothing in plain text when starttls is configured."""
    [result] = await send_all(
        smtp(server.port, security="starttls", ca_file=ca_file), [mail("a@x.org")]
    )
    assert isinstance(result, SendAbort) and "STARTTLS" in str(result)
    assert server.count() == 0


async def test_untrusted_certificate_aborts(server_tls: ssl.SSLContext, tmp_path: Path) -> None:
    """A certificate from an unknown CA aborts; there is no fallback to plain text."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with SmtpServer(starttls=server_tls) as server:
        [result] = await send_all(
            smtp(server.port, security="starttls", ca_file=other), [mail("a@x.org")]
        )
        assert isinstance(result, SendAbort) and "certificate verify failed" in str(result)
        assert server.count() == 0
