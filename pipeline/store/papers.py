"""Papers and dumps: ingest a parsed dump, merge its papers, read them back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Text, cast, delete, func, insert, or_, select, update

from pipeline.embedding import paper_text
from pipeline.models import Dump, DumpHead, IngestOutcome, Paper
from pipeline.papers import MergePlan, merge_dump, title_key
from pipeline.store import tables as s
from pipeline.store.engine import CHUNK, Database, chunks, model_from, since, utcnow
from pipeline.store.vectors import delete_paper_vectors, rekey_paper_vectors

IN_PROGRESS = -1  # dumps.paper_count of a dump whose chunks are still being stored


def _paper_row(p: Paper) -> dict[str, Any]:
    row = p.model_dump()
    row["title_key"] = title_key(p.title)
    for key in ("authors", "keywords", "categories"):
        row[key] = list(row[key])
    return row


def _paper_from(row: Any) -> Paper:
    return model_from(Paper, row)


class Papers:
    """The papers table, the dumps they came from and the ids re-keyed papers had before."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def has_dump(self, dump_id: str) -> bool:
        """Whether the dump was ingested to the end (one still in progress does not count)."""
        with self._db.tx() as conn:
            found = conn.execute(
                select(s.dumps.c.id).where(s.dumps.c.id == dump_id, s.dumps.c.paper_count >= 0)
            ).first()
        return found is not None

    # A dump streamed in chunks: begin → add_chunk … → finish, each its own short transaction,
    # so the write lock is held per chunk. Until ``finish`` the dump's row has paper_count
    # IN_PROGRESS: a crash in between leaves it so, and ingesting the file again merges the
    # chunks stored already a second time — a no-op — and goes on.

    def begin(self, head: DumpHead, now: dt.datetime | None = None) -> bool:
        """Note the dump as in progress; False if it was ingested to the end before."""
        with self._db.tx() as conn:
            row = conn.execute(select(s.dumps.c.paper_count).where(s.dumps.c.id == head.id)).first()
            if row is not None:
                return bool(row.paper_count < 0)
            conn.execute(
                insert(s.dumps).values(
                    id=head.id,
                    name=head.name,
                    format=head.format,
                    dump_date=head.dump_date,
                    ingested_at=now or utcnow(),
                    paper_count=IN_PROGRESS,
                    warnings=[],
                )
            )
        return True

    def add_chunk(
        self, head: DumpHead, papers: tuple[Paper, ...], now: dt.datetime | None = None
    ) -> int:
        """Merge one chunk of the dump's papers in one transaction; how many were new."""
        chunk = Dump(
            id=head.id, name=head.name, format=head.format, dump_date=head.dump_date, papers=papers
        )
        with self._db.tx() as conn:
            new, merged = _upsert_papers(conn, chunk, now or utcnow())
            _link(conn, head.id, set(new) | set(merged))
        return len(new)

    def finish(
        self, head: DumpHead, papers: int, warnings: list[str], now: dt.datetime | None = None
    ) -> None:
        """Mark the dump ingested to the end, with its paper count and (kept) warnings."""
        with self._db.tx() as conn:
            conn.execute(
                update(s.dumps)
                .where(s.dumps.c.id == head.id)
                .values(ingested_at=now or utcnow(), paper_count=papers, warnings=warnings)
            )

    def ingest(self, dump: Dump, now: dt.datetime | None = None) -> IngestOutcome:
        """Store a parsed dump and merge its papers, all in one transaction; same bytes → no-op."""
        now = now or utcnow()
        base = {"dump_id": dump.id, "name": dump.name, "format": dump.format}
        warnings = tuple(str(w) for w in dump.warnings)
        with self._db.tx() as conn:
            row = conn.execute(select(s.dumps.c.paper_count).where(s.dumps.c.id == dump.id)).first()
            if row is not None and row.paper_count >= 0:
                return IngestOutcome(**base, already_ingested=True, skipped=0)
            if row is not None:  # a streamed ingest of these bytes stopped half-way
                conn.execute(delete(s.dumps).where(s.dumps.c.id == dump.id))
            new, merged = _upsert_papers(conn, dump, now)
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

    def get(self, paper_id: str) -> Paper | None:
        with self._db.tx() as conn:
            row = conn.execute(select(s.papers).where(s.papers.c.id == paper_id)).first()
        return _paper_from(row) if row else None

    def find(self, paper_id: str) -> Paper | None:
        """The paper by its id, or by an id it had before it was re-keyed."""
        with self._db.tx() as conn:
            row = conn.execute(select(s.papers).where(s.papers.c.id == paper_id)).first()
            if row is None:
                alias = select(s.paper_aliases.c.new_id).where(s.paper_aliases.c.old_id == paper_id)
                row = conn.execute(
                    select(s.papers).where(s.papers.c.id == alias.scalar_subquery())
                ).first()
        return _paper_from(row) if row else None

    def by_ids(self, ids: Iterable[str]) -> dict[str, Paper]:
        out: dict[str, Paper] = {}
        with self._db.tx() as conn:
            for chunk in chunks(sorted(set(ids))):
                for row in conn.execute(select(s.papers).where(s.papers.c.id.in_(chunk))):
                    out[row.id] = _paper_from(row)
        return out

    def count(self) -> int:
        with self._db.tx() as conn:
            return int(conn.execute(select(func.count()).select_from(s.papers)).scalar() or 0)

    def recent(
        self, days: float | None = 7, now: dt.datetime | None = None, limit: int | None = None
    ) -> list[Paper]:
        """Papers first seen in the last ``days`` (all when None), most upvoted first."""
        return [p for p, _ in self.seen_since(since(days, now), limit)]

    def latest(self, limit: int, days: float = 7) -> list[Paper]:
        """The most upvoted of the papers first seen in the ``days`` before the newest one:
        the latest dumps' papers however long ago the last ingest ran."""
        with self._db.tx() as conn:
            newest = conn.execute(select(func.max(s.papers.c.first_seen_at))).scalar()
        if newest is None:
            return []
        return [p for p, _ in self.seen_since(newest - dt.timedelta(days=days), limit)]

    def seen_since(
        self, after: dt.datetime | None, limit: int | None = None
    ) -> list[tuple[Paper, dt.datetime]]:
        """(paper, first_seen_at) for papers first stored after ``after``, most upvoted first."""
        query = select(s.papers).order_by(s.papers.c.upvotes.desc(), s.papers.c.id)
        if after is not None:
            query = query.where(s.papers.c.first_seen_at > after)
        if limit is not None:
            query = query.limit(limit)
        with self._db.tx() as conn:
            return [(_paper_from(r), r._mapping["first_seen_at"]) for r in conn.execute(query)]

    def dumps(self) -> list[dict[str, Any]]:
        with self._db.tx() as conn:
            query = select(s.dumps).where(s.dumps.c.paper_count >= 0)
            rows = conn.execute(query.order_by(s.dumps.c.ingested_at)).all()
        return [dict(r._mapping) for r in rows]


