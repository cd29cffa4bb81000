"""The mailed 👍 link in headless Chromium: one click for a person, nothing for a fetch.

With JavaScript the page posts the vote by itself, exactly once; without it the reader
presses the button; a plain HTTP fetch of the link (what mail scanners do) votes nothing.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Request, expect

from pipeline.links import Links
from pipeline.models import SubscriberStatus
from pipeline.store import Store, open_store
from tests.test_browser import NOW, PAPER, Served, browser, seed_edition

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser


def voter(store: Store) -> int:
    sub = store.subscribers.add("voter@example.org", status=SubscriberStatus.ACTIVE, now=NOW)
    seed_edition(store, sub.id)
    return sub.id


def test_fetching_the_vote_link_votes_nothing(tmp_path: Path) -> None:
    """A GET of the mailed link over real HTTP, as a scanner does, leaves no vote."""
    with Served(tmp_path) as app, open_store(app.config) as store:
        sub_id = voter(store)
        profile = store.subscribers.get(sub_id).profile  # type: ignore[union-attr]
        url = Links.for_config(app.config).feedback(sub_id, PAPER.id, 1)
        for _ in range(2):
            answer = httpx.get(url)
            assert answer.status_code == 200 and "More like this?" in answer.text
        assert store.feedback.vote_counts() == {}
        assert store.subscribers.get(sub_id).profile == profile  # type: ignore[union-attr]


def test_with_javascript_opening_the_link_votes_once_and_undo_takes_it_back(
    browser: Browser, tmp_path: Path
) -> None:
    """Opening the link is the reader's one click: one POST, the thanks page, one vote; the
    page's Undo button removes it and what it taught."""
    with Served(tmp_path) as app, open_store(app.config) as store:
        sub_id = voter(store)
        profile = store.subscribers.get(sub_id).profile  # type: ignore[union-attr]
        context = browser.new_context()
        page = context.new_page()
        posts: list[str] = []

        def seen(request: Request) -> None:
            if request.method == "POST":
                posts.append(request.url)

        page.on("request", seen)
        url = Links.for_config(app.config).feedback(sub_id, PAPER.id, 1)
        page.goto(url)
        expect(page.get_by_role("heading", name="Thanks — more like this")).to_be_visible()
        assert posts == [url]
        assert store.feedback.vote_counts() == {PAPER.id: (1, 0)}
        assert store.subscribers.get(sub_id).profile.liked_terms  # type: ignore[union-attr]

        page.get_by_role("button", name="Undo").click()
        expect(page.get_by_role("heading", name="Vote taken back")).to_be_visible()
        assert posts == [url, url + "/undo"]
        assert store.feedback.vote_counts() == {}
        assert store.subscribers.get(sub_id).profile == profile  # type: ignore[union-attr]
        context.close()


def test_without_javascript_the_button_votes(browser: Browser, tmp_path: Path) -> None:
    """With scripts off the page waits for the reader; its button casts the vote."""
    with Served(tmp_path) as app, open_store(app.config) as store:
        sub_id = voter(store)
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(Links.for_config(app.config).feedback(sub_id, PAPER.id, -1))
        expect(page.get_by_role("heading", name="Fewer like this?")).to_be_visible()
        assert store.feedback.vote_counts() == {}
        page.get_by_role("button", name="Yes, fewer like this").click()
        expect(page.get_by_role("heading", name="Got it — fewer like this")).to_be_visible()
        assert store.feedback.vote_counts() == {PAPER.id: (0, 1)}
        context.close()
