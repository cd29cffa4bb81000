"""Relearn every reader's liked and disliked terms from their recorded votes, with the new rule.

Votes used to learn a paper's raw title words ("exact", "runs", even the reader's own topic
word). This replays each subscriber's votes (the feedback table), oldest first, through the
pure rule of ``pipeline.votes`` against the stored papers, so only distinctive terms remain.
A subscriber whose lists hold terms but who has no recorded vote ends with empty lists: those
terms came from the old rule. Everything else in a profile stays as it was.

No schema change. Its SQL is written here, against table stubs of its own, and it reads and
writes the profile as plain JSON; the only app code it calls is the pure rule (with the
built-in topic catalog: config.toml's own topics are not known to a migration), so a database
upgraded later is relearned with the rule as it stands then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from pipeline.matching.topics import load_catalog
from pipeline.models import Paper, Profile, TermCounts
from pipeline.votes import relearn, terms_to_count

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TERM_SAMPLE = 5000  # papers counted per term, newest first, as the store does for a live vote

subscribers = sa.table("subscribers", sa.column("id", sa.Integer), sa.column("profile", sa.JSON))
feedback = sa.table(
    "feedback",
    sa.column("subscriber_id", sa.Integer),
    sa.column("paper_id", sa.String),
    sa.column("vote", sa.Integer),
    sa.column("created_at", sa.DateTime),
)
papers = sa.table(
    "papers",
    sa.column("id", sa.String),
    sa.column("title", sa.Text),
    sa.column("abstract", sa.Text),
    sa.column("keywords", sa.JSON),
    sa.column("source_format", sa.String),
    sa.column("first_seen_at", sa.DateTime),
)
aliases = sa.table("paper_aliases", sa.column("old_id", sa.String), sa.column("new_id", sa.String))


def upgrade() -> None:
    conn = op.get_bind()
    catalog = load_catalog()
    votes: dict[int, list[tuple[str, int]]] = {}
    order = (feedback.c.created_at, feedback.c.paper_id)
    for row in conn.execute(sa.select(feedback).order_by(*order)):
        votes.setdefault(row.subscriber_id, []).append((row.paper_id, row.vote))
    renamed = {r.old_id: r.new_id for r in conn.execute(sa.select(aliases))}
    wanted = {renamed.get(pid, pid) for held in votes.values() for pid, _ in held}
    found = _papers(conn, wanted)
    counted: dict[str, TermCounts] = {}
    for row in conn.execute(sa.select(subscribers.c.id, subscribers.c.profile)):
        profile: dict[str, Any] = dict(row.profile or {})
        held = votes.get(row.id, [])
        if not held and not profile.get("liked_terms") and not profile.get("disliked_terms"):
            continue
        replay = []
        for pid, sign in held:
            paper = found.get(renamed.get(pid, pid))
            if paper is None or sign not in (1, -1):
                continue  # a vote on a paper no longer stored teaches nothing
            if paper.id not in counted:
                counted[paper.id] = _counts(conn, terms_to_count(paper, catalog))
            replay.append((paper, sign, counted[paper.id]))
        reader = Profile(
            topics=tuple(profile.get("topics") or ()),
            interests=str(profile.get("interests") or ""),
            dismissed_terms=tuple(profile.get("dismissed_terms") or ()),
        )
        learned = relearn(reader, replay, catalog)
        profile["liked_terms"] = list(learned.liked_terms)
        profile["disliked_terms"] = list(learned.disliked_terms)
        conn.execute(subscribers.update().where(subscribers.c.id == row.id).values(profile=profile))


def downgrade() -> None:
    """The old code does not know ``dismissed_terms``; the relearned terms stay (the old
    rule's cannot be recovered, and the new ones are valid input to it)."""
    conn = op.get_bind()
    for row in conn.execute(sa.select(subscribers.c.id, subscribers.c.profile)):
        profile: dict[str, Any] = dict(row.profile or {})
        if "dismissed_terms" in profile:
            profile.pop("dismissed_terms")
            conn.execute(
                subscribers.update().where(subscribers.c.id == row.id).values(profile=profile)
            )


def _papers(conn: sa.Connection, ids: set[str]) -> dict[str, Paper]:
    out: dict[str, Paper] = {}
    chosen = sorted(ids)
    for start in range(0, len(chosen), 500):
        query = sa.select(papers).where(papers.c.id.in_(chosen[start : start + 500]))
        for row in conn.execute(query):
            out[row.id] = Paper(
                id=row.id,
                title=row.title,
                abstract=row.abstract or "",
                keywords=tuple(row.keywords or ()),
                source_format=row.source_format,
            )
    return out


def _counts(conn: sa.Connection, terms: Sequence[str]) -> TermCounts:
    """Papers among the newest ``TERM_SAMPLE`` whose title, abstract or keywords contain each
    term (keys as ``pipeline.votes.term_key`` makes them), in one scan."""
    c = papers.c
    joined = c.title + sa.literal(" ") + c.abstract + sa.literal(" ") + sa.cast(c.keywords, sa.Text)
    text = sa.func.lower(sa.func.replace(sa.func.replace(joined, "-", " "), "\n", " "))
    recent = (
        sa.select(text.label("text")).order_by(c.first_seen_at.desc()).limit(TERM_SAMPLE).subquery()
    )
    columns = [sa.func.count()] + [
        sa.func.coalesce(
            sa.func.sum(sa.case((recent.c.text.like(_pattern(t), escape="\\"), 1), else_=0)), 0
        )
        for t in terms
    ]
    row = conn.execute(sa.select(*columns).select_from(recent)).one()
    return TermCounts(
        papers=int(row[0]), counts={t: int(n) for t, n in zip(terms, row[1:], strict=True)}
    )


def _pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
