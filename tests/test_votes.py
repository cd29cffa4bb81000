"""The vote flow over HTTP: the mailed link's page changes nothing, its POST votes, and the
thanks page's undo takes back the vote and what it taught the profile."""

from __future__ import annotations

import re

from tests.test_web import Site, site
from tests.test_web_links import links, sent_edition, state
from tests.test_web_terms import OTHER, VOTED

__all__ = ["site"]  # the fixture, imported for pytest


def vote_path(site: Site, sub_id: int, vote: int) -> str:
    return links(site).feedback(sub_id, VOTED.id, vote).removeprefix("http://testserver")


def test_the_vote_page_changes_nothing_and_offers_the_post_to_its_script(site: Site) -> None:
    """GET /f/T shows a form that POSTs to the same URL, marked for vote.js to submit, with
    a button for readers without JavaScript; the GET itself records nothing."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, VOTED, OTHER)
    before = state(site)
    page = site.client.get(vote_path(site, sub.id, 1))
    assert page.status_code == 200
    assert '<script src="/static/vote.js" defer></script>' in page.text
    form = re.search(r"<form[^>]*>.*?</form>", page.text, re.S)
    assert form and 'method="post"' in form.group() and "data-autosubmit" in form.group()
    assert '<button type="submit"' in form.group()
    assert state(site) == before
    script = site.client.get("/static/vote.js")
    assert script.status_code == 200 and "form.submit()" in script.text


def test_the_thanks_page_says_which_way_and_offers_an_undo(site: Site) -> None:
    """👍 thanks with "more like this", 👎 with "fewer like this"; both carry a POST undo."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, VOTED, OTHER)
    for vote, words in ((1, "Thanks — more like this"), (-1, "Got it — fewer like this")):
        path = vote_path(site, sub.id, vote)
        page = site.client.post(path).text
        assert f"<h1>{words}</h1>" in page
        assert f'<form method="post" action="{path}/undo">' in page


def test_undo_takes_back_the_vote_and_only_what_it_taught(site: Site) -> None:
    """After 👍 on OTHER then on VOTED, undoing the VOTED vote leaves the votes and profile
    exactly as they were after the OTHER vote alone."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, VOTED, OTHER)
    other = links(site).feedback(sub.id, OTHER.id, 1).removeprefix("http://testserver")
    assert site.client.post(other).status_code == 200
    after_other = state(site)
    up = vote_path(site, sub.id, 1)
    site.client.post(up)
    learned = site.sub("reader@example.org").profile.liked_terms
    assert "event cameras" in learned and state(site) != after_other
    undone = site.client.post(f"{up}/undo")
    assert undone.status_code == 200 and "<h1>Vote taken back</h1>" in undone.text
    assert state(site) == after_other
    assert "event cameras" not in site.sub("reader@example.org").profile.liked_terms


def test_undo_puts_back_what_a_down_vote_took_from_the_liked_terms(site: Site) -> None:
    """A 👎 moves the paper's terms out of the liked list; undoing it brings them back."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, VOTED, OTHER)
    other = links(site).feedback(sub.id, OTHER.id, 1).removeprefix("http://testserver")
    site.client.post(other)
    liked = site.sub("reader@example.org").profile.liked_terms
    assert liked
    down = vote_path(site, sub.id, -1)
    site.client.post(down)
    assert site.sub("reader@example.org").profile.liked_terms != liked
    site.client.post(f"{down}/undo")
    assert site.sub("reader@example.org").profile.liked_terms == liked
    assert site.store.feedback.vote_counts() == {OTHER.id: (1, 0)}


def test_an_undo_from_an_old_page_leaves_a_later_vote_alone(site: Site) -> None:
    """👍, then 👎 on the same paper: the 👍 page's undo says nothing changed, and the 👎
    and what it taught stay."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, VOTED, OTHER)
    up, down = vote_path(site, sub.id, 1), vote_path(site, sub.id, -1)
    site.client.post(up)
    site.client.post(down)
    before = state(site)
    page = site.client.post(f"{up}/undo")
    assert page.status_code == 200 and "<h1>Nothing to undo</h1>" in page.text
    assert state(site) == before
    assert site.client.post(f"{up}/undo").status_code == 200  # twice: still nothing
    assert state(site) == before


def test_the_undo_url_does_nothing_on_get_and_refuses_a_bad_token(site: Site) -> None:
    """GET /f/T/undo is 405; a tampered token gets the generic 400; neither changes state."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, VOTED, OTHER)
    up = vote_path(site, sub.id, 1)
    site.client.post(up)
    before = state(site)
    assert site.client.get(f"{up}/undo").status_code == 405
    assert site.client.post(f"{up[:-3]}xyz/undo").status_code == 400
    assert state(site) == before
