"""The sign-up page: double opt-in, abuse limits, and every kind of bad input it must refuse."""

from __future__ import annotations

import email
import email.policy
import re
import warnings
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from pipeline.config import Config, load_config
from pipeline.errors import StoreError
from pipeline.models import Subscriber, SubscriberStatus
from pipeline.store import Store, open_store
from pipeline.store.optin import OptIn
from subscribers.forms import FORM_VERSION
from subscribers.web import create_app
from tests.conftest import write_config

with warnings.catch_warnings():
    # Starlette 1.10 nudges its TestClient towards the httpx2 fork; httpx works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

SECRET = "web-test-secret-0123456789abcdef"
TOPICS = """
[topics.spiking-nets]
title = "Spiking neural networks"
description = "Event-driven networks of spiking neurons"
keywords = ["spiking", "snn"]

[topics.protein-design]
title = "Protein design"
description = "Generative models that design proteins"
keywords = ["protein"]
"""
LINK = re.compile(r"http://testserver(/[cpufe]/[A-Za-z0-9._-]+)")


def config_text(web: str = "") -> str:
    """A config with test links and secret; ``web`` lines override the [web] defaults."""
    keys = {
        "base_url": '"http://testserver"',
        "secret_key": f'"{SECRET}"',
        "signups_per_ip_per_hour": "1000",
    }
    for line in web.splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            keys[key.strip()] = value.strip()
    body = "".join(f"{k} = {v}\n" for k, v in keys.items())
    return f"[web]\n{body}\n{TOPICS}"


@dataclass
class Site:
    """A running app on an isolated instance, the store beside it, and its outbox."""

    config: Config
    client: TestClient
    store: Store

    def signup(self, address: str, **fields: Any) -> httpx.Response:
        data: dict[str, Any] = {
            "email": address,
            "topics": ["spiking-nets"],
            "interests": "",
            "timezone": "Europe/Berlin",
            "send_hour": "7",
            "frequency": "daily",
            "weekly_day": "0",
            "website": "",
        }
        data.update(fields)
        response: httpx.Response = self.client.post("/", data=data)  # type: ignore[assignment]
        return response

    def mails(self) -> list[EmailMessage]:
        folder = self.config.paths.outbox
        files = sorted(folder.glob("*.eml")) if folder.exists() else []
        return [
            email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files
        ]

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mails() if address.lower() in str(m["To"]).lower()]

    def sub(self, address: str) -> Subscriber:
        found = self.store.subscribers.find(address)
        assert found is not None, f"no subscriber {address}"
        return found

    def confirmed(self, address: str) -> Subscriber:
        """Sign up and click the confirmation link, like a reader would."""
        self.signup(address)
        (mail,) = [m for m in self.mails_to(address) if "/c/" in text_of(m)]
        response = self.client.post(link(mail, "c"))
        assert response.status_code == 200, response.text
        return self.sub(address)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def link(message: EmailMessage, kind: str) -> str:
    """The path of the first /<kind>/TOKEN link in the mail's text part."""
    for path in LINK.findall(text_of(message)):
        if path.startswith(f"/{kind}/"):
            return str(path)
    raise AssertionError(f"no /{kind}/ link in {text_of(message)!r}")


def open_site(folder: Path, url: str, web: str = "") -> Generator[Site, None, None]:
    config = load_config(write_config(folder, url, config_text(web)), env={})
    with (
        TestClient(create_app(config), follow_redirects=False) as client,
        open_store(config) as store,
    ):
        yield Site(config, client, store)


@pytest.fixture
def site(tmp_path: Path, backend_url: str) -> Iterator[Site]:
    """The app on each storage backend."""
    yield from open_site(tmp_path, backend_url)


@pytest.fixture
def make_site(tmp_path: Path, backend_url: str) -> Iterator[Callable[[str], Site]]:
    """A factory for the app with extra ``[web]`` settings, on each storage backend."""
    with ExitStack() as stack:

        def make(web: str) -> Site:
            gen = open_site(tmp_path, backend_url, web)
            stack.callback(gen.close)
            return next(gen)

        yield make


# --- the form ---------------------------------------------------------------------------------


def test_signup_page_is_a_plain_form_with_the_topic_catalog(site: Site) -> None:
    """GET / is a form that posts without JavaScript and lists each topic with its description."""
    page = site.client.get("/")
    assert page.status_code == 200
    assert '<form method="post" action="/"' in page.text
    assert 'value="spiking-nets"' in page.text and "Event-driven networks" in page.text
    assert 'name="timezone"' in page.text and 'name="send_hour"' in page.text
    assert 'value="weekly"' in page.text and 'name="weekly_day"' in page.text
    assert 'name="website"' in page.text  # the honeypot


