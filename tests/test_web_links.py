"""The mailed links: confirm, preferences, one-click unsubscribe, feedback, web view, and
every way a token can be wrong."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import update

from pipeline.links import Links
from pipeline.models import (
    Delivery,
    DeliveryStatus,
    Dump,
    Paper,
    Pick,
    Subscriber,
    SubscriberStatus,
)
from pipeline.papers import dump_id, title_key
from pipeline.store.tables import deliveries
from pipeline.tokens import Tokens
from tests.db_clock import claim_of
from tests.test_web import SECRET, Site, link, make_site, site, text_of

__all__ = ["make_site", "site"]  # fixtures shared with test_web.py

DAY = dt.date(2026, 7, 3)
NOW = dt.datetime(2026, 7, 3, 6, 0, tzinfo=dt.UTC)
PAPER = Paper(
    id="2607.01011",
    arxiv_id="2607.01011",
    title="Spiking Transformers <script>alert(1)</script> for Event Cameras",
    abstract="We make spiking networks attend.",
    keywords=("spiking neural networks", "event cameras"),
    source_format="hf_api",
    upvotes=42,
)


def links(site: Site) -> Links:
    return Links.for_config(site.config)


def sent_edition(site: Site, sub: Subscriber, *papers: Paper) -> None:
    """Store the papers and a sent edition of them, so feedback and web-view links exist."""
    site.store.papers.ingest(
        Dump(id=dump_id(b"d"), name="d.json", format="hf_api", dump_date=DAY, papers=papers),
        NOW,
    )
    site.store.ledger.queue(sub.id, DAY, "<m@x>", [p.id for p in papers], NOW)
    held = site.store.ledger.claim(sub.id, DAY, NOW, dt.timedelta(minutes=10))
    site.store.ledger.mark_sent(sub.id, DAY, "250 ok", NOW, claim_id=claim_of(held))


def state(site: Site) -> list[Any]:
    """Everything a link could change: subscribers, their profiles, the votes, the ledger."""
    subs = [(s.id, s.status, s.profile, s.timezone) for s in site.store.subscribers.all()]
    return [subs, site.store.feedback.vote_counts(), site.store.ledger.all()]


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def prefs_form(page: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf": csrf_of(page),
        "topics": ["spiking-nets"],
        "interests": "",
        "authors": "",
        "exclude": "",
        "max_papers": "10",
        "timezone": "UTC",
        "send_hour": "7",
        "frequency": "daily",
        "weekly_day": "0",
    }
    data.update(changes)
    return data


# --- confirm ----------------------------------------------------------------------------------


def test_opening_the_confirmation_link_confirms_nothing(site: Site) -> None:
    """GET /c/TOKEN shows one button; the subscriber stays pending (link scanners only GET)."""
    site.signup("reader@example.org")
    (mail,) = site.mails()
    page = site.client.get(link(mail, "c"))
    assert page.status_code == 200 and "Yes, subscribe me" in page.text
    assert '<form method="post">' in page.text
    assert site.sub("reader@example.org").status == SubscriberStatus.PENDING


def test_the_button_confirms_and_sends_the_welcome_mail(site: Site) -> None:
    """POST /c/TOKEN activates, records the confirmation in the consent and mails settings."""
    site.signup("reader@example.org")
    (confirm,) = site.mails()
    page = site.client.post(link(confirm, "c"))
    assert page.status_code == 200 and "subscribed" in page.text
    sub = site.sub("reader@example.org")
    assert sub.status == SubscriberStatus.ACTIVE and sub.confirmed_at is not None
    record = site.store.subscribers.record(sub.id)
    assert record is not None and record["consent"]["confirmed_at"]
    welcome = [m for m in site.mails() if "/p/" in text_of(m)]
    assert len(welcome) == 1
    assert site.client.get(link(welcome[0], "p")).status_code == 200
    assert link(welcome[0], "u")


def test_a_confirm_link_works_once(site: Site) -> None:
    """Replaying a confirmation link confirms nothing more and mails nothing more: it says
    the reader is already subscribed, with a link to their settings."""
    site.signup("reader@example.org")
    path = link(site.mails()[0], "c")
    assert site.client.post(path).status_code == 200
    before, mails = state(site), len(site.mails())
    again = site.client.post(path)
    assert again.status_code == 200 and "already subscribed" in again.text
    assert 'data-link-state="active"' in again.text and 'href="http://testserver/p/' in again.text
    assert state(site) == before and len(site.mails()) == mails


def test_a_confirm_link_used_after_unsubscribing_does_not_resubscribe(site: Site) -> None:
    """Unsubscribing (via the confirmation mail's List-Unsubscribe) beats a later confirm."""
    site.signup("reader@example.org")
    (mail,) = site.mails()
    unsubscribe = re.search(r"<http://testserver(/u/[^>]+)>", str(mail["List-Unsubscribe"]))
    assert unsubscribe
    site.client.post(unsubscribe.group(1), data={"List-Unsubscribe": "One-Click"})
    refused = site.client.post(link(mail, "c"))
    assert refused.status_code == 410 and 'data-link-state="stale"' in refused.text
    assert site.sub("reader@example.org").status == SubscriberStatus.UNSUBSCRIBED


def test_an_expired_confirm_link_is_refused(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """A confirmation link older than web.confirm_token_days confirms nothing; its page
    offers a new link instead."""
    site.signup("reader@example.org")
    sub = site.sub("reader@example.org")
    old = int(NOW.timestamp()) - 8 * 86400
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: old)
    path = links(site).confirm(sub.id).removeprefix("http://testserver")
    monkeypatch.undo()
    for response in (site.client.get(path), site.client.post(path)):
        assert response.status_code == 410 and 'data-link-state="expired"' in response.text
        assert f'action="{path}/renew"' in response.text
    assert site.sub("reader@example.org").status == SubscriberStatus.PENDING


# --- bad tokens, everywhere -------------------------------------------------------------------

ROUTES = {"c": "confirm", "p": "preferences", "u": "unsubscribe", "f": "feedback", "e": "edition"}


def payload(purpose: str, sub: Subscriber) -> dict[str, Any]:
    payloads: dict[str, dict[str, Any]] = {
        "confirm": {"s": sub.id, "n": "00ff00ff00ff00ff"},
        "preferences": {"s": sub.id},
        "unsubscribe": {"s": sub.id},
        "feedback": {"s": sub.id, "p": PAPER.id, "v": 1},
        "edition": {"s": sub.id, "d": DAY.isoformat()},
    }
    return payloads[purpose]


def bad_token(kind: str, purpose: str, sub: Subscriber) -> str:
    good = Tokens(SECRET).make(purpose, **payload(purpose, sub))  # type: ignore[arg-type]
    if kind == "forged":
        return Tokens("another-secret-0123456789").make(purpose, **payload(purpose, sub))  # type: ignore[arg-type]
    if kind == "truncated":
        return good[:-6]
    if kind == "tampered":
        head, _, rest = good.partition(".")
        return head[:-2] + ("AA" if not head.endswith("AA") else "BB") + "." + rest
    if kind == "wrong-purpose":
        others = [p for p in ROUTES.values() if p != purpose]
        other = others[len(purpose) % len(others)]
        return Tokens(SECRET).make(other, **payload(purpose, sub))  # type: ignore[arg-type]
    if kind == "garbage":
        return "not-a-token"
    if kind == "huge":
        return "A" * 3000
    if kind == "unknown-subscriber":
        data = {**payload(purpose, sub), "s": sub.id + 1000}
        return Tokens(SECRET).make(purpose, **data)  # type: ignore[arg-type]
    raise AssertionError(kind)


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize(
    "kind",
    ["forged", "truncated", "tampered", "wrong-purpose", "garbage", "huge", "unknown-subscriber"],
)
def test_bad_tokens_get_one_generic_400_and_change_nothing(
    site: Site, route: str, kind: str
) -> None:
    """Every broken link, on every route, GET and POST: the same 400 page, no state change."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, PAPER)
    before = state(site)
    token = bad_token(kind, ROUTES[route], sub)
    answers = {site.client.get(f"/{route}/{token}").text}
    got = site.client.get(f"/{route}/{token}")
    assert got.status_code == 400
    if route != "e":
        post = site.client.post(f"/{route}/{token}", data={"List-Unsubscribe": "One-Click"})
        assert post.status_code == 400
        answers.add(post.text)
    assert len(answers) == 1 and "invalid, has expired or was already used" in got.text
    assert "reader@example.org" not in got.text
    assert state(site) == before


def test_an_erased_subscribers_links_never_reach_the_next_subscriber(site: Site) -> None:
    """Ids are never reused, so an erased reader's old links cannot act on a newcomer."""
    gone = site.confirmed("gone@example.org")
    old_prefs = links(site).preferences(gone.id).removeprefix("http://testserver")
    old_unsub = links(site).unsubscribe(gone.id).removeprefix("http://testserver")
    site.store.subscribers.delete(gone.id)
    new = site.confirmed("new@example.org")
    assert new.id != gone.id
    assert site.client.get(old_prefs).status_code == 400
    assert site.client.post(old_unsub).status_code == 400
    assert site.sub("new@example.org").status == SubscriberStatus.ACTIVE


# --- GET never changes anything ---------------------------------------------------------------


def test_get_on_every_state_changing_url_changes_nothing(site: Site) -> None:
    """GET shows a page (or 405) on confirm, unsubscribe, feedback and each preferences action."""
    site.signup("pending@example.org")
    confirm = link(site.mails_to("pending@example.org")[0], "c")
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, PAPER)
    before = state(site)
    lk = links(site)
    strip = "http://testserver"
    pages = [
        confirm,
        lk.unsubscribe(sub.id).removeprefix(strip),
        lk.feedback(sub.id, PAPER.id, 1).removeprefix(strip),
        lk.feedback(sub.id, PAPER.id, -1).removeprefix(strip),
        lk.preferences(sub.id).removeprefix(strip),
        lk.edition(sub.id, DAY).removeprefix(strip),
    ]
    for path in pages:
        assert site.client.get(path).status_code == 200, path
    prefs = lk.preferences(sub.id).removeprefix(strip)
    for action in ("pause", "resume", "export", "delete"):
        assert site.client.get(f"{prefs}/{action}").status_code == 405
    assert site.client.get(f"{prefs}/delete?sure=yes").status_code == 405
    assert state(site) == before


