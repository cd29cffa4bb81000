"""The store keeps papers, subscribers and the delivery ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.errors import StoreError, SubscriberError
from pipeline.models import (
    DeliveryStatus,
    Dump,
    Paper,
    Profile,
    SubscriberStatus,
)
from pipeline.papers import dump_id, title_key
from pipeline.store import Store
from pipeline.store.migrate import revisions, script
from tests.db_clock import age_claims, claim_of, expire_lease

DAY1 = dt.date(2026, 7, 2)
DAY2 = dt.date(2026, 7, 3)
NOW = dt.datetime(2026, 7, 3, 6, 0, tzinfo=dt.UTC)


def paper(pid: str | None, title: str, **kw: object) -> Paper:
    fields: dict[str, object] = {"source_format": "hf_api", "abstract": "An abstract."}
    fields.update(kw)
    return Paper(id=pid or title_key(title), arxiv_id=pid, title=title, **fields)


def dump(name: str, day: dt.date, *papers: Paper, fmt: str = "hf_api") -> Dump:
    return Dump(
        id=dump_id(name.encode() + str(day).encode()),
        name=name,
        format=fmt,
        dump_date=day,
        papers=papers,
    )


def test_migrate_is_idempotent_and_versioned(store: Store) -> None:
    """Migrating twice keeps the schema at the latest version without error."""
    assert store.schema_version() == len(revisions())
    assert store.migrate() == len(revisions())
    assert store.schema_revision() == script().get_current_head()


def test_same_dump_twice_is_a_no_op(store: Store) -> None:
    """Ingesting the same dump id again stores nothing new."""
    d = dump("a.json", DAY1, paper("2607.01011", "Spiking Transformers"))
    first = store.papers.ingest(d, NOW)
    again = store.papers.ingest(d, NOW)
    assert (first.new, first.already_ingested) == (1, False)
    assert again.already_ingested and again.new == 0
    assert store.papers.count() == 1


def test_same_arxiv_paper_from_two_formats_is_one_record(store: Store) -> None:
    """API JSON and Atom sightings of one arXiv id merge; the latest dump's upvotes win."""
    api = paper("2607.01011", "Spiking Transformers", upvotes=58, keywords=("snn",))
    atom = paper(
        "2607.01011",
        "Spiking Transformers",
        upvotes=0,
        categories=("cs.NE",),
        source_format="arxiv_atom",
    )
    store.papers.ingest(dump("api.json", DAY1, api), NOW)
    outcome = store.papers.ingest(dump("feed.atom", DAY2, atom, fmt="arxiv_atom"), NOW)
    assert (outcome.new, outcome.merged) == (0, 1)
    stored = store.papers.get("2607.01011")
    assert stored is not None
    assert stored.keywords == ("snn",) and stored.categories == ("cs.NE",)
    assert stored.upvotes == 0  # the later dump's count, even when lower


def test_older_dump_does_not_overwrite_newer_upvotes(store: Store) -> None:
    """A late-arriving older dump keeps the upvotes of the newer one."""
    store.papers.ingest(dump("new.json", DAY2, paper("2607.00001", "T", upvotes=99)), NOW)
    store.papers.ingest(dump("old.json", DAY1, paper("2607.00001", "T", upvotes=5)), NOW)
    stored = store.papers.get("2607.00001")
    assert stored is not None and stored.upvotes == 99


def test_title_keyed_paper_takes_its_arxiv_id_when_learned(store: Store) -> None:
    """A page-dump paper (no id) merges by normalised title and is re-keyed to the arXiv id."""
    page = paper(
        None, "Graph Diffusion Priors: for Protein Pockets", source_format="hf_page", upvotes=27
    )
    store.papers.ingest(dump("page.txt", DAY1, page, fmt="hf_page"), NOW)
    sub = store.subscribers.add("a@example.org", status=SubscriberStatus.ACTIVE)
    store.feedback.record_vote(sub.id, page.id, 1)
    api = paper("2607.04444", "graph diffusion priors for protein pockets", upvotes=30)
    outcome = store.papers.ingest(dump("api.json", DAY2, api), NOW)
    assert (outcome.new, outcome.merged) == (0, 1)
    assert store.papers.count() == 1
    assert store.papers.get(page.id) is None
    assert store.papers.get("2607.04444") is not None
    assert store.feedback.votes_of(sub.id) == {"2607.04444": 1}
    # Links mailed before the re-key still find the paper.
    found = store.papers.find(page.id)
    assert found is not None and found.id == "2607.04444"
    assert store.papers.find("t:0000000000000000") is None