def test_signup_makes_a_pending_subscriber_with_consent_and_one_confirmation(site: Site) -> None:
    """A valid sign-up stores a pending subscriber, its consent record, and mails one link."""
    response = site.signup(
        "Reader@Example.org", interests="my secret <b>interests</b>", topics=["protein-design"]
    )
    assert response.status_code == 200 and "Check your inbox" in response.text
    sub = site.sub("reader@example.org")
    assert sub.status == SubscriberStatus.PENDING
    assert sub.profile.topics == ("protein-design",) and sub.timezone == "Europe/Berlin"
    record = site.store.subscribers.record(sub.id)
    assert record is not None
    consent = record["consent"]
    assert consent["form_version"] == FORM_VERSION and consent["ip"] == "testclient"
    assert consent["method"] == "double opt-in" and consent["signed_up_at"]
    (mail,) = site.mails()
    assert str(mail["To"]) == "Reader@example.org"
    assert link(mail, "c")
    raw = mail.as_string()
    assert "secret" not in raw and "interests</b>" not in raw  # no free text from the form


def test_a_new_pending_active_or_suppressed_address_gets_the_same_answer(site: Site) -> None:
    """The response never tells whether an address is new, pending, subscribed or suppressed."""
    site.confirmed("active@example.org")
    site.signup("pending@example.org")
    site.store.subscribers.suppress("gone@example.org", "bounced")
    bodies = []
    for address in ("new@example.org", "pending@example.org", "active@example.org"):
        r = site.signup(address)
        bodies.append((r.status_code, r.text.replace(address, "ADDRESS")))
    r = site.signup("gone@example.org")
    bodies.append((r.status_code, r.text.replace("gone@example.org", "ADDRESS")))
    assert len(set(bodies)) == 1 and bodies[0][0] == 200


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("not-an-address", "not a valid email address"),
        ("reader@", "not a valid email address"),
        ("reader@@example.org", "not a valid email address"),
        ("a" * 250 + "@example.org", "too long"),
        ("victim@example.org\r\nBcc: many@example.org", "line breaks"),
        ("victim@example.org\nBcc: many@example.org", "line breaks"),
        ("", "enter your email address"),
    ],
    ids=["no-at", "no-domain", "two-ats", "overlong", "crlf", "lf", "empty"],
)
def test_bad_addresses_are_refused_and_the_other_inputs_kept(
    site: Site, address: str, message: str
) -> None:
    """A bad address re-renders the form with a message; topics and interests stay filled in."""
    r = site.signup(address, interests="graph transformers", topics=["protein-design"])
    assert r.status_code == 400
    assert message in r.text.lower()
    assert "graph transformers" in r.text
    assert re.search(r'value="protein-design"\s+checked', r.text)
    assert 'value="Europe/Berlin"' in r.text
    assert site.store.subscribers.all() == [] and site.mails() == []


def test_idn_address_is_accepted_and_stored_in_ascii(site: Site) -> None:
    """An internationalised domain is valid; it is stored and mailed in its punycode form."""
    r = site.signup("leser@bücher.example.org")
    assert r.status_code == 200
    sub = site.sub("leser@xn--bcher-kva.example.org")
    assert sub.email == "leser@xn--bcher-kva.example.org"
    (mail,) = site.mails()
    assert str(mail["To"]) == "leser@xn--bcher-kva.example.org"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"topics": ["spiking-nets", "no-such-topic"]}, "topics", "Pick topics from the list"),
        ({"topics": [], "interests": ""}, "topics", "at least one topic"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "time zone name"),
        ({"timezone": "../../etc/passwd"}, "timezone", "time zone name"),
        ({"timezone": "Europe/" + "x" * 80}, "timezone", "time zone name"),
        ({"send_hour": "25"}, "send_hour", "from 0 to 23"),
        ({"send_hour": "-1"}, "send_hour", "from 0 to 23"),
        ({"send_hour": "seven"}, "send_hour", "from 0 to 23"),
        ({"frequency": "hourly"}, "frequency", "daily, weekdays or weekly"),
        ({"frequency": "weekly", "weekly_day": "7"}, "weekly_day", "day of the week"),
        ({"interests": "x" * 2001}, "interests", "under 2000"),
        ({"interests": "not interested in LLMs"}, "interests", "gives none to match"),
        ({"topics": [], "interests": "papers, anything really"}, "interests", "gives none"),
    ],
    ids=[
        "unknown-topic",
        "nothing-chosen",
        "unknown-zone",
        "path-zone",
        "long-zone",
        "hour-25",
        "hour-negative",
        "hour-word",
        "frequency",
        "weekday-7",
        "long-interests",
        "only-unwanted",
        "only-framing",
    ],
)
def test_bad_fields_are_refused_with_a_message_next_to_them(
    site: Site, fields: dict[str, Any], field: str, message: str
) -> None:
    """Each bad field re-renders the form (400) with its own message; nothing is stored."""
    r = site.signup("reader@example.org", **fields)
    assert r.status_code == 400
    assert f'id="{field}-error"' in r.text and message in r.text
    assert 'value="reader@example.org"' in r.text
    assert site.store.subscribers.all() == [] and site.mails() == []


