"""The admin app in headless Chromium: log in, read Today, work the deliveries, the
subscribers, the outbox and the config. Screenshots of each page go to a folder under tmp."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pipeline.models import DeliveryStatus, SubscriberStatus
from pipeline.store import open_store
from tests.admin_world import TOKEN, AdminServed, seed

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


def shot(page: Page, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"admin-{name}.png"), full_page=True)


def test_an_admin_works_through_every_page(browser: Browser, tmp_path: Path) -> None:
    """Log in, see Today, filter and retry a delivery, open an edition as mailed, find a
    reader, preview their next edition, pause them, erase another after confirming, read an
    outbox mail, and edit a config key (a bad value comes back with the reason)."""
    shots = tmp_path / "admin-shots"
    now = dt.datetime.now(dt.UTC)
    with AdminServed(tmp_path / "site") as app, open_store(app.config) as store:
        ids = seed(store, app.config, now)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()

        # Not logged in: the login form, then back to Today.
        page.goto(app.base + "/admin")
        expect(page.get_by_role("heading", name="Admin login")).to_be_visible()
        shot(page, shots, "login")
        page.fill("#token", "wrong-token-wrong-token")
        page.click("button[type=submit]")
        expect(page.get_by_role("alert")).to_contain_text("not the admin token")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_contain_text("Today")
        expect(page.locator("table.counts").first).to_contain_text("active")
        expect(page.locator("body")).to_contain_text("today.json")
        expect(page.locator("svg.chart rect.bar-deferred")).to_have_count(1)
        shot(page, shots, "today")

        # Deliveries: only the deferred one, retried.
        page.click("nav.admin-nav >> text=Deliveries")
        page.check("input[name=status][value=deferred]")
        page.click("form.filters button")
        rows = page.locator("table.list tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("bob@example.org")
        expect(rows.first).to_contain_text("451 4.7.1 greylisted")
        shot(page, shots, "deliveries")
        rows.first.get_by_role("button", name="Retry now").click()
        expect(page.get_by_role("status")).to_contain_text("Queued again")
        row = store.ledger.get(ids["bob@example.org"], now.date())
        assert row is not None and row.status == DeliveryStatus.QUEUED

        # The edition as mailed, for the sent one.
        page.goto(app.base + "/admin/deliveries?status=sent")
        page.click("text=as mailed")
        expect(page.locator("body")).to_contain_text("Spiking Transformers for Event Cameras")
        page.go_back()

        # Subscribers: search, profile, preview, pause.
        page.click("nav.admin-nav >> text=Subscribers")
        page.fill("#q", "ADA@")
        page.click("form.search button")
        shot(page, shots, "subscribers")
        page.click("text=ada@example.org")
        expect(page.locator("h1")).to_contain_text("ada@example.org")
        expect(page.locator("body")).to_contain_text("Spiking neural networks")
        shot(page, shots, "subscriber")
        page.click("text=Preview the next edition")
        expect(page.locator(".picks")).to_contain_text("Spiking Transformers for Event Cameras")
        expect(page.locator(".reasons").first).to_contain_text("trending: 42 upvotes")
        frame = page.frame_locator("iframe.preview-frame")
        expect(frame.locator("body")).to_contain_text("Spiking Transformers")
        shot(page, shots, "preview")
        page.go_back()
        page.get_by_role("button", name="Pause").click()
        expect(page.get_by_role("status")).to_contain_text("Paused")
        paused = store.subscribers.get(ids["ada@example.org"])
        assert paused is not None and paused.status == SubscriberStatus.PAUSED

        # Erase, with the confirmation step: a wrong address erases nothing.
        page.goto(app.base + f"/admin/subscribers/{ids['cy@example.org']}")
        page.click("text=Erase…")
        page.fill("#confirm", "someone-else@example.org")
        page.click("button.danger")
        expect(page.get_by_role("alert")).to_contain_text("nothing was erased")
        assert store.subscribers.get(ids["cy@example.org"]) is not None
        shot(page, shots, "erase")
        page.fill("#confirm", "cy@example.org")
        page.click("button.danger")
        expect(page.get_by_role("status")).to_contain_text("Erased")
        assert store.subscribers.get(ids["cy@example.org"]) is None

        # Outbox: the list, one mail's text part, and back.
        page.click("nav.admin-nav >> text=Outbox")
        expect(page.locator("table.list")).to_contain_text("paperboy@example.org")
        shot(page, shots, "outbox")
        page.click("text=Welcome to paperboy")
        expect(page.locator("pre.mail")).to_contain_text("this is the text part")
        shot(page, shots, "mail")
        page.click("text=Back to the outbox")
        expect(page.get_by_role("heading", name="Outbox")).to_be_visible()

        # Config: a bad value is refused with the reason; a good one is written.
        page.click("nav.admin-nav >> text=Config")
        field = page.locator("[id='value-match.trending_weight']")
        field.fill("9")
        page.locator("[id='key-match.trending_weight'] button").click()
        expect(page.get_by_role("alert")).to_contain_text("match.trending_weight = 9")
        assert "trending_weight = 0.35" in app.path.read_text()
        shot(page, shots, "config-refused")
        page.locator("[id='value-match.trending_weight']").fill("0.5")
        page.locator("[id='key-match.trending_weight'] button").click()
        expect(page.get_by_role("status")).to_contain_text("Saved match.trending_weight")
        expect(page.locator("[id='value-match.trending_weight']")).to_have_value("0.5")
        assert "trending_weight = 0.5" in app.path.read_text()
        shot(page, shots, "config")

        # Log out: the admin pages ask for the token again.
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Admin login")).to_be_visible()
        context.close()
    assert len(list(shots.glob("*.png"))) == 11
