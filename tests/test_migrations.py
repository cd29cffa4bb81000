"""Schema migrations: a database from before Alembic, and every revision since, reach head
with their rows intact and the same schema as a fresh database, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from pipeline.errors import StoreError, SubscriberError
from pipeline.models import DeliveryStatus, Dump, Profile, SubscriberStatus
from pipeline.papers import dump_id
from pipeline.store import Store, engine_for, tables
from pipeline.store import migrate as m
from pipeline.votes import apply_vote, terms_to_count
from tests.legacy_schema import count_rows, create_legacy_database, legacy_rows
from tests.test_feedback_terms import CATALOG, CORPUS, DAY, NOW, PAGED, VIDEO


@pytest.fixture
def db_url(backend_url: str) -> str:
    """The backend's URL, with the SQLite file's folder in place (open_store makes it too)."""
    if backend_url.startswith("sqlite:///"):
        Path(backend_url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    return backend_url


def schema_of(url: str) -> dict[str, Any]:
    """Tables, columns (type, nullability), primary keys, indexes, uniques and foreign keys."""
    engine = create_engine(url)
    try:
        found = inspect(engine)
        out: dict[str, Any] = {}
        for table in sorted(found.get_table_names()):
            out[table] = {
                "columns": [
                    (c["name"], str(c["type"].compile(engine.dialect)), c["nullable"])
                    for c in found.get_columns(table)
                ],
                "pk": found.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in found.get_indexes(table)
                ),
                "unique": sorted(
                    tuple(u["column_names"]) for u in found.get_unique_constraints(table)
                ),
                "fks": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"], str(f["options"]))
                    for f in found.get_foreign_keys(table)
                ),
            }
        return out
    finally:
        engine.dispose()


def open_at(url: str, target: str = "head") -> Store:
    store = Store(engine_for(url))
    try:
        m.migrate(store._db, target)
    except BaseException:
        store.close()
        raise
    return store


def fresh_schema(tmp_path: Path, db_url: str) -> dict[str, Any]:
    """The schema a brand-new database gets (in a sibling SQLite file or PostgreSQL schema)."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        open_at(url).close()
        return schema_of(url)
    # PostgreSQL: the same schema-per-test database, emptied and migrated afresh.
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for table in inspect(conn).get_table_names():
            conn.execute(text(f'DROP TABLE "{table}" CASCADE'))
    engine.dispose()
    open_at(db_url).close()
    return schema_of(db_url)


def test_a_fresh_database_is_at_head(db_url: str) -> None:
    """Migrating an empty database lands on the newest revision, and again is a no-op."""
    store = open_at(db_url)
    try:
        head = m.script().get_current_head()
        assert m.current_revision(store._db) == head
        assert store.schema_version() == len(m.revisions())
        assert store.migrate() == len(m.revisions())
        assert "schema_version" not in inspect(store.engine).get_table_names()
    finally:
        store.close()


def test_revisions_form_one_numbered_line() -> None:
    """Revision ids are NNNN, consecutive from the baseline, each on top of the one before."""
    ids = m.revisions()
    assert ids[0] == m.BASELINE
    assert ids == [f"{i:04d}" for i in range(1, len(ids) + 1)]
    for rev in m.script().walk_revisions():
        assert re.fullmatch(r"\d{4}_[a-z0-9_]+\.py", Path(rev.path).name)
        expected = None if rev.revision == m.BASELINE else f"{int(rev.revision) - 1:04d}"
        assert rev.down_revision == expected


def test_a_pre_alembic_database_upgrades_one_revision_at_a_time(
    tmp_path: Path, db_url: str
) -> None:
    """A database written by paperboy before Alembic is adopted at the baseline and upgraded
    one revision at a time: no row is lost at any step, today's store reads it back, and its
    schema equals a fresh database's."""
    create_legacy_database(db_url)
    before = count_rows(db_url)
    for rev in m.revisions():
        open_at(db_url, rev).close()
        assert count_rows(db_url) == before, f"rows changed at revision {rev}"
    _at_head_like_fresh(tmp_path, db_url)


@pytest.mark.parametrize("start", m.revisions())
def test_every_revision_upgrades_to_head_in_one_go(tmp_path: Path, db_url: str, start: str) -> None:
    """Whatever revision a database (written before Alembic) was left at, one upgrade brings
    it to head with its rows and a fresh database's schema. A new revision joins this test by
    existing."""
    create_legacy_database(db_url)
    before = count_rows(db_url)
    open_at(db_url, start).close()
    open_at(db_url).close()
    assert count_rows(db_url) == before
    _at_head_like_fresh(tmp_path, db_url)


def _at_head_like_fresh(tmp_path: Path, db_url: str) -> None:
    store = open_at(db_url)
    try:
        assert m.current_revision(store._db) == m.script().get_current_head()
        _reads_back(store)
    finally:
        store.close()
    upgraded = schema_of(db_url)
    assert "schema_version" not in upgraded
    assert upgraded == fresh_schema(tmp_path, db_url)


