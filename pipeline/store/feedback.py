"""Feedback and tokens: readers' 👍/👎 votes, and single-use tokens once spent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Text, case, cast, delete, func, insert, literal, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pipeline.errors import StoreError, SubscriberError
from pipeline.models import TermCounts
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

    def remove_vote(self, subscriber_id: int, paper_id: str, vote: int) -> bool:
        """Take back a vote; False unless the stored vote on the paper is ``vote`` (an undo from
        an old page must not remove the reader's later, opposite vote)."""
        c = s.feedback.c
        with self._db.tx() as conn:
            gone = conn.execute(
                delete(s.feedback).where(
                    c.subscriber_id == subscriber_id, c.paper_id == paper_id, c.vote == vote
                )
            )
            return bool(gone.rowcount)

    def history(self, subscriber_id: int) -> list[tuple[str, int]]:
        """The subscriber's votes as (paper id, vote), oldest first."""
        c = s.feedback.c
        query = (
            select(c.paper_id, c.vote)
            .where(c.subscriber_id == subscriber_id)
            .order_by(c.created_at, c.paper_id)
        )
        with self._db.tx() as conn:
            return [(r.paper_id, r.vote) for r in conn.execute(query)]

    def votes_of(self, subscriber_id: int) -> dict[str, int]:
        c = s.feedback.c
        with self._db.tx() as conn:
            rows = conn.execute(select(c.paper_id, c.vote).where(c.subscriber_id == subscriber_id))
            return {r.paper_id: r.vote for r in rows}

    def term_counts(self, terms: Sequence[str]) -> TermCounts:
        """Document frequency of each term over the newest stored papers (``term_counts``)."""
        return term_counts(self._db, terms)

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


# Document frequency is counted over the newest papers only: enough to tell a common term from
# a distinctive one, and one bounded scan per vote however large the archive grows.
TERM_SAMPLE = 5000


def like_pattern(term: str) -> str:
    """A LIKE pattern for ``term`` anywhere in a text (``\\`` escapes ``%`` and ``_``)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def term_counts(db: Database, terms: Sequence[str], sample: int = TERM_SAMPLE) -> TermCounts:
    """How many of the newest ``sample`` papers contain each term (already ``term_key``-ed:
    casefolded, hyphens as spaces) in their title, abstract or keywords, in one scan.

    A substring count: "runs" also counts "reruns". That only makes a term look more common,
    so the error falls on the side of learning less.
    """
    c = s.papers.c
    joined = c.title + literal(" ") + c.abstract + literal(" ") + cast(c.keywords, Text)
    text = func.lower(func.replace(func.replace(joined, "-", " "), "\n", " ")).label("text")
    recent = select(text).order_by(c.first_seen_at.desc()).limit(sample).subquery()
    wanted = list(dict.fromkeys(terms))
    columns = [func.count().label("papers")] + [
        func.coalesce(
            func.sum(case((recent.c.text.like(like_pattern(t), escape="\\"), 1), else_=0)), 0
        )
        for t in wanted
    ]
    with db.tx() as conn:
        row = conn.execute(select(*columns).select_from(recent)).one()
    return TermCounts(
        papers=int(row[0]), counts={t: int(n) for t, n in zip(wanted, row[1:], strict=True)}
    )


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
