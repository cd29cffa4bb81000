"""Lexical relevance of a batch of papers to many phrase-set queries at once (BM25F, NumPy).

    papers ──build_index──▶ W: papers × terms   BM25F weight of each term in each paper
    queries (topics, interests, liked terms): each a weighted set of phrases
    phrases ──phrase_matrix──▶ Q: terms × phrases   coverage = W @ Q ∈ [0, 1] per phrase
    components = 1 − exp(−(coverage @ membership) / τ) ∈ [0, 1)   (saturating: more matching
                 phrases add evidence, none alone can dominate a subscriber's other topics)

A phrase that mixes distinctive words with generic ones ("spiking" and "transformer") gives
partial credit only to papers holding one of its distinctive words: see distinctive_words.

Everything is computed once per distinct phrase and distinct query, never per subscriber.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import numpy.typing as npt
from scipy import sparse

from pipeline.matching.textproc import Analysis, analyze, normalize_name
from pipeline.matching.topics import default_topics
from pipeline.models import Paper

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Tuning:
    """The scorer's general constants, tuned on tests/data/eval (not per-judgment)."""

    k1: float = 1.2  # term-frequency saturation
    b: float = 0.75  # length normalisation
    title: float = 3.0  # field weights: a term in the title says more than one in the abstract
    keywords: float = 2.0
    summary: float = 1.5
    abstract: float = 1.0
    bigram: float = 1.0  # weight of an adjacent-stem pair relative to a single stem
    concept: float = 1.0  # weight of a whole acronym phrase ("=snn")
    prior_docs: float = 20.0  # pseudo-documents that contain none of the terms: keeps IDF sane
    # on a small batch (a two-paper dump must not make every word look common)
    tau: float = 0.5  # component saturation: coverage τ gives 63 %
    description: float = 0.3  # weight of a topic's description relative to a keyword
    norm_power: float = 1.0  # 1: each phrase scores its coverage; 0: raw BM25 (IDF-weighted)
    reference_idf: float = 3.0  # scale for raw BM25 when norm_power < 1
    phrase_power: float = 2.0  # coverage^p: a half-covered phrase is weak evidence, not half
    distinctive: int = 1  # a word in at most this many catalog topics names its subject
    # An interest's items: best + alternatives·second + alternatives²·third … (0 ≤ w ≤ 1).
    # Both are in paperboy's leave-one-query-out grid (benchmarks/systems.py); the defaults
    # are the settings that selection picks for most held-out queries of the real set.
    alternatives: float = 0.75
    implied: float = 0.5  # weight of a catalog topic an interest item names (< 1: own words lead)
    # An item's phrases share its weight by IDF ** this: 0 shares it evenly, so "AI" in "AI for
    # medicine" weighs as much as "medicine"; 1 weighs each as BM25 would. In the grid too.
    item_specificity: float = 0.5
    # Meaning (meaning.py): sentence-vector closeness, blended with the lexical relevance.
    # The three weights are picked by paperboy's leave-one-query-out grid; the defaults are
    # the setting it picks for most held-out queries.
    meaning: float = 2.0  # weight of full closeness, in units of one fully met interest
    meaning_floor: float = 0.1  # cosine at which closeness starts to count
    meaning_full: float = 0.7  # cosine at which it counts fully
    # Whether a paper may be sent: closeness counts from this cosine, and the floor rises.
    meaning_eligible: float = 0.15  # closeness to an interest item
    meaning_eligible_topics: float = 0.3  # closeness to a catalog topic
    # Added to min_relevance where a paper and the profile's interest (or topics) have vectors.
    meaning_bar: float = 0.2  # in paperboy's grid
    meaning_bar_topics: float = 0.4  # a topic's list sits close to its whole field: stricter


TUNING = Tuning()


@dataclass(frozen=True)
class Index:
    """A batch of papers as matrices. Row i is ``papers[i]``; papers are sorted by id."""

    papers: tuple[Paper, ...]
    vocab: dict[str, int]
    weights: sparse.csr_matrix  # papers × terms, BM25F weights
    present: sparse.csr_matrix  # papers × terms, 1 where the term is in title/abstract/keywords
    idf: FloatArray
    unseen_idf: float  # IDF of a query term no paper has
    upvotes: npt.NDArray[np.int64]
    authors: dict[str, list[int]]  # normalised author name → rows
    tuning: Tuning

    @property
    def size(self) -> int:
        return len(self.papers)


def unique_papers(papers: Sequence[Paper]) -> tuple[Paper, ...]:
    """One paper per id (the first given), sorted by id so results never depend on order."""
    seen: dict[str, Paper] = {}
    for paper in papers:
        seen.setdefault(paper.id, paper)
    return tuple(seen[key] for key in sorted(seen))


