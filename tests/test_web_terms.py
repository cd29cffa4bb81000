"""The settings page's "Learned from your votes": every term listed, each removable by POST
with the page's CSRF token, and a removed term never learned again."""

from __future__ import annotations

import re
from html import unescape

import pytest

from pipeline.models import Paper, Profile
from tests.test_web import Site, site
from tests.test_web_links import csrf_of, links, sent_edition, state

__all__ = ["site"]  # the fixture, imported for pytest

VOTED = Paper(
    id="2607.02002",
    arxiv_id="2607.02002",
    title="Event Cameras <b>Meet</b> Optical Flow",
    abstract="Event cameras see motion; optical flow from event cameras runs fast.",
    keywords=("event cameras", "optical flow"),
    source_format="hf_api",
)
OTHER = Paper(
    id="2607.02003",
    arxiv_id="2607.02003",
    title="Optical Flow for Drones",
    abstract="Optical flow from event cameras on drones.",
    source_format="hf_api",
)


def voted(site: Site, vote: int = 1) -> tuple[int, str]:
    """A confirmed reader who voted on VOTED, and the path of their settings page."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, VOTED, OTHER)
    up = links(site).feedback(sub.id, VOTED.id, vote).removeprefix("http://testserver")
    assert site.client.post(up).status_code == 200
    return sub.id, links(site).preferences(sub.id).removeprefix("http://testserver")


def removable(page: str) -> list[str]:
    """The terms the page offers to remove, in order."""
    forms = re.findall(r'action="/p/[^"]+/terms/remove".*?name="term" value="([^"]*)"', page, re.S)
    return [unescape(t) for t in forms]


def test_the_settings_page_lists_each_learned_term_with_a_remove_button(site: Site) -> None:
    """Liked and disliked terms are all listed, each in its own POST form with the CSRF
    token; looking at the page changes nothing."""
    sub_id, path = voted(site)
    site.store.subscribers.update(
        sub_id,
        profile=site.sub("reader@example.org").profile.model_copy(
            update={"disliked_terms": ("crypto <mining>",)}
        ),
    )
    before = state(site)
    page = site.client.get(path).text
    assert state(site) == before
    liked = site.sub("reader@example.org").profile.liked_terms
    assert set(liked) >= {"event cameras", "optical flow"}
    assert removable(page) == [*liked, "crypto <mining>"]
    assert "crypto &lt;mining&gt;" in page and "<mining>" not in page
    assert page.count('action="/p/') - page.count("/terms/remove") >= 1  # the other forms stay
    for form in re.findall(r"<form[^>]+/terms/remove.*?</form>", page, re.S):
        assert 'method="post"' in form and f'value="{csrf_of(page)}"' in form


def test_removing_a_term_reshows_the_page_and_a_new_vote_does_not_bring_it_back(
    site: Site,
) -> None:
    """The POST removes the term, remembers it as dismissed and shows the page again with a
    message; voting on the same paper again (either way) does not learn it again."""
    sub_id, path = voted(site)
    page = site.client.get(path).text
    shown = site.client.post(
        f"{path}/terms/remove", data={"csrf": csrf_of(page), "term": "event cameras"}
    )
    assert shown.status_code == 200
    assert "Removed “event cameras”" in shown.text and "event cameras" not in removable(shown.text)
    profile = site.sub("reader@example.org").profile
    assert "event cameras" not in profile.liked_terms and "optical flow" in profile.liked_terms
    assert profile.dismissed_terms == ("event cameras",)
    for vote in (1, -1):
        again = links(site).feedback(sub_id, VOTED.id, vote).removeprefix("http://testserver")
        site.client.post(again)
        profile = site.sub("reader@example.org").profile
        assert "event cameras" not in (*profile.liked_terms, *profile.disliked_terms)
    assert "optical flow" in profile.disliked_terms


def test_removing_a_term_twice_or_one_never_learned_changes_nothing(site: Site) -> None:
    """A second click (or a made-up term) re-shows the page, changes nothing, and does not
    echo the posted text."""
    _, path = voted(site)
    csrf = csrf_of(site.client.get(path).text)
    site.client.post(f"{path}/terms/remove", data={"csrf": csrf, "term": "optical flow"})
    before = state(site)
    for term in ("optical flow", "<b>free money</b>", ""):
        again = site.client.post(f"{path}/terms/remove", data={"csrf": csrf, "term": term})
        assert again.status_code == 200 and "already gone" in again.text
        assert "free money" not in again.text
    assert state(site) == before


@pytest.mark.parametrize("csrf", ["", "forged"])
def test_removing_a_term_needs_the_pages_csrf_token(site: Site, csrf: str) -> None:
    """Without the page's token the POST is refused with the settings page, and a GET of the
    action's address never removes anything."""
    _, path = voted(site)
    before = state(site)
    refused = site.client.post(f"{path}/terms/remove", data={"csrf": csrf, "term": "optical flow"})
    assert refused.status_code == 400 and "nothing was changed" in refused.text
    assert site.client.get(f"{path}/terms/remove?term=optical+flow").status_code == 405
    assert state(site) == before


def test_the_page_has_no_learned_section_before_any_vote(site: Site) -> None:
    """A reader who never voted sees no empty "Learned from your votes" box."""
    sub = site.confirmed("reader@example.org")
    assert site.sub("reader@example.org").profile == Profile(topics=("spiking-nets",))
    page = site.client.get(links(site).preferences(sub.id).removeprefix("http://testserver")).text
    assert "Learned from your votes" not in page and removable(page) == []
