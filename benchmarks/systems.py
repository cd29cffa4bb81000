"""The systems the matching benchmark compares: paperboy and the strongest plain baselines.

Every system is a family with a small grid of settings; the harness picks a setting by
leave-one-query-out, so no figure it reports was tuned on the query it scores.

    paperboy        pipeline.matching.match.rank, default config, with the sentence vectors its
                    own model gives (pipeline.embedding); grid: trending_weight, the interest
                    tuning: alternatives (w of best + w·second …), implied (the weight of a
                    catalog topic an interest item names), item_specificity (IDF power of an
                    item's phrases), and meaning: its weight, the cosines where closeness
                    starts and where it counts fully, and the floor's bar for an interest;
                    then, for the mail only, match.relative_floor (match_quality.choose_mail)
    bm25s           bm25s (Lucene BM25, Snowball stems, English stopwords) over title+abstract;
                    grid: k1, b
    bm25s-all       the same over every text field (title, ai_keywords, ai_summary, abstract)
    tfidf           scikit-learn TF-IDF, word 1-2-grams, cosine; grid: sublinear tf
    minilm          all-MiniLM-L6-v2 cosine between query and title+abstract
    hybrid          alpha * BM25 (scaled to the query's best paper) + (1 - alpha) * MiniLM
                    cosine; grid: alpha

Query text for the baselines: the free-text interest, plus each chosen topic's title and
keywords from the catalog (paperboy reads the same catalog entries).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from functools import cache
from typing import Any

import numpy as np
import snowballstemmer

from benchmarks import minilm
from pipeline.config import Match
from pipeline.embedding import (
    Embedder,
    ModelUnavailable,
    Vector,
    Vectors,
    paper_text,
    profile_texts,
    topic_text,
)
from pipeline.matching.match import load_catalog, rank, top_k
from pipeline.matching.relevance import TUNING, Tuning, build_index
from pipeline.matching.scoring import Prepared, Scored, prepare, score_profiles
from pipeline.matching.share import digest_first, single_relevance
from pipeline.models import Paper, Profile

Params = dict[str, Any]
Scores = np.ndarray[Any, np.dtype[np.float64]]


def title_abstract(p: Paper) -> str:
    return f"{p.title}. {p.abstract}"


def all_fields(p: Paper) -> str:
    return " . ".join([p.title, "; ".join(p.keywords), p.ai_summary or "", p.abstract])


def query_text(profile: Profile) -> str:
    catalog = load_catalog()
    parts = [profile.interests] if profile.interests else []
    for slug in profile.topics:
        topic = catalog[slug]
        parts += [topic.title, "; ".join(topic.keywords)]
    return " . ".join(parts)


def order(papers: Sequence[Paper], scores: Scores, keep: Callable[[float], bool]) -> list[str]:
    """Paper ids by descending score (ties by id), keeping those ``keep`` accepts."""
    idx = sorted(range(len(papers)), key=lambda i: (-scores[i], papers[i].id))
    return [papers[i].id for i in idx if keep(float(scores[i]))]


@dataclass(frozen=True)
class System:
    name: str
    grid: list[Params]
    # ranks one slice of papers for one profile with one setting
    rank: Callable[[Sequence[Paper], Profile, Params], list[str]]
    # the same for many profiles at once, where a system can share the work between them
    rank_all: Callable[[Sequence[Paper], Sequence[Profile], Params], list[list[str]]] | None = None
    # what it would mail each profile, up to a number of papers (default: the ranking's head)
    digest: Callable[[Sequence[Paper], Sequence[Profile], Params, int], list[list[str]]] | None = (
        None
    )
    # settings that only shape the mail, chosen after the ranking's (match_quality.choose_floor)
    mail_grid: tuple[Params, ...] = ({},)

    def digests(
        self, papers: Sequence[Paper], profiles: Sequence[Profile], params: Params, limit: int
    ) -> list[list[str]]:
        """What each profile would be mailed from ``papers``, at most ``limit`` papers."""
        if self.digest is not None:
            return self.digest(papers, profiles, params, limit)
        return [ranked[:limit] for ranked in self.rankings(papers, profiles, params)]

    def rankings(
        self, papers: Sequence[Paper], profiles: Sequence[Profile], params: Params
    ) -> list[list[str]]:
        """``rank`` for each profile, in one call when the system can batch."""
        if self.rank_all is not None:
            return self.rank_all(papers, profiles, params)
        return [self.rank(papers, profile, params) for profile in profiles]


# ---- paperboy --------------------------------------------------------------------------------


_TUNED = {f.name for f in fields(TUNING)}


def _settings(params: Params) -> tuple[Tuning, Match]:
    tuning = replace(TUNING, **{k: v for k, v in params.items() if k in _TUNED})
    return tuning, Match(**{k: v for k, v in params.items() if k not in _TUNED})


_VECTORS: dict[str, Vector] = {}


def embedder() -> Embedder | None:
    """The sentence model paperboy itself runs, or None where it cannot load (lexical only)."""
    try:
        from pipeline.embedding.model import load_embedder

        return load_embedder()
    except (ImportError, ModelUnavailable):
        return None


def vectors_for(papers: Sequence[Paper], profiles: Sequence[Profile]) -> Vectors | None:
    """Vectors of the papers, the profiles' texts and the catalog's topics, as the store would
    hold them after its backfill; each text is embedded once per process."""
    model = embedder()
    if model is None:
        return None
    catalog = load_catalog()
    texts = [paper_text(p) for p in papers] + [topic_text(catalog[s]) for s in catalog]
    texts += [t for profile in profiles for t in profile_texts(profile, catalog.topics)]
    missing = [t for t in dict.fromkeys(texts) if t not in _VECTORS]
    if missing:
        _VECTORS.update(zip(missing, model.embed(missing), strict=True))
    by_paper = {p.id: _VECTORS[paper_text(p)] for p in papers}
    return Vectors(model.name, by_paper, {t: _VECTORS[t] for t in texts[len(papers) :]})


def _paperboy(papers: Sequence[Paper], profile: Profile, params: Params) -> list[str]:
    tuning, weights = _settings(params)
    vectors = vectors_for(papers, [profile])
    ranked = rank(papers, profile, load_catalog(), weights, tuning=tuning, vectors=vectors)
    return [sp.paper.id for sp in ranked]


def _paperboy_scored(
    papers: Sequence[Paper], profiles: Sequence[Profile], params: Params
) -> tuple[Prepared, Scored, Match]:
    tuning, weights = _settings(params)
    catalog = load_catalog()
    for profile in profiles:
        catalog.check(profile.topics)
    prepared = prepare(build_index(papers, tuning), catalog, vectors_for(papers, profiles))
    return prepared, score_profiles(prepared, list(profiles), weights), weights


def _paperboy_all(
    papers: Sequence[Paper], profiles: Sequence[Profile], params: Params
) -> list[list[str]]:
    """What ``rank`` orders for each profile, scored in one pass as a morning run scores its
    readers, without building the reasons the benchmark does not read."""
    prepared, scored, _ = _paperboy_scored(papers, profiles, params)
    index = prepared.index
    out = []
    for r in range(len(profiles)):
        row = scored.final[r].tolist()
        cols = [int(c) for c in np.flatnonzero(~scored.ineligible[r])]
        cols.sort(key=lambda c: (-row[c], index.papers[c].id))
        out.append([index.papers[c].id for c in cols])
    return out


def _paperboy_digests(
    papers: Sequence[Paper], profiles: Sequence[Profile], params: Params, limit: int
) -> list[list[str]]:
    """The papers a morning run would mail each profile: its top ``limit`` eligible ones, cut
    where relevance falls under ``match.relative_floor`` of the best (``digest_first``)."""
    prepared, scored, weights = _paperboy_scored(papers, profiles, params)
    index = prepared.index
    k = min(limit, index.size)
    if k == 0:
        return [[] for _ in profiles]
    top = top_k(scored.final, scored.ineligible, k)
    counts = index.size - np.count_nonzero(scored.ineligible, axis=1)
    take = np.minimum(counts, limit)
    scored.limits = np.full(len(profiles), limit, dtype=np.intp)
    share = weights.relative_floor
    strength = single_relevance(prepared, scored, top) if share > 0 else None
    top, kept = digest_first(scored, top, take, share, strength)
    return [
        [index.papers[c].id for c in row[:n]]
        for row, n in zip(top.tolist(), kept.tolist(), strict=True)
    ]


# match.relative_floor: the share of a digest's best relevance its other papers need.
RELATIVE_FLOORS = (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
PAPERBOY_GRID = [
    {
        "relative_floor": 0.0,
        "trending_weight": t,
        "alternatives": w,
        "implied": i,
        "item_specificity": p,
        "meaning": m,
        **closeness,
    }
    for t in (0.0, 0.35)
    for w in (0.5, 0.75, 1.0)
    for i in (0.25, 0.5)
    for p in (0.0, 0.5)
    for m in (0.0, 1.0, 2.0, 3.0)
    for closeness in (
        [{}]
        if m == 0
        else [
            {"meaning_floor": f, "meaning_full": u, "meaning_bar": bar}
            for f in (0.1, 0.2)
            for u in (0.6, 0.7)
            for bar in (0.2, 0.4)
        ]
    )
]


# ---- BM25 (bm25s) ----------------------------------------------------------------------------

_STEMMER = snowballstemmer.stemmer("english")


def _tokens(texts: list[str]) -> list[list[str]]:
    import bm25s

    out = bm25s.tokenize(texts, stemmer=_STEMMER.stemWords, return_ids=False, show_progress=False)
    return [list(t) for t in out]


@cache
def _bm25_index(texts: tuple[str, ...], k1: float, b: float) -> Any:
    import bm25s

    index = bm25s.BM25(k1=k1, b=b)
    index.index(_tokens(list(texts)), show_progress=False)
    return index


def bm25_scores(texts: tuple[str, ...], query: str, k1: float, b: float) -> Scores:
    words = [w for w in _tokens([query])[0]]
    index = _bm25_index(texts, k1, b)
    known = [w for w in words if w in index.vocab_dict]
    if not known:
        return np.zeros(len(texts))
    return np.asarray(index.get_scores(known), dtype=float)


def _bm25(field: Callable[[Paper], str]) -> Callable[[Sequence[Paper], Profile, Params], list[str]]:
    def ranker(papers: Sequence[Paper], profile: Profile, params: Params) -> list[str]:
        texts = tuple(field(p) for p in papers)
        scores = bm25_scores(texts, query_text(profile), params["k1"], params["b"])
        return order(papers, scores, lambda s: s > 0)

    return ranker


# ---- TF-IDF (scikit-learn) -------------------------------------------------------------------


@cache
def _tfidf_index(texts: tuple[str, ...], sublinear_tf: bool) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), stop_words="english", sublinear_tf=sublinear_tf
    )
    return vectorizer, vectorizer.fit_transform(list(texts))


def _tfidf(papers: Sequence[Paper], profile: Profile, params: Params) -> list[str]:
    texts = tuple(title_abstract(p) for p in papers)
    vectorizer, matrix = _tfidf_index(texts, params["sublinear_tf"])
    query = vectorizer.transform([query_text(profile)])
    scores = np.asarray((matrix @ query.T).todense()).ravel()
    return order(papers, scores, lambda s: s > 0)


# ---- MiniLM and the hybrid -------------------------------------------------------------------


_EMBEDDED: dict[str, Any] = {}


def _embeddings(texts: tuple[str, ...]) -> Any:
    """Embeddings of the texts, each text encoded once per process (days reuse the week's)."""
    missing = [t for t in dict.fromkeys(texts) if t not in _EMBEDDED]
    if missing:
        _EMBEDDED.update(zip(missing, minilm.encode(missing), strict=True))
    return np.stack([_EMBEDDED[t] for t in texts])


def minilm_scores(papers: Sequence[Paper], profile: Profile) -> Scores:
    docs = _embeddings(tuple(title_abstract(p) for p in papers))
    query = _embeddings((query_text(profile),))[0]
    return np.asarray(docs @ query, dtype=float)


def _minilm(papers: Sequence[Paper], profile: Profile, params: Params) -> list[str]:
    return order(papers, minilm_scores(papers, profile), lambda s: True)


def _hybrid(papers: Sequence[Paper], profile: Profile, params: Params) -> list[str]:
    texts = tuple(title_abstract(p) for p in papers)
    lexical = bm25_scores(texts, query_text(profile), 1.2, 0.75)
    if lexical.max() > 0:
        lexical = lexical / lexical.max()
    alpha = params["alpha"]
    scores = alpha * lexical + (1 - alpha) * minilm_scores(papers, profile)
    return order(papers, scores, lambda s: True)


BM25_GRID = [{"k1": k1, "b": b} for k1 in (0.9, 1.2, 1.5, 2.0) for b in (0.5, 0.75, 0.9)]


def systems(with_embeddings: bool) -> list[System]:
    """Every system to compare; the MiniLM ones only when the model is installed."""
    out = [
        System(
            "paperboy",
            PAPERBOY_GRID,
            _paperboy,
            _paperboy_all,
            _paperboy_digests,
            tuple({"relative_floor": share} for share in RELATIVE_FLOORS),
        ),
        System("bm25s", BM25_GRID, _bm25(title_abstract)),
        System("bm25s-all", BM25_GRID, _bm25(all_fields)),
        System("tfidf", [{"sublinear_tf": s} for s in (False, True)], _tfidf),
    ]
    if with_embeddings:
        out += [
            System("minilm", [{}], _minilm),
            System("hybrid", [{"alpha": a} for a in (0.05, 0.1, 0.2, 0.35, 0.5, 0.65)], _hybrid),
        ]
    return out