def _fields(paper: Paper, tuning: Tuning) -> list[tuple[float, Analysis, bool]]:
    """(field weight, analysis, counts for exclusions) for each field of a paper."""
    return [
        (tuning.title, analyze(paper.title), True),
        # "; " keeps keywords from forming bigrams with each other.
        (tuning.keywords, analyze("; ".join(paper.keywords)), True),
        (tuning.summary, analyze(paper.ai_summary or ""), False),
        (tuning.abstract, analyze(paper.abstract), True),
    ]


def build_index(papers: Sequence[Paper], tuning: Tuning = TUNING) -> Index:
    """Analyse every field of every paper once and weigh the terms with BM25F."""
    ordered = unique_papers(papers)
    per_paper = [_fields(p, tuning) for p in ordered]
    n_fields = 4
    lengths = np.array(
        [[a.length for _, a, _ in fields] for fields in per_paper], dtype=np.float64
    ).reshape(len(ordered), n_fields)
    average = np.maximum(lengths.mean(axis=0) if len(ordered) else np.ones(n_fields), 1.0)
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    present_rows: list[int] = []
    present_cols: list[int] = []
    for row, fields in enumerate(per_paper):
        for f, (weight, analysis, for_exclusion) in enumerate(fields):
            if not analysis.length and not analysis.concepts:
                continue
            norm = 1.0 - tuning.b + tuning.b * lengths[row, f] / average[f]
            for term, count in Counter(analysis.terms()).items():
                col = vocab.setdefault(term, len(vocab))
                rows.append(row)
                cols.append(col)
                values.append(weight * count / norm)
                if for_exclusion:
                    present_rows.append(row)
                    present_cols.append(col)
    shape = (len(ordered), len(vocab))
    tf = sparse.csr_matrix((values, (rows, cols)), shape=shape, dtype=np.float64)
    tf.sum_duplicates()  # the same term in several fields adds up (BM25F)
    n = len(ordered) + tuning.prior_docs
    df = np.bincount(tf.indices, minlength=len(vocab)).astype(np.float64)
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    col_idf = idf[tf.indices]
    tf.data = col_idf * tf.data * (tuning.k1 + 1.0) / (tf.data + tuning.k1)
    present = sparse.csr_matrix(
        (np.ones(len(present_rows)), (present_rows, present_cols)), shape=shape
    )
    present.sum_duplicates()
    authors: dict[str, list[int]] = {}
    for row, paper in enumerate(ordered):
        for name in {normalize_name(a) for a in paper.authors} - {""}:
            authors.setdefault(name, []).append(row)
    return Index(
        papers=ordered,
        vocab=vocab,
        weights=tf,
        present=present,
        idf=idf,
        unseen_idf=math.log1p((n + 0.5) / 0.5),
        upvotes=np.array([p.upvotes for p in ordered], dtype=np.int64),
        authors=authors,
        tuning=tuning,
    )


def query_terms(analysis: Analysis, tuning: Tuning) -> dict[str, float]:
    """Query weight of each distinct term of a phrase."""
    terms: dict[str, float] = {}
    for term in analysis.unigrams:
        terms[term] = 1.0
    for term in analysis.bigrams:
        terms[term] = tuning.bigram
    for term in analysis.concepts:
        terms[term] = tuning.concept
    return terms


def phrase_idf(index: Index, analysis: Analysis) -> float:
    """A phrase's summed IDF over its query terms (a term no paper has counts as unseen)."""
    return sum(
        w * (index.idf[index.vocab[term]] if term in index.vocab else index.unseen_idf)
        for term, w in query_terms(analysis, index.tuning).items()
    )


def phrase_matrix(index: Index, phrases: Sequence[Analysis]) -> sparse.csc_matrix:
    """terms × phrases, scaled so that ``weights @ Q`` is each phrase's coverage in [0, 1].

    A phrase's ideal is every one of its terms saturated in a paper; terms no paper has count
    in the ideal too, so a query's score does not depend on what else is in the batch.
    """
    t = index.tuning
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    for col, analysis in enumerate(phrases):
        terms = query_terms(analysis, t)
        ideal = phrase_idf(index, analysis) * (t.k1 + 1.0)
        if ideal <= 0:
            continue
        scale = ideal**t.norm_power * (t.reference_idf * (t.k1 + 1.0)) ** (1.0 - t.norm_power)
        for term, w in terms.items():
            row = index.vocab.get(term)
            if row is not None:
                rows.append(row)
                cols.append(col)
                values.append(w / scale)
    return sparse.csc_matrix(
        (values, (rows, cols)), shape=(len(index.vocab), len(phrases)), dtype=np.float64
    )


@cache
def topic_counts() -> Counter[str]:
    """How many topics of the shipped catalog use each word (stem) in their title or keywords.

    The shipped catalog, not the configured one, so a phrase's distinctive words never depend
    on config or on which other queries are scored with it.
    """
    counts: Counter[str] = Counter()
    for topic in default_topics().values():
        counts.update(
            {u for text in (topic.title, *topic.keywords) for u in analyze(text).unigrams}
        )
    return counts


