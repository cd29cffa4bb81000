"""Ranking metrics and the paired significance test the matching benchmark reports."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def ndcg_at(ranked: Sequence[str], judgments: Mapping[str, int], k: int = 5) -> float:
    """nDCG@k with gains 2^grade - 1; unjudged papers count as grade 0."""

    def dcg(grades: Sequence[int]) -> float:
        return float(sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:k])))

    ideal = dcg(sorted(judgments.values(), reverse=True))
    return dcg([judgments.get(pid, 0) for pid in ranked]) / ideal if ideal else 0.0


def r_precision(ranked: Sequence[str], judgments: Mapping[str, int], relevant: int = 2) -> float:
    """Share of the R relevant papers (grade >= ``relevant``) found in the top R."""
    wanted = {pid for pid, g in judgments.items() if g >= relevant}
    if not wanted:
        return 0.0
    return len(wanted & set(ranked[: len(wanted)])) / len(wanted)


def sign_flip_p(differences: Sequence[float], rounds: int = 100_000, seed: int = 7) -> float:
    """Two-sided p-value of a paired sign-flip (permutation) test that the mean difference is 0.

    Exact over all 2^n sign patterns up to n = 16, Monte Carlo with a fixed seed above that.
    """
    d = np.asarray([x for x in differences if x != 0.0], dtype=float)
    if d.size == 0:
        return 1.0
    observed = abs(d.mean())
    if d.size <= 16:
        signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * d.size)).reshape(d.size, -1).T
    else:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(rounds, d.size))
    means = np.abs((signs * d).mean(axis=1))
    return float((means >= observed - 1e-12).mean())
