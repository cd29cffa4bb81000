"""What the web app believes about a request: its peer, its proxies, its Host header.

Every test runs the app under a real uvicorn on a free port, with the proxy settings
``paperboy run`` gives it (``peers.proxy_options``), and talks to it over HTTP.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from pipeline.config import Config, load_config
from pipeline.store import open_store
from subscribers.web import create_app
from subscribers.web.peers import SAMPLE, proxy_options
from tests.conftest import write_config
from tests.test_web import SECRET, TOPICS

EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
SIGNUP = {
    "email": "reader@example.org",
    "topics": ["spiking-nets"],
    "timezone": "UTC",
    "send_hour": "7",
    "frequency": "daily",
    "weekly_day": "0",
    "website": "",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def instance(folder: Path, port: int, web: str = "", extra: str = "") -> Config:
    """A config for an app on ``port``; ``web`` adds [web] lines (base_url defaults to the
    loopback address it listens on)."""
    lines = {"base_url": f'"http://127.0.0.1:{port}"', "secret_key": f'"{SECRET}"'}
    for line in web.splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            lines[key.strip()] = value.strip()
    body = "".join(f"{k} = {v}\n" for k, v in lines.items())
    path = write_config(folder, "sqlite:///var/paperboy.db", f"[web]\n{body}{extra}\n{TOPICS}")
    return load_config(path, env={})


@contextmanager
def served(config: Config, port: int) -> Iterator[httpx.Client]:
    """The app under uvicorn in a thread, as ``paperboy run`` serves it; a client for it."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            **proxy_options(config.web),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def one_mail(config: Config) -> str:
    """Put one mail with a live-looking link in the outbox; its file name."""
    config.paths.outbox.mkdir(parents=True, exist_ok=True)
    (config.paths.outbox / "confirm.1.test.eml").write_bytes(
        b"To: reader@example.org\r\nSubject: Confirm\r\nContent-Type: text/plain\r\n\r\n"
        b"http://127.0.0.1/c/live-link\r\n"
    )
    return "confirm.1.test.eml"


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[Config, httpx.Client, int]]:
    """The default setup of ``make run``: outbox backend, loopback base URL."""
    port = free_port()
    config = instance(tmp_path, port)
    one_mail(config)
    with served(config, port) as client:
        yield config, client, port


def test_the_outbox_answers_a_local_browser_by_any_local_host_name(
    local: tuple[Config, httpx.Client, int],
) -> None:
    """By default (outbox backend, loopback base_url) the viewer answers localhost names."""
    _, client, port = local
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
        listing = client.get("/outbox", headers={"Host": host})
        assert listing.status_code == 200, host
        assert "reader@example.org" in listing.text
    assert client.get("/outbox/confirm.1.test.eml").status_code == 200


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:8080", "127.0.0.1.attacker.example", ""]
)
def test_a_rebound_host_header_gets_404(local: tuple[Config, httpx.Client, int], host: str) -> None:
    """DNS rebinding: a page on attacker.example re-pointed at 127.0.0.1 reads nothing."""
    _, client, _ = local
    assert client.get("/outbox", headers={"Host": host}).status_code == 404
    assert client.get("/outbox/confirm.1.test.eml", headers={"Host": host}).status_code == 404


@pytest.mark.parametrize(
    "header",
    [
        ("Via", "1.1 tunnel"),
        ("Forwarded", "for=203.0.113.9"),
        ("X-Forwarded-For", "203.0.113.9"),
        ("X-Forwarded-Host", "127.0.0.1"),
        ("X-Forwarded-Proto", "https"),
        ("X-Real-IP", "203.0.113.9"),
        ("CF-Connecting-IP", "203.0.113.9"),
        ("CF-Ray", "8c1f-AMS"),
        ("True-Client-IP", "203.0.113.9"),
        ("X-Client-IP", "203.0.113.9"),
        ("X-Cluster-Client-IP", "203.0.113.9"),
        ("Fastly-Client-IP", "203.0.113.9"),
        ("X-Original-Forwarded-For", "203.0.113.9"),
    ],
    ids=lambda header: str(header[0]),
)
def test_a_request_through_any_proxy_gets_404(
    local: tuple[Config, httpx.Client, int], header: tuple[str, str]
) -> None:
    """A proxy, CDN or tunnel on this machine makes remote readers look local: refused."""
    _, client, _ = local
    name, value = header
    assert client.get("/outbox", headers={name: value}).status_code == 404
    assert client.get("/outbox/confirm.1.test.eml", headers={name: value}).status_code == 404


