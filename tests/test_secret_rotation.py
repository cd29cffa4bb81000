"""Rotating ``web.secret_key``: previous keys verify, only the new key signs, and a running
``paperboy run`` takes the rotation (and a switch of mail backend) up without a restart."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from pipeline.config import Config, load_config
from pipeline.config_view import masked
from pipeline.errors import TokenError
from pipeline.models import SubscriberStatus
from pipeline.store import open_store
from pipeline.tokens import Tokens, tokens_for
from pipeline.verp import find_delivery, return_path
from tests.smtp_server import SmtpServer
from tests.test_config import run_cli
from tests.test_service import FAST, free_port, health, start, wait_for
from tests.test_web import TOPICS

K1 = "first-secret-key-0123456789abcdef"
K2 = "second-secret-key-0123456789abcdef"
K0 = "zeroth-secret-key-0123456789abcdef"


def test_a_previous_key_verifies_but_never_signs() -> None:
    """After a rotation, links signed with the old key still read; new ones use the new key."""
    old = Tokens(K1).make("unsubscribe", s=7)
    rotated = Tokens(K2, [K1])
    assert rotated.read("unsubscribe", old) == {"s": 7}
    fresh = rotated.make("unsubscribe", s=8)
    assert Tokens(K2).read("unsubscribe", fresh) == {"s": 8}
    with pytest.raises(TokenError):
        Tokens(K1).read("unsubscribe", fresh)
    with pytest.raises(TokenError):  # a retired key, no longer listed, verifies nothing
        Tokens(K2).read("unsubscribe", old)


def test_a_previous_key_keeps_verp_addresses_matching() -> None:
    """Bounces for mail sent before a rotation still find their delivery (the VERP MAC)."""
    day = dt.date(2026, 7, 3)
    before = return_path(Tokens(K1), "bounces.example.org", 42, day)
    rotated = Tokens(K2, [K1])
    found = find_delivery(rotated, f"Original-Recipient: x\nbounced to {before}\n")
    assert found is not None and found.subscriber_id == 42
    after = return_path(rotated, "bounces.example.org", 43, day)
    assert after == return_path(Tokens(K2), "bounces.example.org", 43, day)
    assert find_delivery(Tokens(K1), after) is None
    assert find_delivery(Tokens(K2), before) is None


@pytest.mark.parametrize(
    "name", ["PAPERBOY_PREVIOUS_SECRET_KEYS", "PAPERBOY_WEB__PREVIOUS_SECRET_KEYS"]
)
def test_previous_keys_come_comma_separated_from_the_environment(tmp_path: Path, name: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[web]\nsecret_key = "{K2}"\n', encoding="utf-8")
    config = load_config(path, env={name: f"{K0}, {K1}"})
    assert [k.get_secret_value() for k in config.web.previous_secret_keys] == [K0, K1]
    tokens = tokens_for(config)
    assert tokens.read("preferences", Tokens(K0).make("preferences", s=1)) == {"s": 1}
    assert tokens.read("preferences", Tokens(K1).make("preferences", s=2)) == {"s": 2}


def test_previous_keys_are_masked_and_checked(tmp_path: Path) -> None:
    """``config show`` never prints a previous key; a short one is refused by name."""
    path = tmp_path / "config.toml"
    path.write_text(f'[web]\nprevious_secret_keys = ["{K1}"]\n', encoding="utf-8")
    assert masked(load_config(path, env={}))["web"]["previous_secret_keys"] == ["***"]
    shown = run_cli("--config", str(path), "config", "show", "--json", cwd=tmp_path)
    assert shown.returncode == 0 and K1 not in shown.stdout
    assert json.loads(shown.stdout)["web"]["previous_secret_keys"] == ["***"]
    path.write_text('[web]\nprevious_secret_keys = ["short-key"]\n', encoding="utf-8")
    bad = run_cli("config", "check", str(path), cwd=tmp_path)
    assert bad.returncode == 2
    assert "web.previous_secret_keys = '***': every previous key" in bad.stderr
    assert "short-key" not in bad.stderr


# --- a running service ------------------------------------------------------------------


class Service:
    """``paperboy run`` on a temp instance whose config file the test rewrites."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.path = folder / "config.toml"
        self.log = folder / "daemon.log"
        self.base = f"http://127.0.0.1:{self.port}"
        self.write(secret=K1)
        self.config: Config = load_config(self.path, env={})

    def write(self, secret: str, previous: tuple[str, ...] = (), extra: str = "") -> None:
        keys = ", ".join(f'"{k}"' for k in previous)
        self.path.write_text(
            f'[storage]\nurl = "sqlite:///var/paperboy.db"\n{FAST}\n'
            f'[web]\nport = {self.port}\nbase_url = "{self.base}"\nsecret_key = "{secret}"\n'
            f"previous_secret_keys = [{keys}]\n{extra}\n{TOPICS}",
            encoding="utf-8",
        )

    def reloads(self) -> int:
        return self.log.read_text(encoding="utf-8").count("config reloaded from")

    def rewrite(self, secret: str, previous: tuple[str, ...] = (), extra: str = "") -> None:
        """Edit the config file and wait until the service has loaded it."""
        seen = self.reloads()
        self.write(secret, previous, extra)
        stamp = time.time_ns() + (seen + 1) * 10_000_000  # a new mtime even within one tick
        os.utime(self.path, ns=(stamp, stamp))
        wait_for(lambda: self.reloads() > seen, "the config to be reloaded")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path)
    with svc.log.open("w", encoding="utf-8") as output:
        proc = start(svc.path, "--no-deliver", output=output)
    try:
        wait_for(lambda: (health(svc.port) or {}).get("db") == "ok", "the web app")
        yield svc
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.returncode == 0, svc.log.read_text(encoding="utf-8")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def sign_up(client: httpx.Client, address: str) -> None:
    form = {
        "email": address,
        "topics": ["spiking-nets"],
        "timezone": "UTC",
        "send_hour": "7",
        "frequency": "daily",
        "weekly_day": "0",
        "website": "",
    }
    assert client.post("/", data=form).status_code == 200