def test_paper_listed_twice_in_one_dump_is_one_row(store: Store) -> None:
    """Duplicates inside one dump are merged, not inserted twice."""
    p = paper("2607.00002", "Twice")
    outcome = store.papers.ingest(dump("d.json", DAY1, p, p), NOW)
    assert (outcome.new, outcome.merged) == (1, 1)
    assert store.papers.count() == 1


def test_same_title_different_arxiv_ids_stay_apart(store: Store) -> None:
    """Two arXiv papers that share a title are two records."""
    store.papers.ingest(
        dump("d.json", DAY1, paper("2607.00003", "Survey"), paper("2607.00004", "Survey")), NOW
    )
    assert store.papers.count() == 2


def test_literal_markup_in_titles_round_trips(store: Store) -> None:
    """Titles with HTML and template syntax are stored and returned verbatim."""
    title = "<script>alert(1)</script> {{ 7*7 }} {% raw %}"
    store.papers.ingest(dump("d.json", DAY1, paper("2607.00005", title)), NOW)
    stored = store.papers.get("2607.00005")
    assert stored is not None and stored.title == title


def test_subscriber_unique_and_suppression(store: Store) -> None:
    """An address exists once; an erased address leaves only a hash and cannot re-join."""
    sub = store.subscribers.add("Reader@Example.org", profile=Profile(topics=("llm-inference",)))
    with pytest.raises(SubscriberError):
        store.subscribers.add("Reader@Example.org")
    assert store.subscribers.find("reader@example.org") == sub
    assert store.subscribers.delete(sub.id)
    assert store.subscribers.find("reader@example.org") is None
    assert store.subscribers.is_suppressed("reader@example.org")
    with pytest.raises(SubscriberError):
        store.subscribers.add("reader@example.org")


def test_ledger_claim_is_exclusive(store: Store) -> None:
    """A queued delivery can be claimed once; a second claim gets nothing."""
    sub = store.subscribers.add("b@example.org", status=SubscriberStatus.ACTIVE)
    store.ledger.queue(sub.id, DAY2, "<m@x>", ["2607.00001"], NOW)
    stale = dt.timedelta(minutes=10)
    first = store.ledger.claim(sub.id, DAY2, NOW, stale)
    assert first is not None and first.status == DeliveryStatus.SENDING and first.attempts == 1
    assert store.ledger.claim(sub.id, DAY2, NOW, stale) is None


def test_stuck_sending_row_is_due_again_after_stale_period(store: Store) -> None:
    """A row left in 'sending' by a crash becomes due again, keeping its Message-ID."""
    sub = store.subscribers.add("c@example.org", status=SubscriberStatus.ACTIVE)
    store.ledger.queue(sub.id, DAY2, "<keep@x>", [], NOW)
    stale = dt.timedelta(minutes=10)
    first = store.ledger.claim(sub.id, DAY2, NOW, stale)
    assert first is not None
    age_claims(store, dt.timedelta(minutes=5))
    assert store.ledger.due(NOW, stale) == []
    age_claims(store, dt.timedelta(minutes=11))
    due = store.ledger.due(NOW, stale)
    assert [d.message_id for d in due] == ["<keep@x>"]
    again = store.ledger.claim(sub.id, DAY2, NOW, stale)
    assert again is not None and again.attempts == 2 and again.claim_id != first.claim_id


