"""Free-text interests as sets of alternatives: items, their content phrases, implied topics.

    "KV cache, speculative decoding and quantization of LLMs"
        ──split (items.py)──▶ items "KV cache" | "speculative decoding" | "quantization of LLMs"
    each item ──▶ its content phrases (a sentence keeps only these, none required whole)
              ──▶ the catalog topics whose title or keyword it contains (implied vocabulary)

A reader who lists three things wants papers on any of them, so a paper needs to meet one
item well; further items it meets add with diminishing returns (``combine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np
from scipy import sparse

from pipeline.matching.items import catalog_texts, split_items
from pipeline.matching.relevance import (
    FloatArray,
    Index,
    coverage,
    phrase_idf,
    saturate,
    strength,
    topic_counts,
)
from pipeline.matching.textproc import Analysis, analyze, phrases
from pipeline.matching.topics import default_topics


@dataclass(frozen=True)
class Item:
    """One alternative of an interest: how reasons name it, and the evidence it asks for."""

    shown: str  # the item as written, without framing words ("I work on …")
    own: tuple[tuple[Analysis, float], ...]  # content phrases, weights summing to 1
    implied: tuple[tuple[Analysis, float], ...]  # implied topics' title and keyword phrases


def _stems(text: str) -> tuple[str, ...]:
    return analyze(text).unigrams


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


@lru_cache(maxsize=50_000)
def implied_topics(item: str) -> tuple[str, ...]:
    """Slugs of the catalog topics whose title or keyword the item contains.

    A one-word keyword implies its topic only if it is distinctive (in at most one topic):
    "benchmark" or "model" alone says nothing about which topic a reader means.
    """
    stems = _stems(item)
    counts = topic_counts()
    found: dict[str, None] = {}
    for slug, needle in catalog_texts():
        if not slug or slug in found:
            continue
        if len(needle) == 1 and counts[needle[0]] > 1:
            continue
        if _contains(stems, needle):
            found[slug] = None
    return tuple(found)


@lru_cache(maxsize=50_000)
def parse_item(item: str) -> Item:
    own = [analyze(p) for p in phrases(item)]
    own = [a for a in own if a.unigrams]
    implied: list[tuple[Analysis, float]] = []
    for slug in implied_topics(item):
        topic = default_topics()[slug]
        implied += [(analyze(text), 1.0) for text in (topic.title, *topic.keywords)]
    return Item(item, tuple((a, 1.0 / len(own)) for a in own), tuple(implied))


@lru_cache(maxsize=50_000)
def parse_interest(text: str) -> tuple[Item, ...]:
    return tuple(parse_item(item) for item in split_items(text))


def _by_specificity(
    index: Index, parts: tuple[tuple[Analysis, float], ...]
) -> tuple[tuple[Analysis, float], ...]:
    """An item's own phrases with its weight shared by IDF ** ``tuning.item_specificity``:
    a word most papers of the batch hold says less about the item than a rare one."""
    power = index.tuning.item_specificity
    if power <= 0 or len(parts) < 2:
        return parts
    raw = [phrase_idf(index, analysis) ** power for analysis, _ in parts]
    total = sum(raw)
    if total <= 0:
        return parts
    return tuple((analysis, r / total) for (analysis, _), r in zip(parts, raw, strict=True))


def item_scores(index: Index, interests: Sequence[tuple[Item, ...]]) -> list[FloatArray]:
    """papers × items × 2 scores in [0, 1) for each interest: [..., 0] with the implied topics,
    [..., 1] from the reader's own words alone (what a reason names first).

    An item's own phrases saturate like a topic; its implied topics' evidence joins as a
    probabilistic or, scaled by ``tuning.implied`` (< 1), so it never outweighs the reader's
    own words and a paper with both ranks above one with either.
    """
    t = index.tuning
    columns: dict[Analysis, int] = {}
    own: tuple[list[int], list[int], list[float]] = ([], [], [])
    implied: tuple[list[int], list[int], list[float]] = ([], [], [])
    n_items = 0
    for items in interests:
        for item in items:
            for parts, (rows, cols, values) in (
                (_by_specificity(index, item.own), own),
                (item.implied, implied),
            ):
                for analysis, weight in parts:
                    rows.append(columns.setdefault(analysis, len(columns)))
                    cols.append(n_items)
                    values.append(weight)
            n_items += 1
    evidence = strength(coverage(index, list(columns)), t)
    shape = (len(columns), n_items)
    own_raw, implied_raw = (
        np.asarray(sparse.csr_matrix((v, (r, c)), shape=shape).T @ evidence.T).T
        for r, c, v in (own, implied)
    )
    mine = saturate(own_raw, t)
    total = 1.0 - (1.0 - mine) * (1.0 - t.implied * saturate(implied_raw, t))
    both = np.stack([total, mine], axis=2)
    bounds = np.cumsum([0, *(len(items) for items in interests)])
    return [both[:, lo:hi] for lo, hi in pairwise(bounds.tolist())]


def combine(items: FloatArray, alternatives: float) -> FloatArray:
    """best + w·second + w²·third … per paper: one item met well is enough, more add less.

    With 0 ≤ w ≤ 1, adding an item never lowers a paper's score (the new item's share is at
    least what the items it pushes down lose), so a longer interest never drops a paper.
    """
    if not items.shape[1]:
        return np.zeros(items.shape[0])
    ranked = -np.sort(-items, axis=1)
    powers = alternatives ** np.arange(items.shape[1], dtype=np.float64)
    return np.asarray(ranked @ powers, dtype=np.float64)
