"""The store: the only module that speaks SQL (SQLAlchemy Core), on SQLite or PostgreSQL.

``open_store(config)`` connects, migrates to the latest schema and returns a ``Store``. Each
public method is one transaction unless it says otherwise, so a failure never leaves half a
dump or half a delivery behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Text,
    and_,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pipeline import schema as s
from pipeline.config import Config
from pipeline.errors import StoreError, SubscriberError
from pipeline.models import (
    Delivery,
    DeliveryStatus,
    Dump,
    Frequency,
    IngestOutcome,
    Paper,
    Pick,
    Profile,
    Subscriber,
    SubscriberStatus,
)
from pipeline.papers import merge_dump, title_key

_CHUNK = 500  # ids per IN (...) clause: well under SQLite's and PostgreSQL's parameter limits


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def email_hash(email: str) -> str:
    """What a suppression remembers of an erased address: a hash, never the address."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def engine_for(url: str, busy_timeout_ms: int = 5000) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys on every connect."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions; BEGIN IMMEDIATE avoids
            # lock upgrades that would fail under concurrent writers.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def open_store(config: Config) -> Iterator[Store]:
    """Open the configured store, migrated to the latest schema; dispose of it on exit."""
    url = config.storage.url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        from pathlib import Path

        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    store = Store(engine_for(url, config.storage.busy_timeout_ms))
    try:
        store.migrate()
        yield store
    finally:
        store.close()


def _paper_row(p: Paper) -> dict[str, Any]:
    row = p.model_dump(exclude={"id"})
    row["id"] = p.id
    row["title_key"] = title_key(p.title)
    for key in ("authors", "keywords", "categories"):
        row[key] = list(row[key])
    return row


def _paper_from(row: Any) -> Paper:
    m = row._mapping
    return Paper(
        id=m["id"],
        arxiv_id=m["arxiv_id"],
        title=m["title"],
        abstract=m["abstract"],
        authors=tuple(m["authors"]),
        authors_count=m["authors_count"],
        organization=m["organization"],
        published=m["published"],
        upvotes=m["upvotes"],
        url=m["url"],
        pdf_url=m["pdf_url"],
        code_url=m["code_url"],
        project_url=m["project_url"],
        github_stars=m["github_stars"],
        keywords=tuple(m["keywords"]),
        categories=tuple(m["categories"]),
        ai_summary=m["ai_summary"],
        source_format=m["source_format"],
    )


_PAPER_COLUMNS = [c for c in s.papers.c if c.name not in ("first_seen_at", "updated_at")]


