"""VERP envelope senders: each edition's Return-Path names it, signed, and reaches the server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from pipeline.config import Config, load_config
from pipeline.errors import ConfigError
from pipeline.run import deliver_due
from pipeline.store import Store
from pipeline.tokens import Tokens
from pipeline.verp import find_delivery, return_path
from tests.delivery_world import EDITION, NOW, add_readers, seed_papers, smtp_config, stub_select
from tests.smtp_server import SmtpServer

TOKENS = Tokens("k" * 32)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def with_bounce_domain(config: Config, domain: str = "bounces.example.org") -> Config:
    return config.model_copy(
        update={"email": config.email.model_copy(update={"bounce_domain": domain})}
    )


def test_a_return_path_names_the_edition_and_reads_back() -> None:
    """The address carries subscriber id and date, fits a local part, and reads back."""
    address = return_path(TOKENS, "bounces.example.org", 42, EDITION)
    local, _, domain = address.partition("@")
    assert local.startswith("bounces+42-20260703-") and len(local) <= 64
    assert domain == "bounces.example.org" and address == address.lower()
    found = find_delivery(TOKENS, f"To: <{address.upper()}>\n")
    assert found is not None and (found.subscriber_id, found.edition) == (42, EDITION)


def test_a_forged_or_foreign_return_path_names_nothing() -> None:
    """Another id or date under the same mac, another key's mac, or garbage: None."""
    address = return_path(TOKENS, "b.example.org", 42, EDITION)
    mac = address.split("-")[-1].split("@")[0]
    assert find_delivery(TOKENS, f"bounces+43-20260703-{mac}@b.example.org") is None
    assert find_delivery(TOKENS, f"bounces+42-20260704-{mac}@b.example.org") is None
    assert find_delivery(Tokens("x" * 32), address) is None
    assert find_delivery(TOKENS, "bounces+42-20260703-zz@b.example.org") is None


def test_bounce_domain_must_be_a_bare_domain(tmp_path: Path) -> None:
    """A bad email.bounce_domain is named with its value and an example."""
    path = tmp_path / "config.toml"
    path.write_text('[email]\nbounce_domain = "x@example.org\\r\\nBcc: a@b.c"\n')
    with pytest.raises(ConfigError) as e:
        load_config(path, env={})
    assert "email.bounce_domain" in str(e.value) and "bounces.lab.example" in str(e.value)
    path.write_text('[email]\nbounce_domain = "Bounces.Example.ORG"\n')
    assert load_config(path, env={}).email.bounce_domain == "bounces.example.org"


def test_the_outbox_keeps_each_editions_return_path(instance: Config, store: Store) -> None:
    """With a bounce domain, each .eml in the outbox has its own signed Return-Path."""
    config = with_bounce_domain(instance)
    seed_papers(store)
    readers = add_readers(store, 2)
    tally = deliver_due(config, NOW, store=store, select=stub_select)
    assert tally.sent == 2
    by_reader = {}
    for path in config.paths.outbox.iterdir():
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        by_reader[str(msg["To"])] = str(msg["Return-Path"]).strip("<>")
    tokens = Tokens(config.web.secret_key.get_secret_value() or _key(config))
    for sub in readers:
        found = find_delivery(tokens, by_reader[sub.email])
        assert found is not None and (found.subscriber_id, found.edition) == (sub.id, EDITION)
        assert sub.email not in by_reader[sub.email]


def _key(config: Config) -> str:
    return (config.paths.var / "secret.key").read_text().strip()


def test_smtp_sends_the_return_path_as_mail_from_and_not_as_a_header(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """MAIL FROM is the edition's VERP address; the data carries no Return-Path of ours."""
    config = with_bounce_domain(smtp_config(instance, server.port))
    seed_papers(store)
    [sub] = add_readers(store, 1)
    assert deliver_due(config, NOW, store=store, select=stub_select).sent == 1
    [got] = server.messages
    assert got.mail_from == return_path(Tokens("s" * 32), "bounces.example.org", sub.id, EDITION)
    assert b"Return-Path" not in got.data.split(b"\r\n\r\n", 1)[0]


def test_without_a_bounce_domain_mail_from_is_the_from_address(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """The default: no VERP, MAIL FROM is email.from_address, as before."""
    config = smtp_config(instance, server.port)
    seed_papers(store)
    add_readers(store, 1)
    deliver_due(config, NOW + dt.timedelta(minutes=1), store=store, select=stub_select)
    [got] = server.messages
    assert got.mail_from == config.email.from_address
    assert b"Return-Path" not in got.data


def test_envelope_takes_the_return_path_out_of_the_bytes() -> None:
    """``envelope`` gives the Return-Path as sender and the message bytes without it."""
    from pipeline.config import Email
    from pipeline.mime import build_message, envelope, message_bytes
    from pipeline.models import RenderedEmail

    rendered = RenderedEmail(subject="Hi", preheader="", text="hello\n", html="<p>hello</p>")
    common = {
        "to": "reader@example.org",
        "email": Email(),
        "message_id": "<a.1@example.org>",
        "unsubscribe_url": None,
        "date": NOW,
    }
    plain = build_message(rendered, **common)  # type: ignore[arg-type]
    assert envelope(plain, "paperboy@example.org") == (
        "paperboy@example.org",
        message_bytes(plain),
    )
    verp = build_message(rendered, **common, return_path="bounces+1-x@b.example.org")  # type: ignore[arg-type]
    assert message_bytes(verp).startswith(b"Return-Path: <bounces+1-x@b.example.org>\r\n")
    sender, data = envelope(verp, "paperboy@example.org")
    assert sender == "bounces+1-x@b.example.org" and data == message_bytes(plain)
