"""Hand a message to a mail server (SmtpSender) or to the outbox folder (OutboxSender).

Every failure becomes one of these errors (pipeline.errors), which the delivery engine maps to
the ledger; a refusal at RCPT or DATA is first sorted by its bounce class (pipeline.bounces):

    TemporarySendError   4xx, 552, dropped connections
    ├── PolicyRefusal    5.7.x, 554 without 5.1.x, 421: a block on us, not on the reader
    └── Unreachable      refused or failed connections, and timeouts
    PermanentSendError   another 5xx at DATA: this message, not the address
    ├── RecipientRefused 5.1.1, 5.1.2, 5.1.3, 5.1.10, 5.2.1: the address is gone; suppress it
    └── RecipientBounced another 5xx at RCPT: count a bounce against the address
    SendAbort            authentication or TLS failed, or the server refuses our sender:
                         nothing can be sent with this configuration
    DeliveryUncertain    the connection was lost after DATA's final dot, before the reply:
                         the server may have the message; it is never resent

TLS is never downgraded: ``security = "starttls"`` fails when the server does not offer it.
A message to or from a non-ASCII address (``jörg@example.org``, RFC 6531) goes with SMTPUTF8;
a server that does not offer it gets nothing, and the edition fails with a message saying so.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import os
import re
import socket
import ssl
import tempfile
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Protocol

import aiosmtplib

from pipeline import metrics
from pipeline.addresses import email_key
from pipeline.bounces import Bounce, Stage, classify
from pipeline.config import Config, Smtp
from pipeline.errors import (
    DeliveryUncertain,
    PermanentSendError,
    PolicyRefusal,
    RecipientBounced,
    RecipientRefused,
    SendAbort,
    SendError,
    TemporarySendError,
    Unreachable,
)
from pipeline.mime import envelope, message_bytes


class Sender(Protocol):
    """Where messages go. ``send`` returns the server's reply or raises a SendError."""

    async def send(self, message: EmailMessage) -> str: ...

    async def close(self) -> None: ...


_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+")


def recipient(message: EmailMessage) -> str:
    """The one address in the message's To header."""
    raw = [value for name, value in message.raw_items() if name.lower() == "to"]
    if len(raw) == 1 and isinstance(raw[0], str) and _PLAIN_ADDRESS.fullmatch(raw[0]):
        return raw[0]  # what build_message writes; parsing it would only cost time
    addresses = [addr for _, addr in getaddresses([str(v) for v in message.get_all("To", [])])]
    if len(addresses) != 1 or "@" not in addresses[0]:
        raise PermanentSendError(f"the message needs exactly one To address, not {addresses!r}")
    return addresses[0]


# --- the outbox -------------------------------------------------------------------------------

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+-]+")


