"""Profiles → score matrices over a paper index (the reasons behind them: reasons.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice

import numpy as np
import numpy.typing as npt
from scipy import sparse

from pipeline import config
from pipeline.embedding import Vectors
from pipeline.matching.interests import Item, combine, item_scores, parse_interest
from pipeline.matching.meaning import Meaning, build_meaning
from pipeline.matching.relevance import FloatArray, Index, coverage, phrase_hits, saturate, strength
from pipeline.matching.textproc import Analysis, analyze, normalize_name
from pipeline.matching.topics import Catalog
from pipeline.models import Profile

TREND_SCALE = math.log1p(100)  # 100 upvotes → trend 1
REASON_MIN = 0.05  # a component below this is noise, not a reason


@dataclass(frozen=True)
class Query:
    """One scoring component: weighted phrases, with the text shown for each in reasons.

    An interest has ``items`` instead: alternatives, scored each and combined (interests.py).
    """

    phrases: tuple[tuple[Analysis, float, str], ...]
    items: tuple[Item, ...] = ()
    catalog: bool = False  # a topic: its shown phrases count only where met whole in part


def topic_query(topic: config.Topic, description_weight: float) -> Query:
    """A topic: its title and each keyword are alternatives; the description is a weak hint."""
    parts = [(analyze(topic.title), 1.0, topic.title)]
    parts += [(analyze(k), 1.0, k) for k in topic.keywords]
    if topic.description:
        parts.append((analyze(topic.description), description_weight, ""))
    return Query(tuple(parts), catalog=True)


def text_query(text: str) -> Query:
    """Free text (an interest): a set of alternatives, any one of which makes a paper relevant."""
    return Query((), parse_interest(text))


def terms_query(terms: Sequence[str]) -> Query:
    """Liked or disliked terms: each one a phrase."""
    return Query(tuple((analyze(t), 1.0, t) for t in terms if t.strip()))


@dataclass
class ComponentScores:
    """papers × components scores in [0, 1), and papers × phrases coverage for reasons.

    Only topic reasons quote phrase coverage, so ``cover`` and ``offsets`` may describe just
    the first components (the topics) while ``scores`` goes on with free texts.
    """

    queries: list[Query]
    scores: FloatArray
    cover: FloatArray
    offsets: list[int]  # first phrase column of each component that has coverage
    items: dict[int, FloatArray] = field(default_factory=dict)  # interest → item_scores'


def score_queries(index: Index, queries: Sequence[Query]) -> ComponentScores:
    """Each query's component per paper; a query's scores never depend on the others."""
    analyses = [a for q in queries for a, _, _ in q.phrases]
    whole = [q.catalog and bool(shown) for q in queries for _, _, shown in q.phrases]
    cover = coverage(index, analyses, whole)
    offsets: list[int] = []
    member_rows: list[int] = []
    member_cols: list[int] = []
    member_w: list[float] = []
    for col, query in enumerate(queries):
        offsets.append(len(member_rows))
        for _, weight, _ in query.phrases:
            member_rows.append(len(member_rows))
            member_cols.append(col)
            member_w.append(weight)
    membership = sparse.csr_matrix(
        (member_w, (member_rows, member_cols)), shape=(len(analyses), len(queries))
    )
    raw = (
        np.asarray(membership.T @ strength(cover, index.tuning).T).T
        if queries
        else np.zeros((index.size, 0))
    )
    scores = saturate(raw, index.tuning)
    interests = [col for col, query in enumerate(queries) if query.items]
    tables = item_scores(index, [queries[col].items for col in interests])
    for col, table in zip(interests, tables, strict=True):
        scores[:, col] = combine(table[:, :, 0], index.tuning.alternatives)
    return ComponentScores(
        list(queries), scores, cover, offsets, dict(zip(interests, tables, strict=True))
    )


TextKey = tuple[str, tuple[str, ...]]  # ("interest", (text,)) or ("liked"/"disliked", terms)
TEXTS_KEPT = 10_000  # free texts whose scores are kept from chunk to chunk (papers floats each)
SETS_KEPT = 30_000  # topic sets whose relevance is kept from chunk to chunk (papers floats each)


class _SetRows:
    """float32 relevance of each distinct topic set to each paper, one row per set.

    Zipf-skewed topic sets repeat from chunk to chunk, so each is summed once per run. The
    table starts afresh once it passes SETS_KEPT sets, which bounds its memory.
    """

    def __init__(self) -> None:
        self.ids: dict[tuple[str, ...], int] = {}
        self.rows = np.zeros((0, 0), dtype=np.float32)


@dataclass(frozen=True)
class Prepared:
    """A paper index with the catalog's topics already scored: shared by every chunk.

    ``texts``, ``sets`` and ``exclusions`` keep each free text's scores, each topic set's
    summed relevance and each list of excluded keywords' hits between chunks, so popular
    ones are computed once per run.
    """

    index: Index
    slugs: dict[str, int]
    topics: ComponentScores
    texts: dict[TextKey, tuple[Query, FloatArray, FloatArray | None]] = field(default_factory=dict)
    sets: _SetRows = field(default_factory=_SetRows)
    exclusions: dict[tuple[str, ...], npt.NDArray[np.bool_]] = field(default_factory=dict)
    meaning: Meaning | None = None


def prepare(index: Index, catalog: Catalog, vectors: Vectors | None = None) -> Prepared:
    queries = [topic_query(catalog[slug], index.tuning.description) for slug in catalog]
    slugs = {slug: i for i, slug in enumerate(catalog)}
    meaning = build_meaning(index, catalog, vectors, index.tuning)
    return Prepared(index, slugs, score_queries(index, queries), meaning=meaning)


def _text_scores(
    prepared: Prepared, keys: list[TextKey]
) -> tuple[list[Query], FloatArray, dict[int, FloatArray]]:
    """Queries of ``keys``, their papers × keys scores and the item scores of interests by key
    position, scoring only texts not kept."""
    kept = prepared.texts
    missing = [key for key in keys if key not in kept]
    if len(kept) + len(missing) > TEXTS_KEPT:
        kept.clear()
        missing = keys
    fresh = score_queries(prepared.index, [_text_query(*key) for key in missing])
    found = {
        key: (query, fresh.scores[:, j], fresh.items.get(j))
        for j, (key, query) in enumerate(zip(missing, fresh.queries, strict=True))
    }
    if len(missing) <= TEXTS_KEPT:
        kept.update(found)
    rows = [found.get(key) or kept[key] for key in keys]
    scores = (
        np.stack([column for _, column, _ in rows], axis=1)
        if rows
        else np.zeros((prepared.index.size, 0))
    )
    items = {j: table for j, (_, _, table) in enumerate(rows) if table is not None}
    return [query for query, _, _ in rows], scores, items


def _set_relevance(
    prepared: Prepared, topic_sets: Sequence[tuple[str, ...]], set_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's topic set as a row of the kept table of float32 relevance (sets × papers).

    ``topic_sets`` are the chunk's distinct sets and ``set_of`` each row's index into them.
    """
    table = prepared.sets
    if len(table.ids) > SETS_KEPT:
        table.ids = {}
    ids = table.ids
    start = len(ids)
    # setdefault hashes each tuple once (tuples do not cache their hash).
    row_of_set = np.array([ids.setdefault(t, len(ids)) for t in topic_sets], dtype=np.intp)
    rows_of = row_of_set[set_of]
    sets = list(islice(ids, start, None))
    if not sets:
        return rows_of, table.rows
    cols = prepared.slugs
    flat = np.array([cols.get(slug, -1) for slugs in sets for slug in slugs], dtype=np.intp)
    lengths = np.array([len(slugs) for slugs in sets], dtype=np.intp)
    if prepared.meaning is not None:  # its rows of sets sit at the same positions
        prepared.meaning.put_sets(start, flat, lengths)
    set_rows = np.repeat(np.arange(len(sets)), lengths)
    known = flat >= 0  # unknown slugs are ignored; rank() checks them
    combo = sparse.csr_matrix(
        (np.ones(int(known.sum())), (set_rows[known], flat[known])),
        shape=(len(sets), len(cols)),
    )
    combo.sum_duplicates()
    combo.data[:] = 1.0  # a slug listed twice still counts once
    # float32 from here on: rows × papers is the big array, and 7 digits rank papers fine.
    fresh = np.asarray(combo @ prepared.topics.scores.T, dtype=np.float32)
    if start == 0:
        table.rows = fresh
        return rows_of, fresh
    if len(ids) > len(table.rows):  # grown by doubling (copies stay linear), up to the bound
        size = max(len(ids), min(2 * start, SETS_KEPT + len(set_of)))
        rows = np.empty((size, fresh.shape[1]), dtype=np.float32)
        rows[:start] = table.rows[:start]
        table.rows = rows
    table.rows[start : len(ids)] = fresh
    return rows_of, table.rows


