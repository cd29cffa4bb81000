"""/outbox: the local viewer for mail the outbox sender wrote, and who may not see it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from pipeline.config import Config, load_config
from subscribers.web import create_app
from tests.conftest import write_config
from tests.test_web import config_text

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

LOCAL = ("127.0.0.1", 50000)
SIGNUP = {
    "email": "reader@example.org",
    "topics": ["spiking-nets"],
    "timezone": "UTC",
    "send_hour": "7",
    "frequency": "daily",
    "weekly_day": "0",
    "website": "",
}


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def hrefs(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.hrefs


def instance(folder: Path, extra: str = "", web: str = "outbox_view = true") -> Config:
    """An instance whose viewer is forced on: TestClient's host, testserver, is not loopback."""
    path = write_config(folder, "sqlite:///var/paperboy.db", config_text(web) + extra)
    return load_config(path, env={})


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return instance(tmp_path)


@pytest.fixture
def local(config: Config) -> Iterator[TestClient]:
    with TestClient(create_app(config), client=LOCAL, follow_redirects=False) as client:
        yield client


def test_a_local_reader_finds_and_opens_their_confirmation_mail(local: TestClient) -> None:
    empty = local.get("/outbox")
    assert empty.status_code == 200 and "Nothing yet" in empty.text

    assert local.post("/", data=SIGNUP).status_code == 200
    listing = local.get("/outbox")
    assert listing.status_code == 200
    assert "to reader@example.org" in listing.text
    [mail_link] = [h for h in hrefs(listing.text) if h.startswith("/outbox/")]

    mail = local.get(mail_link)
    assert mail.status_code == 200
    assert "script-src" not in mail.headers["Content-Security-Policy"]
    assert "default-src 'none'" in mail.headers["Content-Security-Policy"]
    confirms = {h for h in hrefs(mail.text) if "/c/" in h}
    assert len(confirms) == 1  # the button and the spelled-out link are the same link
    path = confirms.pop().removeprefix("http://testserver")
    assert local.get(path).status_code == 200  # the link in the viewed mail works


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "203.0.113.9"},
        {"Forwarded": "for=203.0.113.9"},
        {"X-Real-IP": "1.2.3.4"},
    ],
)
def test_a_request_through_a_proxy_gets_404(local: TestClient, headers: dict[str, str]) -> None:
    local.post("/", data=SIGNUP)
    assert local.get("/outbox", headers=headers).status_code == 404


def test_a_remote_client_gets_404(config: Config) -> None:
    with TestClient(create_app(config), client=("203.0.113.9", 4000)) as remote:
        remote.post("/", data=SIGNUP)
        assert remote.get("/outbox").status_code == 404
        [name] = [p.name for p in config.paths.outbox.glob("*.eml")]
        assert remote.get(f"/outbox/{name}").status_code == 404


def test_no_viewer_when_mail_goes_over_smtp(tmp_path: Path) -> None:
    config = instance(tmp_path, '\n[delivery]\nbackend = "smtp"\n', web="")
    with TestClient(create_app(config), client=LOCAL) as client:
        assert client.get("/outbox").status_code == 404


@pytest.mark.parametrize(
    "name", ["..%2Fconfig.toml", "%2E%2E%2Fsecret.key", "x.txt", ".hidden.eml"]
)
def test_only_message_files_in_the_outbox_are_served(
    local: TestClient, config: Config, name: str
) -> None:
    config.paths.outbox.mkdir(parents=True, exist_ok=True)
    (config.paths.outbox / "x.txt").write_text("not a mail")
    (config.paths.outbox / ".hidden.eml").write_text("Subject: hidden\n\nhidden")
    response = local.get(f"/outbox/{name}")
    assert response.status_code == 404
    assert "[web]" not in response.text and "hidden" not in response.text