# --- preferences ------------------------------------------------------------------------------


def test_preferences_change_every_setting(site: Site) -> None:
    """A saved form changes topics, interests, authors, exclusions, schedule and size."""
    sub = site.confirmed("reader@example.org")
    path = links(site).preferences(sub.id).removeprefix("http://testserver")
    page = site.client.get(path).text
    saved = site.client.post(
        path,
        data=prefs_form(
            page,
            topics=["protein-design", "spiking-nets"],
            interests="event cameras",
            authors="Ada Lovelace\n\nAlan Turing\nada lovelace",
            exclude="crypto, blockchain\nNFT",
            max_papers="5",
            timezone="Asia/Tokyo",
            send_hour="21",
            frequency="weekly",
            weekly_day="4",
        ),
    )
    assert saved.status_code == 303 and saved.headers["location"] == f"{path}?done=saved"
    after = site.sub("reader@example.org")
    assert after.profile.topics == ("protein-design", "spiking-nets")
    assert after.profile.interests == "event cameras"
    assert after.profile.authors == ("Ada Lovelace", "Alan Turing")
    assert after.profile.exclude == ("crypto", "blockchain", "NFT")
    assert after.profile.max_papers == 5
    assert (after.timezone, after.send_hour, after.weekly_day) == ("Asia/Tokyo", 21, 4)
    assert after.frequency.value == "weekly"
    shown = site.client.get(f"{path}?done=saved").text
    assert "Saved." in shown and "every Friday at 21:00 (Asia/Tokyo)" in shown


