"""A database written before vectors existed upgrades, gets its vectors backfilled in bounded
steps, and matches with them, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from pipeline.config import Match
from pipeline.embedding import Embedder, profile_texts
from pipeline.embedding.backfill import embed_pending
from pipeline.embedding.runtime import packaged_model
from pipeline.matching.match import select
from pipeline.matching.topics import load_catalog
from pipeline.models import SubscriberStatus
from pipeline.store import Store, engine_for
from pipeline.store import migrate as m
from tests import legacy_schema
from tests.hash_embedder import HashEmbedder


@pytest.fixture
def db_url(backend_url: str) -> str:
    if backend_url.startswith("sqlite:///"):
        Path(backend_url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    return backend_url


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """The packaged model when this checkout has its runner, else the hash stand-in."""
    if importlib.util.find_spec("pipeline.embedding.model") is None:
        return HashEmbedder()
    return packaged_model()  # the runner is there: failing to load it is a failure here


def written_by_the_release_before(url: str) -> None:
    """A database at revision 0001 (what paperboy wrote before vectors), with papers, a dump,
    profiles, ledger rows, sent papers and votes in it."""
    store = Store(engine_for(url))
    try:
        m.migrate(store._db, "0001")
    finally:
        store.close()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table, rows in legacy_schema.legacy_rows().items():
                for row in rows:
                    conn.execute(legacy_schema.metadata.tables[table].insert().values(**row))
    finally:
        engine.dispose()


def test_an_old_database_upgrades_backfills_and_matches_with_vectors(
    db_url: str, embedder: Embedder
) -> None:
    """Upgrading adds the vector tables and keeps every row; one-paper steps backfill every
    paper and every live profile's texts; then matching runs with the loaded vectors and the
    ledger, votes and sent papers read back as before."""
    written_by_the_release_before(db_url)
    before = legacy_schema.count_rows(db_url)
    store = Store(engine_for(db_url))
    try:
        store.migrate()
        assert store.schema_revision() == m.script().get_current_head()
        assert legacy_schema.count_rows(db_url) == before
        counts = store.vectors.counts(embedder.name)
        assert (counts.papers_with, counts.papers_without, counts.texts) == (0, 2, 0)

        catalog = load_catalog()
        papers_per_step = []
        while (done := embed_pending(store, embedder, limit=1, topics=catalog.topics)).texts or (
            done.papers
        ):
            papers_per_step.append(done.papers)
        assert papers_per_step[:2] == [1, 1] and sum(papers_per_step) == 2
        counts = store.vectors.counts(embedder.name)
        assert (counts.papers_with, counts.papers_without) == (2, 0)

        subs = store.subscribers.all([SubscriberStatus.ACTIVE])
        papers = store.papers.recent(days=None)
        texts = [t for s in subs for t in profile_texts(s.profile, catalog.topics)]
        assert texts  # "spiking networks" at least
        vectors = store.vectors.for_matching(embedder.name, papers, texts)
        assert set(vectors.papers) == {p.id for p in papers}
        assert set(vectors.texts) == set(texts)

        sent = store.ledger.sent_paper_ids([s.id for s in subs])
        (selection,) = select(
            papers,
            subs,
            catalog,
            Match(),
            edition_date=dt.date(2026, 7, 4),
            sent=sent,
            vectors=vectors,
        )
        shown = {sp.paper.id for sp in selection.papers}
        assert "2607.01011" not in shown  # sent before the upgrade: never again
        assert store.feedback.votes_of(subs[0].id) == {"2607.01011": 1}
    finally:
        store.close()
