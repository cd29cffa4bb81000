"""A real aiosmtpd server on a free loopback port, with an injectable queue of faults.

    server = SmtpServer().start()          # SmtpServer(smtputf8=True) offers SMTPUTF8
    server.inject("rcpt", "450 4.2.0 mailbox busy", rcpt="bob@example.org")
    server.inject("data", "drop-after-data")       # store the message, hang up before the 250
    ...
    server.messages        # what the server accepted (and stored), in order

A fault is consumed when it fires (``times`` times). Replies are SMTP status lines, or one of:
``drop`` (close the connection instead of answering) and, at DATA, ``drop-after-data``
(the server keeps the message but the client never sees the 250: the one window in SMTP
where a retry makes a duplicate). Faults at ``data`` fire after the message's final dot; at
``data-command`` they fire at the DATA command itself, before the 354 and the message
(``server.inject("data-command", "drop")``: a drop that cannot have delivered anything).
``storm(stage, reply)`` answers every command of that stage with ``reply`` until ``heal()``;
``rcpt_attempts`` counts every RCPT the server was sent.

    with Blackhole() as relay: ...     # accepts TCP connections and never greets
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class _Session(Session):
    """aiosmtpd 1.4 itself sets the deprecated ``login_data`` after every successful AUTH,
    which warns; tests turn warnings into errors, so keep the value without the warning."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _SMTP(SMTP):
    def _create_session(self) -> Session:
        return _Session(self.loop)

    async def smtp_DATA(self, arg: str) -> None:
        """The DATA command, before the 354: where a ``data-command`` fault fires."""
        handler = self.event_handler
        if isinstance(handler, _Handler) and self.envelope is not None:
            rcpt = self.envelope.rcpt_tos[0] if self.envelope.rcpt_tos else None
            fault = handler._fault("data-command", rcpt)
            if fault == "drop":
                handler._drop(self)
                return
            if fault:
                await self.push(fault)
                return
        await super().smtp_DATA(arg)

    async def smtp_QUIT(self, arg: str) -> None:
        """QUIT, counted: a sender that closes properly says goodbye to the server."""
        handler = self.event_handler
        if isinstance(handler, _Handler):
            with handler.server.lock:
                handler.server.quits += 1
        await super().smtp_QUIT(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _SMTP(self.handler, **self.SMTP_kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fault:
    stage: str  # "mail" | "rcpt" | "data"
    reply: str  # "450 …", "drop", "drop-after-data"
    rcpt: str | None = None
    times: int = 1


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    smtputf8: bool = False  # MAIL FROM carried the SMTPUTF8 parameter

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class _Handler:
    server: SmtpServer
    faults: list[Fault] = field(default_factory=list)

    def _fault(self, stage: str, rcpt: str | None = None) -> str | None:
        with self.server.lock:
            for fault in self.faults:
                if fault.stage == stage and (fault.rcpt is None or fault.rcpt == rcpt):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault.reply
        return None

    @staticmethod
    def _drop(server: SMTP) -> str:
        assert server.transport is not None
        server.transport.close()
        return "421 4.4.2 dropped by the test"  # never reaches the client

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        with self.server.lock:
            self.server.sessions.add(session.peer)
        fault = self._fault("mail")
        if fault == "drop":
            return self._drop(server)
        if fault:
            return fault
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        with self.server.lock:
            self.server.rcpt_attempts += 1
        fault = self._fault("rcpt", address)
        if fault == "drop":
            return self._drop(server)
        if fault:
            if fault.startswith("421") and server.transport is not None:
                # Say 421, then hang up, as a server going down does.
                asyncio.get_running_loop().call_soon(server.transport.close)
            return fault
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else None
        with self.server.lock:
            self.server.data_started += 1
        if self.server.data_delay:
            await asyncio.sleep(self.server.data_delay)
        fault = self._fault("data", rcpt)
        if fault == "drop":
            return self._drop(server)
        if fault and fault != "drop-after-data":
            return fault
        assert isinstance(envelope.original_content, bytes)
        with self.server.lock:
            self.server.messages.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    bool(envelope.smtp_utf8),
                )
            )
        if fault == "drop-after-data":
            return self._drop(server)
        return "250 2.0.0 Ok: queued as test"


class SmtpServer:
    """aiosmtpd in a thread of this process; everything it accepted is in ``messages``."""

    def __init__(
        self,
        port: int | None = None,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        data_delay: float = 0.0,
        smtputf8: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.rcpt_attempts = 0
        self.data_started = 0  # messages read up to their final dot, replied to or not
        self.quits = 0  # sessions the client ended with QUIT
        self.sessions: set[object] = set()  # client (host, port) of each session that sent MAIL
        self.data_delay = data_delay
        self.handler = _Handler(self)
        self.auth = auth
        kwargs: dict[str, Any] = {}
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if auth is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=True)
        self.controller = _Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            ssl_context=implicit_tls,
            server_hostname="localhost",
            ready_timeout=5.0,
            enable_SMTPUTF8=smtputf8,
            **kwargs,
        )
        self.running = False

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.auth is not None
            and (data.login.decode(), data.password.decode()) == self.auth
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False

    def inject(self, stage: str, reply: str, *, rcpt: str | None = None, times: int = 1) -> None:
        with self.lock:
            self.handler.faults.append(Fault(stage, reply, rcpt, times))

    def storm(self, stage: str, reply: str) -> None:
        """Answer every command of ``stage`` with ``reply`` until ``heal()``."""
        self.inject(stage, reply, times=10**9)

    def heal(self) -> None:
        """Forget every fault not yet fired: the server answers normally again."""
        with self.lock:
            self.handler.faults.clear()

    def recipients(self) -> list[str]:
        with self.lock:
            return [r for m in self.messages for r in m.rcpt_tos]

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"server received {self.count()} messages, not {n}")
            time.sleep(0.01)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Blackhole:
    """A relay that accepts TCP connections and never says a word (no greeting), counting
    the connections; each is held open until ``stop``."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.listener = socket.create_server((self.host, 0))
        self.port = int(self.listener.getsockname()[1])
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # the listener was closed: stop
                return
            with self.lock:
                self.held.append(conn)

    @property
    def connections(self) -> int:
        with self.lock:
            return len(self.held)

    def __enter__(self) -> Blackhole:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # shutdown() wakes the thread blocked in accept() on Linux; close() alone may not.
        # Where the listener cannot be shut down there is nothing to wake: close() suffices.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=5)
        with self.lock:
            for conn in self.held:
                conn.close()
