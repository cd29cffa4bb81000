"""``paperboy smtp test``'s probe: each step of a real SMTP session, one at a time, with the
server's reply, stopping at the first that fails.

It follows the delivery sender's rules (TLS as ``smtp.security`` says, never downgraded;
AUTH only when ``smtp.username`` is set) but reports every step instead of classifying the
failure, so an operator sees where a setup breaks.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import TypeVar

import aiosmtplib

from pipeline.config import Email, Smtp

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the session: what was tried, whether it worked, and the server's reply
    (or the local error)."""

    name: str
    ok: bool
    detail: str


class _Stop(Exception):
    """A step failed: the session ends there."""


def test_message(email: Email, to: str) -> EmailMessage:
    """The one mail the probe sends: plain text, saying where it came from."""
    message = EmailMessage()
    message["From"] = formataddr((email.from_name, email.from_address))
    message["To"] = to
    message["Subject"] = "paperboy: SMTP test"
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid("smtp-test", domain=email.from_address.partition("@")[2])
    message.set_content("This is a test mail from `paperboy smtp test`: the SMTP settings work.\n")
    return message


async def probe(smtp: Smtp, email: Email, to: str, report: Callable[[Step], None]) -> Step | None:
    """Connect, secure, authenticate and send one mail to ``to``; ``report`` each step as it
    ends. None when the server accepted the mail, else the step that failed."""
    failed: list[Step] = []

    def note(step: Step) -> None:
        if not step.ok:
            failed.append(step)
        report(step)

    await _session(smtp, email, to, note)
    return failed[0] if failed else None


async def _session(smtp: Smtp, email: Email, to: str, report: Callable[[Step], None]) -> None:
    where = f"{smtp.host}:{smtp.port}"
    try:
        context = _tls_context(smtp)
    except (OSError, ssl.SSLError) as e:
        report(Step("TLS", False, f"smtp.ca_file = {str(smtp.ca_file)!r}: cannot load it ({e})"))
        return
    conn = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        local_hostname=socket.getfqdn(),
        timeout=smtp.timeout_seconds,
        use_tls=smtp.security == "tls",
        start_tls=False,  # below, as its own step
        tls_context=context,
    )

    async def step(name: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            reply = await call()
        except aiosmtplib.SMTPResponseException as e:
            report(Step(name, False, f"{e.code} {e.message}"))
            raise _Stop from e
        except (aiosmtplib.SMTPException, OSError) as e:
            report(Step(name, False, f"{e.__class__.__name__}: {e}"))
            raise _Stop from e
        return reply

    try:
        greeting = await step(f"connect to {where}", conn.connect)
        security = "implicit TLS" if smtp.security == "tls" else "plain TCP"
        report(Step(f"connect to {where} ({security})", True, _reply(greeting)))
        report(Step("EHLO", True, _reply(await step("EHLO", conn.ehlo))))
        if smtp.security == "starttls":
            if not conn.supports_extension("starttls"):
                report(Step("STARTTLS", False, "the server does not offer STARTTLS"))
                return
            reply = await step("STARTTLS", conn.starttls)
            report(Step("STARTTLS", True, f"{_reply(reply)} ({_cipher(conn)})"))
            await step("EHLO", conn.ehlo)
        elif smtp.security == "none":
            report(Step("TLS", True, "none (smtp.security = 'none'): mail travels in plain text"))
        if smtp.username:
            if not conn.supports_extension("auth"):
                report(Step("AUTH", False, "the server does not offer AUTH here"))
                return
            password = smtp.password.get_secret_value()
            login = await step("AUTH", lambda: conn.login(smtp.username, password))
            report(Step(f"AUTH as {smtp.username}", True, _reply(login)))
        else:
            report(Step("AUTH", True, "skipped: smtp.username is not set"))
        message = test_message(email, to)
        _refused, reply_text = await step(f"send to {to}", lambda: conn.send_message(message))
        report(Step(f"send to {to}", True, reply_text))
    except _Stop:
        return
    finally:
        if conn.is_connected:
            try:
                await conn.quit()
            except (aiosmtplib.SMTPException, OSError):
                conn.close()


def _tls_context(smtp: Smtp) -> ssl.SSLContext | None:
    if smtp.security == "none":
        return None
    return ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)


def _reply(reply: aiosmtplib.SMTPResponse) -> str:
    return f"{reply.code} {reply.message}".splitlines()[0]


def _cipher(conn: aiosmtplib.SMTP) -> str:
    transport = conn.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    if ssl_object is None:
        return "TLS"
    return f"{ssl_object.version()}, {ssl_object.cipher()[0]}"