def test_a_declared_proxy_cannot_open_the_outbox(tmp_path: Path) -> None:
    """With 127.0.0.1 declared a proxy, uvicorn rewrites the client from X-Forwarded-For; a
    forged loopback address there, or the proxy's own plain request, still gets 404."""
    port = free_port()
    config = instance(tmp_path, port, 'trusted_proxies = ["127.0.0.1"]')
    one_mail(config)
    with served(config, port) as client:
        assert client.get("/outbox", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 404
        assert client.get("/outbox").status_code == 404


def test_the_outbox_is_off_by_default_for_a_public_base_url(tmp_path: Path) -> None:
    """An instance with a public base_url shows no outbox, even to this machine."""
    port = free_port()
    config = instance(tmp_path, port, 'base_url = "https://papers.lab.example"')
    one_mail(config)
    with served(config, port) as client:
        assert client.get("/outbox").status_code == 404
        assert client.get("/outbox", headers={"Host": "papers.lab.example"}).status_code == 404


def test_outbox_view_true_forces_it_on_but_keeps_it_local(tmp_path: Path) -> None:
    """``outbox_view = true`` turns it on for a public base_url (and SMTP), still for direct
    local requests naming the base URL's host or a local name only."""
    port = free_port()
    config = instance(
        tmp_path,
        port,
        'base_url = "https://papers.lab.example"\noutbox_view = true',
        '\n[delivery]\nbackend = "smtp"\n',
    )
    one_mail(config)
    with served(config, port) as client:
        assert client.get("/outbox", headers={"Host": "papers.lab.example"}).status_code == 200
        assert client.get("/outbox").status_code == 200
        assert client.get("/outbox", headers={"Host": "evil.example"}).status_code == 404
        assert client.get("/outbox", headers={"Via": "1.1 proxy"}).status_code == 404


def test_outbox_view_false_turns_it_off(tmp_path: Path) -> None:
    """``outbox_view = false`` turns off even ``make run``'s default viewer."""
    port = free_port()
    config = instance(tmp_path, port, "outbox_view = false")
    one_mail(config)
    with served(config, port) as client:
        assert client.get("/outbox").status_code == 404


def post_signup(client: httpx.Client, n: int, forwarded_for: str) -> int:
    data = {**SIGNUP, "email": f"reader{n}@example.org"}
    return client.post("/", data=data, headers={"X-Forwarded-For": forwarded_for}).status_code


def test_rotated_forwarded_for_from_an_untrusted_peer_counts_as_one_client(
    tmp_path: Path,
) -> None:
    """With no trusted proxies, X-Forwarded-For is ignored: 20 sign-ups an hour from this
    peer, however the header varies; the 21st gets 429."""
    port = free_port()
    config = instance(tmp_path, port)
    assert config.web.signups_per_ip_per_hour == 20  # the default limit
    with served(config, port) as client:
        codes = [post_signup(client, n, f"198.51.100.{n}") for n in range(21)]
    assert codes == [200] * 20 + [429]
    with open_store(config) as store:
        assert store.signups.count_since("127.0.0.1", EPOCH) == 20
        assert store.signups.count_since("198.51.100.3", EPOCH) == 0


def test_a_trusted_proxys_forwarded_for_names_the_client(tmp_path: Path) -> None:
    """From a declared proxy, X-Forwarded-For is the client: 25 readers behind it all sign
    up, while one reader's 21st post is refused."""
    port = free_port()
    config = instance(tmp_path, port, 'trusted_proxies = ["127.0.0.0/8"]')
    with served(config, port) as client:
        many = [post_signup(client, n, f"198.51.100.{n}") for n in range(25)]
        one = [post_signup(client, 100 + n, "203.0.113.7") for n in range(21)]
    assert many == [200] * 25
    assert one == [200] * 20 + [429]
    with open_store(config) as store:
        assert store.signups.count_since("198.51.100.3", EPOCH) == 1
        assert store.signups.count_since("127.0.0.1", EPOCH) == 0


def test_loopback_clients_without_a_declared_proxy_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A public base_url whose every client is 127.0.0.1 means an undeclared proxy: one
    warning after the first requests, not one per request."""
    port = free_port()
    config = instance(tmp_path, port, 'base_url = "https://papers.lab.example"')
    caplog.set_level(logging.WARNING, logger="paperboy.web")
    with served(config, port) as client:
        for _ in range(SAMPLE - 1):
            assert client.get("/").status_code == 200
        assert not [r for r in caplog.records if "trusted_proxies" in r.getMessage()]
        for _ in range(SAMPLE * 2):
            client.get("/")
    warned = [r for r in caplog.records if "trusted_proxies is empty" in r.getMessage()]
    assert len(warned) == 1


def test_proxy_headers_from_this_machine_are_warned_about_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A local client sending X-Forwarded-For is a proxy nobody declared: warned once."""
    port = free_port()
    config = instance(tmp_path, port)
    caplog.set_level(logging.WARNING, logger="paperboy.web")
    with served(config, port) as client:
        client.get("/", headers={"X-Forwarded-For": "198.51.100.1"})
        client.get("/", headers={"X-Forwarded-For": "198.51.100.2"})
    warned = [r for r in caplog.records if "trusted_proxies is empty" in r.getMessage()]
    assert len(warned) == 1 and "sends proxy headers" in warned[0].getMessage()


def test_a_declared_proxy_silences_the_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the proxy declared, neither loopback clients nor their headers are warned about."""
    port = free_port()
    config = instance(
        tmp_path, port, 'base_url = "https://papers.lab.example"\ntrusted_proxies = ["::1"]'
    )
    caplog.set_level(logging.WARNING, logger="paperboy.web")
    with served(config, port) as client:
        for _ in range(SAMPLE + 1):
            client.get("/", headers={"X-Forwarded-For": "198.51.100.1"})
    assert not [r for r in caplog.records if "trusted_proxies" in r.getMessage()]
