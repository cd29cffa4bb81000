"""The ``Store`` facade: one attribute per aggregate over one shared engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from pipeline.config import Config
from pipeline.store import migrate as migrations
from pipeline.store.engine import Database, engine_for
from pipeline.store.feedback import Feedback, Tokens
from pipeline.store.health import Health
from pipeline.store.leases import AdvisoryRole, LeaseRole, Leases, PlannerRole, SignupEvents
from pipeline.store.ledger import Ledger
from pipeline.store.optin import OptIn
from pipeline.store.papers import Papers
from pipeline.store.pauses import Pauses
from pipeline.store.reports import Reports
from pipeline.store.retention import Retention
from pipeline.store.subscribers import Subscribers
from pipeline.store.vectors import StoredVectors


class Store:
    """All reads and writes of paperboy's state, grouped by aggregate
    (``store.ledger.claim(...)``, ``store.papers.ingest(...)``). Each method is one
    transaction unless it says otherwise."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        db = Database(engine)
        self._db = db
        self.papers = Papers(db)
        self.subscribers = Subscribers(db)
        self.optin = OptIn(db)
        self.ledger = Ledger(db)
        self.feedback = Feedback(db)
        self.tokens = Tokens(db)
        self.leases = Leases(db)
        self.signups = SignupEvents(db)
        self.vectors = StoredVectors(db)
        self.pauses = Pauses(db)
        self.health = Health(db)
        self.retention = Retention(db)
        self.reports = Reports(db)

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def planner_role(self, holder: str, ttl: dt.timedelta) -> PlannerRole:
        """The planner election: a session advisory lock on PostgreSQL (free the moment its
        holder's session ends), the ``deliver`` lease row expiring after ``ttl`` elsewhere."""
        if self.dialect == "postgresql":
            return AdvisoryRole(self.engine, ttl)
        return LeaseRole(self.leases, holder, ttl)

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> int:
        """Bring the schema to the newest Alembic revision; return its place in the history."""
        return migrations.migrate(self._db)

    def schema_version(self) -> int:
        """The current revision's place in the history (the baseline is 1), for /healthz."""
        return migrations.current_version(self._db)

    def schema_revision(self) -> str | None:
        """The current Alembic revision id; None before the first migration."""
        return migrations.current_revision(self._db)


@contextmanager
def open_store(config: Config) -> Iterator[Store]:
    """Open the configured store, migrated to the latest schema; dispose of it on exit."""
    url = config.storage.url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    store = Store(engine_for(url, config.storage.busy_timeout_ms))
    try:
        store.migrate()
        yield store
    finally:
        store.close()
