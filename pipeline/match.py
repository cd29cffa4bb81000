"""Matching: papers × subscribers' profiles → ranked, explained selections. Pure and vectorised.

    relevance  = Σ topic components + interest component + author_boost·(a favourite author)
    score      = (relevance + feedback_weight·(liked − disliked)) · (1 + trending_weight·trend)
    trend      = ln(1 + upvotes) / ln(101)            (100 upvotes → 1)

A paper is eligible for a profile only if its relevance is positive and ≥ min_relevance, it has
no excluded keyword, enough upvotes and a positive score: popularity multiplies relevance, it
never creates it. Components are computed once per distinct topic, interest text and profile;
subscribers are handled in chunks of NumPy arrays, never scored one by one.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from itertools import islice

import numpy as np

from pipeline import config
from pipeline.errors import MatchError
from pipeline.models import Paper, Profile, ScoredPaper, Selection, Subscriber
from pipeline.relevance import TUNING, Index, Tuning, build_index
from pipeline.scoring import Prepared, ReasonMaker, Scored, prepare, score_profiles
from pipeline.topics import Catalog, load_catalog

__all__ = ["Catalog", "MatchError", "iter_select", "load_catalog", "rank", "select"]

CHUNK = 20_000  # subscribers per chunk: memory is ~CHUNK × papers × 4 bytes × a few arrays


def rank(
    papers: Sequence[Paper],
    profile: Profile,
    catalog: Catalog,
    weights: config.Match,
    *,
    tuning: Tuning = TUNING,
) -> list[ScoredPaper]:
    """Every eligible paper for an ad-hoc profile, best first (not capped by max_papers).

    Raises MatchError for a topic slug the catalog does not know.
    """
    catalog.check(profile.topics)
    index = build_index(papers, tuning)
    scored = score_profiles(prepare(index, catalog), [profile], weights)
    row = scored.final[0]
    cols = [int(c) for c in np.flatnonzero(np.isfinite(row))]
    cols.sort(key=lambda c: (-row[c], index.papers[c].id))
    return list(ReasonMaker(index, scored, catalog, weights).scored_papers(0, cols))


def select(
    papers: Sequence[Paper],
    subscribers: Sequence[Subscriber],
    catalog: Catalog,
    weights: config.Match,
    *,
    edition_date: dt.date,
    sent: Mapping[int, Collection[str]] | None = None,
    eligible: Mapping[int, Collection[str]] | None = None,
) -> list[Selection]:
    """One Selection per subscriber, in the given order; empty selections included.

    For very many subscribers prefer ``iter_select``, which keeps memory bounded.
    """
    # Building ~10 objects per subscriber makes the cyclic GC rescan every Selection built so
    # far, again and again (quadratic; half the time at 100k subscribers). Nothing here forms
    # cycles, so collection is paused while the list is built and restored afterwards.
    paused = gc.isenabled()
    gc.disable()
    try:
        return list(
            iter_select(
                papers,
                subscribers,
                catalog,
                weights,
                edition_date=edition_date,
                sent=sent,
                eligible=eligible,
            )
        )
    finally:
        if paused:
            gc.enable()


def iter_select(
    papers: Sequence[Paper],
    subscribers: Iterable[Subscriber],
    catalog: Catalog,
    weights: config.Match,
    *,
    edition_date: dt.date,
    sent: Mapping[int, Collection[str]] | None = None,
    eligible: Mapping[int, Collection[str]] | None = None,
    chunk_size: int = CHUNK,
    tuning: Tuning = TUNING,
) -> Iterator[Selection]:
    """Selections chunk by chunk, so memory stays bounded however many subscribers stream in.

    Each edition is the subscriber's top ``max_papers`` eligible papers, excluding ids in
    ``sent[id]`` (sent before, ever) and, when ``eligible`` has the subscriber, ids outside
    ``eligible[id]`` (papers first seen since their last edition). Subscribers absent from
    ``eligible`` are unrestricted. Unknown topic slugs are ignored (the web app validates them).
    """
    prepared = prepare(build_index(papers, tuning), catalog)
    stream = iter(subscribers)
    while chunk := list(islice(stream, chunk_size)):
        yield from _select_chunk(
            prepared, catalog, weights, chunk, edition_date, sent or {}, eligible
        )


def top_papers(
    prepared: Prepared,
    weights: config.Match,
    chunk: Sequence[Subscriber],
    sent: Mapping[int, Collection[str]],
    eligible: Mapping[int, Collection[str]] | None,
) -> tuple[Scored, np.ndarray, np.ndarray, np.ndarray]:
    """The array core of selection for one chunk, without building any model objects.

    Returns (scores, one row per subscriber; top columns per subscriber, best first; how many
    of them to take; how many papers were eligible in all).
    """
    index = prepared.index
    scored = score_profiles(prepared, [s.profile for s in chunk], weights)
    n_papers = index.size
    scores = scored.final
    if sent or eligible:
        _mask_per_subscriber(scores, index, chunk, sent, eligible)
    counts = np.isfinite(scores).sum(axis=1)
    k = min(int(scored.limits.max(initial=0)), n_papers)
    if k == 0:
        return scored, np.zeros((len(chunk), 0), dtype=np.intp), np.zeros_like(counts), counts
    return scored, _top_k(scores, k), np.minimum(counts, scored.limits), counts


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k best scores, best first; equal scores in column order.

    Columns are papers sorted by id, so ties always break by paper id.
    """
    n_papers = scores.shape[1]
    if k < n_papers:
        part = np.argpartition(scores, n_papers - k, axis=1)[:, n_papers - k :]
        part.sort(axis=1)
        # argpartition picks arbitrarily among scores equal to the k-th: redo those rare rows.
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1)
        in_part = (np.take_along_axis(scores, part, axis=1) == kth[:, None]).sum(axis=1)
        in_row = (scores == kth[:, None]).sum(axis=1)
        for row in np.flatnonzero((in_row > in_part) & np.isfinite(kth)):
            part[row] = np.sort(np.argsort(-scores[row], kind="stable")[:k])
    else:
        part = np.broadcast_to(np.arange(n_papers), scores.shape)
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _mask_per_subscriber(
    scores: np.ndarray,
    index: Index,
    chunk: Sequence[Subscriber],
    sent: Mapping[int, Collection[str]],
    eligible: Mapping[int, Collection[str]] | None,
) -> None:
    """Set -inf where a subscriber was already sent a paper or it is not new for them."""
    row_of = {paper.id: row for row, paper in enumerate(index.papers)}
    ids = row_of.keys()
    subscriber_ids = [s.id for s in chunk]
    rows: list[int] = []
    cols: list[int] = []
    for i, already in enumerate(map(sent.get, subscriber_ids)):
        if already:
            hit = [row_of[x] for x in ids & already]
            rows += [i] * len(hit)
            cols += hit
    for i, new in enumerate(map((eligible or {}).get, subscriber_ids)):
        if new is not None:
            fresh = ids & new
            old = [row for x, row in row_of.items() if x not in fresh]
            rows += [i] * len(old)
            cols += old
    scores[rows, cols] = -np.inf


def _select_chunk(
    prepared: Prepared,
    catalog: Catalog,
    weights: config.Match,
    chunk: Sequence[Subscriber],
    edition_date: dt.date,
    sent: Mapping[int, Collection[str]],
    eligible: Mapping[int, Collection[str]] | None,
) -> Iterator[Selection]:
    scored, top, take, counts = top_papers(prepared, weights, chunk, sent, eligible)
    make = ReasonMaker(prepared.index, scored, catalog, weights)
    # Plain lists: iterating NumPy scalars one by one costs more than the objects built here.
    tops, takes, totals = top.tolist(), take.tolist(), counts.tolist()
    for i, subscriber in enumerate(chunk):
        picked = make.scored_papers(i, tops[i][: takes[i]]) if takes[i] else ()
        yield Selection(
            subscriber_id=subscriber.id,
            edition_date=edition_date,
            papers=picked,
            more_count=totals[i] - len(picked),
        )