class Store:
    """All reads and writes of paperboy's state. Methods are transactions unless noted."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {e.__class__.__name__}: {e.args[0]}") from e

    # --- schema ------------------------------------------------------------------------------

    def schema_version(self) -> int:
        with self._tx() as conn:
            if not self.engine.dialect.has_table(conn, "schema_version"):
                return 0
            return int(conn.execute(select(func.max(s.schema_version.c.version))).scalar() or 0)

    def migrate(self) -> int:
        """Apply every pending migration, each in its own transaction; return the version."""
        with self._tx() as conn:
            s.schema_version.create(conn, checkfirst=True)
        current = self.schema_version()
        if current > len(s.MIGRATIONS):
            raise StoreError(
                f"database schema is version {current}, newer than this paperboy "
                f"({len(s.MIGRATIONS)}); upgrade paperboy"
            )
        for version in range(current, len(s.MIGRATIONS)):
            with self._tx() as conn:
                if self.dialect == "postgresql":
                    # Two processes starting together must not both migrate.
                    conn.exec_driver_sql("LOCK TABLE schema_version IN EXCLUSIVE MODE")
                    done = conn.execute(select(func.max(s.schema_version.c.version))).scalar()
                    if (done or 0) > version:
                        continue
                s.MIGRATIONS[version](conn)
                conn.execute(
                    insert(s.schema_version).values(version=version + 1, applied_at=utcnow())
                )
        return len(s.MIGRATIONS)

    # --- dumps and papers --------------------------------------------------------------------

    def has_dump(self, dump_id: str) -> bool:
        with self._tx() as conn:
            return (
                conn.execute(select(s.dumps.c.id).where(s.dumps.c.id == dump_id)).first()
                is not None
            )

    def ingest(self, dump: Dump, now: dt.datetime | None = None) -> IngestOutcome:
        """Store a parsed dump and merge its papers, all in one transaction; same bytes → no-op."""
        now = now or utcnow()
        base = {"dump_id": dump.id, "name": dump.name, "format": dump.format}
        warnings = tuple(str(w) for w in dump.warnings)
        with self._tx() as conn:
            if conn.execute(select(s.dumps.c.id).where(s.dumps.c.id == dump.id)).first():
                return IngestOutcome(**base, already_ingested=True, skipped=0)
            new, merged = self._upsert_papers(conn, dump, now)
            conn.execute(
                insert(s.dumps).values(
                    id=dump.id,
                    name=dump.name,
                    format=dump.format,
                    dump_date=dump.dump_date,
                    ingested_at=now,
                    paper_count=len(dump.papers),
                    warnings=list(warnings),
                )
            )
            ids = sorted(set(new) | set(merged))
            if ids:
                conn.execute(
                    insert(s.dump_papers), [{"dump_id": dump.id, "paper_id": i} for i in ids]
                )
        return IngestOutcome(
            **base,
            new=len(new),
            merged=len(dump.papers) - len(new),
            skipped=dump.skipped,
            warnings=warnings,
        )

    def _upsert_papers(
        self, conn: Connection, dump: Dump, now: dt.datetime
    ) -> tuple[list[str], list[str]]:
        """Merge the dump's papers into the table; return (new ids, merged ids)."""
        ids = {p.id for p in dump.papers}
        keys = {title_key(p.title) for p in dump.papers}
        existing: dict[str, Paper] = {}
        latest: dict[str, dt.date | None] = {}
        for chunk_ids, chunk_keys in _chunks_pair(sorted(ids), sorted(keys)):
            rows = conn.execute(
                select(s.papers).where(
                    or_(s.papers.c.id.in_(chunk_ids), s.papers.c.title_key.in_(chunk_keys))
                )
            ).all()
            for row in rows:
                paper = _paper_from(row)
                existing[paper.id] = paper
                latest[paper.id] = row._mapping["upvotes_as_of"]

        plan = merge_dump(existing, latest, dump)
        current, as_of, touched = plan.papers, plan.as_of, plan.touched
        for old_id, new_id in plan.renamed.items():
            if old_id in existing:
                self._rekey_paper(conn, old_id, new_id)
                existing[new_id] = existing.pop(old_id)
        inserts = [
            {
                **_paper_row(current[i]),
                "upvotes_as_of": as_of[i],
                "first_seen_at": now,
                "updated_at": now,
            }
            for i in sorted(touched)
            if i not in existing
        ]
        if inserts:
            conn.execute(insert(s.papers), inserts)
        for i in sorted(touched & existing.keys()):
            conn.execute(
                update(s.papers)
                .where(s.papers.c.id == i)
                .values(**_paper_row(current[i]), upvotes_as_of=as_of[i], updated_at=now)
            )
        return sorted(plan.fresh), sorted(plan.merged)

    def _rekey_paper(self, conn: Connection, old_id: str, new_id: str) -> None:
        """Give a title-keyed paper its arXiv id everywhere it is referenced."""
        conn.execute(update(s.papers).where(s.papers.c.id == old_id).values(id=new_id))
        for table in (s.dump_papers, s.sent_papers, s.feedback):
            conn.execute(update(table).where(table.c.paper_id == old_id).values(paper_id=new_id))
        _rekey_deliveries(conn, old_id, new_id)
        conn.execute(
            update(s.paper_aliases).where(s.paper_aliases.c.new_id == old_id).values(new_id=new_id)
        )
        conn.execute(insert(s.paper_aliases).values(old_id=old_id, new_id=new_id))

    def get_paper(self, paper_id: str) -> Paper | None:
        with self._tx() as conn:
            row = conn.execute(select(s.papers).where(s.papers.c.id == paper_id)).first()
        return _paper_from(row) if row else None

    def find_paper(self, paper_id: str) -> Paper | None:
        """The paper by its id, or by an id it had before it was re-keyed."""
        with self._tx() as conn:
            row = conn.execute(select(s.papers).where(s.papers.c.id == paper_id)).first()
            if row is None:
                alias = select(s.paper_aliases.c.new_id).where(s.paper_aliases.c.old_id == paper_id)
                row = conn.execute(
                    select(s.papers).where(s.papers.c.id == alias.scalar_subquery())
                ).first()
        return _paper_from(row) if row else None

    def papers_by_id(self, ids: Iterable[str]) -> dict[str, Paper]:
        out: dict[str, Paper] = {}
        with self._tx() as conn:
            for chunk in _chunks(sorted(set(ids))):
                for row in conn.execute(select(s.papers).where(s.papers.c.id.in_(chunk))):
                    out[row.id] = _paper_from(row)
        return out

    def count_papers(self) -> int:
        with self._tx() as conn:
            return int(conn.execute(select(func.count()).select_from(s.papers)).scalar() or 0)

    def recent_papers(
        self, days: float | None = 7, now: dt.datetime | None = None, limit: int | None = None
    ) -> list[Paper]:
        """Papers first seen in the last ``days`` (all when None), most upvoted first."""
        return [p for p, _ in self.papers_seen_since(_since(days, now), limit)]

    def papers_seen_since(
        self, since: dt.datetime | None, limit: int | None = None
    ) -> list[tuple[Paper, dt.datetime]]:
        """(paper, first_seen_at) for papers first stored after ``since``, most upvoted first."""
        query = select(s.papers).order_by(s.papers.c.upvotes.desc(), s.papers.c.id)
        if since is not None:
            query = query.where(s.papers.c.first_seen_at > since)
        if limit is not None:
            query = query.limit(limit)
        with self._tx() as conn:
            return [(_paper_from(r), r._mapping["first_seen_at"]) for r in conn.execute(query)]

    def list_dumps(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(select(s.dumps).order_by(s.dumps.c.ingested_at)).all()
        return [dict(r._mapping) for r in rows]

    # --- subscribers -------------------------------------------------------------------------

    def add_subscriber(
        self,
        email: str,
        *,
        profile: Profile | None = None,
        status: SubscriberStatus = SubscriberStatus.PENDING,
        timezone: str = "UTC",
        send_hour: int = 7,
        frequency: Frequency = Frequency.DAILY,
        weekly_day: int = 0,
        consent: dict[str, Any] | None = None,
        now: dt.datetime | None = None,
    ) -> Subscriber:
        """Create a subscriber; SubscriberError if the address exists or is suppressed."""
        entry = {
            "email": email,
            "profile": profile,
            "status": status,
            "timezone": timezone,
            "send_hour": send_hour,
            "frequency": frequency,
            "weekly_day": weekly_day,
            "consent": consent,
        }
        [new_id] = self.add_subscribers([entry], now)
        sub = self.get_subscriber(new_id)
        assert sub is not None
        return sub

    def get_subscriber(self, subscriber_id: int) -> Subscriber | None:
        with self._tx() as conn:
            row = conn.execute(
                select(s.subscribers).where(s.subscribers.c.id == subscriber_id)
            ).first()
        return _subscriber_from(row) if row else None

    def find_subscriber(self, email: str) -> Subscriber | None:
        with self._tx() as conn:
            row = conn.execute(
                select(s.subscribers).where(func.lower(s.subscribers.c.email) == email.lower())
            ).first()
        return _subscriber_from(row) if row else None

    def subscriber_record(self, subscriber_id: int) -> dict[str, Any] | None:
        """Everything stored about one subscriber, for 'export my data' and ``show``."""
        with self._tx() as conn:
            row = conn.execute(
                select(s.subscribers).where(s.subscribers.c.id == subscriber_id)
            ).first()
            if row is None:
                return None
            record = dict(row._mapping)
            record["deliveries"] = [
                dict(r._mapping)
                for r in conn.execute(
                    select(s.deliveries).where(s.deliveries.c.subscriber_id == subscriber_id)
                )
            ]
            record["feedback"] = [
                dict(r._mapping)
                for r in conn.execute(
                    select(s.feedback).where(s.feedback.c.subscriber_id == subscriber_id)
                )
            ]
        return record

    def list_subscribers(
        self, statuses: Sequence[SubscriberStatus] | None = None
    ) -> list[Subscriber]:
        query = select(s.subscribers).order_by(s.subscribers.c.id)
        if statuses:
            query = query.where(s.subscribers.c.status.in_([x.value for x in statuses]))
        with self._tx() as conn:
            return [_subscriber_from(r) for r in conn.execute(query)]

    def iter_subscribers(
        self, statuses: Sequence[SubscriberStatus] | None = None, page: int = 10_000
    ) -> Iterator[list[Subscriber]]:
        """Subscribers in id order, ``page`` at a time, each page its own short read: a
        million readers never sit in memory together, and no transaction stays open while the
        caller works on a page."""
        after = 0
        while True:
            query = (
                select(s.subscribers)
                .where(s.subscribers.c.id > after)
                .order_by(s.subscribers.c.id)
                .limit(page)
            )
            if statuses:
                query = query.where(s.subscribers.c.status.in_([x.value for x in statuses]))
            with self._tx() as conn:
                found = [_subscriber_from(r) for r in conn.execute(query)]
            if not found:
                return
            yield found
            after = found[-1].id

    def update_subscriber(self, subscriber_id: int, **fields: Any) -> Subscriber:
        """Change columns of one subscriber (profile as a Profile, enums as enums)."""
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key not in s.subscribers.c or key in ("id", "email"):
                raise SubscriberError(f"cannot change subscriber field {key!r}")
            if isinstance(value, Profile):
                value = value.model_dump(mode="json")
            elif isinstance(value, (SubscriberStatus, Frequency)):
                value = value.value
            values[key] = value
        with self._tx() as conn:
            done = conn.execute(
                update(s.subscribers).where(s.subscribers.c.id == subscriber_id).values(**values)
            ).rowcount
        if not done:
            raise SubscriberError(f"no subscriber with id {subscriber_id}")
        sub = self.get_subscriber(subscriber_id)
        assert sub is not None
        return sub

    def set_status(
        self, subscriber_id: int, status: SubscriberStatus, now: dt.datetime | None = None
    ) -> Subscriber:
        now = now or utcnow()
        extra: dict[str, Any] = {}
        if status == SubscriberStatus.ACTIVE:
            extra["confirmed_at"] = now
        if status == SubscriberStatus.UNSUBSCRIBED:
            extra["unsubscribed_at"] = now
        return self.update_subscriber(subscriber_id, status=status, **extra)

    def delete_subscriber(self, subscriber_id: int, reason: str = "erased on request") -> bool:
        """Erase a subscriber and their history, keeping only a suppression hash."""
        with self._tx() as conn:
            row = conn.execute(
                select(s.subscribers.c.email).where(s.subscribers.c.id == subscriber_id)
            ).first()
            if row is None:
                return False
            for table in (s.deliveries, s.sent_papers, s.feedback):
                conn.execute(delete(table).where(table.c.subscriber_id == subscriber_id))
            conn.execute(delete(s.subscribers).where(s.subscribers.c.id == subscriber_id))
            self._suppress(conn, row.email, reason)
        return True

    def suppress(self, email: str, reason: str) -> None:
        """Never mail this address again (hard bounce, complaint, erasure)."""
        with self._tx() as conn:
            self._suppress(conn, email, reason)
            conn.execute(
                update(s.subscribers)
                .where(func.lower(s.subscribers.c.email) == email.lower())
                .values(status=SubscriberStatus.SUPPRESSED.value)
            )

    def _suppress(self, conn: Connection, email: str, reason: str) -> None:
        digest = email_hash(email)
        if conn.execute(
            select(s.suppressions.c.email_hash).where(s.suppressions.c.email_hash == digest)
        ).first():
            return
        conn.execute(
            insert(s.suppressions).values(email_hash=digest, reason=reason, created_at=utcnow())
        )

    def is_suppressed(self, email: str) -> bool:
        with self._tx() as conn:
            return (
                conn.execute(
                    select(s.suppressions.c.email_hash).where(
                        s.suppressions.c.email_hash == email_hash(email)
                    )
                ).first()
                is not None
            )

    def unsuppress(self, email: str) -> bool:
        """Allow the address again; False if it was not suppressed. A bounced reader's row
        (kept, status suppressed) becomes unsubscribed, from where signing up starts over."""
        with self._tx() as conn:
            lifted = conn.execute(
                delete(s.suppressions).where(s.suppressions.c.email_hash == email_hash(email))
            ).rowcount
            conn.execute(
                update(s.subscribers)
                .where(
                    func.lower(s.subscribers.c.email) == email.lower(),
                    s.subscribers.c.status == SubscriberStatus.SUPPRESSED.value,
                )
                .values(status=SubscriberStatus.UNSUBSCRIBED.value)
            )
        return bool(lifted)

    def claim_confirmation(
        self, subscriber_id: int, every: dt.timedelta, now: dt.datetime | None = None
    ) -> bool:
        """Take the right to mail this subscriber a confirmation now; False if one went out
        within ``every``. One UPDATE, so concurrent sign-ups of one address claim it once."""
        now = now or utcnow()
        c = s.subscribers.c
        with self._tx() as conn:
            taken = conn.execute(
                update(s.subscribers)
                .where(
                    c.id == subscriber_id,
                    or_(c.confirmation_sent_at.is_(None), c.confirmation_sent_at <= now - every),
                )
                .values(confirmation_sent_at=now)
            ).rowcount
        return bool(taken)

    def change_status(
        self,
        subscriber_id: int,
        status: SubscriberStatus,
        *,
        only_from: Sequence[SubscriberStatus],
        now: dt.datetime | None = None,
    ) -> bool:
        """Set ``status`` only if the current one is in ``only_from`` (one conditional UPDATE,
        so a confirmation racing an unsubscribe cannot undo it); False if nothing changed."""
        now = now or utcnow()
        c = s.subscribers.c
        extra: dict[str, Any] = {}
        if status == SubscriberStatus.ACTIVE:
            extra["confirmed_at"] = func.coalesce(c.confirmed_at, now)
        if status == SubscriberStatus.UNSUBSCRIBED:
            extra["unsubscribed_at"] = now
        with self._tx() as conn:
            done = conn.execute(
                update(s.subscribers)
                .where(c.id == subscriber_id, c.status.in_([x.value for x in only_from]))
                .values(status=status.value, **extra)
            ).rowcount
        return bool(done)

    def add_subscribers(
        self, entries: Sequence[dict[str, Any]], now: dt.datetime | None = None
    ) -> list[int]:
        """Create many subscribers in one transaction (all or none); each entry takes
        ``add_subscriber``'s keyword arguments. SubscriberError names the first refused address."""
        now = now or utcnow()
        rows = []
        for entry in entries:
            status = SubscriberStatus(entry.get("status") or SubscriberStatus.PENDING)
            rows.append(
                {
                    "email": entry["email"],
                    "status": status.value,
                    "timezone": entry.get("timezone", "UTC"),
                    "send_hour": entry.get("send_hour", 7),
                    "frequency": Frequency(entry.get("frequency") or Frequency.DAILY).value,
                    "weekly_day": entry.get("weekly_day", 0),
                    "profile": (entry.get("profile") or Profile()).model_dump(mode="json"),
                    "created_at": now,
                    "confirmed_at": now if status == SubscriberStatus.ACTIVE else None,
                    "consent": entry.get("consent") or {},
                }
            )
        ids: list[int] = []
        try:
            with self.engine.begin() as conn:
                for row in rows:
                    if conn.execute(
                        select(s.suppressions.c.email_hash).where(
                            s.suppressions.c.email_hash == email_hash(row["email"])
                        )
                    ).first():
                        raise SubscriberError(
                            f"{row['email']} is suppressed (it bounced or asked to be erased)"
                        )
                    if conn.execute(
                        select(s.subscribers.c.id).where(
                            func.lower(s.subscribers.c.email) == row["email"].lower()
                        )
                    ).first():
                        raise SubscriberError(f"{row['email']} is already a subscriber")
                    ids.append(
                        conn.execute(
                            insert(s.subscribers).values(**row).returning(s.subscribers.c.id)
                        ).scalar_one()
                    )
        except IntegrityError:
            # Lost a race with another writer between the check and the insert.
            raise SubscriberError("an address in the batch is already a subscriber") from None
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {e}") from e
        return ids

    # --- deliveries ledger -------------------------------------------------------------------

    def queue_delivery(
        self,
        subscriber_id: int,
        edition: dt.date,
        message_id: str,
        paper_ids: Sequence[str],
        now: dt.datetime | None = None,
        *,
        picks: Sequence[Pick] = (),
        more_count: int = 0,
        more_picks: Sequence[Pick] = (),
    ) -> Delivery:
        """The ledger row for this edition, created as queued if new (idempotent).

        ``picks`` (score and reasons per paper) and ``more_count`` are what a resend renders;
        ``more_picks`` the further matches the web view lists (never marked sent)."""
        now = now or utcnow()
        with self._tx() as conn:
            row = _delivery_row(conn, subscriber_id, edition)
            if row is None:
                conn.execute(
                    insert(s.deliveries).values(
                        subscriber_id=subscriber_id,
                        edition_date=edition,
                        status=DeliveryStatus.QUEUED.value,
                        message_id=message_id,
                        attempts=0,
                        paper_ids=list(paper_ids),
                        picks=_picks_json(picks),
                        more_count=more_count,
                        more_picks=_picks_json(more_picks),
                        updated_at=now,
                    )
                )
                row = _delivery_row(conn, subscriber_id, edition)
        assert row is not None
        return _delivery_from(row)

    def queue_deliveries(
        self,
        entries: Sequence[Delivery | tuple[int, dt.date, str, Sequence[str]]],
        now: dt.datetime | None = None,
    ) -> int:
        """``queue_delivery`` for many rows in one transaction; rows that exist are left alone.
        Returns how many were new. An entry is a ``Delivery`` (its picks and more_count are
        kept for resends, its more_picks for the web view) or a bare (subscriber, edition,
        message id, paper ids)."""
        now = now or utcnow()
        c = s.deliveries.c
        new = 0
        with self._tx() as conn:
            for chunk in _chunks([_as_queued(e) for e in entries]):
                existing = {
                    (r.subscriber_id, r.edition_date)
                    for r in conn.execute(
                        select(c.subscriber_id, c.edition_date).where(
                            c.subscriber_id.in_([d.subscriber_id for d in chunk]),
                            c.edition_date.in_(sorted({d.edition_date for d in chunk})),
                        )
                    )
                }
                rows = [
                    {
                        "subscriber_id": d.subscriber_id,
                        "edition_date": d.edition_date,
                        "status": DeliveryStatus.QUEUED.value,
                        "message_id": d.message_id,
                        "attempts": 0,
                        "paper_ids": list(d.paper_ids),
                        "picks": _picks_json(d.picks),
                        "more_count": d.more_count,
                        "more_picks": _picks_json(d.more_picks),
                        "updated_at": now,
                    }
                    for d in chunk
                    if (d.subscriber_id, d.edition_date) not in existing
                ]
                if rows:
                    conn.execute(insert(s.deliveries), rows)
                    new += len(rows)
        return new

    def record_skipped(
        self, subscriber_id: int, edition: dt.date, reason: str, now: dt.datetime | None = None
    ) -> None:
        """An edition with nothing to send: recorded so it is not reconsidered."""
        now = now or utcnow()
        with self._tx() as conn:
            if _delivery_row(conn, subscriber_id, edition) is None:
                conn.execute(
                    insert(s.deliveries).values(
                        subscriber_id=subscriber_id,
                        edition_date=edition,
                        status=DeliveryStatus.SKIPPED.value,
                        message_id="",
                        attempts=0,
                        paper_ids=[],
                        picks=[],
                        more_count=0,
                        more_picks=[],
                        last_error=reason,
                        updated_at=now,
                    )
                )
            conn.execute(
                update(s.subscribers)
                .where(s.subscribers.c.id == subscriber_id)
                .values(last_edition=edition)
            )

    def get_delivery(self, subscriber_id: int, edition: dt.date) -> Delivery | None:
        with self._tx() as conn:
            row = _delivery_row(conn, subscriber_id, edition)
        return _delivery_from(row) if row else None

    def list_deliveries(
        self, statuses: Sequence[DeliveryStatus] | None = None, edition: dt.date | None = None
    ) -> list[Delivery]:
        query = select(s.deliveries).order_by(
            s.deliveries.c.edition_date, s.deliveries.c.subscriber_id
        )
        if statuses:
            query = query.where(s.deliveries.c.status.in_([x.value for x in statuses]))
        if edition:
            query = query.where(s.deliveries.c.edition_date == edition)
        with self._tx() as conn:
            return [_delivery_from(r) for r in conn.execute(query)]

    def with_edition(self, edition: dt.date, subscriber_ids: Iterable[int]) -> set[int]:
        """Which of these subscribers already have a ledger row for ``edition`` (ids only:
        the rows themselves carry every pick and reason)."""
        c = s.deliveries.c
        out: set[int] = set()
        with self._tx() as conn:
            for chunk in _chunks(sorted(set(subscriber_ids))):
                query = select(c.subscriber_id).where(
                    c.edition_date == edition, c.subscriber_id.in_(chunk)
                )
                out.update(conn.execute(query).scalars())
        return out

    def due_deliveries(
        self, now: dt.datetime, stale_after: dt.timedelta, limit: int | None = None
    ) -> list[Delivery]:
        """Rows ready to (re)send: queued, deferred and due, or stuck in sending (a crash)."""
        c = s.deliveries.c
        query = (
            select(s.deliveries)
            .where(
                or_(
                    c.status == DeliveryStatus.QUEUED.value,
                    and_(c.status == DeliveryStatus.DEFERRED.value, c.next_attempt_at <= now),
                    and_(
                        c.status == DeliveryStatus.SENDING.value, c.claimed_at <= now - stale_after
                    ),
                )
            )
            .order_by(c.edition_date, c.subscriber_id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._tx() as conn:
            return [_delivery_from(r) for r in conn.execute(query)]

    def claim(
        self, subscriber_id: int, edition: dt.date, now: dt.datetime, stale_after: dt.timedelta
    ) -> Delivery | None:
        """Move a due row to ``sending`` and commit, so no other runner sends it; None if taken."""
        c = s.deliveries.c
        with self._tx() as conn:
            done = conn.execute(
                update(s.deliveries)
                .where(
                    c.subscriber_id == subscriber_id,
                    c.edition_date == edition,
                    or_(
                        c.status == DeliveryStatus.QUEUED.value,
                        and_(c.status == DeliveryStatus.DEFERRED.value, c.next_attempt_at <= now),
                        and_(
                            c.status == DeliveryStatus.SENDING.value,
                            c.claimed_at <= now - stale_after,
                        ),
                    ),
                )
                .values(
                    status=DeliveryStatus.SENDING.value,
                    claimed_at=now,
                    attempts=c.attempts + 1,
                    first_attempt_at=func.coalesce(c.first_attempt_at, now),
                    updated_at=now,
                )
            ).rowcount
            row = _delivery_row(conn, subscriber_id, edition) if done else None
        return _delivery_from(row) if row else None

    def mark_sent(
        self, subscriber_id: int, edition: dt.date, reply: str, now: dt.datetime | None = None
    ) -> None:
        """The server said 250: record it, and its papers as sent, in one transaction."""
        now = now or utcnow()
        with self._tx() as conn:
            row = _delivery_row(conn, subscriber_id, edition)
            if row is None:
                raise StoreError(f"no delivery for subscriber {subscriber_id} on {edition}")
            conn.execute(
                update(s.deliveries)
                .where(
                    s.deliveries.c.subscriber_id == subscriber_id,
                    s.deliveries.c.edition_date == edition,
                )
                .values(
                    status=DeliveryStatus.SENT.value,
                    server_reply=reply[:1000],
                    last_error=None,
                    next_attempt_at=None,
                    updated_at=now,
                )
            )
            paper_ids = list(row._mapping["paper_ids"])
            already = {
                r.paper_id
                for chunk in _chunks(paper_ids)
                for r in conn.execute(
                    select(s.sent_papers.c.paper_id).where(
                        s.sent_papers.c.subscriber_id == subscriber_id,
                        s.sent_papers.c.paper_id.in_(chunk),
                    )
                )
            }
            fresh = [p for p in dict.fromkeys(paper_ids) if p not in already]
            if fresh:
                conn.execute(
                    insert(s.sent_papers),
                    [
                        {
                            "subscriber_id": subscriber_id,
                            "paper_id": p,
                            "edition_date": edition,
                            "sent_at": now,
                        }
                        for p in fresh
                    ],
                )
            conn.execute(
                update(s.subscribers)
                .where(s.subscribers.c.id == subscriber_id)
                .values(last_edition=edition)
            )

    def mark_deferred(
        self,
        subscriber_id: int,
        edition: dt.date,
        error: str,
        next_attempt_at: dt.datetime,
        now: dt.datetime | None = None,
    ) -> None:
        self._set_delivery(
            subscriber_id,
            edition,
            status=DeliveryStatus.DEFERRED,
            last_error=error,
            next_attempt_at=next_attempt_at,
            now=now,
        )

    def mark_failed(
        self,
        subscriber_id: int,
        edition: dt.date,
        error: str,
        *,
        suppress_email: str | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """Give up on this edition; with ``suppress_email`` the address is never mailed again."""
        now = now or utcnow()
        with self._tx() as conn:
            _update_delivery(conn, subscriber_id, edition, DeliveryStatus.FAILED, error, None, now)
            if suppress_email:
                self._suppress(conn, suppress_email, f"permanent failure: {error[:200]}")
                conn.execute(
                    update(s.subscribers)
                    .where(s.subscribers.c.id == subscriber_id)
                    .values(status=SubscriberStatus.SUPPRESSED.value)
                )

    def release(self, subscriber_id: int, edition: dt.date, now: dt.datetime | None = None) -> None:
        """Undo a claim that never reached the server (e.g. the run aborted on auth failure)."""
        now = now or utcnow()
        c = s.deliveries.c
        with self._tx() as conn:
            conn.execute(
                update(s.deliveries)
                .where(
                    c.subscriber_id == subscriber_id,
                    c.edition_date == edition,
                    c.status == DeliveryStatus.SENDING.value,
                )
                .values(
                    status=DeliveryStatus.QUEUED.value,
                    attempts=func.max(c.attempts - 1, 0)
                    if self.dialect == "sqlite"
                    else func.greatest(c.attempts - 1, 0),
                    claimed_at=None,
                    updated_at=now,
                )
            )

    def _set_delivery(
        self,
        subscriber_id: int,
        edition: dt.date,
        *,
        status: DeliveryStatus,
        last_error: str | None,
        next_attempt_at: dt.datetime | None,
        now: dt.datetime | None,
    ) -> None:
        with self._tx() as conn:
            _update_delivery(
                conn, subscriber_id, edition, status, last_error, next_attempt_at, now or utcnow()
            )

    def sent_paper_ids(
        self, subscriber_ids: Iterable[int], among: Iterable[str] | None = None
    ) -> dict[int, set[str]]:
        """The papers each subscriber was ever sent; only those in ``among`` when given.

        Matching passes the day's candidate papers as ``among``: a long-time reader's whole
        history (thousands of rows each) would otherwise be loaded for every edition.
        """
        c = s.sent_papers.c
        paper_chunks = [None] if among is None else list(_chunks(sorted(set(among))))
        out: dict[int, set[str]] = {}
        with self._tx() as conn:
            for chunk in _chunks(sorted(set(subscriber_ids))):
                for papers in paper_chunks:
                    query = select(c.subscriber_id, c.paper_id).where(c.subscriber_id.in_(chunk))
                    if papers is not None:
                        query = query.where(c.paper_id.in_(papers))
                    for row in conn.execute(query):
                        out.setdefault(row.subscriber_id, set()).add(row.paper_id)
        return out

    def last_sent_at(self, subscriber_ids: Iterable[int]) -> dict[int, dt.datetime]:
        """When each subscriber's latest edition was accepted by the server."""
        c = s.deliveries.c
        out: dict[int, dt.datetime] = {}
        with self._tx() as conn:
            for chunk in _chunks(sorted(set(subscriber_ids))):
                for row in conn.execute(
                    select(c.subscriber_id, func.max(c.updated_at).label("at"))
                    .where(c.subscriber_id.in_(chunk), c.status == DeliveryStatus.SENT.value)
                    .group_by(c.subscriber_id)
                ):
                    out[row.subscriber_id] = (
                        row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)
                    )
        return out

    def cancel_deliveries(
        self, subscriber_id: int, reason: str, now: dt.datetime | None = None
    ) -> int:
        """Mark this subscriber's queued and deferred editions skipped, so none is sent."""
        now = now or utcnow()
        c = s.deliveries.c
        with self._tx() as conn:
            return int(
                conn.execute(
                    update(s.deliveries)
                    .where(
                        c.subscriber_id == subscriber_id,
                        c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.DEFERRED.value]),
                    )
                    .values(
                        status=DeliveryStatus.SKIPPED.value,
                        last_error=reason[:1000],
                        next_attempt_at=None,
                        updated_at=now,
                    )
                ).rowcount
            )

    # --- feedback, tokens, leases, rate limits -----------------------------------------------

    def record_vote(
        self, subscriber_id: int, paper_id: str, vote: int, now: dt.datetime | None = None
    ) -> None:
        """A 👍 (+1) or 👎 (-1); voting again replaces the earlier vote."""
        if vote not in (1, -1):
            raise SubscriberError(f"vote must be +1 or -1, not {vote!r}")
        now = now or utcnow()
        with self._tx() as conn:
            conn.execute(
                delete(s.feedback).where(
                    s.feedback.c.subscriber_id == subscriber_id, s.feedback.c.paper_id == paper_id
                )
            )
            conn.execute(
                insert(s.feedback).values(
                    subscriber_id=subscriber_id, paper_id=paper_id, vote=vote, created_at=now
                )
            )

    def votes_of(self, subscriber_id: int) -> dict[str, int]:
        with self._tx() as conn:
            return {
                r.paper_id: r.vote
                for r in conn.execute(
                    select(s.feedback.c.paper_id, s.feedback.c.vote).where(
                        s.feedback.c.subscriber_id == subscriber_id
                    )
                )
            }

    def vote_counts(self) -> dict[str, tuple[int, int]]:
        """Per paper: (👍 count, 👎 count), for the admin."""
        c = s.feedback.c
        out: dict[str, tuple[int, int]] = {}
        with self._tx() as conn:
            for row in conn.execute(
                select(c.paper_id, c.vote, func.count()).group_by(c.paper_id, c.vote)
            ):
                up, down = out.get(row[0], (0, 0))
                out[row[0]] = (up + row[2], down) if row[1] > 0 else (up, down + row[2])
        return out

    def use_token(self, token_hash: str, purpose: str, now: dt.datetime | None = None) -> bool:
        """Mark a single-use token as spent; False if it was spent before."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(s.used_tokens).values(
                        token_hash=token_hash, purpose=purpose, used_at=now or utcnow()
                    )
                )
        except IntegrityError:
            return False
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {e}") from e
        return True

    def acquire_lease(
        self, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime | None = None
    ) -> bool:
        """Take or renew the named lease; False while another holder's lease is unexpired."""
        now = now or utcnow()
        c = s.leases.c
        try:
            with self.engine.begin() as conn:
                taken = conn.execute(
                    update(s.leases)
                    .where(c.name == name, or_(c.holder == holder, c.expires_at <= now))
                    .values(holder=holder, expires_at=now + ttl)
                ).rowcount
                if taken:
                    return True
                if conn.execute(select(c.name).where(c.name == name)).first():
                    return False
                conn.execute(
                    insert(s.leases).values(name=name, holder=holder, expires_at=now + ttl)
                )
                return True
        except IntegrityError:
            return False  # another runner inserted the lease first
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {e}") from e

    def release_lease(self, name: str, holder: str) -> None:
        with self._tx() as conn:
            conn.execute(
                delete(s.leases).where(s.leases.c.name == name, s.leases.c.holder == holder)
            )

    def record_signup(self, ip: str, accepted: bool, now: dt.datetime | None = None) -> None:
        with self._tx() as conn:
            conn.execute(
                insert(s.signup_events).values(ip=ip, at=now or utcnow(), accepted=accepted)
            )

    def prune_signup_events(self, before: dt.datetime) -> int:
        """Delete sign-up events older than ``before``; returns how many went."""
        with self._tx() as conn:
            gone = conn.execute(delete(s.signup_events).where(s.signup_events.c.at < before))
            return int(gone.rowcount or 0)

    def signups_since(self, ip: str, since: dt.datetime) -> int:
        c = s.signup_events.c
        with self._tx() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(s.signup_events)
                    .where(c.ip == ip, c.at > since)
                ).scalar()
                or 0
            )


