"""Matching quality stays at its measured, held-out level on the real and synthetic sets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks import match_quality
from benchmarks.evalsets import REAL, load_real, load_synthetic
from benchmarks.metrics import ndcg_at, r_precision, sign_flip_p
from benchmarks.systems import System, systems

# Held-out means of today's matcher (python -m benchmarks match_quality, leave-one-query-out
# over paperboy's trending weight, its interest weights `alternatives`, `implied` and
# `item_specificity`, and its meaning weights and interest bar). The margin absorbs harmless
# reorderings, not a regression. Measured on 2,496 judgments: 0.819 / 0.806 / 0.589.
REAL_FLOOR = {"ndcg@5": 0.80, "ndcg@10": 0.79, "r_precision": 0.57}
# The best baseline on the real set in the same run, held out alike: the bm25s +
# all-MiniLM-L6-v2 hybrid. Baselines do not depend on paperboy's code, so their figures are
# pinned here rather than recomputed (that needs the [bench] extra).
REAL_BEST_BASELINE = {"ndcg@5": 0.787, "ndcg@10": 0.759, "r_precision": 0.550}
# Measured: 0.952 / 0.958 / 0.864.
SYNTHETIC_FLOOR = {"ndcg@5": 0.93, "ndcg@10": 0.94, "r_precision": 0.85}
# Day-by-day replay of the real set (210 digests): ceilings for what nDCG cannot see.
# Measured: 209 of 608 mailed papers off-topic, 1.00 per digest (649 of 1,326 before
# match.relative_floor); the ceiling is issue 12's target of 2 per mail. 0 empty digests,
# which must stay 0.
REPLAY_CEILING = {"off_topic": 420, "empty_with_relevant": 0}


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return match_quality.run(quick=True, only=("paperboy",))


def test_real_set_is_big_and_traceable() -> None:
    """>= 200 real papers over several days, >= 24 graded queries, every item with its source."""
    evalset = load_real()
    assert len(evalset.papers) >= 200 and len(set(evalset.days.values())) >= 5
    assert len(evalset.queries) >= 24
    assert all(len(q.judgments) >= 15 and q.rubric for q in evalset.queries)
    items = json.loads((REAL / "papers.json").read_text(encoding="utf-8"))["papers"]
    for item in items:
        source = item["source"]
        assert source["repository"] and len(source["commit"]) == 40 and source["paths"]


def test_real_set_has_every_kind_of_interest() -> None:
    """Acronyms, lists, sentences, narrow, broad, cross-field and >= 4 topic+interest pairs."""
    kinds = [q.kind for q in load_real().queries]
    for kind in ("short", "list", "sentence", "narrow", "broad", "cross-field"):
        assert kind in kinds, kind
    assert kinds.count("topic+interest") >= 4


def test_real_quality_stays_above_the_floor(figures: dict[str, Any]) -> None:
    """paperboy's held-out nDCG@5, nDCG@10 and R-precision on real papers do not regress."""
    mean = figures["real"]["systems"]["paperboy"]["mean"]
    for metric, floor in REAL_FLOOR.items():
        assert mean[metric] >= floor, (metric, mean[metric])


def test_real_quality_stays_above_the_best_baseline(figures: dict[str, Any]) -> None:
    """paperboy ranks real papers better than the best plain baseline, on every measure."""
    mean = figures["real"]["systems"]["paperboy"]["mean"]
    for metric, baseline in REAL_BEST_BASELINE.items():
        assert mean[metric] > baseline, (metric, mean[metric], baseline)


def test_real_replay_stays_under_the_ceiling(figures: dict[str, Any]) -> None:
    """Off-topic papers mailed and empty digests (a grade-2 paper existed) do not grow."""
    replay = figures["real"]["systems"]["paperboy"]["replay"]
    assert replay["digests"] == 7 * 30
    for count, ceiling in REPLAY_CEILING.items():
        assert replay[count] <= ceiling, (count, replay[count])


def test_synthetic_quality_stays_above_the_floor(figures: dict[str, Any]) -> None:
    """The synthetic set (written with the first matcher) keeps its level too."""
    assert len(load_synthetic().queries) == figures["synthetic"]["queries"] == 17
    mean = figures["synthetic"]["systems"]["paperboy"]["mean"]
    for metric, floor in SYNTHETIC_FLOOR.items():
        assert mean[metric] >= floor, (metric, mean[metric])


def test_metrics_on_known_rankings() -> None:
    """nDCG is 1 for the ideal order and lower for a worse one; R-precision counts grade >= 2."""
    judged = {"a": 3, "b": 2, "c": 1}
    assert ndcg_at(["a", "b", "c"], judged) == pytest.approx(1.0)
    assert ndcg_at(["c", "b", "a"], judged) < ndcg_at(["a", "c", "b"], judged) < 1
    assert ndcg_at(["x", "y"], judged) == 0.0
    assert ndcg_at(["x", "y", "z", "w", "v", "a"], judged, k=5) == 0.0
    assert ndcg_at(["x", "y", "z", "w", "v", "a"], judged, k=10) > 0.0
    assert r_precision(["a", "x", "b"], judged) == 0.5
    assert r_precision(["a", "x", "b"], {"a": 2, "b": 1}, relevant=2) == 1.0


def test_sign_flip_test_tells_a_real_difference_from_noise() -> None:
    """All-positive differences give a small p; balanced ones give p = 1; ties are ignored."""
    assert sign_flip_p([0.1] * 10) == pytest.approx(2 / 2**10)
    assert sign_flip_p([0.1, -0.1] * 5) == pytest.approx(1.0)
    assert sign_flip_p([0.0, 0.0]) == 1.0
    assert sign_flip_p([0.2] * 30) < 0.001  # Monte Carlo above 16 pairs


def test_leave_one_out_never_scores_a_query_with_a_setting_tuned_on_it() -> None:
    """A setting that is best only on the held-out query is not chosen for it."""
    evalset = load_real()
    queries = evalset.queries[:3]
    small = type(evalset)(evalset.name, evalset.papers, queries, evalset.relevant, evalset.days)
    target = queries[0]
    best_for_target = [pid for pid, g in target.judgments.items() if g == 2]

    def cheat(papers: Any, profile: Any, params: dict[str, Any]) -> list[str]:
        # setting "cheat" ranks the first query's answers first, and garbage for the others
        if params["mode"] == "cheat" and profile == target.profile:
            return best_for_target
        return [] if params["mode"] == "cheat" else [p.id for p in papers]

    system = System("probe", [{"mode": "plain"}, {"mode": "cheat"}], cheat)
    held = match_quality.leave_one_out(system, small)
    assert held.chosen[target.id] == {"mode": "plain"}


def test_batched_paperboy_ranks_exactly_as_rank_does() -> None:
    """The benchmark's one-pass ranking of many profiles gives what rank() gives per profile."""
    evalset = load_real()
    paperboy = next(s for s in systems(with_embeddings=False) if s.name == "paperboy")
    assert paperboy.rank_all is not None
    day = next(iter(evalset.by_day().values()))
    profiles = [q.profile for q in evalset.queries]
    for params in (paperboy.grid[0], paperboy.grid[-1]):
        batched = paperboy.rankings(day, profiles, params)
        assert batched == [paperboy.rank(day, p, params) for p in profiles]
        assert any(batched)