def test_mark_sent_records_papers_atomically(store: Store) -> None:
    """Marking sent records the edition's papers as sent and the subscriber's last edition."""
    sub = store.subscribers.add("d@example.org", status=SubscriberStatus.ACTIVE)
    store.ledger.queue(sub.id, DAY2, "<m@x>", ["p1", "p2"], NOW)
    held = store.ledger.claim(sub.id, DAY2, NOW, dt.timedelta(minutes=10))
    store.ledger.mark_sent(sub.id, DAY2, "250 OK queued", NOW, claim_id=claim_of(held))
    delivery = store.ledger.get(sub.id, DAY2)
    assert delivery is not None and delivery.status == DeliveryStatus.SENT
    assert delivery.server_reply == "250 OK queued"
    assert store.ledger.sent_paper_ids([sub.id]) == {sub.id: {"p1", "p2"}}
    updated = store.subscribers.get(sub.id)
    assert updated is not None and updated.last_edition == DAY2


def test_sent_paper_ids_can_be_limited_to_candidate_papers(store: Store) -> None:
    """``among`` keeps only the given papers of each history, across IN-clause chunks."""
    a = store.subscribers.add("sa@example.org", status=SubscriberStatus.ACTIVE)
    b = store.subscribers.add("sb@example.org", status=SubscriberStatus.ACTIVE)
    for sub, papers in ((a, ["p1", "p2"]), (b, ["p2"])):
        store.ledger.queue(sub.id, DAY2, f"<{sub.id}@x>", papers, NOW)
        held = store.ledger.claim(sub.id, DAY2, NOW, dt.timedelta(minutes=10))
        store.ledger.mark_sent(sub.id, DAY2, "250 OK", NOW, claim_id=claim_of(held))
    ids = [a.id, b.id]
    assert store.ledger.sent_paper_ids(ids, among=["p2", "p3"]) == {a.id: {"p2"}, b.id: {"p2"}}
    assert store.ledger.sent_paper_ids(ids, among=[]) == {}
    many = [f"x{i}" for i in range(1200)] + ["p1"]  # p1 lands in the third chunk
    assert store.ledger.sent_paper_ids(ids, among=many) == {a.id: {"p1"}}
    assert store.ledger.sent_paper_ids(ids) == {a.id: {"p1", "p2"}, b.id: {"p2"}}


def test_iter_subscribers_pages_through_every_match_once(store: Store) -> None:
    """Pages come in id order, hold at most ``page`` readers, and the status filter holds."""
    made = [
        store.subscribers.add(f"p{i}@example.org", status=SubscriberStatus.ACTIVE) for i in range(5)
    ]
    store.subscribers.add("pending@example.org")
    pages = list(store.subscribers.pages([SubscriberStatus.ACTIVE], page=2))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [s.id for p in pages for s in p] == [s.id for s in made]
    assert sum(len(p) for p in store.subscribers.pages(page=4)) == 6


def test_with_edition_names_the_subscribers_that_have_a_row(store: Store) -> None:
    """Only readers with a ledger row for that very edition, among those asked about."""
    a, b, c = (
        store.subscribers.add(f"w{i}@example.org", status=SubscriberStatus.ACTIVE) for i in range(3)
    )
    store.ledger.queue(a.id, DAY2, "<a@x>", [], NOW)
    store.ledger.queue(b.id, DAY2 - dt.timedelta(days=1), "<b@x>", [], NOW)
    store.ledger.queue(c.id, DAY2, "<c@x>", [], NOW)
    assert store.ledger.with_edition(DAY2, [a.id, b.id]) == {a.id}
    assert store.ledger.with_edition(DAY2, [a.id, b.id, c.id, 999]) == {a.id, c.id}
    assert store.ledger.with_edition(DAY2, []) == set()


def test_deferred_row_waits_for_its_time(store: Store) -> None:
    """A deferred delivery is not due before its next attempt time."""
    sub = store.subscribers.add("e@example.org", status=SubscriberStatus.ACTIVE)
    store.ledger.queue(sub.id, DAY2, "<m@x>", [], NOW)
    held = store.ledger.claim(sub.id, DAY2, NOW, dt.timedelta(minutes=10))
    retry_at = NOW + dt.timedelta(minutes=5)
    store.ledger.mark_deferred(
        sub.id, DAY2, "451 try later", retry_at, NOW, claim_id=claim_of(held)
    )
    assert store.ledger.due(NOW, dt.timedelta(minutes=10)) == []
    assert len(store.ledger.due(retry_at, dt.timedelta(minutes=10))) == 1