def mail_to(folder: Path, address: str, kind: str) -> EmailMessage:
    """The ``kind`` mail (confirm, welcome) to ``address`` in an outbox folder."""
    found: list[EmailMessage] = []

    def arrived() -> bool:
        for path in folder.glob(f"{kind}.*.eml") if folder.is_dir() else ():
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if isinstance(message, EmailMessage) and address in str(message["To"]):
                found.append(message)
                return True
        return False

    wait_for(arrived, f"the {kind} mail to {address}")
    return found[0]


def link(message: EmailMessage, route: str) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    match = re.search(rf"http://127\.0\.0\.1:\d+(/{route}/[A-Za-z0-9._-]+)", body.get_content())
    assert match is not None, f"no /{route}/ link in the mail"
    return match.group(1)


def token(path: str) -> str:
    return path.rsplit("/", 1)[1]


def test_a_key_rotation_during_run_keeps_old_links_and_signs_new_ones(service: Service) -> None:
    """Links mailed before the rotation work after it (the unsubscribe page and RFC 8058's
    one-click POST); links the app makes after it are signed with the new key only."""
    outbox = service.config.paths.outbox
    with httpx.Client(base_url=service.base, timeout=10) as client:
        sign_up(client, "early@example.org")
        confirm = link(mail_to(outbox, "early@example.org", "confirm"), "c")
        assert client.post(confirm).status_code == 200
        welcome = mail_to(outbox, "early@example.org", "welcome")
        unsubscribe = str(welcome["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
        unsubscribe = unsubscribe.removeprefix(service.base)
        preferences = link(welcome, "p")
        assert Tokens(K1).read("unsubscribe", token(unsubscribe))

        service.rewrite(K2, previous=(K1,))

        assert client.get(preferences).status_code == 200
        assert client.get(unsubscribe).status_code == 200
        done = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
        fresh_preferences = re.search(r'href="http://127\.0\.0\.1:\d+(/p/[^"]+)"', done.text)
        assert fresh_preferences is not None
        assert Tokens(K2).read("preferences", token(fresh_preferences.group(1)))

        sign_up(client, "later@example.org")
        later = token(link(mail_to(outbox, "later@example.org", "confirm"), "c"))
    assert Tokens(K2).read("confirm", later)
    with pytest.raises(TokenError):
        Tokens(K1).read("confirm", later)
    with open_store(service.config) as store:
        early = store.subscribers.find("early@example.org")
        assert early is not None and early.status == SubscriberStatus.UNSUBSCRIBED


def test_a_backend_switch_during_run_reaches_confirmation_mails(service: Service) -> None:
    """Switching to SMTP sends the next confirmation mail over SMTP; switching back to an
    outbox folder writes it there, and the SMTP sender said QUIT when it was replaced."""
    outbox = service.config.paths.outbox
    with SmtpServer() as smtp, httpx.Client(base_url=service.base, timeout=10) as client:
        sign_up(client, "one@example.org")
        mail_to(outbox, "one@example.org", "confirm")

        over_smtp = (
            f'[delivery]\nbackend = "smtp"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
        )
        service.rewrite(K1, extra=over_smtp)
        sign_up(client, "two@example.org")
        smtp.wait_for(1)
        assert smtp.recipients() == ["two@example.org"]
        assert not any("two@" in p.read_text() for p in outbox.glob("*.eml"))

        service.rewrite(K1, extra='[paths]\noutbox = "var/outbox2"\n')
        sign_up(client, "three@example.org")
        mail_to(service.folder / "var" / "outbox2", "three@example.org", "confirm")
        wait_for(lambda: smtp.quits >= 1, "the replaced SMTP sender to say QUIT")
        assert smtp.count() == 1
