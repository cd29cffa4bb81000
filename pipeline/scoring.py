"""Profiles → score matrices over a paper index, and the human reasons behind each score."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice

import numpy as np
import numpy.typing as npt
from scipy import sparse

from pipeline import config
from pipeline.models import Profile, ScoredPaper
from pipeline.relevance import FloatArray, Index, coverage, phrase_hits, saturate, strength
from pipeline.textproc import Analysis, Token, analyze, normalize_name, phrases, tokens
from pipeline.topics import Catalog

TREND_SCALE = math.log1p(100)  # 100 upvotes → trend 1
REASON_MIN = 0.05  # a component below this is noise, not a reason
KEYWORD_SHOWN = 0.5  # a topic keyword is named in a reason once half of it is covered


@dataclass(frozen=True)
class Query:
    """One scoring component: weighted phrases, with the text shown for each in reasons."""

    phrases: tuple[tuple[Analysis, float, str], ...]


def topic_query(topic: config.Topic, description_weight: float) -> Query:
    """A topic: its title and each keyword are alternatives; the description is a weak hint."""
    parts = [(analyze(topic.title), 1.0, topic.title)]
    parts += [(analyze(k), 1.0, k) for k in topic.keywords]
    if topic.description:
        parts.append((analyze(topic.description), description_weight, ""))
    return Query(tuple(parts))


def text_query(text: str) -> Query:
    """Free text (an interest): its facets are phrases, and a paper should meet all of them.

    Weights 1/n make the component the mean strength over facets, unlike a topic where any
    one keyword is enough.
    """
    parts = phrases(text)
    return Query(tuple((analyze(p), 1.0 / len(parts), p) for p in parts))


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


def score_queries(index: Index, queries: Sequence[Query]) -> ComponentScores:
    """Each query's component per paper; a query's scores never depend on the others."""
    analyses = [a for q in queries for a, _, _ in q.phrases]
    cover = coverage(index, analyses)
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
    return ComponentScores(list(queries), saturate(raw, index.tuning), cover, offsets)


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
    texts: dict[TextKey, tuple[Query, FloatArray]] = field(default_factory=dict)
    sets: _SetRows = field(default_factory=_SetRows)
    exclusions: dict[tuple[str, ...], npt.NDArray[np.bool_]] = field(default_factory=dict)


def prepare(index: Index, catalog: Catalog) -> Prepared:
    queries = [topic_query(catalog[slug], index.tuning.description) for slug in catalog]
    slugs = {slug: i for i, slug in enumerate(catalog)}
    return Prepared(index, slugs, score_queries(index, queries))


def _text_scores(prepared: Prepared, keys: list[TextKey]) -> tuple[list[Query], FloatArray]:
    """Queries of ``keys`` and their papers × keys scores, scoring only texts not kept."""
    kept = prepared.texts
    missing = [key for key in keys if key not in kept]
    if len(kept) + len(missing) > TEXTS_KEPT:
        kept.clear()
        missing = keys
    fresh = score_queries(prepared.index, [_text_query(*key) for key in missing])
    if len(missing) <= TEXTS_KEPT:
        kept.update(zip(missing, zip(fresh.queries, fresh.scores.T, strict=True), strict=True))
    if len(missing) == len(keys):
        return fresh.queries, fresh.scores
    found = [kept[key] for key in keys]
    return [query for query, _ in found], np.stack([scores for _, scores in found], axis=1)


def _set_relevance(
    prepared: Prepared, profiles: Sequence[Profile]
) -> tuple[np.ndarray, np.ndarray]:
    """Each profile's row in a table of float32 topic-set relevance (sets × papers)."""
    table = prepared.sets
    if len(table.ids) > SETS_KEPT:
        table.ids = {}
    ids = table.ids
    start = len(ids)
    # setdefault hashes each tuple once (tuples do not cache their hash).
    set_of = np.array([ids.setdefault(p.topics, len(ids)) for p in profiles], dtype=np.intp)
    sets = list(islice(ids, start, None))
    if not sets:
        return set_of, table.rows
    cols = prepared.slugs
    flat = np.array([cols.get(slug, -1) for slugs in sets for slug in slugs], dtype=np.intp)
    set_rows = np.repeat(np.arange(len(sets)), [len(slugs) for slugs in sets])
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
        return set_of, fresh
    if len(ids) > len(table.rows):  # grown by doubling (copies stay linear), up to the bound
        size = max(len(ids), min(2 * start, SETS_KEPT + len(profiles)))
        rows = np.empty((size, fresh.shape[1]), dtype=np.float32)
        rows[:start] = table.rows[:start]
        table.rows = rows
    table.rows[start : len(ids)] = fresh
    return set_of, table.rows


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