@dataclass
class Scored:
    """Scores of one chunk of profiles (one row each), and which of them are ineligible.

    ``final`` is meaningful only where ``ineligible`` is False, and positive there.
    """

    profiles: Sequence[Profile]
    final: np.ndarray  # profiles × papers, float32
    ineligible: np.ndarray  # profiles × papers, bool
    limits: np.ndarray  # max_papers per row
    topic_cols: dict[str, int]
    components: ComponentScores  # topics first, then this chunk's texts
    text_cols: dict[TextKey, int]
    set_of: np.ndarray  # each row's topic set (rows with equal sets have equal ids)
    interest_of: np.ndarray  # each row's interest component, -1 for a blank interest
    special: list[int]  # rows with authors, exclusions or feedback
    lift: np.ndarray  # papers: what trending multiplied relevance by (final = relevance · lift)
    authored: tuple[list[int], list[int]]  # (rows, columns) of favourite authors' papers
    # Each row's rows of meaning's evidence tables (topic set, interest), when meaning is on.
    closeness: tuple[np.ndarray, np.ndarray] | None = None


@lru_cache(maxsize=50_000)
def _text_query(kind: str, key: tuple[str, ...]) -> Query:
    return text_query(key[0]) if kind == "interest" else terms_query(key)


@dataclass
class _Columns:
    """What the scorer needs from each profile, as arrays and distinct keys."""

    topic_sets: dict[tuple[str, ...], int]
    set_of: np.ndarray
    texts: dict[str, int]
    text_of: np.ndarray
    min_upvotes: np.ndarray
    limits: np.ndarray
    special: list[int]  # rows with authors, exclusions or feedback (a minority)


