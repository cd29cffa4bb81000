"""Free-text interests as sets of alternatives: items, their content phrases, implied topics.

    "KV cache, speculative decoding and quantization of LLMs"
        ──split──▶ items "KV cache" | "speculative decoding" | "quantization of LLMs"
    each item ──▶ its content phrases (a sentence keeps only these, none required whole)
              ──▶ the catalog topics whose title or keyword it contains (implied vocabulary)

A reader who lists three things wants papers on any of them, so a paper needs to meet one
item well; further items it meets add with diminishing returns (``combine``). Splitting at
"and"/"or" stops where the words around it form a catalog phrase: "vision and language
models" is one thing, not two.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import pairwise

import numpy as np
from scipy import sparse

from pipeline.matching.relevance import (
    FloatArray,
    Index,
    coverage,
    phrase_idf,
    saturate,
    strength,
    topic_counts,
)
from pipeline.matching.textproc import ACRONYMS, Analysis, analyze, phrases, tokens
from pipeline.matching.topics import default_topics

# Items are always separated by these: commas, semicolons, line ends, the end of a sentence
# (before a capital: "e.g. diffusion" joins), a colon before a space ("LLM inference: KV
# cache, quantization") and a dash between words ("cheaper - KV cache",
# "cheaper—KV cache"; a hyphen inside a word, "sim-to-real", joins). "and"/"or" separate them
# only between content words.
_HARD = re.compile(r"(?:[,;\n]|[.!?:]\s+(?=[A-Z0-9\"“(])|:\s|\s-+\s|\s*[–—]\s*)+")
_CONJUNCTION = re.compile(r"\s+(?:and|or|&)\s+", re.IGNORECASE)
# What a reader does not want is not an alternative: a piece is cut where a negation starts
# ("LLMs but not agents" keeps "LLMs"; "not interested in LLMs" keeps nothing). The form's
# exclusions field is where unwanted words go.
_NEGATION = re.compile(r"\b(?:not|except|excluding)(?=\s)|n[’']t\b", re.IGNORECASE)
# "I'd like to read about …", "learning more about …": framing when only framing precedes it.
_ABOUT = re.compile(r"\b(?:read|reading|learn|learning|hear|hearing)\s+(?:more\s+)?about\b", re.I)
_BRACKETS = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


@dataclass(frozen=True)
class Item:
    """One alternative of an interest: how reasons name it, and the evidence it asks for."""

    shown: str  # the item as written, without framing words ("I work on …")
    own: tuple[tuple[Analysis, float], ...]  # content phrases, weights summing to 1
    implied: tuple[tuple[Analysis, float], ...]  # implied topics' title and keyword phrases


def _stems(text: str) -> tuple[str, ...]:
    return analyze(text).unigrams


@cache
def _catalog_texts() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(slug, stems) of every title and keyword of the shipped catalog, and acronym expansions."""
    out = [
        (slug, _stems(text))
        for slug, topic in default_topics().items()
        for text in (topic.title, *topic.keywords)
    ]
    out += [("", _stems(e)) for expansions in ACRONYMS.values() for e in expansions]
    return tuple((slug, stems) for slug, stems in out if stems)


@cache
def _catalog_pairs() -> frozenset[tuple[str, str]]:
    """Adjacent stem pairs of catalog phrases: "and"/"or" between them joins, not separates."""
    return frozenset(pair for _, stems in _catalog_texts() for pair in pairwise(stems))


def _split_outside(pattern: re.Pattern[str], text: str) -> tuple[list[str], list[str]]:
    """``text`` cut where ``pattern`` matches outside brackets, and the separators cut at:
    "edge devices (mobile, microcontrollers)" is one item with its examples."""
    depth, outside = 0, []
    for char in text:
        outside.append(depth == 0)
        depth = max(0, depth + _BRACKETS.get(char, 0))
    parts: list[str] = []
    seps: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        if match.start() < len(outside) and outside[match.start()]:
            parts.append(text[last : match.start()])
            seps.append(match.group())
            last = match.end()
    parts.append(text[last:])
    return parts, seps


def _wanted(piece: str) -> str:
    """``piece`` up to where a negation starts, without framing such as "I'd like to read
    about"."""
    negation = _NEGATION.search(piece)
    if negation is not None:
        piece = piece[: negation.start()]
    about = _ABOUT.search(piece)
    if about is not None and not _stems(piece[: about.start()]):
        piece = piece[about.end() :]
    return piece


def _split_conjunctions(piece: str) -> list[str]:
    """``piece`` cut at "and"/"or" where both sides carry content and no catalog phrase spans."""
    parts, seps = _split_outside(_CONJUNCTION, piece)
    out = [parts[0]]
    for sep, part in zip(seps, parts[1:], strict=True):
        left, right = _stems(out[-1]), _stems(part)
        joined = bool(left and right) and (left[-1], right[0]) in _catalog_pairs()
        if left and right and not joined:
            out.append(part)
        else:
            out[-1] = out[-1] + sep + part
    return out


_CLOSING = {"(": ")", "[": "]", "{": "}", '"': '"', "“": "”"}


def _shown(text: str) -> str:
    """The stretch of ``text`` from its first content word to its last, with the brackets
    and quotes it opened closed again: "(SWE-bench style)" keeps its ")"."""
    found = tokens(text)
    if not found:
        return ""
    start, end = found[0].start, found[-1].end
    shown = text[start:end]
    for opening, closing in _CLOSING.items():
        unclosed = shown.count(opening) - (shown.count(closing) if opening != closing else 0)
        if opening == closing:
            unclosed = shown.count(opening) % 2
        if unclosed > 0 and closing in text[end:]:
            shown += closing * unclosed
    return shown


def split_items(text: str) -> tuple[str, ...]:
    """The alternatives of an interest, as written (framing words dropped), each once."""
    out: list[str] = []
    for piece in _split_outside(_HARD, text)[0]:
        out += [s for s in map(_shown, _split_conjunctions(_wanted(piece))) if s]
    return tuple(dict.fromkeys(out))


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
    for slug, needle in _catalog_texts():
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
