"""A retried or crash-recovered edition is the same email as the first attempt, rebuilt from
what the ledger recorded at queue time, on SQLite and PostgreSQL, against a real SMTP server."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from pipeline.config import Config
from pipeline.editions import Composer, select_editions
from pipeline.ledger import recorded
from pipeline.links import Links
from pipeline.mime import message_bytes, message_id_for
from pipeline.models import Delivery, DeliveryStatus, Dump, Paper, Pick, Subscriber
from pipeline.papers import dump_id, title_key
from pipeline.render import Renderer
from pipeline.run import deliver_due
from pipeline.send import SmtpSender
from pipeline.store import Store
from tests.db_clock import age_claims
from tests.delivery_world import (
    EDITION,
    NOW,
    add_readers,
    make_paper,
    seed_papers,
    smtp_config,
    stub_select,
)
from tests.smtp_server import Received, SmtpServer

STALE = dt.timedelta(minutes=10)
AFTER_CRASH = NOW + dt.timedelta(minutes=11)  # the claim is stale: due again


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def queue_first_rendering(config: Config, store: Store, sub: Subscriber) -> EmailMessage:
    """Match, render and queue one edition as ``editions.queue_editions`` does; its first email."""
    composer = Composer(config.email, store, Renderer.from_config(config), Links.for_config(config))
    [selection] = select_editions(store, stub_select, [sub], EDITION, NOW)
    row = Delivery(
        subscriber_id=sub.id,
        edition_date=EDITION,
        status=DeliveryStatus.QUEUED,
        message_id=message_id_for(sub.id, EDITION, config.email),
    )
    message, shown = composer.render(selection, sub, NOW, row.message_id)
    assert store.ledger.queue_many([recorded(row, selection, shown)], NOW) == 1
    return message


def crash_after_claiming(store: Store, sub: Subscriber) -> None:
    assert store.ledger.claim(sub.id, EDITION, NOW, STALE) is not None  # then the process died
    age_claims(store, STALE + dt.timedelta(minutes=1))  # and the claim went stale


# A signed link is payload.timestamp.signature; a resend signs the same payloads again later.
SIGNED = re.compile(r"(/[a-z]/\.?[\w-]+)\.[\w-]+\.[\w-]+")


def body(message: EmailMessage, kind: str) -> str:
    """A part's text, with each signed link reduced to its payload."""
    part = message.get_body((kind,))
    assert part is not None
    return SIGNED.sub(r"\1", str(part.get_content()))


class Recording:
    """An SMTP sender that keeps every message it was asked to send."""

    def __init__(self, inner: SmtpSender) -> None:
        self.inner = inner
        self.messages: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> str:
        self.messages.append(message)
        return await self.inner.send(message)

    async def close(self) -> None:
        await self.inner.close()


def assert_same_email(first: EmailMessage, got: Received) -> None:
    """Same headers that matter and the same text and HTML, as they went on the wire."""
    first = Received("", [], message_bytes(first)).message
    resent = got.message
    assert resent["Message-ID"] == first["Message-ID"]
    assert resent["Subject"] == first["Subject"]
    assert body(resent, "plain") == body(first, "plain")
    assert body(resent, "html") == body(first, "html")


@pytest.mark.parametrize("budget", [None, 60_000], ids=["whole", "cut-by-size-budget"])
def test_a_crash_recovered_edition_is_resent_as_first_rendered(
    instance: Config, store: Store, server: SmtpServer, budget: int | None
) -> None:
    """Same papers, reasons and "N more" line as the first rendering, also when the size
    budget had moved papers into "N more"; the same Message-ID."""
    config = smtp_config(instance, server.port)
    if budget is not None:
        config = config.model_copy(
            update={"email": config.email.model_copy(update={"max_html_bytes": budget})}
        )
    seed_papers(store)
    [sub] = add_readers(store, 1)
    if budget is not None:
        sub = store.subscribers.update(
            sub.id, profile=sub.profile.model_copy(update={"max_papers": 12})
        )
    first = queue_first_rendering(config, store, sub)
    text = body(first, "plain")
    assert "200 upvotes on Hugging Face" in text and "more paper" in text  # reasons, "N more"
    row = store.ledger.get(sub.id, EDITION)
    assert row is not None and len(row.picks) == len(row.paper_ids)
    if budget is not None:
        assert 1 <= len(row.paper_ids) < 12  # the budget really cut the first rendering
    crash_after_claiming(store, sub)
    assert deliver_due(config, AFTER_CRASH, store=store, select=stub_select).sent == 1
    [got] = server.messages
    assert_same_email(first, got)