def _since(days: float | None, now: dt.datetime | None) -> dt.datetime | None:
    if days is None:
        return None
    return (now or utcnow()) - dt.timedelta(days=days)


def _chunks(items: Sequence[Any]) -> Iterator[list[Any]]:
    items = list(items)
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _chunks_pair(a: Sequence[str], b: Sequence[str]) -> Iterator[tuple[list[str], list[str]]]:
    for i in range(0, max(len(a), len(b)), _CHUNK):
        yield list(a[i : i + _CHUNK]), list(b[i : i + _CHUNK])


def _subscriber_from(row: Any) -> Subscriber:
    m = row._mapping
    return Subscriber(
        id=m["id"],
        email=m["email"],
        status=SubscriberStatus(m["status"]),
        timezone=m["timezone"],
        send_hour=m["send_hour"],
        frequency=Frequency(m["frequency"]),
        weekly_day=m["weekly_day"],
        profile=Profile.model_validate(m["profile"]),
        created_at=m["created_at"],
        confirmed_at=m["confirmed_at"],
        last_edition=m["last_edition"],
    )


def _delivery_row(conn: Connection, subscriber_id: int, edition: dt.date) -> Any:
    return conn.execute(
        select(s.deliveries).where(
            s.deliveries.c.subscriber_id == subscriber_id, s.deliveries.c.edition_date == edition
        )
    ).first()