@pytest.mark.parametrize(
    "csrf", ["", "forged", "other-subscriber"], ids=["missing", "forged", "other-subscriber"]
)
def test_preferences_posts_without_a_valid_csrf_token_change_nothing(site: Site, csrf: str) -> None:
    """Saving, pausing or deleting needs the page's own CSRF token; otherwise 400, no change."""
    sub = site.confirmed("reader@example.org")
    other = site.confirmed("other@example.org")
    path = links(site).preferences(sub.id).removeprefix("http://testserver")
    page = site.client.get(path).text
    token = {
        "": "",
        "forged": Tokens("another-secret-0123456789").make("csrf", s=sub.id),
        "other-subscriber": Tokens(SECRET).make("csrf", s=other.id),
    }[csrf]
    before = state(site)
    data = prefs_form(page, csrf=token, interests="changed", timezone="Asia/Tokyo")
    refused = site.client.post(path, data=data)
    assert refused.status_code == 400 and "nothing was changed" in refused.text
    for action in ("pause", "export"):
        assert site.client.post(f"{path}/{action}", data={"csrf": token}).status_code == 400
    assert (
        site.client.post(f"{path}/delete", data={"csrf": token, "sure": "yes"}).status_code == 400
    )
    assert state(site) == before


def test_a_bad_preference_keeps_the_other_inputs_and_saves_nothing(site: Site) -> None:
    """max_papers 99 and an unknown zone: 400, messages, typed values kept, nothing saved."""
    sub = site.confirmed("reader@example.org")
    path = links(site).preferences(sub.id).removeprefix("http://testserver")
    page = site.client.get(path).text
    before = state(site)
    data = prefs_form(page, max_papers="99", timezone="Mars/Base", interests="keep me")
    r = site.client.post(path, data=data)
    assert r.status_code == 400
    assert 'id="max_papers-error"' in r.text and 'id="timezone-error"' in r.text
    assert "keep me" in r.text and 'value="Mars/Base"' in r.text
    assert state(site) == before