def test_failed_with_suppression_stops_future_mail(store: Store) -> None:
    """A permanent failure suppresses the address and marks the subscriber."""
    sub = store.subscribers.add("f@example.org", status=SubscriberStatus.ACTIVE)
    store.ledger.queue(sub.id, DAY2, "<m@x>", [], NOW)
    held = store.ledger.claim(sub.id, DAY2, NOW, dt.timedelta(minutes=10))
    store.ledger.mark_failed(
        sub.id, DAY2, "550 no such user", suppress_email=sub.email, now=NOW, claim_id=claim_of(held)
    )
    assert store.subscribers.is_suppressed(sub.email)
    refreshed = store.subscribers.get(sub.id)
    assert refreshed is not None and refreshed.status == SubscriberStatus.SUPPRESSED


def test_release_returns_claim_without_counting(store: Store) -> None:
    """An aborted run gives its claim back: queued again, attempt not counted."""
    sub = store.subscribers.add("g@example.org", status=SubscriberStatus.ACTIVE)
    store.ledger.queue(sub.id, DAY2, "<m@x>", [], NOW)
    held = store.ledger.claim(sub.id, DAY2, NOW, dt.timedelta(minutes=10))
    store.ledger.release(sub.id, DAY2, NOW, claim_id=claim_of(held))
    row = store.ledger.get(sub.id, DAY2)
    assert row is not None and row.status == DeliveryStatus.QUEUED and row.attempts == 0


def test_lease_has_one_holder(store: Store) -> None:
    """Only one runner holds the lease until it expires or is released."""
    ttl = dt.timedelta(seconds=60)
    assert store.leases.acquire("deliver", "a", ttl)
    assert not store.leases.acquire("deliver", "b", ttl)
    assert store.leases.acquire("deliver", "a", ttl)  # renewal
    expire_lease(store)
    assert store.leases.acquire("deliver", "b", ttl)
    store.leases.release("deliver", "b")
    assert store.leases.acquire("deliver", "a", ttl)


def test_single_use_token(store: Store) -> None:
    """A token hash can be spent once."""
    assert store.tokens.use("h1", "confirm")
    assert not store.tokens.use("h1", "confirm")


def test_votes_replace_and_count(store: Store) -> None:
    """A second vote replaces the first; counts are per paper."""
    a = store.subscribers.add("h@example.org")
    b = store.subscribers.add("i@example.org")
    store.feedback.record_vote(a.id, "p", 1)
    store.feedback.record_vote(a.id, "p", -1)
    store.feedback.record_vote(b.id, "p", -1)
    assert store.feedback.vote_counts() == {"p": (0, 2)}
    with pytest.raises(SubscriberError):
        store.feedback.record_vote(a.id, "p", 5)


def test_naive_datetimes_are_refused(store: Store) -> None:
    """The store only takes aware datetimes, so no local time sneaks in as UTC."""
    sub = store.subscribers.add("j@example.org")
    with pytest.raises((StoreError, ValueError)):
        store.ledger.queue(sub.id, DAY2, "<m@x>", [], dt.datetime(2026, 7, 3, 6, 0))


def test_the_signup_limiter_prunes_events_older_than_a_day(store: Store) -> None:
    """The rate-limit window counts the last hour; events past a day are deleted as it goes."""
    from subscribers.web.ratelimit import SignupLimiter

    now = dt.datetime(2026, 7, 3, 12, tzinfo=dt.UTC)
    for hours in (50, 30, 23, 0.5):
        store.signups.record("192.0.2.1", True, now - dt.timedelta(hours=hours))
    limiter = SignupLimiter(store, per_hour=5)
    limiter.record("192.0.2.1", True, now)
    assert (
        store.signups.count_since("192.0.2.1", now - dt.timedelta(days=3)) == 3
    )  # 23 h, 0.5 h, now
    assert store.signups.count_since("192.0.2.1", now - dt.timedelta(hours=1)) == 2
    assert limiter.allow("192.0.2.1", now)