BLOCK = 512  # profiles read together; see _columns


def _columns(profiles: Sequence[Profile]) -> _Columns:
    """Read every profile's fields once, in blocks.

    This is the one loop over each subscriber in Python, and its cost is memory, not
    arithmetic: a chunk's pydantic objects do not fit in the CPU cache, so a pass per field
    over the whole chunk fetches every object once per field. Passing over BLOCK profiles at a
    time keeps a block's objects cached across its field passes (about half the time of whole-
    chunk passes, measured at 100k subscribers). One comprehension per field is still the
    cheapest way through each block (tuples of fields or attrgetter measured slower).
    """
    set_ids: dict[tuple[str, ...], int] = {}
    text_ids: dict[str, int] = {}
    set_of: list[int] = []
    text_of: list[int] = []
    min_upvotes: list[int] = []
    limits: list[int] = []
    special: list[int] = []
    for start in range(0, len(profiles), BLOCK):
        block = profiles[start : start + BLOCK]
        set_of += [set_ids.setdefault(p.topics, len(set_ids)) for p in block]
        text_of += [text_ids.setdefault(p.interests, len(text_ids)) for p in block]
        min_upvotes += [p.min_upvotes for p in block]
        limits += [p.max_papers for p in block]
        special += [
            start + i
            for i, p in enumerate(block)
            if p.authors or p.exclude or p.liked_terms or p.disliked_terms
        ]
    return _Columns(
        set_ids,
        np.array(set_of, dtype=np.intp),
        text_ids,
        np.array(text_of, dtype=np.intp),
        np.array(min_upvotes, dtype=np.int64),
        np.array(limits, dtype=np.intp),
        special,
    )


def score_profiles(
    prepared: Prepared, profiles: Sequence[Profile], weights: config.Match
) -> Scored:
    """Score each profile against every paper as a sparse combination of components.

    Each distinct topic set and interest text is scored once and gathered per row; authors,
    exclusions and feedback are rarer and handled only for the rows that have them.
    """
    index = prepared.index
    topic_cols = prepared.slugs
    c = _columns(profiles)
    keys: dict[TextKey, int] = {}  # this chunk's free texts, in order of first use
    # A blank interest adds nothing: it points at a row of zeros after the texts (-1).
    interest_of = [
        keys.setdefault(("interest", (t,)), len(keys)) if t.strip() else -1 for t in c.texts
    ]
    feedback: list[tuple[int, int, float]] = []
    voted = [i for i in c.special if profiles[i].liked_terms or profiles[i].disliked_terms]
    for i in voted if weights.feedback_weight else ():
        p = profiles[i]
        for kind, terms, sign in (
            ("liked", p.liked_terms, 1.0),
            ("disliked", p.disliked_terms, -1.0),
        ):
            if any(t.strip() for t in terms):
                key = keys.setdefault((kind, terms), len(keys))
                feedback.append((i, key, sign * weights.feedback_weight))
    queries, text_scores, items = _text_scores(prepared, list(keys))
    topics = prepared.topics
    n_topics = len(topic_cols)
    components = ComponentScores(
        topics.queries + queries,
        np.hstack([topics.scores, text_scores]),
        topics.cover,
        topics.offsets,
        {n_topics + j: table for j, table in items.items()},
    )
    # One row per distinct topic set and per distinct text, gathered once per subscriber.
    set_of, set_rel = _set_relevance(prepared, list(c.topic_sets), c.set_of)
    text_rel = np.zeros((len(keys) + 1, index.size), dtype=np.float32)
    text_rel[:-1] = text_scores.T
    text_of = np.array(interest_of, dtype=np.intp)[c.text_of]
    rel = set_rel[set_of]
    rel += text_rel[text_of]
    authored = _authored(index, profiles, c.special)
    rel[authored] += weights.author_boost  # once per paper, however many authors
    # Ineligible: not relevant (<= 0 or < min_relevance), too few upvotes, or excluded.
    closeness: tuple[np.ndarray, np.ndarray] | None = None
    if (meaning := prepared.meaning) is not None:
        bad, closeness = _blend_meaning(meaning, c, set_of, rel, weights.min_relevance)
    else:
        bad = (rel < weights.min_relevance) | (rel <= 0)
    picky = np.flatnonzero(c.min_upvotes)
    bad[picky] |= index.upvotes[None, :] < c.min_upvotes[picky, None]
    excluded_rows, excluded = _excluded(prepared, profiles, c.special)
    bad[excluded_rows] |= excluded
    if feedback:
        for i, key, weight in feedback:
            rel[i] += weight * text_scores[:, key]  # a nudge, after eligibility
        bad |= rel <= 0
    trend = (np.log1p(np.maximum(index.upvotes, 0)) / TREND_SCALE).astype(np.float32)
    lift = np.float32(1.0) + np.float32(weights.trending_weight) * trend
    rel *= lift
    text_cols = {key: n_topics + j for key, j in keys.items()}
    interest_cols = np.where(text_of >= 0, text_of + n_topics, -1)
    return Scored(
        profiles,
        rel,
        bad,
        c.limits,
        topic_cols,
        components,
        text_cols,
        set_of,
        interest_cols,
        c.special,
        lift,
        authored,
        closeness,
    )