def test_pause_and_resume(site: Site) -> None:
    """Pause stops digests (and cancels a queued one); resume turns them back on."""
    sub = site.confirmed("reader@example.org")
    site.store.ledger.queue(sub.id, DAY, "<q@x>", [], NOW)
    path = links(site).preferences(sub.id).removeprefix("http://testserver")
    csrf = csrf_of(site.client.get(path).text)
    assert site.client.post(f"{path}/pause", data={"csrf": csrf}).status_code == 303
    assert site.sub("reader@example.org").status == SubscriberStatus.PAUSED
    delivery = site.store.ledger.get(sub.id, DAY)
    assert delivery is not None and delivery.status == DeliveryStatus.SKIPPED
    assert "Paused." in site.client.get(f"{path}?done=paused").text
    assert site.client.post(f"{path}/resume", data={"csrf": csrf}).status_code == 303
    assert site.sub("reader@example.org").status == SubscriberStatus.ACTIVE


def test_export_my_data_is_a_json_download(site: Site) -> None:
    """Export returns everything stored about the reader as a JSON attachment."""
    sub = site.confirmed("reader@example.org")
    path = links(site).preferences(sub.id).removeprefix("http://testserver")
    csrf = csrf_of(site.client.get(path).text)
    r = site.client.post(f"{path}/export", data={"csrf": csrf})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    data = json.loads(r.text)
    assert data["email"] == "reader@example.org" and data["status"] == "active"
    assert data["consent"]["form_version"] and data["profile"]["topics"] == ["spiking-nets"]