def _reads_back(store: Store) -> None:
    """The legacy rows come back as models through today's store."""
    rows = legacy_rows()
    assert store.papers.count() == len(rows["papers"])
    found = store.papers.find("t:00000000000000aa")
    assert found is not None and found.id == "2607.04444"
    ada = store.subscribers.find("ada@example.org")
    assert ada is not None and ada.status == SubscriberStatus.ACTIVE
    assert ada.profile.interests == "spiking networks"
    delivery = store.ledger.get(ada.id, dt.date(2026, 7, 3))
    assert delivery is not None and delivery.status == DeliveryStatus.SENT
    assert delivery.picks[0].paper_id == "2607.01011"
    assert store.ledger.sent_paper_ids([ada.id]) == {ada.id: {"2607.01011"}}
    assert store.feedback.votes_of(ada.id) == {"2607.01011": 1}
    assert not store.tokens.use("f" * 64, "unsubscribe")
    # New rows still get fresh ids after the adopted ones.
    assert store.subscribers.add("cy@example.org").id == 3


def test_a_pre_alembic_database_missing_a_column_is_refused(db_url: str) -> None:
    """A schema_version database that does not match the baseline is not stamped."""
    create_legacy_database(db_url)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE leases"))
    engine.dispose()
    with pytest.raises(StoreError, match="table leases is missing"):
        open_at(db_url).close()
    assert "alembic_version" not in schema_of(db_url)


def test_a_database_from_a_newer_paperboy_is_refused(db_url: str) -> None:
    """An unknown revision means the code is older than the database: say so, touch nothing."""
    open_at(db_url).close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this paperboy"):
        open_at(db_url).close()


def test_the_migrations_folder_is_found_next_to_the_code() -> None:
    """Migrations are located from the package, not from the working directory."""
    assert Path(m.__file__).parent / "migrations" == m.MIGRATIONS
    assert (m.MIGRATIONS / "env.py").is_file()


