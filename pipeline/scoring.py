"""Profiles → score matrices over a paper index, and the human reasons behind each score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
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
    """papers × components scores in [0, 1), and papers × phrases coverage for reasons."""

    queries: list[Query]
    scores: FloatArray
    cover: FloatArray
    offsets: list[int]  # first phrase column of each component


def score_queries(index: Index, queries: Sequence[Query]) -> ComponentScores:
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


def joined(first: ComponentScores, then: ComponentScores) -> ComponentScores:
    """Components of ``first`` followed by those of ``then``."""
    shift = first.cover.shape[1]
    return ComponentScores(
        first.queries + then.queries,
        np.hstack([first.scores, then.scores]),
        np.hstack([first.cover, then.cover]),
        first.offsets + [o + shift for o in then.offsets],
    )


@dataclass(frozen=True)
class Prepared:
    """A paper index with the catalog's topics already scored: shared by every chunk."""

    index: Index
    slugs: dict[str, int]
    topics: ComponentScores


def prepare(index: Index, catalog: Catalog) -> Prepared:
    queries = [topic_query(catalog[slug], index.tuning.description) for slug in catalog]
    slugs = {slug: i for i, slug in enumerate(catalog)}
    return Prepared(index, slugs, score_queries(index, queries))


@dataclass
class Scored:
    """Scores of one chunk of profiles (one row each); ``final`` is -inf where ineligible."""

    profiles: Sequence[Profile]
    final: np.ndarray  # profiles × papers, float32
    limits: np.ndarray  # max_papers per row
    topic_cols: dict[str, int]
    components: ComponentScores  # topics first, then this chunk's texts
    text_cols: dict[tuple[str, tuple[str, ...]], int] = field(default_factory=dict)


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

    topic_sets: dict[tuple[str, ...], int]
    texts: dict[str, int]
    set_of: np.ndarray
    text_of: np.ndarray
    min_upvotes: np.ndarray
    limits: np.ndarray
    special: list[int]  # rows with authors, exclusions or feedback (a minority)