@lru_cache(maxsize=10_000)
def _tokens(text: str) -> tuple[Token, ...]:
    """Tokens of a query text, kept: reasons re-read the same interest for every paper."""
    return tuple(tokens(text))


@lru_cache(maxsize=50_000)
def _text_query(kind: str, key: tuple[str, ...]) -> Query:
    return text_query(key[0]) if kind == "interest" else terms_query(key)


@dataclass
class _Columns:
    """What the scorer needs from each profile, as arrays and distinct keys."""

    texts: dict[str, int]
    text_of: np.ndarray
    min_upvotes: np.ndarray
    limits: np.ndarray
    special: list[int]  # rows with authors, exclusions or feedback (a minority)


def _columns(profiles: Sequence[Profile]) -> _Columns:
    # One list comprehension per field: the cheapest way through 100k pydantic objects
    # (tuples of fields, attrgetter or one loop for all fields all measured slower).
    text_ids: dict[str, int] = {}
    return _Columns(
        text_ids,
        np.array([text_ids.setdefault(p.interests, len(text_ids)) for p in profiles], np.intp),
        np.array([p.min_upvotes for p in profiles], dtype=np.int64),
        np.array([p.max_papers for p in profiles], dtype=np.intp),
        [
            i
            for i, p in enumerate(profiles)
            if p.authors or p.exclude or p.liked_terms or p.disliked_terms
        ],
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
    queries, text_scores = _text_scores(prepared, list(keys))
    topics = prepared.topics
    components = ComponentScores(
        topics.queries + queries,
        np.hstack([topics.scores, text_scores]),
        topics.cover,
        topics.offsets,
    )
    # One row per distinct topic set and per distinct text, gathered once per subscriber.
    set_of, set_rel = _set_relevance(prepared, profiles)
    text_rel = np.zeros((len(keys) + 1, index.size), dtype=np.float32)
    text_rel[:-1] = text_scores.T
    text_of = np.array(interest_of, dtype=np.intp)[c.text_of]
    rel = set_rel[set_of]
    rel += text_rel[text_of]
    hits = [
        (i, col)
        for i in c.special
        for name in profiles[i].authors
        for col in index.authors.get(normalize_name(name), ())
    ]
    if hits:
        rows, cols = zip(*hits, strict=True)
        rel[rows, cols] += weights.author_boost  # once per paper, however many authors
    # Ineligible: not relevant (<= 0 or < min_relevance), too few upvotes, or excluded.
    bad = rel < weights.min_relevance if weights.min_relevance > 0 else rel <= 0
    picky = np.flatnonzero(c.min_upvotes)
    bad[picky] |= index.upvotes[None, :] < c.min_upvotes[picky, None]
    excluded_rows, excluded = _excluded(prepared, profiles, c.special)
    bad[excluded_rows] |= excluded
    if feedback:
        for i, key, weight in feedback:
            rel[i] += weight * text_scores[:, key]  # a nudge, after eligibility
        bad |= rel <= 0
    trend = (np.log1p(np.maximum(index.upvotes, 0)) / TREND_SCALE).astype(np.float32)
    rel *= np.float32(1.0) + np.float32(weights.trending_weight) * trend
    n_topics = len(topic_cols)
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
    )


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


Entry = tuple[float, str]  # (-score, reason text or ""): sorts strongest first