def _delivery_from(row: Any) -> Delivery:
    m = row._mapping
    return Delivery(
        subscriber_id=m["subscriber_id"],
        edition_date=m["edition_date"],
        status=DeliveryStatus(m["status"]),
        message_id=m["message_id"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        first_attempt_at=m["first_attempt_at"],
        last_error=m["last_error"],
        server_reply=m["server_reply"],
        paper_ids=tuple(m["paper_ids"]),
        picks=tuple(Pick.model_validate(p) for p in m["picks"] or ()),
        more_count=m["more_count"] or 0,
        more_picks=tuple(Pick.model_validate(p) for p in m["more_picks"] or ()),
        updated_at=m["updated_at"],
    )


def _rekey_deliveries(conn: Connection, old_id: str, new_id: str) -> None:
    """Editions that list ``old_id`` list ``new_id`` instead: a resend still finds the paper,
    ``mark_sent`` records it under the id matching looks up, and the web view still shows it
    (among the papers sent or the further matches)."""
    c = s.deliveries.c
    # LIKE only narrows the scan (paper ids are [0-9a-z:.]); the lists are checked below.
    quoted = f'%"{old_id}"%'
    query = select(c.subscriber_id, c.edition_date, c.paper_ids, c.picks, c.more_picks).where(
        or_(cast(c.paper_ids, Text).like(quoted), cast(c.more_picks, Text).like(quoted))
    )
    for row in conn.execute(query).all():
        more = row.more_picks or []
        if old_id not in row.paper_ids and not any(p["paper_id"] == old_id for p in more):
            continue
        conn.execute(
            update(s.deliveries)
            .where(c.subscriber_id == row.subscriber_id, c.edition_date == row.edition_date)
            .values(
                paper_ids=[new_id if p == old_id else p for p in row.paper_ids],
                picks=_rekeyed(row.picks or [], old_id, new_id),
                more_picks=_rekeyed(more, old_id, new_id),
            )
        )


def _rekeyed(picks: list[dict[str, Any]], old_id: str, new_id: str) -> list[dict[str, Any]]:
    return [{**p, "paper_id": new_id} if p["paper_id"] == old_id else p for p in picks]


def _as_queued(entry: Delivery | tuple[int, dt.date, str, Sequence[str]]) -> Delivery:
    if isinstance(entry, Delivery):
        return entry
    sid, edition, message_id, paper_ids = entry
    return Delivery(
        subscriber_id=sid,
        edition_date=edition,
        status=DeliveryStatus.QUEUED,
        message_id=message_id,
        paper_ids=tuple(paper_ids),
    )


def _picks_json(picks: Sequence[Pick]) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json") for p in picks]


def _update_delivery(
    conn: Connection,
    subscriber_id: int,
    edition: dt.date,
    status: DeliveryStatus,
    error: str | None,
    next_attempt_at: dt.datetime | None,
    now: dt.datetime,
) -> None:
    done = conn.execute(
        update(s.deliveries)
        .where(
            s.deliveries.c.subscriber_id == subscriber_id, s.deliveries.c.edition_date == edition
        )
        .values(
            status=status.value,
            last_error=error[:1000] if error else None,
            next_attempt_at=next_attempt_at,
            claimed_at=None,
            updated_at=now,
        )
    ).rowcount
    if not done:
        raise StoreError(f"no delivery for subscriber {subscriber_id} on {edition}")
