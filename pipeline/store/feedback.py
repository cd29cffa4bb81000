"""Feedback and tokens: readers' 👍/👎 votes, and single-use tokens once spent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pipeline.errors import StoreError, SubscriberError
from pipeline.store import tables as s
from pipeline.store.engine import Database, utcnow


class Feedback:
    """One vote per (subscriber, paper); voting again replaces the earlier vote."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_vote(
        self, subscriber_id: int, paper_id: str, vote: int, now: dt.datetime | None = None
    ) -> None:
        """A 👍 (+1) or 👎 (-1); voting again replaces the earlier vote."""
        if vote not in (1, -1):
            raise SubscriberError(f"vote must be +1 or -1, not {vote!r}")
        now = now or utcnow()
        c = s.feedback.c
        with self._db.tx() as conn:
            conn.execute(
                delete(s.feedback).where(c.subscriber_id == subscriber_id, c.paper_id == paper_id)
            )
            conn.execute(
                insert(s.feedback).values(
                    subscriber_id=subscriber_id, paper_id=paper_id, vote=vote, created_at=now
                )
            )

    def votes_of(self, subscriber_id: int) -> dict[str, int]:
        c = s.feedback.c
        with self._db.tx() as conn:
            rows = conn.execute(select(c.paper_id, c.vote).where(c.subscriber_id == subscriber_id))
            return {r.paper_id: r.vote for r in rows}

    def vote_counts(self) -> dict[str, tuple[int, int]]:
        """Per paper: (👍 count, 👎 count), for the admin."""
        c = s.feedback.c
        out: dict[str, tuple[int, int]] = {}
        with self._db.tx() as conn:
            for row in conn.execute(
                select(c.paper_id, c.vote, func.count()).group_by(c.paper_id, c.vote)
            ):
                up, down = out.get(row[0], (0, 0))
                out[row[0]] = (up + row[2], down) if row[1] > 0 else (up, down + row[2])
        return out


class Tokens:
    """Hashes of single-use tokens already spent (confirm, unsubscribe, preference links)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def use(self, token_hash: str, purpose: str, now: dt.datetime | None = None) -> bool:
        """Mark a single-use token as spent; False if it was spent before."""
        try:
            with self._db.engine.begin() as conn:
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
