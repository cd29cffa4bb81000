"""A 10-paper digest in headless Chromium, light and dark: screenshots in tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Config
from pipeline.models import Selection
from pipeline.render import Renderer
from tests.delivery_world import EDITION, links_for, make_paper, reader, scored

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.mark.browser
def test_ten_paper_digest_renders_in_light_and_dark(tmp_path: Path) -> None:
    """The digest lays out at desktop and phone width; dark mode repaints cards and text."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    papers = [
        make_paper(0, title="Spiking Transformers Reach Dense Accuracy at a Tenth of the Energy"),
        make_paper(
            1, authors=(), organization="SakanaAI Sakana AI", code_url=None, github_stars=None
        ),
        make_paper(2, ai_summary="A one-line AI summary of why this paper matters to you."),
        make_paper(3, title="Ünïcode, emoji 🚀 and <b>markup</b> in a title stay text", upvotes=0),
        *[make_paper(i) for i in range(4, 10)],
    ]
    selection = Selection(
        subscriber_id=42, edition_date=EDITION, papers=scored(papers), more_count=7
    )
    topics = {"snn": "Spiking neural networks", "llm-inference": "LLM inference"}
    out = Renderer.from_config(Config()).digest(
        selection, reader(), links_for(42, [p.id for p in papers]), topics=topics
    )
    page_file = tmp_path / "digest.html"
    page_file.write_text(out.html, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            colours = {}
            for scheme in ("light", "dark"):
                for name, width in (("desktop", 900), ("phone", 390)):
                    page = browser.new_page(
                        color_scheme=scheme, viewport={"width": width, "height": 900}
                    )
                    page.goto(page_file.as_uri())
                    page.screenshot(
                        path=str(ARTIFACTS / f"digest-{scheme}-{name}.png"), full_page=True
                    )
                    colours[(scheme, name)] = page.evaluate(
                        """() => {
                            const painted = [...document.querySelectorAll('.pb-card, .pb-card *')]
                                .map(el => getComputedStyle(el).backgroundColor)
                                .find(c => c !== 'rgba(0, 0, 0, 0)');
                            const title = document.querySelector('a.pb-title');
                            const votes = [...document.querySelectorAll('a.pb-vote')]
                                .map(a => a.getBoundingClientRect())
                                .map(r => Math.min(r.width, r.height));
                            return [painted,
                                    getComputedStyle(title).color,
                                    document.documentElement.scrollWidth,
                                    votes];
                        }"""
                    )
                    page.close()
        finally:
            browser.close()
    light_card, light_title, _, _ = colours[("light", "desktop")]
    dark_card, dark_title, _, _ = colours[("dark", "desktop")]
    for _, _, _, votes in colours.values():  # 👍/👎 are tap targets of at least 44×44 px
        assert len(votes) == 20 and min(votes) >= 44, votes
    assert light_card == "rgb(255, 255, 255)" and dark_card != light_card
    assert light_title != dark_title
    assert colours[("light", "phone")][2] <= 390  # no sideways scrolling on a phone


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["confirm", "welcome", "goodbye"])
def test_notice_buttons_keep_white_on_brand_in_dark_mode(kind: str, tmp_path: Path) -> None:
    """The notices' button is white text on the brand colour in light and dark, and at least
    44 px tall (dark mode once turned its text light blue on orange)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    base = "https://papers.example.org"
    links = {"confirm": f"{base}/c/t", "preferences": f"{base}/p/t", "unsubscribe": f"{base}/u/t"}
    links["home"] = f"{base}/"
    mail = Renderer.from_config(Config()).notice(kind, to="a@example.org", links=links)  # type: ignore[arg-type]
    page_file = tmp_path / f"{kind}.html"
    page_file.write_text(mail.html, encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            for scheme in ("light", "dark"):
                page = browser.new_page(color_scheme=scheme, viewport={"width": 390, "height": 800})
                page.goto(page_file.as_uri())
                text, fill, height = page.evaluate(
                    """() => {
                        const a = document.querySelector('.pb-button a');
                        const box = a.closest('td').getBoundingClientRect();
                        return [getComputedStyle(a).color,
                                getComputedStyle(a.closest('td')).backgroundColor, box.height];
                    }"""
                )
                assert (text, fill) == ("rgb(255, 255, 255)", "rgb(194, 65, 12)"), scheme
                assert height >= 44
                page.close()
        finally:
            browser.close()
