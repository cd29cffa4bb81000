"""What a reader's 👍/👎 and their "remove" clicks do to their profile.

The rule is pure and lives in ``pipeline/votes.py``; this module feeds it the store's
document counts for the voted paper's candidate terms.
"""

from __future__ import annotations

from pipeline.matching.topics import Catalog
from pipeline.models import Paper, Profile
from pipeline.store import Store
from pipeline.votes import apply_vote, relearn, remove_term, terms_to_count


def learn(store: Store, catalog: Catalog, profile: Profile, paper: Paper, vote: int) -> Profile:
    """``profile`` after a vote of +1 or -1 on ``paper``, judged against the stored papers."""
    counts = store.feedback.term_counts(terms_to_count(paper, catalog))
    return apply_vote(profile, paper, vote, counts, catalog)


def unlearn(store: Store, catalog: Catalog, profile: Profile, subscriber_id: int) -> Profile:
    """``profile`` with its learned terms rebuilt from the subscriber's remaining votes, oldest
    first, as migration 0003 does: what an undone vote taught goes, and a term another vote
    also teaches stays. Dismissed terms stay dismissed."""
    held = store.feedback.history(subscriber_id)
    papers = store.papers.by_ids(pid for pid, _ in held)
    replay = [
        (papers[pid], vote, store.feedback.term_counts(terms_to_count(papers[pid], catalog)))
        for pid, vote in held
        if pid in papers  # a vote on a paper no longer stored teaches nothing
    ]
    return relearn(profile, replay, catalog)


def forget(profile: Profile, term: str) -> Profile:
    """``profile`` without the learned ``term``, which is dismissed for good."""
    return remove_term(profile, term)
