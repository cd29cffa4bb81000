"""Matching: papers × subscribers' profiles → ranked, explained selections. Pure and vectorised.

    relevance  = Σ topic components + interest component + author_boost·(a favourite author)
    score      = (relevance + feedback_weight·(liked − disliked)) · (1 + trending_weight·trend)
    trend      = ln(1 + upvotes) / ln(101)            (100 upvotes → 1)

A paper is eligible for a profile only if its relevance is positive and ≥ min_relevance, it has
no excluded keyword, enough upvotes and a positive score: popularity multiplies relevance, it
never creates it. Components are computed once per distinct topic, topic set and interest
text (kept from chunk to chunk, within bounds); subscribers are handled in chunks of NumPy
arrays, never scored one by one, and a chunk builds one ScoredPaper per distinct profile and paper.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from pipeline import config
from pipeline.embedding import Vectors
from pipeline.errors import MatchError
from pipeline.matching.reasons import ReasonMaker
from pipeline.matching.relevance import TUNING, Index, Tuning, build_index
from pipeline.matching.scoring import BLOCK, Prepared, Scored, prepare, score_profiles
from pipeline.matching.share import digest_first, single_relevance
from pipeline.matching.topics import Catalog, load_catalog
from pipeline.models import Paper, Profile, ScoredPaper, Selection, Subscriber

__all__ = ["Catalog", "MatchError", "iter_select", "load_catalog", "rank", "select"]

CHUNK = 20_000  # subscribers per chunk: memory is ~CHUNK × papers × 4 bytes × a few arrays


def rank(
    papers: Sequence[Paper],
    profile: Profile,
    catalog: Catalog,
    weights: config.Match,
    *,
    tuning: Tuning = TUNING,
    vectors: Vectors | None = None,
) -> list[ScoredPaper]:
    """Every eligible paper for an ad-hoc profile, best first (not capped by max_papers).

    Raises MatchError for a topic slug the catalog does not know.
    """
    catalog.check(profile.topics)
    index = build_index(papers, tuning)
    prepared = prepare(index, catalog, vectors)
    scored = score_profiles(prepared, [profile], weights)
    row = scored.final[0].tolist()
    cols = [int(c) for c in np.flatnonzero(~scored.ineligible[0])]
    cols.sort(key=lambda c: (-row[c], index.papers[c].id))
    make = ReasonMaker(index, scored, catalog, weights, meaning=_closest(prepared, scored, weights))
    return [make.scored_paper(0, col, row[col]) for col in cols]


def select(
    papers: Sequence[Paper],
    subscribers: Sequence[Subscriber],
    catalog: Catalog,
    weights: config.Match,
    *,
    edition_date: dt.date,
    sent: Mapping[int, Collection[str]] | None = None,
    eligible: Mapping[int, Collection[str]] | None = None,
    more: int = 0,
    vectors: Vectors | None = None,
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
                more=more,
                vectors=vectors,
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
    more: int = 0,
    chunk_size: int = CHUNK,
    tuning: Tuning = TUNING,
    vectors: Vectors | None = None,
) -> Iterator[Selection]:
    """Selections chunk by chunk, so memory stays bounded however many subscribers stream in.

    Each edition is the subscriber's top ``max_papers`` eligible papers, excluding ids in
    ``sent[id]`` (sent before, ever) and, when ``eligible`` has the subscriber, ids outside
    ``eligible[id]`` (papers first seen since their last edition). Subscribers absent from
    ``eligible`` are unrestricted. Unknown topic slugs are ignored (the web app validates them).

    ``more`` asks for up to that many further eligible papers per subscriber, after the
    edition's, as ``more_papers`` (scored and explained alike, for the web view); ``more_count``
    counts every eligible paper beyond the edition either way.
    """
    if more < 0:
        raise ValueError(f"more must be 0 or more, not {more}")
    prepared = prepare(build_index(papers, tuning), catalog, vectors)
    restrictions = Restrictions.build(prepared.index, sent or {}, eligible)
    stream = iter(subscribers)
    while chunk := list(islice(stream, chunk_size)):
        yield from _select_chunk(
            prepared, catalog, weights, chunk, edition_date, restrictions, more
        )


def top_papers(
    prepared: Prepared,
    weights: config.Match,
    chunk: Sequence[Subscriber],
    restrictions: Restrictions,
    more: int = 0,
) -> tuple[Scored, np.ndarray, np.ndarray, np.ndarray]:
    """The array core of selection for one chunk, without building any model objects.

    Returns (scores, one row per subscriber; top columns per subscriber, best first; how many
    of them to take, up to max_papers + ``more``; how many papers were eligible in all).
    """
    index = prepared.index
    # Both reads of a block of subscribers while it is in the CPU cache (see scoring.BLOCK).
    ids: list[int] = []
    profiles: list[Profile] = []
    for start in range(0, len(chunk), BLOCK):
        block = chunk[start : start + BLOCK]
        ids += [s.id for s in block]
        profiles += [s.profile for s in block]
    scored = score_profiles(prepared, profiles, weights)
    ineligible = scored.ineligible
    if restrictions:
        restrictions.apply(ineligible, np.array(ids, dtype=np.int64))
    counts = index.size - np.count_nonzero(ineligible, axis=1)
    wanted = scored.limits + more
    k = min(int(wanted.max(initial=0)), index.size)
    if k == 0:
        return scored, np.zeros((len(chunk), 0), dtype=np.intp), np.zeros_like(counts), counts
    return scored, top_k(scored.final, ineligible, k), np.minimum(counts, wanted), counts


def _closest(
    prepared: Prepared, scored: Scored, weights: config.Match
) -> Callable[[int, int, bool], str | None] | None:
    """For reasons: the interest item that found a paper by meaning, per (row, column).

    Named where closeness alone clears the floor that let the paper through (the interest's
    bar) and no topic names the paper, or else where it clears the stricter topics' bar: a
    topic pick is not also "close to" an interest it is merely near.
    """
    meaning = prepared.meaning
    if meaning is None:
        return None
    profiles = scored.profiles
    tuning = prepared.index.tuning
    loose = weights.min_relevance + tuning.meaning_bar
    strict = weights.min_relevance + max(tuning.meaning_bar, tuning.meaning_bar_topics)
    return lambda row, col, alone: meaning.closest(
        profiles[row].interests, col, loose if alone else strict
    )


def top_k(scores: np.ndarray, ineligible: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k best eligible scores, best first, then ineligible ones.

    Equal scores come in column order; columns are papers sorted by id, so ties always break
    by paper id. Eligible scores are positive float32, whose bit patterns order like their
    values: each becomes an int64 key, score bits above the column's rank, 0 if ineligible.
    Keys are distinct, so one partition and a sort of k keys per row give the exact order.
    """
    n_papers = scores.shape[1]
    keys = scores.view(np.int32).astype(np.int64)
    keys *= ~ineligible  # branch-free, unlike masked assignment
    keys <<= 32
    keys |= np.arange(n_papers - 1, -1, -1, dtype=np.int64)  # of equal scores, lower column
    if k < n_papers:
        keys.partition(n_papers - k, axis=1)
        keys = keys[:, n_papers - k :]
    keys.sort(axis=1)
    columns: np.ndarray = (n_papers - 1) - (keys[:, ::-1] & 0xFFFFFFFF)
    return columns


