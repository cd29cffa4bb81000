"""Confirmation links: one answer per state, one transaction per confirmation, over real HTTP
on SQLite and PostgreSQL, and what happens when the database is locked half-way."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, insert, select, text

from pipeline.links import Links
from pipeline.models import SubscriberStatus
from pipeline.store import Store, engine_for, open_store
from pipeline.store import tables as t
from pipeline.tokens import Tokens
from subscribers.linkstate import LinkState, link_state
from tests.served import Served
from tests.test_web import Site, make_site

__all__ = ["make_site"]  # a fixture shared with test_web.py

S = SubscriberStatus


def form(address: str) -> dict[str, Any]:
    return {
        "email": address,
        "topics": ["llm-inference"],
        "interests": "",
        "timezone": "UTC",
        "send_hour": "7",
        "frequency": "daily",
        "weekly_day": "0",
        "website": "",
    }


@pytest.fixture
def served(tmp_path: Path, backend_url: str) -> Iterator[tuple[Served, Store, httpx.Client]]:
    """The app over HTTP on each backend, the store beside it, and a client."""
    with (
        Served(tmp_path, backend_url) as app,
        open_store(app.config) as store,
        httpx.Client(base_url=app.base, timeout=30) as client,
    ):
        yield app, store, client


def sign_up(app: Served, client: httpx.Client, address: str, mails: int = 1) -> str:
    """Post the form; the confirmation link it mailed to ``address`` (its ``mails``-th)."""
    before = set(app.links_to(address, "c"))
    assert client.post("/", data=form(address)).status_code == 200
    (new,) = set(app.wait_for_links(address, "c", mails)) - before
    return new


def shown_state(response: httpx.Response) -> str:
    """Which state the page answers: the confirm button, or the data-link-state marker."""
    if "Yes, subscribe me" in response.text:
        return "confirm"
    marker = 'data-link-state="'
    start = response.text.find(marker)
    assert start >= 0, response.text
    return response.text[start + len(marker) :].split('"', 1)[0]


@pytest.mark.parametrize(
    ("status", "epoch", "expired", "spent", "state"),
    [
        (S.PENDING, 0, False, False, LinkState.PENDING),
        (S.PENDING, 0, False, True, LinkState.RETRY),
        (S.ACTIVE, 0, False, True, LinkState.ACTIVE),
        (S.PAUSED, 0, True, True, LinkState.ACTIVE),
        (S.PENDING, 1, False, False, LinkState.STALE),
        (S.ACTIVE, 1, False, True, LinkState.STALE),
        (S.UNSUBSCRIBED, 0, False, False, LinkState.STALE),
        (S.SUPPRESSED, 0, False, False, LinkState.STALE),
        (S.PENDING, 0, True, False, LinkState.EXPIRED),
        (S.PENDING, 0, True, True, LinkState.EXPIRED),
    ],
)
def test_each_combination_has_exactly_one_state(
    status: SubscriberStatus, epoch: int, expired: bool, spent: bool, state: LinkState
) -> None:
    """The state table: the epoch first, then the reader's status, then age, then use."""
    assert link_state(status, epoch, 0, expired=expired, spent=spent) == state