def test_a_deferred_edition_is_retried_as_first_rendered(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """A 4xx defers the edition; the retry is the email the first attempt would have been."""
    config = smtp_config(instance, server.port)
    seed_papers(store)
    [sub] = add_readers(store, 1)
    first = queue_first_rendering(config, store, sub)
    server.inject("rcpt", "451 4.3.0 try again later")
    assert deliver_due(config, NOW, store=store, select=stub_select).deferred == 1
    assert deliver_due(config, NOW + dt.timedelta(hours=1), store=store, select=stub_select).sent
    [got] = server.messages
    assert_same_email(first, got)


def test_an_edition_queued_by_a_run_is_retried_as_first_sent(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """deliver_due records the picks when it queues: the server refused the first copy with a
    4xx after reading it, and the retry carries the same reasons and "N more" line."""
    config = smtp_config(instance, server.port)
    seed_papers(store)
    add_readers(store, 1)
    server.inject("data", "451 4.3.0 try again later")
    first_try = Recording(SmtpSender(config.smtp, config.email.from_address))
    assert deliver_due(config, NOW, store=store, select=stub_select, sender=first_try).deferred
    later = NOW + dt.timedelta(hours=1)
    assert deliver_due(config, later, store=store, select=stub_select).sent == 1
    [first] = first_try.messages
    [resent] = server.messages
    assert_same_email(first, resent)
    assert "200 upvotes on Hugging Face" in body(resent.message, "plain")


def test_a_paper_rekeyed_after_queueing_is_still_in_the_resend(
    instance: Config, store: Store, server: SmtpServer
) -> None:
    """A title-keyed paper that a later dump gives its arXiv id is found by the resend, and is
    recorded as sent under the new id, so it is never sent again."""
    config = smtp_config(instance, server.port)
    seed_papers(store, 3)
    title = "Neuromorphic chips learn on the fly without backpropagation"
    page = make_paper(
        50, id=title_key(title), arxiv_id=None, title=title, upvotes=900, source_format="hf_page"
    )
    ingest(store, "page", page, NOW - dt.timedelta(hours=2))
    [sub] = add_readers(store, 1)
    queue_first_rendering(config, store, sub)
    assert title_key(title) in store.ledger.get(sub.id, EDITION).paper_ids  # type: ignore[union-attr]
    crash_after_claiming(store, sub)

    arxiv = page.model_copy(
        update={"id": "2607.09999", "arxiv_id": "2607.09999", "source_format": "hf_api"}
    )
    ingest(store, "api", arxiv, NOW + dt.timedelta(minutes=5))
    assert store.papers.get(title_key(title)) is None  # re-keyed, not a second paper
    row = store.ledger.get(sub.id, EDITION)
    assert row is not None and row.paper_ids[0] == "2607.09999"
    assert row.picks[0].paper_id == "2607.09999" and row.picks[0].reasons

    assert deliver_due(config, AFTER_CRASH, store=store, select=stub_select).sent == 1
    [got] = server.messages
    resent = body(got.message, "plain")
    assert title in resent and "900 upvotes on Hugging Face" in resent  # its recorded reasons
    assert "2607.09999" in store.ledger.sent_paper_ids([sub.id])[sub.id]


def ingest(store: Store, name: str, paper: Paper, at: dt.datetime) -> None:
    store.papers.ingest(
        Dump(
            id=dump_id(f"{name}-{at.isoformat()}".encode()),
            name=f"{name}.json",
            format=paper.source_format,
            dump_date=at.date(),
            papers=(paper,),
        ),
        now=at,
    )


def test_the_ledger_keeps_picks_and_the_more_count(store: Store) -> None:
    """Scores, reasons and the matched count round-trip; a bare entry queues without them."""
    a, b = add_readers(store, 2)
    picks = (Pick(paper_id="2607.00001", score=0.875, reasons=("topic: SNN — “spiking”",)),)
    row = Delivery(
        subscriber_id=a.id,
        edition_date=EDITION,
        status=DeliveryStatus.QUEUED,
        message_id="<a@x>",
        paper_ids=("2607.00001",),
        picks=picks,
        more_count=7,
    )
    assert store.ledger.queue_many([row, (b.id, EDITION, "<b@x>", ["2607.00002"])], NOW) == 2
    kept = store.ledger.get(a.id, EDITION)
    assert kept is not None and (kept.picks, kept.more_count) == (picks, 7)
    bare = store.ledger.get(b.id, EDITION)
    assert bare is not None and (bare.paper_ids, bare.picks, bare.more_count) == (
        ("2607.00002",),
        (),
        0,
    )