def _link(conn: Connection, dump_id: str, ids: set[str]) -> None:
    """Record the dump as a source of ``ids``, skipping those a previous attempt recorded."""
    c = s.dump_papers.c
    for chunk in chunks(sorted(ids)):
        known = set(
            conn.execute(
                select(c.paper_id).where(c.dump_id == dump_id, c.paper_id.in_(chunk))
            ).scalars()
        )
        rows = [{"dump_id": dump_id, "paper_id": i} for i in chunk if i not in known]
        if rows:
            conn.execute(insert(s.dump_papers), rows)


def _upsert_papers(conn: Connection, dump: Dump, now: dt.datetime) -> tuple[list[str], list[str]]:
    """Merge the dump's papers into the table; return (new ids, merged ids)."""
    existing, latest = _stored_matches(conn, dump)
    plan = merge_dump(existing, latest, dump)
    for old_id, new_id in plan.renamed.items():
        if old_id in existing:
            _rekey_paper(conn, old_id, new_id)
            existing[new_id] = existing.pop(old_id)
    _write_plan(conn, plan, set(existing), now)
    # A merge that changed what a paper is embedded as makes its vectors stale: drop them
    # here, in the same transaction, so the next backfill finds the paper lacking one.
    delete_paper_vectors(
        conn,
        [
            i
            for i in plan.touched & set(existing)
            if paper_text(existing[i]) != paper_text(plan.papers[i])
        ],
    )
    return sorted(plan.fresh), sorted(plan.merged)


def _stored_matches(
    conn: Connection, dump: Dump
) -> tuple[dict[str, Paper], dict[str, dt.date | None]]:
    """Stored papers sharing an id or a title key with the dump's, and their upvotes' dates."""
    ids = sorted({p.id for p in dump.papers})
    keys = sorted({title_key(p.title) for p in dump.papers})
    existing: dict[str, Paper] = {}
    latest: dict[str, dt.date | None] = {}
    for chunk_ids, chunk_keys in _chunks_pair(ids, keys):
        rows = conn.execute(
            select(s.papers).where(
                or_(s.papers.c.id.in_(chunk_ids), s.papers.c.title_key.in_(chunk_keys))
            )
        ).all()
        for row in rows:
            paper = _paper_from(row)
            existing[paper.id] = paper
            latest[paper.id] = row._mapping["upvotes_as_of"]
    return existing, latest


def _write_plan(conn: Connection, plan: MergePlan, stored: set[str], now: dt.datetime) -> None:
    inserts = [
        {
            **_paper_row(plan.papers[i]),
            "upvotes_as_of": plan.as_of[i],
            "first_seen_at": now,
            "updated_at": now,
        }
        for i in sorted(plan.touched)
        if i not in stored
    ]
    if inserts:
        conn.execute(insert(s.papers), inserts)
    for i in sorted(plan.touched & stored):
        conn.execute(
            update(s.papers)
            .where(s.papers.c.id == i)
            .values(**_paper_row(plan.papers[i]), upvotes_as_of=plan.as_of[i], updated_at=now)
        )


def _rekey_paper(conn: Connection, old_id: str, new_id: str) -> None:
    """Give a title-keyed paper its arXiv id everywhere it is referenced."""
    conn.execute(update(s.papers).where(s.papers.c.id == old_id).values(id=new_id))
    for table in (s.dump_papers, s.sent_papers, s.feedback):
        conn.execute(update(table).where(table.c.paper_id == old_id).values(paper_id=new_id))
    _rekey_deliveries(conn, old_id, new_id)
    rekey_paper_vectors(conn, old_id, new_id)
    conn.execute(
        update(s.paper_aliases).where(s.paper_aliases.c.new_id == old_id).values(new_id=new_id)
    )
    conn.execute(insert(s.paper_aliases).values(old_id=old_id, new_id=new_id))


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


def _chunks_pair(a: Sequence[str], b: Sequence[str]) -> Iterator[tuple[list[str], list[str]]]:
    for i in range(0, max(len(a), len(b)), CHUNK):
        yield list(a[i : i + CHUNK]), list(b[i : i + CHUNK])