def test_delete_me_erases_everything_but_a_suppression_hash(site: Site) -> None:
    """Delete needs the tick box; then the row and history go and the address is suppressed."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, PAPER)
    path = links(site).preferences(sub.id).removeprefix("http://testserver")
    csrf = csrf_of(site.client.get(path).text)
    unticked = site.client.post(f"{path}/delete", data={"csrf": csrf})
    assert unticked.status_code == 400 and site.store.subscribers.get(sub.id) is not None
    r = site.client.post(f"{path}/delete", data={"csrf": csrf, "sure": "yes"})
    assert r.status_code == 200 and "deleted" in r.text
    assert site.store.subscribers.get(sub.id) is None
    assert site.store.subscribers.is_suppressed("reader@example.org")
    assert site.store.ledger.all() == []
    assert site.client.get(path).status_code == 400


# --- unsubscribe ------------------------------------------------------------------------------


def test_one_click_unsubscribe_is_a_cookieless_idempotent_200(site: Site) -> None:
    """RFC 8058: the mail client's POST unsubscribes at once, 200 without redirect, twice."""
    sub = site.confirmed("reader@example.org")
    site.store.ledger.queue(sub.id, DAY, "<q@x>", [], NOW)
    path = links(site).unsubscribe(sub.id).removeprefix("http://testserver")
    site.client.cookies.clear()
    for _ in range(2):
        r = site.client.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200 and "unsubscribed" in r.text
        assert "set-cookie" not in r.headers
    assert site.sub("reader@example.org").status == SubscriberStatus.UNSUBSCRIBED
    delivery = site.store.ledger.get(sub.id, DAY)
    assert delivery is not None and delivery.status == DeliveryStatus.SKIPPED  # never sent
    assert not [m for m in site.mails() if "unsubscribed" in str(m["Subject"]).lower()]


def test_the_unsubscribe_page_has_one_button_that_works(site: Site) -> None:
    """GET shows one button (a form posting the one-click body); pressing it unsubscribes."""
    sub = site.confirmed("reader@example.org")
    path = links(site).unsubscribe(sub.id).removeprefix("http://testserver")
    page = site.client.get(path).text
    assert page.count("<button") == 1 and 'name="List-Unsubscribe" value="One-Click"' in page
    assert site.sub("reader@example.org").status == SubscriberStatus.ACTIVE
    assert site.client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert "already unsubscribed" in site.client.get(path).text


def test_goodbye_mail_only_when_configured(make_site: Callable[[str], Site]) -> None:
    """With web.goodbye_mail, unsubscribing twice sends exactly one goodbye."""
    site = make_site("goodbye_mail = true")
    sub = site.confirmed("reader@example.org")
    path = links(site).unsubscribe(sub.id).removeprefix("http://testserver")
    site.client.post(path)
    site.client.post(path)
    goodbyes = [m for m in site.mails() if "unsubscribed" in str(m["Subject"]).lower()]
    assert len(goodbyes) == 1


def test_preferences_can_resubscribe_after_unsubscribing(site: Site) -> None:
    """The settings page of an unsubscribed reader offers 'Subscribe again', which works."""
    sub = site.confirmed("reader@example.org")
    site.client.post(links(site).unsubscribe(sub.id).removeprefix("http://testserver"))
    path = links(site).preferences(sub.id).removeprefix("http://testserver")
    page = site.client.get(path).text
    assert "Subscribe again" in page
    site.client.post(f"{path}/resume", data={"csrf": csrf_of(page)})
    assert site.sub("reader@example.org").status == SubscriberStatus.ACTIVE


# --- feedback and the web view ----------------------------------------------------------------