def _columns(profiles: Sequence[Profile]) -> _Columns:
    # One list comprehension per field: the cheapest way through 100k pydantic objects.
    topics = [p.topics for p in profiles]
    texts = [p.interests for p in profiles]
    topic_sets = {key: i for i, key in enumerate(dict.fromkeys(topics))}
    text_ids = {key: i for i, key in enumerate(dict.fromkeys(texts))}
    n = len(profiles)
    return _Columns(
        topic_sets,
        text_ids,
        np.fromiter(map(topic_sets.__getitem__, topics), dtype=np.intp, count=n),
        np.fromiter(map(text_ids.__getitem__, texts), dtype=np.intp, count=n),
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
    queries: list[Query] = []
    text_cols: dict[tuple[str, tuple[str, ...]], int] = {}

    def text_col(kind: str, key: tuple[str, ...]) -> int:
        if (kind, key) not in text_cols:
            text_cols[(kind, key)] = len(topic_cols) + len(queries)
            queries.append(_text_query(kind, key))
        return text_cols[(kind, key)]

    c = _columns(profiles)
    sets = list(c.topic_sets)
    flat = [topic_cols.get(slug, -1) for slugs in sets for slug in slugs]
    set_rows = np.repeat(np.arange(len(sets)), [len(slugs) for slugs in sets])
    known = np.array(flat, dtype=np.intp) >= 0  # unknown slugs are ignored; rank() checks them
    # A blank interest points at the column of zeros appended after the components (-1).
    interest_cols = [text_col("interest", (t,)) if t.strip() else -1 for t in c.texts]
    feedback: list[tuple[int, int, float]] = []
    for i in c.special if weights.feedback_weight else ():
        p = profiles[i]
        for kind, terms, sign in (
            ("liked", p.liked_terms, 1.0),
            ("disliked", p.disliked_terms, -1.0),
        ):
            if any(t.strip() for t in terms):
                feedback.append((i, text_col(kind, terms), sign * weights.feedback_weight))
    components = joined(prepared.topics, score_queries(index, queries))
    padded = np.hstack([components.scores, np.zeros((index.size, 1))])
    combo = sparse.csr_matrix(
        (np.ones(int(known.sum())), (set_rows[known], np.array(flat, dtype=np.intp)[known])),
        shape=(len(sets), len(components.queries)),
    )
    combo.sum_duplicates()
    combo.data[:] = 1.0  # a slug listed twice still counts once
    # float32 from here on: rows × papers is the big array, and 7 digits rank papers fine.
    rel = np.asarray(combo @ components.scores.T, dtype=np.float32)[c.set_of]
    rel += padded.T[interest_cols].astype(np.float32)[c.text_of]
    hit_rows = [
        i
        for i in c.special
        for name in profiles[i].authors
        for _ in index.authors.get(normalize_name(name), ())
    ]
    hit_cols = [
        col
        for i in c.special
        for name in profiles[i].authors
        for col in index.authors.get(normalize_name(name), ())
    ]
    rel[hit_rows, hit_cols] += weights.author_boost  # once per paper, however many authors
    # Ineligible: not relevant (<= 0 or < min_relevance), too few upvotes, or excluded.
    bad = rel < weights.min_relevance if weights.min_relevance > 0 else rel <= 0
    picky = np.flatnonzero(c.min_upvotes)
    bad[picky] |= index.upvotes[None, :] < c.min_upvotes[picky, None]
    bad |= _excluded(index, profiles, c.special)
    trend = (np.log1p(np.maximum(index.upvotes, 0)) / TREND_SCALE).astype(np.float32)
    if feedback:
        for i, col, weight in feedback:
            rel[i] += weight * components.scores[:, col]  # a nudge, after eligibility
        bad |= rel <= 0
    rel *= np.float32(1.0) + np.float32(weights.trending_weight) * trend
    np.putmask(rel, bad, -np.inf)
    return Scored(profiles, rel, c.limits, topic_cols, components, text_cols)


def _excluded(index: Index, profiles: Sequence[Profile], rows: list[int]) -> np.ndarray:
    """rows × papers: True where one of the profile's excluded keywords is in the paper."""
    phrases: dict[str, int] = {}
    pairs = [
        (i, phrases.setdefault(k, len(phrases)))
        for i in rows
        for k in profiles[i].exclude
        if k.strip()
    ]
    if not pairs:
        return np.zeros((len(profiles), index.size), dtype=bool)
    hits = phrase_hits(index, [analyze(k) for k in phrases]).astype(np.float64)
    which = sparse.csr_matrix(
        (np.ones(len(pairs)), tuple(np.array(pairs).T)), shape=(len(profiles), len(phrases))
    )
    return np.asarray(which @ hits.T) > 0


class ReasonMaker:
    """Builds ScoredPapers with reasons, shared between rows whose profiles score alike."""

    def __init__(
        self, index: Index, scored: Scored, catalog: Catalog, weights: config.Match
    ) -> None:
        self.index, self.scored, self.catalog, self.weights = index, scored, catalog, weights
        self._ids: dict[tuple[object, ...], int] = {}
        self._cache: dict[tuple[int, int], ScoredPaper] = {}
        self._component_reasons: dict[tuple[int, int], tuple[str, ...]] = {}
        # Per paper: component → (-score, reason text); filled as reasons are asked for.
        self._texts: list[dict[int, tuple[float, str]]] = [{} for _ in index.papers]
        self.slugs = list(scored.topic_cols)
        self._liked = {col: kind == "liked" for (kind, _), col in scored.text_cols.items()}
        self._rows: dict[int, dict[str, float]] = {}
        self._terms: dict[int, str] = {}

    def scored_papers(self, row: int, cols: Sequence[int]) -> tuple[ScoredPaper, ...]:
        """The ScoredPapers of row ``row`` for papers ``cols``, reusing equal ones."""
        p = self.scored.profiles[row]
        # Exclusions and thresholds decide eligibility only; these fields decide score and text.
        # Small ints per distinct profile keep the per-paper cache keys cheap to hash.
        full = self._ids.setdefault(
            (p.topics, p.interests, p.authors, p.liked_terms, p.disliked_terms), len(self._ids)
        )
        part = self._ids.setdefault((p.topics, p.interests, p.liked_terms), len(self._ids))
        scores = self.scored.final[row]
        out: list[ScoredPaper] = []
        for col in cols:
            found = self._cache.get((full, col))
            if found is None:
                found = self._cache[(full, col)] = ScoredPaper(
                    paper=self.index.papers[col],
                    score=round(float(scores[col]), 6),
                    reasons=self._reasons(p, part, col),
                )
            out.append(found)
        return tuple(out)

    def reasons(self, profile: Profile, col: int) -> tuple[str, ...]:
        """Why ``profile`` gets paper ``col``: strongest component first, then author, trend."""
        key = (profile.topics, profile.interests, profile.liked_terms)
        return self._reasons(profile, self._ids.setdefault(key, len(self._ids)), col)

    def _reasons(self, profile: Profile, part: int, col: int) -> tuple[str, ...]:
        found = self._component_reasons.get((part, col))
        if found is None:
            found = self._component_reasons[(part, col)] = self._components_of(profile, col)
        if profile.authors:
            paper = self.index.papers[col]
            wanted = {normalize_name(a) for a in profile.authors}
            found += tuple(f"author: {a}" for a in paper.authors if normalize_name(a) in wanted)
        trend = self._trend(col)
        return (*found, trend) if trend else found

    def _components_of(self, profile: Profile, col: int) -> tuple[str, ...]:
        scored = self.scored
        comps = [scored.topic_cols.get(slug) for slug in profile.topics]
        comps.append(scored.text_cols.get(("interest", (profile.interests,))))
        comps.append(scored.text_cols.get(("liked", profile.liked_terms)))
        texts = self._texts[col]
        ranked = sorted(
            texts[c] if c in texts else self._component(c, col) for c in comps if c is not None
        )
        # (-score, text) pairs: strongest first; a topic listed twice is named once.
        return tuple(dict.fromkeys(text for _, text in ranked if text))

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