def test_every_link_state_gets_its_own_answer_over_http(
    served: tuple[Served, Store, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """pending → confirm; spent but pending → confirm again; active → "already subscribed"
    with a settings link; mailed before an unsubscribe → sign up again; expired → a new-link
    button that POSTs, at most one mail per resend window."""
    app, store, client = served
    pending = sign_up(app, client, "pending@example.org")
    assert shown_state(client.get(pending)) == "confirm"

    # Spent while the reader stayed pending (the old three-commit confirm could leave this).
    retry = sign_up(app, client, "retry@example.org")
    with store.engine.begin() as conn:
        conn.execute(
            insert(t.used_tokens).values(
                token_hash=Tokens.digest(retry.removeprefix("/c/")),
                purpose="confirm",
                used_at=dt.datetime.now(dt.UTC),
            )
        )
    assert shown_state(client.get(retry)) == "confirm"
    confirmed = client.post(retry)
    assert confirmed.status_code == 200 and "You're subscribed" in confirmed.text
    assert store.subscribers.find("retry@example.org").status == S.ACTIVE  # type: ignore[union-attr]

    again = client.get(retry)
    assert again.status_code == 200 and shown_state(again) == "active"
    assert "already subscribed" in again.text and f'href="{app.base}/p/' in again.text

    # Mailed before an unsubscribe; then someone signs the address up again.
    stale = sign_up(app, client, "stale@example.org")
    reader = store.subscribers.find("stale@example.org")
    assert reader is not None
    store.subscribers.change_status(reader.id, S.UNSUBSCRIBED, only_from=(S.PENDING,))
    store.subscribers.update(reader.id, confirmation_sent_at=None)
    fresh = sign_up(app, client, "stale@example.org", mails=2)
    for response in (client.get(stale), client.post(stale)):
        assert response.status_code == 410 and shown_state(response) == "stale"
        assert '<a class="button primary" href="/">Sign up again</a>' in response.text
    assert store.subscribers.get(reader.id).status == S.PENDING  # type: ignore[union-attr]
    assert client.post(fresh).status_code == 200
    assert store.subscribers.get(reader.id).status == S.ACTIVE  # type: ignore[union-attr]

    # Older than confirm_token_days.
    first = sign_up(app, client, "late@example.org")
    late = store.subscribers.find("late@example.org")
    assert late is not None
    old = int(dt.datetime.now(dt.UTC).timestamp()) - 8 * 86400
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: old)
    expired = Links.for_config(app.config).confirm(late.id).removeprefix(app.base)
    monkeypatch.undo()
    for response in (client.get(expired), client.post(expired)):
        assert response.status_code == 410 and shown_state(response) == "expired"
        assert f'action="{expired}/renew"' in response.text
    assert client.get(f"{expired}/renew").status_code == 405  # a GET changes nothing
    # The sign-up mailed a link just now: within the resend window no second one goes out.
    assert client.post(f"{expired}/renew").status_code == 200
    store.subscribers.update(late.id, confirmation_sent_at=None)
    renewed = client.post(f"{expired}/renew")
    assert renewed.status_code == 200 and "Check your inbox" in renewed.text
    (new,) = set(app.wait_for_links("late@example.org", "c", 2)) - {first}
    assert client.post(f"{expired}/renew").status_code == 200  # window taken again: no mail
    assert client.post(new).status_code == 200
    assert store.subscribers.get(late.id).status == S.ACTIVE  # type: ignore[union-attr]
    assert len(app.links_to("late@example.org", "c")) == 2


def test_a_lock_between_spending_and_activating_leaves_the_reader_confirmable(
    tmp_path: Path, backend_url: str
) -> None:
    """The database is locked while a confirmation runs (PostgreSQL: the reader's row, so the
    link is spent and the activation waits; SQLite: the whole file): the post answers 503,
    nothing is kept — not even the spent link — and once the lock goes the same link works."""
    postgres = backend_url.startswith("postgresql")
    # The app gives up on a lock after 300 ms (PostgreSQL: lock_timeout; SQLite: busy_timeout).
    url = backend_url.replace("-csearch_path", "-clock_timeout%3D300%20-csearch_path")
    with (
        Served(tmp_path, url, storage="busy_timeout_ms = 300") as app,
        httpx.Client(base_url=app.base, timeout=30) as client,
    ):
        path = sign_up(app, client, "locked@example.org")
        locker = engine_for(backend_url)
        try:
            with locker.connect() as conn:
                # SQLite: engine_for opens every transaction with BEGIN IMMEDIATE (the write lock).
                conn.execute(
                    text(
                        "SELECT id FROM subscribers WHERE email_key = :k"
                        + (" FOR UPDATE" if postgres else "")
                    ),
                    {"k": "locked@example.org"},
                )
                refused = client.post(path)
                assert refused.status_code == 503 and "Nothing was changed" in refused.text
                conn.rollback()
            with locker.connect() as conn:
                spent = conn.execute(select(func.count()).select_from(t.used_tokens)).scalar()
                status = conn.execute(select(t.subscribers.c.status)).scalar()
            assert (spent, status) == (0, "pending")
        finally:
            locker.dispose()
        assert shown_state(client.get(path)) == "confirm"
        done = client.post(path)
        assert done.status_code == 200 and "You're subscribed" in done.text
        app.wait_for_links("locked@example.org", "p", 1)
        assert app.mails_with("locked@example.org", "p") == 1  # the welcome mail


def test_concurrent_clicks_on_one_link_confirm_once_and_mail_one_welcome(
    served: tuple[Served, Store, httpx.Client],
) -> None:
    """Eight simultaneous posts of one confirmation link: one activates and welcomes, the
    others answer "already subscribed"; one spent-token row, one welcome mail."""
    app, store, client = served
    path = sign_up(app, client, "eager@example.org")
    barrier = threading.Barrier(8)
    answers: list[str] = []

    def click() -> None:
        with httpx.Client(base_url=app.base, timeout=30) as own:
            barrier.wait()
            response = own.post(path)
            answers.append(str(response.status_code) + ":" + shown_or_done(response))

    threads = [threading.Thread(target=click) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(answers) == ["200:active"] * 7 + ["200:confirmed"], answers
    app.wait_for_links("eager@example.org", "p", 1)
    with store.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(t.used_tokens)).scalar() == 1
    assert app.mails_with("eager@example.org", "p") == 1


def shown_or_done(response: httpx.Response) -> str:
    return "confirmed" if "You're subscribed" in response.text else shown_state(response)


def test_new_link_posts_count_against_the_networks_signup_limit(
    make_site: Callable[[str], Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking for a new link is a sign-up post for web.signups_per_ip_per_hour: past the
    limit it gets 429 and mails nothing."""
    site = make_site("signups_per_ip_per_hour = 2\nconfirmation_resend_hours = 0")
    site.signup("late@example.org")
    sub = site.sub("late@example.org")
    old = int(dt.datetime.now(dt.UTC).timestamp()) - 8 * 86400
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: old)
    path = Links.for_config(site.config).confirm(sub.id).removeprefix("http://testserver")
    monkeypatch.undo()
    assert site.client.post(f"{path}/renew").status_code == 200
    assert len(site.mails_to("late@example.org")) == 2
    refused = site.client.post(f"{path}/renew")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "3600"
    assert len(site.mails_to("late@example.org")) == 2