def test_a_vote_is_one_post_that_counts_and_teaches_the_profile(site: Site) -> None:
    """👍 records the vote for the admin and adds the paper's distinctive terms to liked_terms
    (not its keyword "spiking neural networks": that is the reader's own topic); 👎 flips, and
    never turns the reader's topic words into dislikes."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, PAPER)
    up = links(site).feedback(sub.id, PAPER.id, 1).removeprefix("http://testserver")
    page = site.client.get(up)
    assert page.status_code == 200
    assert "&lt;script&gt;" in page.text and "<script>alert" not in page.text
    assert site.store.feedback.vote_counts() == {}
    assert site.client.post(up).status_code == 200
    assert site.store.feedback.vote_counts() == {PAPER.id: (1, 0)}
    liked = site.sub("reader@example.org").profile.liked_terms
    assert "event cameras" in liked and "spiking neural networks" not in liked
    down = links(site).feedback(sub.id, PAPER.id, -1).removeprefix("http://testserver")
    site.client.post(down)
    profile = site.sub("reader@example.org").profile
    assert site.store.feedback.vote_counts() == {PAPER.id: (0, 1)}
    assert profile.disliked_terms == ("event cameras",)
    assert profile.liked_terms == ()


def test_a_vote_link_mailed_before_a_re_key_still_counts(site: Site) -> None:
    """A page-dump paper known by its title gets its arXiv id after the digest went out;
    the 👍 link in that digest still carries the old id and must still work."""
    sub = site.confirmed("reader@example.org")
    titled = PAPER.model_copy(update={"id": title_key(PAPER.title), "arxiv_id": None})
    titled = titled.model_copy(update={"source_format": "hf_page"})
    sent_edition(site, sub, titled)
    up = links(site).feedback(sub.id, titled.id, 1).removeprefix("http://testserver")
    site.store.papers.ingest(
        Dump(id=dump_id(b"later"), name="l.json", format="hf_api", dump_date=DAY, papers=(PAPER,)),
        NOW,
    )
    assert site.store.papers.get(titled.id) is None  # re-keyed
    assert site.client.get(up).status_code == 200
    assert site.client.post(up).status_code == 200
    assert site.store.feedback.vote_counts() == {PAPER.id: (1, 0)}


def test_the_web_view_shows_the_edition(site: Site) -> None:
    """/e/TOKEN renders the sent edition's papers (escaped) with working feedback links."""
    sub = site.confirmed("reader@example.org")
    sent_edition(site, sub, PAPER)
    r = site.client.get(links(site).edition(sub.id, DAY).removeprefix("http://testserver"))
    assert r.status_code == 200
    assert "Spiking Transformers" in r.text and "<script>alert(1)" not in r.text
    assert "script-src" not in r.headers["content-security-policy"]
    feedback = re.findall(r"http://testserver(/f/[A-Za-z0-9._-]+)", r.text)
    assert feedback and site.client.get(feedback[0]).status_code == 200


MORE = tuple(
    Paper(
        id=f"2607.0200{i}",
        arxiv_id=f"2607.0200{i}",
        title=f"Further match {i}: event cameras & <b>spikes</b>",
        abstract="Spiking networks on event cameras, again.",
        source_format="hf_api",
        upvotes=10 - i,
    )
    for i in range(3)
)


def picked_edition(site: Site, sub: Subscriber, more: tuple[Paper, ...], more_count: int) -> None:
    """A sent edition as deliver_due records it: PAPER mailed with its reasons, ``more`` kept
    as further matches, ``more_count`` counted in the email's "N more"."""
    site.store.papers.ingest(
        Dump(
            id=dump_id(b"p"), name="p.json", format="hf_api", dump_date=DAY, papers=(PAPER, *more)
        ),
        NOW,
    )
    row = Delivery(
        subscriber_id=sub.id,
        edition_date=DAY,
        status=DeliveryStatus.QUEUED,
        message_id="<m@x>",
        paper_ids=(PAPER.id,),
        picks=(Pick(paper_id=PAPER.id, score=0.9, reasons=('interest: "mailed reason"',)),),
        more_count=more_count,
        more_picks=tuple(
            Pick(paper_id=p.id, score=0.5 - i / 10, reasons=(f'interest: "further reason {i}"',))
            for i, p in enumerate(more)
        ),
    )
    assert site.store.ledger.queue_many([row], NOW) == 1
    held = site.store.ledger.claim(sub.id, DAY, NOW, dt.timedelta(minutes=10))
    site.store.ledger.mark_sent(sub.id, DAY, "250 ok", NOW, claim_id=claim_of(held))


