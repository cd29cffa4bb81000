"""Sentence vectors: papers' (with the sha of the text they came from) and texts', per model.

A vector is stored as little-endian float32 bytes. A paper's row is current while its
``text_sha`` equals ``text_sha(paper_text(paper))``; the ingest transaction deletes the rows
of a paper whose title or abstract a merge changed (``papers.py``), so "papers lacking a
vector" is one anti-join, never a scan that re-hashes every paper.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite

from pipeline.embedding import Vector, Vectors, paper_text, text_sha
from pipeline.models import Paper
from pipeline.store import tables as s
from pipeline.store.engine import Database, chunks, model_from

DTYPE = np.dtype("<f4")


def to_bytes(vector: Vector) -> bytes:
    return np.ascontiguousarray(vector, dtype=DTYPE).tobytes()


def from_bytes(data: bytes) -> Vector:
    return np.frombuffer(data, dtype=DTYPE).astype(np.float32)


@dataclass(frozen=True, slots=True)
class VectorCounts:
    """How far the vectors have come, for the health status: papers with and without a
    vector of ``model``, and texts (interest items, topics) with one."""

    model: str
    papers_with: int
    papers_without: int
    texts: int


class StoredVectors:
    """The ``paper_vectors`` and ``text_vectors`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- papers ------------------------------------------------------------------------------

    def put_papers(self, model: str, rows: Iterable[tuple[str, str, Vector]]) -> int:
        """Store (paper id, text sha, vector) rows of ``model``, replacing older ones."""
        values = [
            {"paper_id": pid, "model": model, "text_sha": sha, "vector": to_bytes(vec)}
            for pid, sha, vec in rows
        ]
        with self._db.tx() as conn:
            for chunk in chunks(values):
                _upsert(conn, s.paper_vectors, chunk, ("paper_id", "model"))
        return len(values)

    def papers(self, model: str, ids: Iterable[str]) -> dict[str, tuple[str, Vector]]:
        """(text sha, vector) of ``model`` for each of ``ids`` that has one."""
        c = s.paper_vectors.c
        out: dict[str, tuple[str, Vector]] = {}
        with self._db.tx() as conn:
            for chunk in chunks(sorted(set(ids))):
                query = select(c.paper_id, c.text_sha, c.vector).where(
                    c.model == model, c.paper_id.in_(chunk)
                )
                for row in conn.execute(query):
                    out[row.paper_id] = (row.text_sha, from_bytes(row.vector))
        return out

    def pending_papers(self, model: str, limit: int) -> list[Paper]:
        """Up to ``limit`` papers without a vector of ``model``, newest first."""
        if limit <= 0:
            return []
        v = s.paper_vectors.c
        query = (
            select(s.papers)
            .outerjoin(s.paper_vectors, and_(v.paper_id == s.papers.c.id, v.model == model))
            .where(v.paper_id.is_(None))
            .order_by(s.papers.c.first_seen_at.desc(), s.papers.c.id)
            .limit(limit)
        )
        with self._db.tx() as conn:
            return [model_from(Paper, row) for row in conn.execute(query)]

    # --- texts -------------------------------------------------------------------------------

    def put_texts(self, model: str, vectors: Mapping[str, Vector]) -> int:
        """Store the vectors of ``model`` for these texts (by their sha), replacing older ones."""
        values = [
            {"model": model, "text_sha": text_sha(text), "vector": to_bytes(vec)}
            for text, vec in vectors.items()
        ]
        with self._db.tx() as conn:
            for chunk in chunks(values):
                _upsert(conn, s.text_vectors, chunk, ("model", "text_sha"))
        return len(values)

    def texts(self, model: str, texts: Iterable[str]) -> dict[str, Vector]:
        """The stored vector of ``model`` for each of ``texts`` that has one."""
        by_sha: dict[str, list[str]] = {}
        for text in texts:
            by_sha.setdefault(text_sha(text), []).append(text)
        c = s.text_vectors.c
        out: dict[str, Vector] = {}
        with self._db.tx() as conn:
            for chunk in chunks(sorted(by_sha)):
                query = select(c.text_sha, c.vector).where(c.model == model, c.text_sha.in_(chunk))
                for row in conn.execute(query):
                    vector = from_bytes(row.vector)
                    for text in by_sha[row.text_sha]:
                        out[text] = vector
        return out

    def missing_texts(self, model: str, texts: Iterable[str]) -> list[str]:
        """Those of ``texts`` (in their order, once each) without a vector of ``model``."""
        wanted = list(dict.fromkeys(texts))
        shas = {text: text_sha(text) for text in wanted}
        c = s.text_vectors.c
        have: set[str] = set()
        with self._db.tx() as conn:
            for chunk in chunks(sorted(set(shas.values()))):
                query = select(c.text_sha).where(c.model == model, c.text_sha.in_(chunk))
                have.update(conn.execute(query).scalars())
        return [text for text in wanted if shas[text] not in have]

    # --- for matching and for the health status ----------------------------------------------

    def for_matching(self, model: str, papers: Sequence[Paper], texts: Iterable[str]) -> Vectors:
        """The vectors of ``model`` that exist for these papers and texts. A paper's vector
        computed from another text than the paper's now is left out (matched lexically)."""
        stored = self.papers(model, [p.id for p in papers])
        current = {}
        for paper in papers:
            found = stored.get(paper.id)
            if found is not None and found[0] == text_sha(paper_text(paper)):
                current[paper.id] = found[1]
        return Vectors(model=model, papers=current, texts=self.texts(model, texts))

    def counts(self, model: str) -> VectorCounts:
        v = s.paper_vectors.c
        with self._db.tx() as conn:
            total = int(conn.execute(select(func.count()).select_from(s.papers)).scalar() or 0)
            with_vector = int(
                conn.execute(
                    select(func.count())
                    .select_from(s.papers.join(s.paper_vectors, v.paper_id == s.papers.c.id))
                    .where(v.model == model)
                ).scalar()
                or 0
            )
            texts = int(
                conn.execute(
                    select(func.count())
                    .select_from(s.text_vectors)
                    .where(s.text_vectors.c.model == model)
                ).scalar()
                or 0
            )
        return VectorCounts(model, with_vector, total - with_vector, texts)


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], key: tuple[str, ...]) -> None:
    """Insert ``rows``, replacing the text sha and vector of rows already there (two writers
    embedding the same paper at once both succeed; the later one's vector stays)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    update = {c: stmt.excluded[c] for c in rows[0] if c not in key}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=update), rows)


def delete_paper_vectors(conn: Connection, ids: Iterable[str]) -> None:
    """Drop every model's vector of these papers (inside the caller's transaction)."""
    for chunk in chunks(sorted(set(ids))):
        conn.execute(s.paper_vectors.delete().where(s.paper_vectors.c.paper_id.in_(chunk)))


def rekey_paper_vectors(conn: Connection, old_id: str, new_id: str) -> None:
    """A re-keyed paper keeps its vectors under its new id (inside the caller's transaction)."""
    c = s.paper_vectors.c
    conn.execute(s.paper_vectors.delete().where(c.paper_id == new_id))
    conn.execute(s.paper_vectors.update().where(c.paper_id == old_id).values(paper_id=new_id))
