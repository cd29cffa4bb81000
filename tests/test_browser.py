"""The subscriber pages in headless Chromium: sign up → confirm → preferences → 👍 → unsubscribe.

The app runs under uvicorn on a free port; mails are read from the outbox. Screenshots of
every page, at desktop and phone width, go to tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pipeline.config import Config, load_config
from pipeline.links import Links
from pipeline.models import Delivery, DeliveryStatus, Dump, Paper, Pick, SubscriberStatus
from pipeline.papers import dump_id
from pipeline.store import Store, open_store
from subscribers.web import create_app
from tests.conftest import write_config
from tests.db_clock import claim_of

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
DAY = dt.date(2026, 7, 3)
NOW = dt.datetime(2026, 7, 3, 6, 0, tzinfo=dt.UTC)
PAPER = Paper(
    id="2607.01011",
    arxiv_id="2607.01011",
    title="Spiking Transformers for Event Cameras",
    abstract="We make spiking networks attend to events, at a fraction of the energy.",
    authors=("Ada Lovelace", "Alan Turing"),
    keywords=("spiking neural networks", "event cameras"),
    source_format="hf_api",
    upvotes=42,
    url="https://huggingface.co/papers/2607.01011",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """The app under uvicorn in a background thread, with its store and outbox at hand."""

    def __init__(self, folder: Path) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        path = write_config(
            folder,
            "sqlite:///var/paperboy.db",
            f'[web]\nbase_url = "{self.base}"\nsecret_key = "browser-secret-0123456789"\n',
        )
        self.config: Config = load_config(path, env={})
        server_config = uvicorn.Config(
            create_app(self.config), host="127.0.0.1", port=port, log_level="warning"
        )
        self.server = uvicorn.Server(server_config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
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

    def wait_for_mail(self, to: str, containing: str, timeout: float = 10) -> str:
        """The text part of the first mail to ``to`` containing ``containing``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in sorted(self.config.paths.outbox.glob("*.eml")):
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                body = message.get_body(("plain",))
                text = str(body.get_content()) if body is not None else ""
                if to in str(message["To"]) and containing in text:
                    return text
            time.sleep(0.1)
        raise AssertionError(f"no mail to {to} with {containing!r}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


def shoot(page: Page, viewport: str, step: str) -> None:
    """Save a full-page screenshot and check the page does not scroll sideways."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{viewport}-{step}.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{step}: the page is {overflow}px wider than the {viewport} screen"


MORE = (
    Paper(
        id="2607.01020",
        arxiv_id="2607.01020",
        title="Event-driven vision transformers on a neuromorphic chip",
        abstract="Spiking attention for event cameras, trained with surrogate gradients.",
        authors=("Grace Hopper",),
        source_format="hf_api",
        upvotes=17,
        url="https://huggingface.co/papers/2607.01020",
    ),
    Paper(
        id="2607.01021",
        arxiv_id="2607.01021",
        title="Low-latency optical flow from spikes",
        abstract="Optical flow from an event camera in under a millisecond per frame.",
        organization="Example Lab",
        source_format="hf_api",
        upvotes=5,
    ),
)


def seed_edition(store: Store, subscriber_id: int) -> None:
    """A sent edition as deliver_due records it: PAPER mailed, 2 further matches kept."""
    store.papers.ingest(
        Dump(
            id=dump_id(b"browser"),
            name="d.json",
            format="hf_api",
            dump_date=DAY,
            papers=(PAPER, *MORE),
        ),
        NOW,
    )
    reasons = ('topic: Spiking neural networks — "spiking"', "trending: 42 upvotes")
    store.ledger.queue_many(
        [
            Delivery(
                subscriber_id=subscriber_id,
                edition_date=DAY,
                status=DeliveryStatus.QUEUED,
                message_id="<m@x>",
                paper_ids=(PAPER.id,),
                picks=(Pick(paper_id=PAPER.id, score=0.9, reasons=reasons),),
                more_count=len(MORE),
                more_picks=tuple(
                    Pick(paper_id=p.id, score=0.5, reasons=('interest: "event cameras"',))
                    for p in MORE
                ),
            )
        ],
        NOW,
    )
    held = store.ledger.claim(subscriber_id, DAY, NOW, dt.timedelta(minutes=10))
    store.ledger.mark_sent(subscriber_id, DAY, "250 ok", NOW, claim_id=claim_of(held))


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_a_reader_signs_up_confirms_tunes_votes_and_leaves(
    browser: Browser, tmp_path: Path, viewport: str
) -> None:
    """The whole reader journey in a real browser, at desktop and phone width."""
    address = f"reader-{viewport}@example.org"
    with Served(tmp_path) as app, open_store(app.config) as store:
        context = browser.new_context(
            viewport=VIEWPORTS[viewport],  # type: ignore[arg-type]
            timezone_id="Europe/Berlin",
            is_mobile=viewport == "phone",
            has_touch=viewport == "phone",
        )
        page = context.new_page()

        # Sign up; the browser's zone is filled in by the page's script.
        page.goto(app.base + "/")
        assert page.input_value("#timezone") == "Europe/Berlin"
        shoot(page, viewport, "01-signup")
        page.fill("#email", "not an address")
        page.get_by_text("Systems and efficiency").click()  # the topic's group starts folded
        page.get_by_text("Spiking neural networks", exact=True).click()
        page.fill("#interests", "energy-efficient vision")
        page.click("button[type=submit]")
        expect(page.locator("#email-error")).to_be_visible()
        assert page.input_value("#interests") == "energy-efficient vision"
        assert page.is_checked("input[value=spiking-neural-networks]")
        shoot(page, viewport, "02-signup-error")
        page.fill("#email", address)
        page.get_by_text("LLM inference and serving", exact=True).click()
        page.select_option("#send_hour", "8")
        page.click("button[type=submit]")
        expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
        shoot(page, viewport, "03-check-inbox")

        # The confirmation mail's link opens a page; only its button confirms.
        text = app.wait_for_mail(address, "/c/")
        confirm = re.search(r"http://127\.0\.0\.1:\d+/c/\S+", text)
        assert confirm
        page.goto(confirm.group(0))
        shoot(page, viewport, "04-confirm")
        sub = store.subscribers.find(address)
        assert sub is not None and sub.status == SubscriberStatus.PENDING
        page.get_by_role("button", name="Yes, subscribe me").click()
        expect(page.get_by_role("heading", name="You're subscribed")).to_be_visible()
        shoot(page, viewport, "05-confirmed")
        sub = store.subscribers.find(address)
        assert sub is not None and sub.status == SubscriberStatus.ACTIVE
        assert sub.profile.topics == ("llm-inference", "spiking-neural-networks")
        assert (sub.timezone, sub.send_hour) == ("Europe/Berlin", 8)
        app.wait_for_mail(address, "/p/")  # the welcome mail

        # Preferences: change a few things and save.
        page.get_by_role("link", name="Fine-tune your interests").click()
        shoot(page, viewport, "06-preferences")
        page.get_by_text("Diffusion models", exact=True).click()
        page.fill("#authors", "Ada Lovelace")
        page.fill("#exclude", "crypto")
        page.check("input[name=frequency][value=weekly]")
        page.select_option("select[name=weekly_day]", "4")
        page.fill("#max_papers", "5")
        page.get_by_role("button", name="Save settings").click()
        expect(page.get_by_text("Saved.")).to_be_visible()
        shoot(page, viewport, "07-preferences-saved")
        sub = store.subscribers.find(address)
        assert sub is not None
        assert "diffusion-models" in sub.profile.topics
        assert sub.profile.authors == ("Ada Lovelace",) and sub.profile.max_papers == 5
        assert (sub.frequency.value, sub.weekly_day) == ("weekly", 4)

        # 👍 a paper from a sent edition.
        seed_edition(store, sub.id)
        links = Links.for_config(app.config)
        # The page posts the vote by itself: one click (the mail's) for a person.
        page.goto(links.feedback(sub.id, PAPER.id, 1))
        expect(page.get_by_role("heading", name="Thanks — more like this")).to_be_visible()
        shoot(page, viewport, "09-voted")
        assert store.feedback.vote_counts() == {PAPER.id: (1, 0)}
        # The web view: the mailed paper, then the further matches the email only counted.
        page.goto(links.edition(sub.id, DAY))
        expect(page.get_by_text(PAPER.title).first).to_be_visible()
        expect(
            page.get_by_role("heading", name="2 more papers matched your interests")
        ).to_be_visible()
        for paper in MORE:
            expect(page.get_by_text(paper.title).first).to_be_visible()
        shoot(page, viewport, "10-web-view")

        # Unsubscribe with the page's one button …
        page.goto(links.unsubscribe(sub.id))
        shoot(page, viewport, "11-unsubscribe")
        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.get_by_role("heading", name="You're unsubscribed")).to_be_visible()
        shoot(page, viewport, "12-unsubscribed")
        assert store.subscribers.find(address).status == SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]

        # … come back from the settings page, then leave the way a mail client does it.
        page.goto(links.preferences(sub.id))
        page.get_by_role("button", name="Subscribe again").click()
        assert store.subscribers.find(address).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]
        mail_client = context.request
        answer = mail_client.post(
            links.unsubscribe(sub.id),
            data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            max_redirects=0,
        )
        assert answer.status == 200
        assert store.subscribers.find(address).status == SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]
        context.close()


def test_signing_up_works_without_javascript(browser: Browser, tmp_path: Path) -> None:
    """With scripts off the form still posts; the zone simply stays UTC."""
    with Served(tmp_path) as app, open_store(app.config) as store:
        context = browser.new_context(java_script_enabled=False, timezone_id="Asia/Tokyo")
        page = context.new_page()
        page.goto(app.base + "/")
        assert page.input_value("#timezone") == "UTC"
        page.fill("#email", "nojs@example.org")
        page.get_by_text("Robotics and agents").click()  # <details> folds without scripts too
        page.get_by_text("Robotics", exact=True).click()
        page.click("button[type=submit]")
        expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
        sub = store.subscribers.find("nojs@example.org")
        assert sub is not None and sub.timezone == "UTC"
        context.close()


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_a_reader_removes_a_term_their_vote_taught(
    browser: Browser, tmp_path: Path, viewport: str
) -> None:
    """After a 👍 the settings page lists what it taught; the term's × button removes it (one
    POST), the page says so, and voting again does not teach it back."""
    with Served(tmp_path) as app, open_store(app.config) as store:
        sub = store.subscribers.add(
            f"voter-{viewport}@example.org", status=SubscriberStatus.ACTIVE, now=NOW
        )
        seed_edition(store, sub.id)
        links = Links.for_config(app.config)
        context = browser.new_context(viewport=VIEWPORTS[viewport])  # type: ignore[arg-type]
        page = context.new_page()
        page.goto(links.feedback(sub.id, PAPER.id, 1))
        expect(page.get_by_role("heading", name="Thanks — more like this")).to_be_visible()

        page.goto(links.preferences(sub.id))
        learned = page.locator("#learned")
        expect(learned.get_by_text("event cameras", exact=True)).to_be_visible()
        shoot(page, viewport, "13-learned-terms")
        learned.get_by_role("button", name="Remove “event cameras”").click()
        expect(page.get_by_role("status")).to_contain_text("Removed “event cameras”")
        expect(learned.get_by_text("event cameras", exact=True)).to_have_count(0)
        expect(learned.get_by_text("spiking neural networks", exact=True)).to_be_visible()
        shoot(page, viewport, "14-term-removed")
        profile = store.subscribers.get(sub.id).profile  # type: ignore[union-attr]
        assert "event cameras" in profile.dismissed_terms

        page.goto(links.feedback(sub.id, PAPER.id, 1))
        expect(page.get_by_role("heading", name="Thanks — more like this")).to_be_visible()
        profile = store.subscribers.get(sub.id).profile  # type: ignore[union-attr]
        assert "event cameras" not in profile.liked_terms
        context.close()