def visible_text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_web_view_lists_the_further_matches_after_the_mailed_papers(site: Site) -> None:
    """The email's "3 more papers matched" is kept: /e/TOKEN shows the mailed paper, then
    under that heading the three further matches, best first, with their reasons and 👍/👎;
    none of them counts as sent."""
    sub = site.confirmed("reader@example.org")
    picked_edition(site, sub, MORE, more_count=3)
    r = site.client.get(links(site).edition(sub.id, DAY).removeprefix("http://testserver"))
    assert r.status_code == 200
    text = visible_text(r.text)
    heading = text.index("3 more papers matched your interests")
    assert text.index("Spiking Transformers") < heading
    assert "Here they are, best match first" in text
    spots = [text.index(f"Further match {i}: event cameras & <b>spikes</b>") for i in range(3)]
    assert heading < spots[0] < spots[1] < spots[2]
    for i in range(3):
        assert f'further reason {i}"' in text[spots[i] :]
    assert "<b>spikes</b>" not in r.text  # escaped
    votes = set(re.findall(r"http://testserver(/f/[A-Za-z0-9._-]+)", r.text))
    assert len(votes) == 2 * 4  # 👍 and 👎 for the mailed paper and each further match
    assert site.store.ledger.sent_paper_ids([sub.id]) == {sub.id: {PAPER.id}}


def test_the_web_view_shows_the_reasons_the_email_gave(site: Site) -> None:
    """The mailed papers appear with the reasons recorded at queue time, as in the email."""
    sub = site.confirmed("reader@example.org")
    picked_edition(site, sub, (), more_count=0)
    r = site.client.get(links(site).edition(sub.id, DAY).removeprefix("http://testserver"))
    text = visible_text(r.text)
    assert 'Why: interest: "mailed reason"' in text
    assert "more paper" not in text  # nothing more matched: no heading


def test_the_web_view_says_when_only_the_best_further_matches_were_kept(site: Site) -> None:
    """More matched than the ledger keeps: the heading counts them all and says how many
    are listed; an edition that kept none says so instead of showing an empty list."""
    sub = site.confirmed("reader@example.org")
    picked_edition(site, sub, MORE[:2], more_count=60)
    r = site.client.get(links(site).edition(sub.id, DAY).removeprefix("http://testserver"))
    text = visible_text(r.text)
    assert "60 more papers matched your interests" in text
    assert "Here are the best 2, best match first" in text
    other = site.confirmed("other@example.org")
    site.store.ledger.queue(other.id, DAY, "<o@x>", [PAPER.id], NOW, more_count=4)
    r = site.client.get(links(site).edition(other.id, DAY).removeprefix("http://testserver"))
    text = visible_text(r.text)
    assert "4 more papers matched your interests" in text
    assert "They were not kept with this edition" in text


def test_the_web_view_of_an_edition_that_never_was_is_a_400(site: Site) -> None:
    """A validly signed link to a date without an edition is the generic bad-link page."""
    sub = site.confirmed("reader@example.org")
    r = site.client.get(links(site).edition(sub.id, DAY).removeprefix("http://testserver"))
    assert r.status_code == 400


def test_the_web_view_shows_reasons_an_older_version_recorded_as_strings(site: Site) -> None:
    """A ledger row written before reasons were data (picks' reasons as strings) still shows
    them, as recorded; a structured reason shows as it reads today."""
    sub = site.confirmed("reader@example.org")
    picked_edition(site, sub, MORE[:1], more_count=1)
    further = {
        "paper_id": MORE[0].id,
        "score": 0.5,
        "reasons": [{"kind": "meaning", "label": "event cameras"}],
    }
    old = {"paper_id": PAPER.id, "score": 0.9, "reasons": ['topic: SNN — "spiking"', "trending: 3"]}
    with site.store.engine.begin() as conn:
        conn.execute(update(deliveries).values(picks=[old], more_picks=[further]))
    r = site.client.get(links(site).edition(sub.id, DAY).removeprefix("http://testserver"))
    assert r.status_code == 200
    text = visible_text(r.text)
    assert 'Why: topic: SNN — "spiking" · trending: 3' in text
    assert "Close in meaning to your interest “event cameras”" in text
