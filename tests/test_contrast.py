"""Every reader page and mail in headless Chromium, light and dark, at 390 and 1280 px:
axe-core's color-contrast rule finds nothing (WCAG AA), and the pages' buttons are tap
targets of at least 44×44 px. Screenshots go to tests/.screenshots/ (git-ignored).

axe-core comes bundled in the axe-playwright-python package, so the check runs offline. The
mails are rendered with the real Renderer and loaded with ``page.set_content``; their own
``prefers-color-scheme`` rules are what dark mode exercises (clients that invert colours are
out of reach here).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from itsdangerous import TimestampSigner
from playwright.sync_api import Browser, Page, sync_playwright

from pipeline.config import Config
from pipeline.links import Links
from pipeline.models import Selection, SubscriberStatus
from pipeline.render import Renderer
from pipeline.render.renderer import NoticeKind
from pipeline.store import Store, open_store
from tests.delivery_world import EDITION, links_for, make_paper, reader, scored
from tests.served import Served
from tests.test_browser import CHROMIUM, DAY, PAPER, seed_edition

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).parent / ".screenshots"
SCHEMES = ("light", "dark")
WIDTHS = (390, 1280)
TAP = 44  # px, the smallest tap target a page's button may have
AXE = Axe()
CONTRAST_ONLY = {"runOnly": {"type": "rule", "values": ["color-contrast"]}}
S = SubscriberStatus


@dataclass
class World:
    """The app over HTTP, its store and links, and fresh readers on demand."""

    app: Served
    store: Store
    links: Links
    count: Iterator[int]

    def reader(self, status: SubscriberStatus = S.ACTIVE) -> int:
        address = f"reader{next(self.count)}@example.org"
        return self.store.subscribers.add(address, status=status).id

    def url(self, path: str) -> str:
        return self.app.base + path


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


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("contrast")
    with Served(folder, "sqlite:///var/paperboy.db") as app, open_store(app.config) as store:
        yield World(app, store, Links.for_config(app.config), itertools.count())


# --- the pages: each case brings a fresh page to the state it names ---------------------------


def sign_up(page: Page, w: World) -> None:
    page.goto(w.url("/"))


def check_inbox(page: Page, w: World) -> None:
    """The sign-up form posted with one topic ticked, whatever the form's layout."""
    page.goto(w.url("/"))
    address = f"new{next(w.count)}@example.org"
    page.evaluate(
        """address => {
            const email = document.querySelector('input[name=email]');
            email.value = address;
            document.querySelector('input[name=topics]').checked = true;
            email.form.requestSubmit();
        }""",
        address,
    )
    page.wait_for_url(w.url("/"))
    page.get_by_role("heading", name="Check your inbox").wait_for()


def confirm(page: Page, w: World) -> None:
    page.goto(w.links.confirm(w.reader(S.PENDING)))


def confirmed(page: Page, w: World) -> None:
    confirm(page, w)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()


def link_already_subscribed(page: Page, w: World) -> None:
    page.goto(w.links.confirm(w.reader(S.ACTIVE)))


def link_no_longer_valid(page: Page, w: World) -> None:
    page.goto(w.links.confirm(w.reader(S.UNSUBSCRIBED)))


def link_expired(page: Page, w: World) -> None:
    sub_id = w.reader(S.PENDING)
    old = int(dt.datetime.now(dt.UTC).timestamp()) - 60 * 86400
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda _self: old)
        url = w.links.confirm(sub_id)
    page.goto(url)


def preferences(page: Page, w: World) -> None:
    """With learned terms, so their remove buttons are on the page too."""
    sub_id = w.reader()
    profile = w.store.subscribers.get(sub_id).profile  # type: ignore[union-attr]
    learned = {"liked_terms": ("event cameras",), "disliked_terms": ("crypto mining",)}
    w.store.subscribers.update(sub_id, profile=profile.model_copy(update=learned))
    page.goto(w.links.preferences(sub_id))


def unsubscribe(page: Page, w: World) -> None:
    page.goto(w.links.unsubscribe(w.reader()))


def unsubscribed(page: Page, w: World) -> None:
    unsubscribe(page, w)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()


def vote(page: Page, w: World) -> None:
    """The vote page as readers without JavaScript see it (vote.js kept from loading)."""
    sub_id = w.reader()
    seed_edition(w.store, sub_id)
    page.route("**/static/vote.js", lambda route: route.abort())
    page.goto(w.links.feedback(sub_id, PAPER.id, 1))


def voted(page: Page, w: World) -> None:
    vote(page, w)
    page.get_by_role("button", name="Yes, more like this").click()
    page.get_by_role("heading", name="Thanks — more like this").wait_for()