class ReasonMaker:
    """Builds ScoredPapers with reasons, shared between rows whose profiles score alike.

    Reasons are the profile's component reasons (strongest first, ties by text), then followed
    authors, then the trend. A topic set's reasons for a paper are sorted once; the row's
    interest is merged in by bisection (reason texts of different kinds never collide).
    """

    def __init__(
        self, index: Index, scored: Scored, catalog: Catalog, weights: config.Match
    ) -> None:
        self.index, self.scored, self.catalog, self.weights = index, scored, catalog, weights
        n = self._n = index.size
        # Rows that score alike share ScoredPapers: plain rows by (topic set, interest), rows
        # with authors or feedback by their whole signature (a negative key). Exclusions and
        # thresholds decide eligibility only, never a score or a reason.
        width = self._width = len(scored.components.queries) + 1
        keys = (scored.set_of * width + scored.interest_of + 1).tolist()
        signatures: dict[tuple[object, ...], int] = {}
        self._special: set[int] = set()
        for row in scored.special:
            p = scored.profiles[row]
            if p.authors or p.liked_terms or p.disliked_terms:
                self._special.add(row)
                sig = (p.topics, p.interests, p.authors, p.liked_terms, p.disliked_terms)
                keys[row] = -1 - signatures.setdefault(sig, len(signatures))
        self.row_keys = np.array(keys, dtype=np.int64)
        self._sets: list[int] = scored.set_of.tolist()
        self._interests: list[int] = scored.interest_of.tolist()
        self._topic_parts: dict[int, tuple[tuple[Entry, ...], tuple[str, ...]]] = {}
        self._set_bits: dict[int, int] = {}
        self._plain: dict[int, tuple[str, ...]] = {}  # reasons of rows without special fields
        # Per paper: the topics whose component is strong enough to be named, as bits.
        named = scored.components.scores[:, : len(scored.topic_cols)] >= REASON_MIN
        self._named = [sum(1 << int(c) for c in np.flatnonzero(row)) for row in named]
        # Per paper: component → entry, filled as reasons are asked for.
        self._texts: list[dict[int, Entry]] = [{} for _ in range(n)]
        self._trends = [self._trend(col) for col in range(n)]
        self.slugs = list(scored.topic_cols)
        self._liked = {col: kind == "liked" for (kind, _), col in scored.text_cols.items()}
        self._rows: dict[int, dict[str, float]] = {}
        self._terms: dict[int, str] = {}

    def scored_paper(self, row: int, col: int, score: float) -> ScoredPaper:
        """A new ScoredPaper of row ``row`` for paper ``col``, whose score is ``score``."""
        reasons = self._reasons(row, col)
        return ScoredPaper(paper=self.index.papers[col], score=round(score, 6), reasons=reasons)

    def _reasons(self, row: int, col: int) -> tuple[str, ...]:
        """Why row ``row`` gets paper ``col``."""
        set_id = self._sets[row]
        bits = self._set_bits.get(set_id)
        if bits is None:
            bits = self._set_bits[set_id] = self._bits(self.scored.profiles[row].topics)
        # Only topics strong enough to be named matter, so many rows share their reasons.
        bits &= self._named[col]
        if row in self._special:
            return self._special_reasons(row, col, bits)
        key = (bits * self._width + self._interests[row] + 1) * self._n + col
        found = self._plain.get(key)
        if found is None:
            entries, found = self._topic_part(bits, col)
            comp = self._interests[row]
            entry = (
                (self._texts[col].get(comp) or self._component(comp, col)) if comp >= 0 else None
            )
            if entry and entry[1]:
                at = bisect_right(entries, entry)
                found = (*found[:at], entry[1], *found[at:])
            trend = self._trends[col]
            found = self._plain[key] = (*found, trend) if trend else found
        return found

    def _bits(self, slugs: tuple[str, ...]) -> int:
        """The topic components of ``slugs`` as bits (a topic listed twice counts once)."""
        topic_cols = self.scored.topic_cols
        return sum({1 << topic_cols[s] for s in slugs if s in topic_cols})

    def _special_reasons(self, row: int, col: int, bits: int) -> tuple[str, ...]:
        """Reasons of a row with liked terms or followed authors."""
        entries, found = self._topic_part(bits, col)
        profile = self.scored.profiles[row]
        texts = self._texts[col]
        comps = [self._interests[row], self.scored.text_cols.get(("liked", profile.liked_terms))]
        extra = [texts.get(c) or self._component(c, col) for c in comps if c is not None and c >= 0]
        if any(text for _, text in extra):
            found = tuple(text for _, text in sorted([*entries, *extra]) if text)
        if profile.authors:
            paper = self.index.papers[col]
            wanted = {normalize_name(a) for a in profile.authors}
            found += tuple(f"author: {a}" for a in paper.authors if normalize_name(a) in wanted)
        trend = self._trends[col]
        return (*found, trend) if trend else found

    def _topic_part(self, bits: int, col: int) -> tuple[tuple[Entry, ...], tuple[str, ...]]:
        """Reasons of the topics in ``bits`` for one paper: entries, sorted, and their texts."""
        found = self._topic_parts.get(bits * self._n + col)
        if found is None:
            texts = self._texts[col]
            comps = [c for c in range(bits.bit_length()) if bits >> c & 1]
            unique: dict[str, Entry] = {}
            for entry in sorted(texts.get(c) or self._component(c, col) for c in comps):
                unique.setdefault(entry[1], entry)  # two topics may read the same: named once
            found = (tuple(unique.values()), tuple(unique))
            self._topic_parts[bits * self._n + col] = found
        return found

    def _trend(self, col: int) -> str:
        upvotes = self.index.papers[col].upvotes
        if self.weights.trending_weight <= 0 or upvotes <= 0:
            return ""
        return f"trending: {upvotes} upvote{'s' if upvotes != 1 else ''}"

    def _component(self, comp: int, col: int) -> tuple[float, str]:
        """(-score, reason text or "") of one component for one paper, computed once."""
        value = float(self.scored.components.scores[col, comp])
        text = self._describe(comp, col) if value >= REASON_MIN else ""
        found = self._texts[col][comp] = (-value, text)
        return found

    def _describe(self, comp: int, col: int) -> str:
        components = self.scored.components
        query = components.queries[comp]
        if comp < len(self.slugs):
            start = components.offsets[comp]
            named = [
                (components.cover[col, start + i], shown)
                for i, (_, _, shown) in enumerate(query.phrases)
                if shown and i > 0
            ]
            best = [s for c, s in sorted(named, key=lambda n: -n[0]) if c >= KEYWORD_SHOWN][:3]
            # No keyword is mostly there: name the words that did match instead.
            best = best or self._matched_runs(" ; ".join(s for _, _, s in query.phrases), col)
            title = self.catalog[self.slugs[comp]].title
            return f"topic: {title} — " + ", ".join(f'"{s}"' for s in best)
        runs = self._matched_runs(" ; ".join(s for _, _, s in query.phrases), col)
        if not runs:
            return ""
        label = "you liked" if self._liked.get(comp) else "interest"
        return f"{label}: " + ", ".join(f'"{r}"' for r in runs)

    def _matched_runs(self, text: str, col: int) -> list[str]:
        """Up to three stretches of ``text`` whose words the paper has, strongest first."""
        row = self._row(col)
        runs: list[tuple[float, str]] = []
        start = end = -1
        weight = 0.0
        for token in [*_tokens(text), None]:
            hit = token is not None and all(s in row for s in token.stems)
            if start >= 0 and (not hit or token is None or token.breaks):
                runs.append((weight, text[start:end]))
                start, weight = -1, 0.0
            if token is not None and hit:
                if start < 0:
                    start = token.start
                end = token.end
                weight += sum(row[s] for s in token.stems)
        out: dict[str, str] = {}
        for _, run in sorted(runs, key=lambda r: -r[0]):
            out.setdefault(run.casefold(), run)
        return list(out.values())[:3]

    def _row(self, col: int) -> dict[str, float]:
        """The paper's terms and their weights."""
        if col not in self._rows:
            if not self._terms:
                self._terms = {i: t for t, i in self.index.vocab.items()}
            matrix = self.index.weights
            lo, hi = matrix.indptr[col], matrix.indptr[col + 1]
            pairs = zip(matrix.indices[lo:hi], matrix.data[lo:hi], strict=True)
            self._rows[col] = {self._terms[int(i)]: float(v) for i, v in pairs}
        return self._rows[col]
