"""The sign-up page on a phone in headless Chromium: folded topic groups keep it short, a
folded topic still submits, the search box filters, and the sample digest opens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from pipeline.store import open_store
from tests.served import Served

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
PHONE: ViewportSize = {"width": 390, "height": 844}


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


def height(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollHeight"))


@pytest.mark.parametrize("scripts", [True, False], ids=["js", "no-js"])
def test_the_signup_page_fits_a_phone_and_a_folded_topic_still_submits(
    browser: Browser, tmp_path: Path, scripts: bool
) -> None:
    """At 390 px the page with its groups folded is well under half its unfolded height (the
    old one-column list); a topic from a folded group, opened by its heading, is signed up."""
    with (
        Served(tmp_path, "sqlite:///var/paperboy.db") as app,
        open_store(app.config) as store,
    ):
        context = browser.new_context(viewport=PHONE, is_mobile=True, java_script_enabled=scripts)
        page = context.new_page()
        page.goto(app.base + "/")
        folded = height(page)
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        unfolded = height(page)
        assert folded * 2 < unfolded, (folded, unfolded)
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = false)")
        assert height(page) < folded  # even "Popular" folds away
        page.fill("#email", f"phone-{scripts}@example.org")
        time_series = page.get_by_text("Time series", exact=True)
        expect(time_series).to_be_hidden()
        page.get_by_text("Science and health").click()
        time_series.click()
        page.get_by_role("button", name="Subscribe").click()
        expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
        sub = store.subscribers.find(f"phone-{scripts}@example.org")
        assert sub is not None and sub.profile.topics == ("time-series",)
        context.close()


def test_the_topic_search_filters_cards_and_opens_their_groups(
    browser: Browser, tmp_path: Path
) -> None:
    """Typing shows only the matching cards, in opened groups; no match says so; clearing
    the box brings the folded page back."""
    with Served(tmp_path, "sqlite:///var/paperboy.db") as app:
        context = browser.new_context(viewport=PHONE, is_mobile=True)
        page = context.new_page()
        page.goto(app.base + "/")
        search = page.get_by_label("Find a topic")
        expect(search).to_be_visible()
        search.fill("robot")
        expect(page.get_by_text("Robotics", exact=True)).to_be_visible()
        expect(page.get_by_text("LLM inference and serving", exact=True)).to_be_hidden()
        expect(page.locator("details[data-group='Popular']")).to_be_hidden()
        search.fill("zzzz")
        expect(page.get_by_text("No topic matches")).to_be_visible()
        search.fill("")
        expect(page.get_by_text("LLM inference and serving", exact=True)).to_be_visible()
        expect(page.get_by_text("Robotics", exact=True)).to_be_hidden()
        context.close()


def test_the_signup_page_links_a_sample_digest(browser: Browser, tmp_path: Path) -> None:
    """The sample link opens a page of its own, friendly while no papers are stored."""
    with Served(tmp_path, "sqlite:///var/paperboy.db") as app:
        context = browser.new_context(viewport=PHONE, is_mobile=True)
        page = context.new_page()
        page.goto(app.base + "/")
        page.get_by_role("link", name="See a sample digest").click()
        expect(page.get_by_role("heading", name="No sample yet")).to_be_visible()
        page.get_by_role("link", name="Back to sign-up").click()
        expect(page.locator("#email")).to_be_visible()
        context.close()