def unvoted(page: Page, w: World) -> None:
    voted(page, w)
    page.get_by_role("button", name="Undo").click()
    page.get_by_role("heading", name="Vote taken back").wait_for()


def edition(page: Page, w: World) -> None:
    sub_id = w.reader()
    seed_edition(w.store, sub_id)
    page.goto(w.links.edition(sub_id, DAY))


def sample(page: Page, w: World) -> None:
    """The sample digest a visitor opens from the sign-up page, over stored papers."""
    seed_edition(w.store, w.reader())
    page.goto(w.url("/sample"))


def error(page: Page, w: World) -> None:
    page.goto(w.url("/c/not-a-real-token"))


PAGES: dict[str, Callable[[Page, World], None]] = {
    "signup": sign_up,
    "check-inbox": check_inbox,
    "confirm": confirm,
    "confirmed": confirmed,
    "link-already-subscribed": link_already_subscribed,
    "link-no-longer-valid": link_no_longer_valid,
    "link-expired": link_expired,
    "preferences": preferences,
    "unsubscribe": unsubscribe,
    "unsubscribed": unsubscribed,
    "vote": vote,
    "voted": voted,
    "unvoted": unvoted,
    "edition": edition,
    "sample": sample,
    "error": error,
}


# --- the mails, rendered as the service renders them -----------------------------------------


def mail_html(kind: str) -> str:
    """The HTML part of a confirm, welcome or digest mail."""
    renderer = Renderer.from_config(Config())
    if kind == "digest":
        papers = [make_paper(0), make_paper(1, ai_summary="Why this paper matters, in a line.")]
        papers += [make_paper(i) for i in range(2, 10)]
        selection = Selection(
            subscriber_id=42, edition_date=EDITION, papers=scored(papers), more_count=3
        )
        topics = {"snn": "Spiking neural networks", "llm-inference": "LLM inference"}
        digest_links = links_for(42, [p.id for p in papers])
        return renderer.digest(selection, reader(), digest_links, topics=topics).html
    notice: NoticeKind = "confirm" if kind == "confirm" else "welcome"
    base = "https://paperboy.example.org"
    urls = {
        "confirm": f"{base}/c/token",
        "preferences": f"{base}/p/t",
        "unsubscribe": f"{base}/u/t",
    }
    return renderer.notice(notice, to="reader@example.org", links=urls).html


MAILS = ("confirm", "welcome", "digest")


# --- the checks -------------------------------------------------------------------------------


def contrast_failures(page: Page) -> list[str]:
    """axe-core's color-contrast violations, one line per element."""
    results = AXE.run(page, options=CONTRAST_ONLY)
    nodes = [node for found in results.response["violations"] for node in found["nodes"]]
    return [f"{n['html'][:80]}: {n['failureSummary']}" for n in nodes]


def small_buttons(page: Page) -> list[str]:
    """Visible buttons of the page smaller than TAP × TAP px."""
    small = []
    for button in page.locator("main button, main .button, main input[type=submit]").all():
        box = button.bounding_box() if button.is_visible() else None
        if box and (box["width"] < TAP or box["height"] < TAP):
            label = button.inner_text().strip() or button.get_attribute("aria-label") or "?"
            small.append(f"{label!r}: {box['width']:.0f}×{box['height']:.0f}")
    return small


def opened(browser: Browser, scheme: str, width: int) -> Page:
    context = browser.new_context(
        color_scheme=scheme,  # type: ignore[arg-type]
        viewport={"width": width, "height": 900},
        is_mobile=width < 600,
        has_touch=width < 600,
    )
    return context.new_page()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_page_has_aa_contrast_and_big_enough_buttons(
    browser: Browser, world: World, name: str, scheme: str, width: int
) -> None:
    """No axe-core color-contrast violation, and every button at least 44×44 px."""
    page = opened(browser, scheme, width)
    try:
        PAGES[name](page, world)
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"page-{name}-{scheme}-{width}.png"), full_page=True)
        failures = contrast_failures(page)
        assert not failures, "\n".join(failures)
        small = small_buttons(page)
        assert not small, "\n".join(small)
    finally:
        page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("kind", MAILS)
def test_each_mail_has_aa_contrast(browser: Browser, kind: str, scheme: str, width: int) -> None:
    """The mail's HTML, as rendered for sending, has no color-contrast violation."""
    page = opened(browser, scheme, width)
    try:
        page.set_content(mail_html(kind))
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"mail-{kind}-{scheme}-{width}.png"), full_page=True)
        failures = contrast_failures(page)
        assert not failures, "\n".join(failures)
    finally:
        page.context.close()