class OutboxSender:
    """One ``.eml`` per message under ``folder``, written atomically (temp file + rename).

    The file is named after the Message-ID, so resending an edition replaces its file.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, message: EmailMessage, data: bytes) -> Path:
        message_id = str(message.get("Message-ID", "")).strip().strip("<>")
        stem = _UNSAFE_NAME.sub("_", message_id)[:180].strip("._")
        if not stem:
            stem = hashlib.sha256(data).hexdigest()[:32]
        return self.folder / f"{stem}.eml"

    async def send(self, message: EmailMessage) -> str:
        recipient(message)  # the same check an SMTP server would make
        data = message_bytes(message)
        path = self.path_for(message, data)
        try:
            await asyncio.to_thread(_write_atomically, path, data)
        except OSError as e:
            # A full or read-only disk is the operator's to fix, not the recipient's fault.
            raise SendAbort(f"cannot write to the outbox {self.folder}: {e.strerror}") from e
        return f"250 written to {path.name}"

    async def close(self) -> None:
        return None


def remove_mail_to(folder: Path, address: str) -> int:
    """Delete the outbox files addressed to ``address`` (any spelling); how many went.

    Only each file's headers are read; a file with other recipients besides is removed too
    (paperboy writes one recipient per message), anything else is left alone.
    """
    if not folder.is_dir():
        return 0
    key = email_key(address)
    parser = BytesHeaderParser(policy=email.policy.default)
    removed = 0
    for path in sorted(folder.glob("*.eml")):
        try:
            with path.open("rb") as f:
                headers = parser.parse(f)
        except FileNotFoundError:
            continue  # replaced or removed meanwhile
        recipients = getaddresses([str(v) for v in headers.get_all("To", [])])
        if any(email_key(a) == key for _, a in recipients):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- SMTP -------------------------------------------------------------------------------------


class _Pacer:
    """At most ``rate`` sends per second, evenly spaced."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = 0.0

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        slot = max(now, self.next_at)
        self.next_at = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class SmtpSender:
    """aiosmtplib with a pool of reused connections, a rate limit, timeouts and strict TLS."""

    def __init__(self, smtp: Smtp, mail_from: str, local_hostname: str | None = None) -> None:
        self.smtp = smtp
        self.mail_from = mail_from
        self.local_hostname = local_hostname
        self._tls: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(smtp.pool_size)
        self._pacer = _Pacer(smtp.rate_per_second)

    @property
    def where(self) -> str:
        return f"{self.smtp.host}:{self.smtp.port}"

    async def send(self, message: EmailMessage) -> str:
        try:
            reply = await self._send(message)
        except SendError as e:
            metrics.smtp_reply(e)
            raise
        metrics.smtp_reply(None)
        return reply

    async def _send(self, message: EmailMessage) -> str:
        self._bind_loop()
        rcpt = recipient(message)
        mail_from, data = envelope(message, self.mail_from)  # a VERP Return-Path, if any
        await self._pacer.wait()
        async with self._slots:
            conn, reused = await self._acquire()
            try:
                return await self._transaction(conn, rcpt, data, reused, mail_from)
            except _StaleConnection:
                # The pooled connection died while idle, before the server saw anything of
                # this message: one fresh connection, then errors count.
                conn = await self._connect()
                return await self._transaction(conn, rcpt, data, False, mail_from)

    async def _transaction(
        self, conn: aiosmtplib.SMTP, rcpt: str, data: bytes, reused: bool, mail_from: str
    ) -> str:
        stage: Stage = "mail"
        utf8 = needs_smtputf8(mail_from, rcpt, data)
        if utf8 and not conn.supports_extension("smtputf8"):
            self._idle.append(conn)  # nothing was said: the connection stays good for others
            who = next((a for a in (rcpt, mail_from) if not a.isascii()), rcpt)
            raise PermanentSendError(
                f"{self.where} does not offer SMTPUTF8, which the non-ASCII address {who!r} "
                "needs; nothing was sent (use a mail server that offers SMTPUTF8)"
            )
        options, encoding = (["SMTPUTF8"], "utf-8") if utf8 else ([], "ascii")
        dotted = False  # the whole message, final dot included, is on its way to the server
        try:
            await conn.mail(mail_from, options=options, encoding=encoding)
            stage = "rcpt"
            await conn.rcpt(rcpt, encoding=encoding)
            stage = "data"
            # aiosmtplib's data() does not say which half failed; only a loss after the final
            # dot may have left the message with the server, so DATA is done in two steps.
            start = await conn.execute_command(b"DATA")
            if start.code != 354:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            protocol = conn.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost before the message")
            protocol.write(_dot_stuffed(data))
            dotted = True
            reply = await protocol.read_response(timeout=self.smtp.timeout_seconds)
            if reply.code != 250:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        except (aiosmtplib.SMTPServerDisconnected, TimeoutError) as e:
            self._discard(conn)
            if dotted:
                raise DeliveryUncertain(
                    f"{self.where}: the connection was lost after the message was sent and "
                    f"before the server replied ({e.__class__.__name__}: {e}); it may have "
                    "been delivered, so it is not resent"
                ) from e
            stale = isinstance(e, aiosmtplib.SMTPServerDisconnected)
            if stale and stage == "mail" and reused:
                raise _StaleConnection from e
            raise _classify(e, stage, self.where) from e
        except (aiosmtplib.SMTPException, OSError) as e:
            await self._after_failure(conn, e, stage)
            raise _classify(e, stage, self.where) from e
        except BaseException:
            self._discard(conn)  # cancelled mid-transaction: the session state is unknown
            raise
        self._idle.append(conn)
        return f"{reply.code} {reply.message}".strip()

    async def _after_failure(
        self, conn: aiosmtplib.SMTP, error: BaseException, stage: Stage
    ) -> None:
        """Keep a connection that only refused this transaction; drop any other."""
        refused = isinstance(error, aiosmtplib.SMTPResponseException) and error.code != 421
        if refused and conn.is_connected:
            try:
                if stage != "data":
                    await conn.rset()
            except (aiosmtplib.SMTPException, OSError):
                self._discard(conn)
                return
            self._idle.append(conn)
        else:
            self._discard(conn)

    async def _acquire(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            conn = self._idle.pop()
            if conn.is_connected:
                return conn, True
            self._discard(conn)
        return await self._connect(), False

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.smtp
        if self.local_hostname is None:
            self.local_hostname = await asyncio.to_thread(socket.getfqdn)
        conn = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            local_hostname=self.local_hostname,
            timeout=s.timeout_seconds,
            use_tls=s.security == "tls",
            start_tls=False,  # done below, explicitly, so it can never be skipped
            tls_context=self._tls_context() if s.security != "none" else None,
        )
        stage: Stage = "connect"
        try:
            await conn.connect()
            if s.security == "starttls":
                await conn.ehlo()
                if not conn.supports_extension("starttls"):
                    raise SendAbort(
                        f"{self.where} does not offer STARTTLS and smtp.security = 'starttls': "
                        "refusing to send in plain text (use security = 'tls' for port 465)"
                    )
                await conn.starttls()
            if s.username:
                await conn.ehlo()
                if not conn.supports_extension("auth"):
                    raise SendAbort(
                        f"{self.where} does not offer AUTH but smtp.username is set; "
                        "check smtp.security (most servers offer AUTH only over TLS)"
                    )
                await conn.login(s.username, s.password.get_secret_value())
            if conn.is_ehlo_or_helo_needed:
                # Greet now rather than at the first MAIL, to know the extensions (SMTPUTF8).
                await _greet(conn)
        except SendError:
            await _hang_up(conn)
            raise
        except (aiosmtplib.SMTPException, OSError) as e:
            await _hang_up(conn)
            raise _classify(e, stage, self.where) from e
        except BaseException:
            _abort(conn)
            raise
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            ca = str(self.smtp.ca_file) if self.smtp.ca_file else None
            try:
                self._tls = ssl.create_default_context(cafile=ca)
            except (OSError, ssl.SSLError) as e:
                raise SendAbort(f"smtp.ca_file = {ca!r}: cannot load it ({e})") from e
        return self._tls

    def _bind_loop(self) -> None:
        """Connections belong to one event loop; a sender reused on another starts afresh."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            for conn in self._idle:
                conn.close()
            self._idle = []
            self._slots = asyncio.Semaphore(self.smtp.pool_size)
            self._loop = loop

    def _discard(self, conn: aiosmtplib.SMTP) -> None:
        if conn.is_connected:
            conn.close()

    async def close(self) -> None:
        """QUIT every pooled connection (a server that is already gone is not an error)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            if conn.is_connected:
                try:
                    await conn.quit(timeout=min(self.smtp.timeout_seconds, 5.0))
                except (aiosmtplib.SMTPException, OSError):
                    conn.close()


