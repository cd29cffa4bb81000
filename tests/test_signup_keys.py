"""Sign-ups: one reader per normalised address under concurrency, and the same statements and
bytes whatever the address's state, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import event, func, select

from pipeline.addresses import email_key
from pipeline.models import SubscriberStatus
from pipeline.store import Store, open_store
from pipeline.store import tables as t
from subscribers.web import signup as web_signup
from tests.served import Served
from tests.test_confirm_states import form
from tests.test_web import Site, make_site, site

__all__ = ["make_site", "site"]  # fixtures shared with test_web.py

R = TypeVar("R")
SPELLINGS = [
    "Reader@Example.org",
    "reader@example.org",
    "READER@EXAMPLE.ORG",
    "rEaDeR@example.ORG",
    " reader@Example.Org ",
    "Reader@EXAMPLE.org",
]


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("Reader@Example.ORG", "reader@example.org"),
        ("  leser@BÜCHER.example.org ", "leser@xn--bcher-kva.example.org"),
        ("Leser@xn--bcher-kva.example.org", "leser@xn--bcher-kva.example.org"),
        ("user+Tag@sub.example.co.uk", "user+tag@sub.example.co.uk"),
    ],
)
def test_every_spelling_of_an_address_shares_one_key(address: str, key: str) -> None:
    """Trimmed, IDNA domain, lower-cased whole: the key subscribers are unique by."""
    assert email_key(address) == key


def test_twelve_concurrent_case_variant_signups_make_one_reader_and_one_mail(
    tmp_path: Path, backend_url: str
) -> None:
    """Twelve simultaneous posts of six spellings of one address, over HTTP: one row and
    one confirmation mail (PostgreSQL used to make one row per spelling)."""
    with Served(tmp_path, backend_url) as app:
        barrier = threading.Barrier(12)
        codes: list[int] = []

        def post(address: str) -> None:
            with httpx.Client(base_url=app.base, timeout=60) as client:
                barrier.wait()
                codes.append(client.post("/", data=form(address)).status_code)

        threads = [
            threading.Thread(target=post, args=(SPELLINGS[i % len(SPELLINGS)],)) for i in range(12)
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    # The server has stopped, so every mail its requests were to send has been written.
    assert codes == [200] * 12
    assert len(app.mails()) == 1
    with open_store(app.config) as store:
        (reader,) = store.subscribers.all()
        assert email_key(reader.email) == "reader@example.org"
        assert reader.status == SubscriberStatus.PENDING


class Statements:
    """The SQL one engine runs while ``recording``, parameters left out."""

    def __init__(self, store: Store) -> None:
        self.seen: list[str] = []
        self.recording = False
        event.listen(store.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.recording:
            self.seen.append(" ".join(statement.split()))

    def during(self, action: Callable[..., R], *args: Any) -> tuple[R, list[str]]:
        """What ``action(*args)`` returned, and the statements it ran."""
        self.seen, self.recording = [], True
        try:
            result = action(*args)
        finally:
            self.recording = False
        return result, self.seen


def test_new_and_known_addresses_run_the_same_statements_and_get_the_same_bytes(
    site: Site,
) -> None:
    """Signing up a new, pending, subscribed, unsubscribed or suppressed address runs the
    very same SQL statements, in the same order, and answers the same bytes (the address
    aside): neither the page nor the time taken tells them apart."""
    site.confirmed("active@example.org")
    site.signup("pending@example.org")
    gone = site.confirmed("left@example.org")
    site.store.subscribers.change_status(
        gone.id, SubscriberStatus.UNSUBSCRIBED, only_from=(SubscriberStatus.ACTIVE,)
    )
    site.store.subscribers.suppress("bounced@example.org", "bounced")
    site.signup("warm-up@example.org")  # the limiter's hourly prune runs on the first post
    runtime = site.client.app.state.live.current  # type: ignore[attr-defined]
    statements = Statements(runtime.store)
    seen: dict[str, tuple[list[str], int, bytes]] = {}
    addresses = (
        "new@example.org",
        "pending@example.org",
        "active@example.org",
        "left@example.org",
        "bounced@example.org",
    )
    for address in addresses:
        response, sql = statements.during(site.signup, address)
        seen[address] = (
            sql,
            response.status_code,
            response.content.replace(address.encode(), b"@"),
        )
    reference = seen["new@example.org"]
    assert any(s.startswith("INSERT INTO subscribers") for s in reference[0])
    assert reference[1] == 200
    for address in addresses:
        assert seen[address] == reference, address
    # The states really differed: a row each, and the suppressed address has none.
    with site.store.engine.begin() as conn:
        rows = conn.execute(select(func.count()).select_from(t.subscribers)).scalar()
    assert rows == 5  # active, pending, left, warm-up, new
    assert site.store.subscribers.find("bounced@example.org") is None


def test_every_signup_answers_after_the_same_floor(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that wrote rows is slower than one that did not, so the answer waits out a
    floor: a new address and a known one both take at least that long (a lower bound set by
    a sleep, not a speed figure; benchmarks/signup_timing.py measures the spread)."""
    monkeypatch.setattr(web_signup, "SIGNUP_FLOOR_SECONDS", 0.4)
    site.signup("known@example.org")
    for address in ("fresh@example.org", "known@example.org"):
        started = time.monotonic()
        response = site.signup(address)
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.4, address