@dataclass(frozen=True)
class Restrictions:
    """Papers each subscriber may not get: sent before, or not new for them. Built once per run.

    ``sent`` and ``eligible`` become arrays keyed by subscriber id, so a chunk finds its rows
    with one sorted search instead of a dictionary lookup per subscriber.
    """

    sent_ids: np.ndarray  # subscriber id of each (subscriber, paper column) pair, sorted
    sent_cols: np.ndarray
    new_ids: np.ndarray  # subscribers restricted to new papers, sorted
    new_masks: np.ndarray  # the row of ``old`` for each of them
    old: np.ndarray  # masks × papers: True where the paper is not new

    def __bool__(self) -> bool:
        return bool(self.sent_ids.size or self.new_ids.size)

    @classmethod
    def build(
        cls,
        index: Index,
        sent: Mapping[int, Collection[str]],
        eligible: Mapping[int, Collection[str]] | None,
    ) -> Restrictions:
        col_of = {paper.id: col for col, paper in enumerate(index.papers)}
        ids = col_of.keys()
        sent_ids: list[int] = []
        sent_cols: list[int] = []
        for subscriber_id, already in sent.items():
            if already:
                hit = [col_of[x] for x in already if x in col_of]
                sent_ids += [subscriber_id] * len(hit)
                sent_cols += hit
        # Subscribers whose last edition went out together usually share one collection
        # object (or at least equal contents): one mask for each distinct one.
        # Keyed by id() while the object is held here: a mapping that makes its values as
        # they are read must not hand a freed object's id to the next one.
        masks: dict[frozenset[str], int] = {}
        mask_of_object: dict[int, tuple[Collection[str], int]] = {}
        new_ids: list[int] = []
        new_masks: list[int] = []
        for subscriber_id, new in (eligible or {}).items():
            if new is None:  # unrestricted, like a subscriber absent from ``eligible``
                continue
            held = mask_of_object.get(id(new))
            if held is None:
                held = mask_of_object[id(new)] = (new, masks.setdefault(frozenset(new), len(masks)))
            new_ids.append(subscriber_id)
            new_masks.append(held[1])
        old = np.ones((len(masks), index.size), dtype=bool)
        for m, new in enumerate(masks):
            old[m, [col_of[x] for x in ids & new]] = False
        sent_order = np.argsort(np.array(sent_ids, dtype=np.int64), kind="stable")
        new_order = np.argsort(np.array(new_ids, dtype=np.int64), kind="stable")
        return cls(
            np.array(sent_ids, dtype=np.int64)[sent_order],
            np.array(sent_cols, dtype=np.intp)[sent_order],
            np.array(new_ids, dtype=np.int64)[new_order],
            np.array(new_masks, dtype=np.intp)[new_order],
            old,
        )

    def apply(self, ineligible: np.ndarray, subscriber_ids: np.ndarray) -> None:
        """Mark the restricted papers of the subscribers in ``ineligible``'s rows."""
        order = np.argsort(subscriber_ids, kind="stable")
        ranked = subscriber_ids[order]
        if self.sent_ids.size:
            which, rows = _rows_of(ranked, order, self.sent_ids)
            ineligible[rows, self.sent_cols[which]] = True
        if self.new_ids.size:
            which, rows = _rows_of(ranked, order, self.new_ids)
            ineligible[rows] |= self.old[self.new_masks[which]]