def _abort(conn: aiosmtplib.SMTP) -> None:
    """Drop a connection that failed while being set up, without a TLS goodbye.

    ``close()`` on a TLS connection starts a close_notify exchange that needs the event loop
    for a while; a run aborted by the failure may end its loop first and leave the socket
    open. Aborting closes the socket on the loop's next turn.
    """
    transport = conn.transport
    if transport is not None and not transport.is_closing():
        transport.abort()  # type: ignore[attr-defined]
    conn.close()


async def _hang_up(conn: aiosmtplib.SMTP) -> None:
    """``_abort``, then one turn of the loop so the socket is really closed."""
    _abort(conn)
    await asyncio.sleep(0)


async def _greet(conn: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO for a server that does not speak ESMTP (as aiosmtplib does at MAIL)."""
    try:
        await conn.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not conn.is_connected:
            raise
        await conn.helo()


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it: CRLF line ends, leading dots doubled, the final dot."""
    data = _LINE_END.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LEADING_DOT.sub(b"..", data) + b".\r\n"


_LINE_END = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def needs_smtputf8(mail_from: str, rcpt: str, data: bytes) -> bool:
    """Whether an envelope address or a header is not ASCII (RFC 6531, 6532)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    return not (mail_from.isascii() and rcpt.isascii() and head.isascii())


class _StaleConnection(Exception):
    """A pooled connection was found closed before the first command of a transaction."""


def _classify(error: BaseException, stage: Stage, where: str) -> SendError:
    """One SMTP failure as the SendError that decides what the ledger does."""
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return SendAbort(
            f"SMTP authentication failed at {where} ({error.code} {error.message}); "
            "check smtp.username and PAPERBOY_SMTP__PASSWORD",
            error.code,
        )
    if isinstance(error, ssl.SSLError) or isinstance(error.__cause__, ssl.SSLError):
        cause = error if isinstance(error, ssl.SSLError) else error.__cause__
        return SendAbort(
            f"TLS with {where} failed ({cause}); check smtp.security and smtp.ca_file "
            "(paperboy never falls back to plain text)"
        )
    if isinstance(error, aiosmtplib.SMTPResponseException):
        code, text = error.code, f"{error.code} {error.message}".strip()
        if stage in ("rcpt", "data") or code < 500 or code == 552:
            bounce = classify(code, str(error.message), stage)
            return _BOUNCE_ERRORS[bounce](f"{stage.upper()}: {text}", code)
        if code == 530 or str(error.message).startswith("5.7"):
            return SendAbort(
                f"{where} requires authentication or refused us ({text}); "
                "check smtp.username, smtp.password and smtp.security",
                code,
            )
        return SendAbort(
            f"{where} refused the session at {stage.upper()} ({text}); "
            "check email.from_address and the server's relay rules",
            code,
        )
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return SendAbort(f"{where}: {error}")
    # Refused, dropped or timed-out connections: the server may be back later.
    message = f"{stage.upper()}: {error.__class__.__name__}: {error}"
    if stage == "connect" or isinstance(error, TimeoutError):
        return Unreachable(message)
    return TemporarySendError(message)


_BOUNCE_ERRORS: dict[Bounce, type[SendError]] = {
    Bounce.GONE: RecipientRefused,
    Bounce.BUSY: PolicyRefusal,
    Bounce.POLICY: PolicyRefusal,
    Bounce.TEMPORARY: TemporarySendError,
    Bounce.REJECTED: PermanentSendError,
    Bounce.BOUNCE: RecipientBounced,
}


def sender_for(config: Config) -> Sender:
    """The configured sender: the outbox folder (default) or an SMTP server."""
    if config.delivery.backend == "smtp":
        return SmtpSender(config.smtp, config.email.from_address)
    return OutboxSender(config.paths.outbox)
