"""A new reader's first steps over real HTTP on SQLite and PostgreSQL: the grouped sign-up
page, the sample digest, settings that refuse an empty profile and take an upvote floor."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.matching.topics import default_topics
from pipeline.models import Dump, Paper
from pipeline.papers import dump_id
from pipeline.store import Store, open_store
from subscribers.forms import EMPTY_PROFILE, OTHER_GROUP
from subscribers.web.pages import EDITION_CSP
from tests.served import Served

# A topic the config adds without a group: the sign-up page lists it under "Other".
EXTRA_TOPIC = """
[topics.protein-design]
title = "Protein design"
description = "Generative models that design proteins"
keywords = ["protein"]
"""


@pytest.fixture
def served(tmp_path: Path, backend_url: str) -> Iterator[tuple[Served, Store, httpx.Client]]:
    """The app over HTTP on each backend, the store beside it, and a client."""
    with (
        Served(tmp_path, backend_url, web=EXTRA_TOPIC) as app,
        open_store(app.config) as store,
        httpx.Client(base_url=app.base, timeout=30) as client,
    ):
        yield app, store, client


def settings_of(app: Served, client: httpx.Client, address: str) -> str:
    """Sign ``address`` up, confirm it, and return the settings path its welcome mail links."""
    form = {"email": address, "topics": ["robotics"], "timezone": "UTC", "send_hour": "7"}
    assert client.post("/", data=form).status_code == 200
    (confirm,) = app.wait_for_links(address, "c", 1)
    assert client.post(confirm).status_code == 200
    return app.wait_for_links(address, "p", 1)[0]


def settings_form(page: str, **changes: Any) -> dict[str, Any]:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    data: dict[str, Any] = {
        "csrf": found.group(1),
        "topics": ["robotics"],
        "interests": "",
        "authors": "",
        "exclude": "",
        "max_papers": "10",
        "min_upvotes": "0",
        "timezone": "UTC",
        "send_hour": "7",
        "frequency": "daily",
        "weekly_day": "0",
    }
    data.update(changes)
    return data


def test_settings_refuse_an_empty_profile_with_the_signup_message(
    served: tuple[Served, Store, httpx.Client],
) -> None:
    """No topic, interest or author: 400 with sign-up's message, the form again, nothing saved;
    one favourite author alone is enough to save."""
    app, store, client = served
    path = settings_of(app, client, "reader@example.org")
    before = store.subscribers.find("reader@example.org")
    data = settings_form(client.get(path).text, topics=[], send_hour="9")
    refused = client.post(path, data=data)
    assert refused.status_code == 400
    assert EMPTY_PROFILE in refused.text and 'id="topics-error"' in refused.text
    assert '<form method="post" action="/p/' in refused.text
    assert 'value="9" selected' in refused.text  # the other inputs are kept
    assert store.subscribers.find("reader@example.org") == before
    data = settings_form(client.get(path).text, topics=[], authors="Ada Lovelace")
    assert client.post(path, data=data, follow_redirects=False).status_code == 303
    after = store.subscribers.find("reader@example.org")
    assert after is not None and after.profile.topics == ()
    assert after.profile.authors == ("Ada Lovelace",)


@pytest.mark.parametrize("bad", ["-3", "lots", "1000", "2.5"])
def test_settings_take_an_upvote_floor_and_refuse_a_bad_one(
    served: tuple[Served, Store, httpx.Client], bad: str
) -> None:
    """min_upvotes is a number field: a valid floor is saved and shown, a bad one is refused
    with a message beside the field and nothing saved."""
    app, store, client = served
    path = settings_of(app, client, "reader@example.org")
    page = client.get(path).text
    assert 'id="min_upvotes" name="min_upvotes" type="number"' in page
    refused = client.post(path, data=settings_form(page, min_upvotes=bad))
    assert refused.status_code == 400 and 'id="min_upvotes-error"' in refused.text
    assert "whole number of upvotes from 0 to 999" in refused.text
    sub = store.subscribers.find("reader@example.org")
    assert sub is not None and sub.profile.min_upvotes == 0
    saved = client.post(path, data=settings_form(page, min_upvotes="30"), follow_redirects=False)
    assert saved.status_code == 303
    sub = store.subscribers.find("reader@example.org")
    assert sub is not None and sub.profile.min_upvotes == 30
    shown = client.get(path).text
    assert re.search(r'id="min_upvotes"[^>]*value="30"', shown)


def test_the_signup_page_groups_every_topic_under_a_folding_heading(
    served: tuple[Served, Store, httpx.Client],
) -> None:
    """Popular first and open, then one <details> per group; each catalog topic is listed once
    under its group, a config topic without one under "Other"; a sample digest is linked."""
    _app, _store, client = served
    page = client.get("/").text
    groups = re.findall(r'<details class="topic-group"( open)? data-group="([^"]+)"', page)
    names = [name for _, name in groups]
    assert names[0] == "Popular" and groups[0][0] == " open"
    assert all(not opened for opened, _ in groups[1:])  # the rest start folded
    assert names[-1] == OTHER_GROUP and len(names) == len(set(names))
    catalog = default_topics()
    assert {t.group for t in catalog.values()} <= set(names)
    assert all(t.group for t in catalog.values())  # every built-in topic has a real group
    boxes = re.findall(r'name="topics" value="([^"]+)"', page)
    assert sorted(boxes) == sorted([*catalog, "protein-design"])
    other = page[page.index(f'data-group="{OTHER_GROUP}"') :]
    assert 'value="protein-design"' in other
    assert 'href="/sample"' in page and '<input id="topic-search" type="search"' in page


def test_a_grouped_topic_signs_up_like_any_other(
    served: tuple[Served, Store, httpx.Client],
) -> None:
    """A topic from a folded group posts and is stored; a re-shown form opens its group."""
    _app, store, client = served
    form = {"email": "x@example.org", "topics": ["time-series"], "timezone": "UTC"}
    assert client.post("/", data={**form, "send_hour": "7"}).status_code == 200
    sub = store.subscribers.find("x@example.org")
    assert sub is not None and sub.profile.topics == ("time-series",)
    again = client.post("/", data={**form, "email": "nope", "send_hour": "7"})
    assert again.status_code == 400
    group = default_topics()["time-series"].group
    assert f'<details class="topic-group" open data-group="{group}">' in again.text


PAPERS = tuple(
    Paper(
        id=f"2607.0{n:04d}",
        arxiv_id=f"2607.0{n:04d}",
        title=f"Sample paper number {n} <b>bold</b>",
        abstract="An abstract.",
        authors=("Ada Lovelace",),
        source_format="hf_api",
        upvotes=n * 10,
        url=f"https://huggingface.co/papers/2607.0{n:04d}",
    )
    for n in range(1, 13)
)


def test_the_sample_digest_shows_the_latest_papers_read_only(
    served: tuple[Served, Store, httpx.Client],
) -> None:
    """GET /sample renders the ten most upvoted latest papers with the digest renderer under
    the edition's CSP, escaped, without vote buttons, and writes nothing."""
    _app, store, client = served
    empty = client.get("/sample")
    assert empty.status_code == 200 and 'data-sample="empty"' in empty.text
    now = dt.datetime.now(dt.UTC)
    dump = Dump(
        id=dump_id(b"sample"), name="d.json", format="hf_api", dump_date=now.date(), papers=PAPERS
    )
    store.papers.ingest(dump, now)
    subscribers, ledger = store.subscribers.all(), store.ledger.all()
    page = client.get("/sample")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == EDITION_CSP
    shown = re.findall(r"Sample paper number (\d+)", page.text)
    assert list(dict.fromkeys(shown))[:10] == [str(n) for n in range(12, 2, -1)]
    assert "number 2 " not in page.text and "<b>bold</b>" not in page.text
    assert "/f/" not in page.text  # no votes for a reader who does not exist
    assert store.subscribers.all() == subscribers and store.ledger.all() == ledger