def test_the_table_definitions_match_the_newest_revision(tmp_path: Path, db_url: str) -> None:
    """``tables.py`` (what queries are written against) describes the schema at head."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        tables.metadata.create_all(conn)
    engine.dispose()
    from_tables = schema_of(db_url)
    assert from_tables == {
        k: v for k, v in fresh_schema(tmp_path, db_url).items() if k != "alembic_version"
    }


def add_before_0007(store: Store, email: str, profile: Profile, status: str = "active") -> int:
    """A subscriber row as revisions before 0007 wrote it (no address key, no epoch)."""
    row = {
        "email": email,
        "status": status,
        "timezone": "UTC",
        "send_hour": 7,
        "frequency": "daily",
        "weekly_day": 0,
        "profile": profile.model_dump(mode="json"),
        "created_at": NOW,
        "consent": {},
    }
    with store.engine.begin() as conn:
        new_id: int = conn.execute(
            tables.subscribers.insert().values(**row).returning(tables.subscribers.c.id)
        ).scalar_one()
    return new_id


def test_votes_are_relearned_with_the_new_rule_on_upgrade(db_url: str) -> None:
    """A database at 0001 whose profiles hold the old rule's terms ("exact", "runs", the
    reader's own topic word as a dislike) ends, after the upgrade, with exactly what its
    votes teach today, oldest vote first; other profile fields, readers who never voted and
    votes on re-keyed papers are handled too."""
    store = open_at(db_url, m.BASELINE)
    try:
        store.papers.ingest(
            Dump(id=dump_id(b"c"), name="c.json", format="hf_api", dump_date=DAY, papers=CORPUS),
            NOW,
        )
        old = Profile(
            topics=("llm-inference",),
            interests="serving",
            authors=("Ada Lovelace",),
            liked_terms=("exact", "runs", "sharing"),
            disliked_terms=("paged", "kv"),
        )
        voter = add_before_0007(store, "voter@example.org", profile=old)
        store.feedback.record_vote(voter, VIDEO.id, 1, NOW)
        store.feedback.record_vote(voter, PAGED.id, -1, NOW + dt.timedelta(minutes=1))
        stale = add_before_0007(
            store, "stale@example.org", profile=Profile(liked_terms=("exact",), max_papers=3)
        )
        quiet = add_before_0007(store, "quiet@example.org", profile=Profile(interests="robots"))
        with store.engine.begin() as conn:  # a vote recorded before its paper was re-keyed
            conn.execute(
                tables.feedback.update()
                .where(tables.feedback.c.paper_id == PAGED.id)
                .values(paper_id="t:00000000000000ff")
            )
            conn.execute(
                tables.paper_aliases.insert().values(old_id="t:00000000000000ff", new_id=PAGED.id)
            )
    finally:
        store.close()

    store = open_at(db_url)
    try:
        expected = old.model_copy(update={"liked_terms": (), "disliked_terms": ()})
        for voted, sign in ((VIDEO, 1), (PAGED, -1)):
            counts = store.feedback.term_counts(terms_to_count(voted, CATALOG))
            expected = apply_vote(expected, voted, sign, counts, CATALOG)
        after = store.subscribers.get(voter)
        assert after is not None
        assert after.profile == expected
        assert "video diffusion" in after.profile.liked_terms
        assert not {"exact", "runs", "sharing", "paged", "kv"} & {
            *after.profile.liked_terms,
            *after.profile.disliked_terms,
        }
        assert not {"paged attention", "kv cache"} & {
            t.casefold() for t in after.profile.disliked_terms
        }
        assert after.profile.authors == ("Ada Lovelace",) and after.profile.interests == "serving"
        cleared = store.subscribers.get(stale)
        assert cleared is not None
        assert cleared.profile == Profile(max_papers=3)
        untouched = store.subscribers.get(quiet)
        assert untouched is not None and untouched.profile == Profile(interests="robots")
    finally:
        store.close()


def test_case_variants_of_an_address_are_merged_into_one_reader(db_url: str) -> None:
    """0007 keeps one row per normalised address: the most advanced status wins (the oldest
    among equals); the others' ledger rows, votes and sent papers move to it where it has none
    of its own for that edition or paper, their ids still reach it, and the unique index then
    refuses another spelling."""
    store = open_at(db_url, "0006")
    try:
        gone = add_before_0007(store, "Ada@Example.org", Profile(interests="old"), "unsubscribed")
        kept = add_before_0007(store, "ada@example.org", Profile(interests="kept"), "active")
        late = add_before_0007(store, "ADA@EXAMPLE.ORG", Profile(), "active")
        bob = add_before_0007(store, "bob@example.org", Profile())
        store.ledger.queue(gone, DAY, "<gone@x>", ["p1"], NOW)
        store.ledger.queue(kept, DAY, "<kept@x>", ["p2"], NOW)
        store.ledger.queue(late, DAY + dt.timedelta(days=1), "<late@x>", ["p3"], NOW)
        store.feedback.record_vote(gone, "p1", 1, NOW)
        store.feedback.record_vote(kept, "p1", -1, NOW)
        store.feedback.record_vote(late, "p2", 1, NOW)
        with store.engine.begin() as conn:
            for sid, paper in ((gone, "p1"), (kept, "p1"), (late, "p9")):
                conn.execute(
                    tables.sent_papers.insert().values(
                        subscriber_id=sid, paper_id=paper, edition_date=DAY, sent_at=NOW
                    )
                )
    finally:
        store.close()

    store = open_at(db_url)
    try:
        assert [(s.id, s.email) for s in store.subscribers.all()] == [
            (kept, "ada@example.org"),
            (bob, "bob@example.org"),
        ]
        for old_id in (gone, kept, late):
            found = store.subscribers.get(old_id)
            assert found is not None and found.id == kept
            assert found.status == SubscriberStatus.ACTIVE and found.profile.interests == "kept"
        found = store.subscribers.find("ADA@example.ORG")
        assert found is not None and found.id == kept
        assert [(d.subscriber_id, d.message_id) for d in store.ledger.all()] == [
            (kept, "<kept@x>"),
            (kept, "<late@x>"),
        ]
        assert store.feedback.votes_of(kept) == {"p1": -1, "p2": 1}
        assert store.ledger.sent_paper_ids([kept]) == {kept: {"p1", "p9"}}
        with pytest.raises(SubscriberError, match="already a subscriber"):
            store.subscribers.add("aDa@EXAMPLE.org")
        with pytest.raises(IntegrityError), store.engine.begin() as conn:
            conn.execute(
                tables.subscribers.insert().values(
                    email="aDa@example.org",
                    email_key="ada@example.org",
                    status="pending",
                    timezone="UTC",
                    send_hour=7,
                    frequency="daily",
                    weekly_day=0,
                    profile={},
                    created_at=NOW,
                    consent={},
                )
            )
        # Erasing the reader takes the aliases with it: the old ids reach nobody.
        assert store.subscribers.delete(kept)
        assert store.subscribers.get(gone) is None
    finally:
        store.close()


def test_links_mailed_before_0007_to_a_reader_who_once_left_no_longer_confirm(
    db_url: str,
) -> None:
    """Old links carry no epoch (0): readers who ever unsubscribed start at epoch 1, and one
    pending again may ask for a fresh link at once (the resend window is lifted)."""
    store = open_at(db_url, "0006")
    try:
        back = add_before_0007(store, "back@example.org", Profile(), "pending")
        stayed = add_before_0007(store, "stayed@example.org", Profile(), "pending")
        with store.engine.begin() as conn:
            for sid, left in ((back, NOW), (stayed, None)):
                conn.execute(
                    tables.subscribers.update()
                    .where(tables.subscribers.c.id == sid)
                    .values(unsubscribed_at=left, confirmation_sent_at=NOW)
                )
    finally:
        store.close()
    store = open_at(db_url)
    try:
        with store.engine.begin() as conn:
            rows = conn.execute(
                select(
                    tables.subscribers.c.id,
                    tables.subscribers.c.confirm_epoch,
                    tables.subscribers.c.confirmation_sent_at,
                ).order_by(tables.subscribers.c.id)
            ).all()
        assert [(r.id, r.confirm_epoch, r.confirmation_sent_at is None) for r in rows] == [
            (back, 1, True),
            (stayed, 0, False),
        ]
    finally:
        store.close()