def test_the_honeypot_answers_like_success_and_does_nothing(site: Site) -> None:
    """A bot that fills the hidden field gets the usual page, and nothing is stored or sent."""
    r = site.signup("bot-target@example.org", website="http://spam.example")
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert site.store.subscribers.find("bot-target@example.org") is None
    assert site.mails() == []


def test_too_many_posts_from_one_network_get_429(make_site: Callable[[str], Site]) -> None:
    """Past web.signups_per_ip_per_hour, posts are refused with 429 and change nothing."""
    site = make_site("signups_per_ip_per_hour = 3")
    for i in range(3):
        assert site.signup(f"r{i}@example.org").status_code == 200
    refused = site.signup("r3@example.org")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "3600"
    assert site.store.subscribers.find("r3@example.org") is None
    assert len(site.mails()) == 3


@pytest.mark.slow
def test_a_thousand_signups_for_one_victim_send_at_most_one_mail(site: Site) -> None:
    """List-bombing through the form: 1,000 posts for one address (any spelling) → one mail."""
    spellings = ["victim@example.org", "Victim@Example.org", " victim@EXAMPLE.org "]
    for i in range(1000):
        r = site.signup(spellings[i % 3], topics=["spiking-nets", "protein-design"][: 1 + i % 2])
        assert r.status_code == 200
    outbox = list(site.config.paths.outbox.glob("*.eml"))
    assert len(outbox) == 1
    assert len(site.store.subscribers.all()) == 1


def test_confirmation_can_be_resent_once_the_window_has_passed(
    make_site: Callable[[str], Site],
) -> None:
    """With confirmation_resend_hours = 0 every post mails again: the window is the only limit."""
    site = make_site("confirmation_resend_hours = 0")
    site.signup("again@example.org")
    site.signup("again@example.org")
    assert len(site.mails_to("again@example.org")) == 2


def test_an_active_subscriber_signing_up_again_gets_the_welcome_mail(site: Site) -> None:
    """Posting a subscribed address again (after the window) re-sends the preferences link."""
    sub = site.confirmed("back@example.org")
    site.store.subscribers.update(sub.id, confirmation_sent_at=None)
    site.signup("back@example.org", topics=["protein-design"])
    kinds = [m["Subject"] for m in site.mails_to("back@example.org")]
    assert len(kinds) == 3  # confirm, welcome after confirming, welcome again
    assert site.sub("back@example.org").profile.topics == ("spiking-nets",)  # untouched
    assert site.sub("back@example.org").status == SubscriberStatus.ACTIVE


def test_a_failed_confirmation_mail_can_be_retried_at_once(
    make_site: Callable[[str], Site],
) -> None:
    """When the outbox cannot be written, the resend window is released for the next post."""
    site = make_site("")
    outbox = site.config.paths.outbox
    outbox.parent.mkdir(parents=True, exist_ok=True)
    outbox.write_text("not a folder", encoding="utf-8")  # every write fails
    assert site.signup("retry@example.org").status_code == 200
    outbox.unlink()
    site.signup("retry@example.org")
    assert len(site.mails_to("retry@example.org")) == 1


def test_oversized_posts_are_refused_before_parsing(site: Site) -> None:
    """A body over 64 KB gets 413 and stores nothing."""
    r = site.client.post("/", data={"email": "big@example.org", "interests": "x" * 70_000})
    assert r.status_code == 413
    assert site.store.subscribers.all() == []


def test_pages_carry_security_headers(site: Site) -> None:
    """Every page forbids framing, sniffing, referrers (tokens live in URLs) and caching."""
    r = site.client.get("/")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


def test_healthz_reports_the_database(site: Site) -> None:
    """/healthz is 200 with db ok and the schema version."""
    r = site.client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["db"] == "ok" and body["schema_version"] >= 1


def test_unknown_pages_are_a_friendly_404(site: Site) -> None:
    """An unknown URL is an HTML 404 page, not a JSON error."""
    r = site.client.get("/nope")
    assert r.status_code == 404 and "Page not found" in r.text


def test_a_database_outage_is_a_503_page_and_health_says_so(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the store fails, sign-up answers 503 with a plain page and /healthz reports it."""

    def down(*_args: object, **_kwargs: object) -> None:
        raise StoreError("database error: OperationalError: unable to open database file")

    monkeypatch.setattr(OptIn, "sign_up", down)
    monkeypatch.setattr(Store, "schema_version", down)
    r = site.signup("reader@example.org")
    assert r.status_code == 503 and "Nothing was changed" in r.text
    assert "OperationalError" not in r.text
    health = site.client.get("/healthz")
    assert health.status_code == 503 and health.json()["db"] == "error"
