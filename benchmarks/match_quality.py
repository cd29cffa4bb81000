"""Matching quality on tests/data/eval: nDCG@5 and R-precision, paperboy against baselines.

Every system ranks the same 88 papers for the same 17 subscriber-style queries; the figures
are means over queries. Baselines, computed in the same run so the figures compare:

    tfidf   plain TF-IDF cosine (lowercase words, stopwords removed, no stemming)
    bm25    Okapi BM25 over the same plain words (title, keywords, summary, abstract as one text)
    bm25+   BM25 over paperboy's analyzer (stems, acronyms, bigrams), no fields, no topics logic
    paperboy        pipeline.matching.match.rank with the default config
    paperboy-flat   the same with trending_weight = 0 (relevance only)

A query's text for the baselines is its topics' titles, descriptions and keywords plus its
free-text interest. Graded gains are 2^g - 1; R-precision counts grade >= 2 as relevant.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Match
from pipeline.matching.match import load_catalog, rank
from pipeline.matching.textproc import STOPWORDS, analyze
from pipeline.models import Paper, Profile

EVAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "eval"
RELEVANT = 2  # grade from which a paper counts as relevant for R-precision


@dataclass(frozen=True)
class EvalQuery:
    id: str
    profile: Profile
    judgments: dict[str, int]


def load_eval(folder: Path = EVAL) -> tuple[list[Paper], list[EvalQuery]]:
    """The evaluation papers and the judged queries."""
    papers_data = tomllib.loads((folder / "papers.toml").read_text(encoding="utf-8"))
    papers = [Paper(source_format="hf_api", **p) for p in papers_data["paper"]]
    queries_data = tomllib.loads((folder / "queries.toml").read_text(encoding="utf-8"))
    queries = [
        EvalQuery(
            id=q["id"],
            profile=Profile(
                topics=tuple(q.get("topics", ())),
                interests=q.get("interests", ""),
                authors=tuple(q.get("authors", ())),
            ),
            judgments=dict(q["judgments"]),
        )
        for q in queries_data["query"]
    ]
    return papers, queries


def ndcg_at(ranked: Sequence[str], judgments: dict[str, int], k: int = 5) -> float:
    def dcg(grades: Sequence[int]) -> float:
        return float(sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:k])))

    ideal = dcg(sorted(judgments.values(), reverse=True))
    return dcg([judgments.get(pid, 0) for pid in ranked]) / ideal if ideal else 0.0


def r_precision(ranked: Sequence[str], judgments: dict[str, int]) -> float:
    relevant = {pid for pid, g in judgments.items() if g >= RELEVANT}
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[: len(relevant)])) / len(relevant)


Ranker = Callable[[Sequence[Paper], Profile], list[str]]


def evaluate(
    ranker: Ranker, papers: Sequence[Paper], queries: Sequence[EvalQuery]
) -> dict[str, Any]:
    per_query = {}
    for q in queries:
        ranked = ranker(papers, q.profile)
        per_query[q.id] = {
            "ndcg@5": ndcg_at(ranked, q.judgments),
            "r_precision": r_precision(ranked, q.judgments),
        }
    return {
        "ndcg@5": round(float(np.mean([m["ndcg@5"] for m in per_query.values()])), 4),
        "r_precision": round(float(np.mean([m["r_precision"] for m in per_query.values()])), 4),
        "per_query": {k: {m: round(v, 3) for m, v in d.items()} for k, d in per_query.items()},
    }


# ---- baselines -------------------------------------------------------------------------------

_PLAIN = re.compile(r"[a-z0-9]+")


def plain_words(text: str) -> list[str]:
    return [w for w in _PLAIN.findall(text.lower()) if w not in STOPWORDS]


def stemmed_words(text: str) -> list[str]:
    a = analyze(text)
    return list(a.unigrams + a.bigrams + a.concepts)


def paper_text(p: Paper) -> str:
    return " . ".join([p.title, "; ".join(p.keywords), p.ai_summary or "", p.abstract])


def query_text(profile: Profile) -> str:
    catalog = load_catalog()
    parts = [profile.interests]
    for slug in profile.topics:
        t = catalog[slug]
        parts += [t.title, t.description, "; ".join(t.keywords)]
    return " . ".join(parts)


def tfidf_ranker(papers: Sequence[Paper], profile: Profile) -> list[str]:
    docs = [Counter(plain_words(paper_text(p))) for p in papers]
    vocab = {w: i for i, w in enumerate(sorted({w for d in docs for w in d}))}
    matrix = np.zeros((len(docs), len(vocab)))
    for row, d in enumerate(docs):
        for w, c in d.items():
            matrix[row, vocab[w]] = c
    df = (matrix > 0).sum(axis=0)
    idf = np.log((1 + len(docs)) / (1 + df)) + 1  # smooth IDF, as scikit-learn does
    matrix *= idf
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12
    q = np.zeros(len(vocab))
    for w, c in Counter(plain_words(query_text(profile))).items():
        if w in vocab:
            q[vocab[w]] = c * idf[vocab[w]]
    q /= np.linalg.norm(q) + 1e-12
    scores = matrix @ q
    return [papers[i].id for i in np.argsort(-scores, kind="stable") if scores[i] > 0]


def bm25_ranker(words: Callable[[str], list[str]], k1: float = 1.2, b: float = 0.75) -> Ranker:
    def ranker(papers: Sequence[Paper], profile: Profile) -> list[str]:
        docs = [Counter(words(paper_text(p))) for p in papers]
        lengths = np.array([sum(d.values()) for d in docs], dtype=float)
        avg = lengths.mean()
        df = Counter(w for d in docs for w in d)
        n = len(docs)
        scores = np.zeros(n)
        for w in set(words(query_text(profile))):
            idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
            tf = np.array([d[w] for d in docs], dtype=float)
            scores += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths / avg))
        return [papers[i].id for i in np.argsort(-scores, kind="stable") if scores[i] > 0]

    return ranker


def paperboy_ranker(weights: Match) -> Ranker:
    catalog = load_catalog()

    def ranker(papers: Sequence[Paper], profile: Profile) -> list[str]:
        return [sp.paper.id for sp in rank(papers, profile, catalog, weights)]

    return ranker


SYSTEMS: dict[str, Ranker] = {
    "tfidf": tfidf_ranker,
    "bm25": bm25_ranker(plain_words),
    "bm25+": bm25_ranker(stemmed_words),
    "paperboy": paperboy_ranker(Match()),
    "paperboy-flat": paperboy_ranker(Match(trending_weight=0.0)),
}


def run(quick: bool = False) -> dict[str, Any]:
    """Figures for every system; ``quick`` leaves out the per-query breakdown."""
    papers, queries = load_eval()
    out: dict[str, Any] = {"papers": len(papers), "queries": len(queries)}
    for name, ranker in SYSTEMS.items():
        figures = evaluate(ranker, papers, queries)
        if quick:
            figures.pop("per_query")
        out[name] = figures
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