def _rows_of(
    ranked: np.ndarray, order: np.ndarray, keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each (position in ``keys``, row) where a chunk row's subscriber id equals the key.

    ``ranked`` is the chunk's ids sorted and ``order`` their rows; an id may occur more than
    once in a chunk, and most keys belong to other chunks.
    """
    left = np.searchsorted(ranked, keys, side="left")
    right = np.searchsorted(ranked, keys, side="right")
    found = right - left
    which = np.repeat(np.arange(len(keys)), found)
    starts = np.repeat(left, found)
    within = np.arange(len(which)) - np.repeat(np.cumsum(found) - found, found)
    return which, order[starts + within]


def _select_chunk(
    prepared: Prepared,
    catalog: Catalog,
    weights: config.Match,
    chunk: Sequence[Subscriber],
    edition_date: dt.date,
    restrictions: Restrictions,
    more: int,
) -> Iterator[Selection]:
    scored, top, take, counts = top_papers(prepared, weights, chunk, restrictions, more)
    share = weights.relative_floor
    strength = single_relevance(prepared, scored, top) if share > 0 else None
    top, kept_array = digest_first(scored, top, take, share, strength)
    make = ReasonMaker(
        prepared.index, scored, catalog, weights, meaning=_closest(prepared, scored, weights)
    )
    # Every picked (row, paper) in row order; rows that score alike share one ScoredPaper,
    # so each distinct one is built once and the rest are gathered by index.
    picked = np.arange(top.shape[1]) < take[:, None]
    rows, cols = np.repeat(np.arange(len(chunk)), take), top[picked]
    keys = make.row_keys[rows] * prepared.index.size + cols
    _, first, which = np.unique(keys, return_index=True, return_inverse=True)
    made = [
        make.scored_paper(row, col, score)
        for row, col, score in zip(
            rows[first].tolist(),
            cols[first].tolist(),
            scored.final[rows[first], cols[first]].tolist(),
            strict=True,
        )
    ]
    papers = [made[i] for i in which.tolist()]
    # Plain lists: iterating NumPy scalars one by one costs more than the objects built here.
    ends, totals = np.cumsum(take).tolist(), counts.tolist()
    kept = kept_array.tolist()
    start = 0
    for subscriber, end, total, keep in zip(chunk, ends, totals, kept, strict=True):
        yield Selection(
            subscriber_id=subscriber.id,
            edition_date=edition_date,
            papers=tuple(papers[start : start + keep]),
            more_count=total - keep,
            more_papers=tuple(papers[start + keep : min(end, start + keep + more)]),
        )
        start = end