def _authored(
    index: Index, profiles: Sequence[Profile], rows: list[int]
) -> tuple[list[int], list[int]]:
    """(rows, columns) of each paper by one of the row's favourite authors, each pair once."""
    hits = {
        (i, col)
        for i in rows
        for name in profiles[i].authors
        for col in index.authors.get(normalize_name(name), ())
    }
    ordered = sorted(hits)
    return [i for i, _ in ordered], [col for _, col in ordered]


def _blend_meaning(
    meaning: Meaning,
    c: _Columns,
    sets: np.ndarray,
    rel: np.ndarray,
    min_relevance: float,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Add closeness by meaning to ``rel`` in place; return where a paper is below the floor,
    and each row's rows of ``meaning.sets`` (``sets``, as in the kept table of topic sets)
    and ``meaning.interests``.

    Ranking counts closeness from ``meaning_floor``. The floor judges it from the higher
    ``meaning_eligible`` (``meaning_eligible_topics`` for a topic: a topic's keyword list sits
    close to a whole field), and where meaning can judge a pair the floor rises by
    ``meaning_bar_topics`` or ``meaning_bar`` (an interest), whichever side judges it: a stray
    word or two no longer carries a paper into a digest. Evidence is computed once per
    distinct topic set and interest, then gathered per row.
    """
    # A blank interest has no items, so its row is zeros and says it has no vector.
    texts = meaning.interest_rows(list(c.texts))[c.text_of]
    by_set, by_text = meaning.sets, meaning.interests
    # Each key's judge is already less its side's bar (meaning.Rows), so the larger of the
    # two is the judged side's evidence less its bar.
    judge: np.ndarray = by_set.judge[sets]
    np.maximum(judge, by_text.judge[texts], out=judge)
    unjudged = ~(by_set.has[sets] | by_text.has[texts])
    if unjudged.any():
        judge[unjudged] = 0  # no vector on either side: the lexical floor alone
    judge += rel
    rank: np.ndarray = by_set.rank[sets]
    np.maximum(rank, by_text.rank[texts], out=rank)
    rel += rank
    below: np.ndarray = judge < np.float32(min_relevance)
    if min_relevance <= 0:
        below |= rel <= 0
    return below, (sets, texts)


def _excluded(
    prepared: Prepared, profiles: Sequence[Profile], rows: list[int]
) -> tuple[list[int], np.ndarray]:
    """The rows that exclude keywords, and for each one per paper: True where one is in it."""
    index, kept = prepared.index, prepared.exclusions
    if len(kept) > TEXTS_KEPT:
        kept.clear()
    picky = [i for i in rows if profiles[i].exclude]
    keys: dict[tuple[str, ...], int] = {}
    which = [keys.setdefault(profiles[i].exclude, len(keys)) for i in picky]
    for key in keys.keys() - kept.keys():
        hits = phrase_hits(index, [analyze(k) for k in key if k.strip()])
        kept[key] = np.any(hits, axis=1)
    table = np.array([kept[key] for key in keys], dtype=bool).reshape(len(keys), index.size)
    return picky, table[which]
