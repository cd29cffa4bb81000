"""The subscriber app under uvicorn on a free port, on any storage backend, for HTTP tests."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import uvicorn

from pipeline.config import Config, load_config
from subscribers.web import create_app
from tests.conftest import write_config

SECRET = "served-test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppServer:
    """An ASGI app under uvicorn in a background thread, for as long as the ``with`` lasts."""

    def __init__(self, app: Any, port: int, host: str = "127.0.0.1") -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


class Served:
    """``create_app`` under uvicorn in a background thread. The config has ``storage`` lines
    after the URL, then a ``[web]`` table with the base URL, the secret, a high sign-up limit
    and ``web`` lines. ``host``: the address to listen on (``base`` is always 127.0.0.1)."""

    def __init__(
        self,
        folder: Path,
        storage_url: str,
        web: str = "",
        storage: str = "",
        host: str = "127.0.0.1",
    ) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        path = write_config(
            folder,
            storage_url,
            f'{storage}\n[web]\nbase_url = "{self.base}"\nsecret_key = "{SECRET}"\n'
            f"signups_per_ip_per_hour = 1000\n{web}\n",
        )
        self.config: Config = load_config(path, env={})
        self.running = AppServer(create_app(self.config), port, host)

    def __enter__(self) -> Served:
        self.running.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running.__exit__(*exc)

    def mails(self) -> list[EmailMessage]:
        folder = self.config.paths.outbox
        files = sorted(folder.glob("*.eml")) if folder.exists() else []
        return [
            email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files
        ]

    def links_to(self, address: str, kind: str) -> list[str]:
        """The paths of every /<kind>/TOKEN link in the mails to ``address`` so far."""
        found: list[str] = []
        pattern = re.compile(re.escape(self.base) + rf"(/{kind}/[A-Za-z0-9._-]+)")
        for message in self.mails():
            if address.lower() in str(message["To"]).lower():
                body = message.get_body(("plain",))
                assert body is not None
                found += pattern.findall(str(body.get_content()))
        return found

    def mails_with(self, address: str, kind: str) -> int:
        """How many mails to ``address`` carry a /<kind>/ link (welcome mails: "p")."""
        wanted = f"{self.base}/{kind}/"
        count = 0
        for message in self.mails():
            body = message.get_body(("plain",))
            assert body is not None
            if address.lower() in str(message["To"]).lower() and wanted in str(body.get_content()):
                count += 1
        return count

    def wait_for_links(self, address: str, kind: str, count: int, timeout: float = 10) -> list[str]:
        """At least ``count`` such links, waiting for the mails sent after the response."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.links_to(address, kind)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"fewer than {count} /{kind}/ links mailed to {address}")