@lru_cache(maxsize=50_000)
def distinctive_words(unigrams: tuple[str, ...], limit: int) -> tuple[str, ...]:
    """The words a paper must hold for partial credit on a phrase; () when any word will do.

    A word in at most ``limit`` catalog topics (or in none) names its subject; one shared by
    many ("transformer", "network", "model") does not, so a phrase mixing both kinds counts
    for a paper only through its distinctive words: "spiking transformer" says nothing of a
    paper that only says "transformer". Batch IDF cannot tell these apart (in a small batch
    every word is rare). Phrases of only one kind keep plain partial coverage: demanding the
    whole of "efficient attention" loses partial matches the eval set judges relevant.
    """
    counts = topic_counts()
    words = tuple(dict.fromkeys(unigrams))
    distinctive = tuple(w for w in words if counts[w] <= limit)
    return distinctive if 0 < len(distinctive) < len(words) else ()


def coverage(index: Index, phrases: Sequence[Analysis], whole: Sequence[bool] = ()) -> FloatArray:
    """papers × phrases: how fully each paper covers each phrase (0 = no term in common).

    A paper without any of a phrase's distinctive words covers it 0 (see distinctive_words).
    Phrases flagged in ``whole`` (catalog titles and keywords) also cover 0 where the paper
    holds no part of them whole (see whole_parts).
    """
    if not phrases or not index.size:
        return np.zeros((index.size, len(phrases)))
    product = index.weights @ phrase_matrix(index, phrases)
    cover = np.asarray(product.toarray(), dtype=np.float64)
    vocab, limit = index.vocab, index.tuning.distinctive
    gated: list[int] = []
    rows: list[int] = []
    cols: list[int] = []
    for col, analysis in enumerate(phrases):
        words = distinctive_words(analysis.unigrams, limit)
        if words:
            found = [vocab[w] for w in words if w in vocab]
            rows += found
            cols += [len(gated)] * len(found)
            gated.append(col)
    if gated:
        required = sparse.csc_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(vocab), len(gated))
        )
        # BM25F weights are positive, so a non-zero sum means one of the words is there.
        held = (index.weights @ required).toarray() > 0
        cover[:, gated] *= held
    flagged = [col for col, flag in enumerate(whole) if flag and whole_parts(phrases[col])]
    if flagged:
        parts = [[vocab[t] for t in whole_parts(phrases[col]) if t in vocab] for col in flagged]
        required = sparse.csc_matrix(
            (
                np.ones(sum(map(len, parts))),
                ([r for p in parts for r in p], [j for j, p in enumerate(parts) for _ in p]),
            ),
            shape=(len(vocab), len(flagged)),
        )
        cover[:, flagged] *= (index.weights @ required).toarray() > 0
    return cover


@lru_cache(maxsize=50_000)
def whole_parts(analysis: Analysis) -> tuple[str, ...]:
    """Terms of which a paper must hold one for a catalog phrase to count; () if any will do.

    A catalog keyword of several words ("model compression", "efficient attention") is met
    only where the paper holds two of its words side by side (a bigram) or its acronym's
    concept: a paper that holds only "compression" or "attention", however often, says
    nothing of it (an image codec, an EEG study of auditory attention). A title is a list of
    runs ("Model compression and quantization"): a word pair of a run, or a run of one word,
    will do. A phrase of single words only ("Speech and audio") needs nothing more.
    """
    if not analysis.bigrams and not analysis.concepts:
        return ()
    paired = {stem for bigram in analysis.bigrams for stem in bigram.split(" ")}
    singles = tuple(u for u in dict.fromkeys(analysis.unigrams) if u not in paired)
    return tuple(dict.fromkeys((*analysis.bigrams, *analysis.concepts, *singles)))


def strength(cover: FloatArray, tuning: Tuning) -> FloatArray:
    """Evidence of each phrase: partial coverage counts much less than a whole phrase."""
    return np.power(np.minimum(cover, 1.0), tuning.phrase_power)


def saturate(raw: FloatArray, tuning: Tuning) -> FloatArray:
    """Map summed phrase coverage to a component score in [0, 1)."""
    return -np.expm1(-raw / tuning.tau)


def phrase_hits(index: Index, phrases: Sequence[Analysis]) -> npt.NDArray[np.bool_]:
    """papers × phrases: True where the paper's title, abstract or keywords hold the phrase.

    A phrase is held when all its bigrams are there (all its stems, for one word), so an
    excluded "image compression" does not remove every paper that mentions images.
    """
    hits = np.zeros((index.size, len(phrases)), dtype=bool)
    for col, analysis in enumerate(phrases):
        required = analysis.bigrams or analysis.unigrams
        if not required:
            continue
        cols = [index.vocab.get(term) for term in set(required)]
        if any(c is None for c in cols):
            continue
        found = index.present[:, [c for c in cols if c is not None]]
        hits[:, col] = np.asarray(found.getnnz(axis=1)) == len(cols)
    return hits
