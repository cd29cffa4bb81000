"""Build the pool of papers to grade for the real evaluation set, and blind packets for judges.

The pool of a query is the union of: the top 20 of every system at every setting of its grid
over all 260 papers, and what paperboy would mail on each day (its top ``max_papers`` among
that day's papers, at every setting). Judges see each query's rubric and its pooled papers in
a shuffled order, with no word of which system found a paper or where it ranked.

    python -m benchmarks.eval_pool --out DIR          # writes DIR/<query>.md and pool.json
    python -m benchmarks.eval_pool --out DIR --new    # only papers not graded yet

Not a benchmark of its own: ``python -m benchmarks`` skips it (see NOT_BENCHMARKS there).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from benchmarks import minilm
from benchmarks.evalsets import EvalQuery, EvalSet, load_real
from benchmarks.systems import System, systems

POOL_DEPTH = 20
DAY_PICKS = 10  # the default max_papers of a digest


def pools(evalset: EvalSet, family: list[System]) -> dict[str, set[str]]:
    """Each query's pool; every setting ranks all queries in one call where a system can."""
    queries = evalset.queries
    profiles = [q.profile for q in queries]
    pooled: dict[str, set[str]] = {q.id: set() for q in queries}
    days = list(evalset.by_day().values())
    for system in family:
        for params in system.grid:
            rankings = system.rankings(evalset.papers, profiles, params)
            for q, ranked in zip(queries, rankings, strict=True):
                pooled[q.id].update(ranked[:POOL_DEPTH])
            if system.name != "paperboy":
                continue
            for day_papers in days:
                rankings = system.rankings(day_papers, profiles, params)
                for q, picks in zip(queries, rankings, strict=True):
                    pooled[q.id].update(picks[:DAY_PICKS])
    return pooled


def _shuffled(ids: set[str], salt: str) -> list[str]:
    """A fixed order unrelated to any ranking: by a hash of the id and the query."""
    return sorted(ids, key=lambda pid: hashlib.sha256(f"{salt}:{pid}".encode()).hexdigest())


def write_packet(folder: Path, query: EvalQuery, ids: list[str], evalset: EvalSet) -> None:
    papers = {p.id: p for p in evalset.papers}
    lines = [
        f"# Query {query.id}",
        "",
        f"Reader's interest: {query.profile.interests or '(none)'}",
        f"Catalog topics: {', '.join(query.profile.topics) or '(none)'}",
        "",
        "## Rubric",
        query.rubric.strip(),
        "",
        f"## Papers to grade ({len(ids)})",
        "",
    ]
    for pid in ids:
        p = papers[pid]
        lines += [f"### {pid}", f"**{p.title}**", "", p.abstract.strip(), ""]
    (folder / f"{query.id}.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eval_pool", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the packets")
    parser.add_argument("--new", action="store_true", help="only papers without a grade yet")
    args = parser.parse_args()
    evalset = load_real()
    family = systems(with_embeddings=minilm.available())
    args.out.mkdir(parents=True, exist_ok=True)
    pool: dict[str, list[str]] = {}
    pooled = pools(evalset, family)
    for query in evalset.queries:
        ids = pooled[query.id]
        if args.new:
            ids -= set(query.judgments)
        pool[query.id] = _shuffled(ids, query.id)
        if ids:
            write_packet(args.out, query, pool[query.id], evalset)
        print(f"{query.id}: {len(ids)} papers", flush=True)
    (args.out / "pool.json").write_text(json.dumps(pool, indent=1) + "\n", encoding="utf-8")
    print(f"total: {sum(len(v) for v in pool.values())} judgments to make")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
