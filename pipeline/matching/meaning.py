"""Relevance by meaning: cosine between a paper's sentence vector and a profile's texts.

    paper vectors P: papers × d        text vectors: one per topic text and interest item
    cos(text, paper) = t · p           (unit vectors; a missing vector gives no evidence)
    closeness(profile, paper) = max over the profile's topics and interest items
    evidence = clip((closeness − floor) / (full − floor), 0, 1)

``evidence`` is what scoring blends with lexical relevance (``Tuning.meaning`` weighs it), so
a paper that says it in other words is found. Ranking starts counting closeness low
(``meaning_floor``); whether a paper may be sent at all is judged with evidence that starts
higher (``meaning_eligible``), so a paper merely in the same broad field is ranked, not mailed.
Every distinct topic set and interest text is computed once per run, one matrix product
each, never per subscriber.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.embedding import Vectors, interest_texts, topic_text
from pipeline.matching.relevance import Index, Tuning
from pipeline.matching.topics import Catalog

KEPT = 30_000  # distinct interest texts whose rows are kept between chunks


@dataclass
class Rows:
    """Weighted evidence rows of distinct keys (topic sets or interests), kept between chunks.

    ``rank`` is what ranking adds; ``judge`` is what the floor counts, less the bar of the
    key's side (``meaning_bar_topics`` for a topic set, ``meaning_bar`` for an interest), or
    for a key without vectors minus the other side's bar alone, so that the larger of a row's
    two keys is the judging side's evidence less its bar. ``has`` says whether any text of the
    key has a vector (only then is meaning judged for it).

    Interests are found by ``ids``, which starts afresh past KEPT keys to bound its memory.
    Topic sets have no ``ids``: their rows sit where scoring's own table of sets puts them
    (``put``), and start afresh with it.
    """

    ids: dict[object, int] = field(default_factory=dict)
    rank: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    judge: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    has: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def put(self, start: int, rank: np.ndarray, judge: np.ndarray, has: np.ndarray) -> None:
        """Rows from ``start`` on, dropping any there (a table keyed elsewhere, by position)."""
        if start == 0:
            self.rank, self.judge, self.has = rank, judge, has
        else:
            self.rank = np.vstack([self.rank[:start], rank])
            self.judge = np.vstack([self.judge[:start], judge])
            self.has = np.concatenate([self.has[:start], has])

    def add(
        self, keys: Sequence[object], rank: np.ndarray, judge: np.ndarray, has: np.ndarray
    ) -> None:
        start = len(self.ids)
        self.ids.update((key, start + i) for i, key in enumerate(keys))
        if start == 0:
            self.rank, self.judge, self.has = rank, judge, has
        else:
            self.rank = np.vstack([self.rank, rank])
            self.judge = np.vstack([self.judge, judge])
            self.has = np.concatenate([self.has, has])


@dataclass
class Meaning:
    """Paper vectors of one index and the evidence rows computed from them so far."""

    vectors: Vectors
    papers: np.ndarray  # papers × d, float32; zero rows for papers without a vector
    topic_cos: np.ndarray  # catalog topics × papers (0 for a topic without a vector)
    tuning: Tuning
    has_paper: np.ndarray  # papers: True where the paper has a vector
    has_topic: np.ndarray  # catalog topics: True where the topic text has a vector
    sets: Rows = field(default_factory=Rows)
    interests: Rows = field(default_factory=Rows)
    cosines: dict[str, tuple[tuple[str, ...], np.ndarray]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.papers.shape[0])

    def evidence(self, cosines: np.ndarray, floor: float | None = None) -> np.ndarray:
        """Closeness as evidence in [0, 1]: 0 up to ``floor`` (default the ranking floor),
        1 from ``meaning_full`` on, linear between."""
        t = self.tuning
        start = t.meaning_floor if floor is None else floor
        span = max(t.meaning_full - start, 1e-6)
        out: np.ndarray = np.clip((cosines - start) / span, 0.0, 1.0)
        return out.astype(np.float32)

    def _weighted(
        self, cos: np.ndarray, has: np.ndarray, eligible: float, own: float, other: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows' (rank, judge, has) from keys × papers cosines: see Rows. Barred once here,
        when a key is first seen, rather than for every chunk that gathers it."""
        weight = np.float32(self.tuning.meaning)
        on_paper = self.has_paper.astype(np.float32)  # a paper without a vector: no bar
        judge = np.where(
            has[:, None],
            weight * self.evidence(cos, eligible) - np.float32(own) * on_paper,
            -np.float32(other) * on_paper,
        )
        return weight * self.evidence(cos), judge.astype(np.float32), has

    def item_cosines(self, interest: str) -> tuple[tuple[str, ...], np.ndarray]:
        """The interest's items that have a vector, and items × papers cosines."""
        items = tuple(t for t in interest_texts(interest) if t in self.vectors.texts)
        if not items:
            return (), np.zeros((0, self.size), dtype=np.float32)
        matrix = np.stack([self.vectors.texts[t] for t in items]).astype(np.float32)
        return items, matrix @ self.papers.T

    def closest(self, interest: str, col: int, need: float) -> str | None:
        """The item of ``interest`` closest to paper ``col``, if that closeness alone brings
        ``need`` (the floor) of relevance: only then was the pick found by meaning."""
        if interest not in self.cosines:
            if len(self.cosines) > KEPT:
                self.cosines.clear()
            self.cosines[interest] = self.item_cosines(interest)
        items, cos = self.cosines[interest]
        if not items:
            return None
        best = int(np.argmax(cos[:, col]))
        alone = self.tuning.meaning * self.evidence(cos[best, col], self.tuning.meaning_eligible)
        return items[best] if alone >= need else None

    def interest_rows(self, interests: Sequence[str]) -> np.ndarray:
        """Each interest's row in ``self.interests`` (its best item's closeness, weighted)."""
        table = self.interests
        if len(table.ids) > KEPT:
            self.interests = table = Rows()
        missing = [t for t in dict.fromkeys(interests) if t not in table.ids]
        if missing:
            cos = np.zeros((len(missing), self.size), dtype=np.float32)
            has = np.zeros(len(missing), dtype=bool)
            for i, text in enumerate(missing):
                items, item_cos = self.item_cosines(text)
                if items:
                    cos[i], has[i] = item_cos.max(axis=0), True
            t = self.tuning
            table.add(
                missing,
                *self._weighted(cos, has, t.meaning_eligible, t.meaning_bar, t.meaning_bar_topics),
            )
        return np.array([table.ids[t] for t in interests], dtype=np.intp)

    def put_sets(self, start: int, cols: np.ndarray, lengths: np.ndarray) -> None:
        """Rows of ``self.sets`` from ``start`` on for new topic sets (the best topic's
        closeness, weighted), kept at the positions scoring's own table of sets gives them.

        ``cols`` holds every new set's catalog columns one set after another (-1 for a slug
        the catalog does not know), ``lengths`` how many each set has.
        """
        # Each set as a row of catalog columns, padded with a row of zero closeness (which
        # unknown slugs point at too): the best topic is then a running maximum over a few
        # whole-array gathers.
        pad = len(self.topic_cos)
        width = max(1, int(lengths.max(initial=0)))
        table_cols = np.full((len(lengths), width), pad, dtype=np.intp)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        table_cols[np.repeat(np.arange(len(lengths)), lengths), np.arange(len(cols)) - starts] = (
            np.where(cols >= 0, cols, pad)
        )
        topic_cos = np.vstack([self.topic_cos, np.zeros((1, self.size), np.float32)])
        has_topic = np.append(self.has_topic, False)
        cos = topic_cos[table_cols[:, 0]]
        has = has_topic[table_cols[:, 0]]
        for j in range(1, width):
            np.maximum(cos, topic_cos[table_cols[:, j]], out=cos)
            has |= has_topic[table_cols[:, j]]
        t = self.tuning
        self.sets.put(
            start,
            *self._weighted(
                cos, has, t.meaning_eligible_topics, t.meaning_bar_topics, t.meaning_bar
            ),
        )


def build_meaning(
    index: Index, catalog: Catalog, vectors: Vectors | None, tuning: Tuning
) -> Meaning | None:
    """Meaning over ``index``'s papers, or None when there is nothing to compare.

    A paper's vector counts only if it was computed from the paper's current text (the store
    keeps ``text_sha`` beside it; here the caller passes only current ones).
    """
    if vectors is None or tuning.meaning <= 0 or not vectors.papers:
        return None
    dim = len(next(iter(vectors.papers.values())))
    papers = np.zeros((index.size, dim), dtype=np.float32)
    for row, paper in enumerate(index.papers):
        vec = vectors.papers.get(paper.id)
        if vec is not None:
            papers[row] = vec
    topic_cos = np.zeros((len(catalog), index.size), dtype=np.float32)
    for col, slug in enumerate(catalog):
        vec = vectors.texts.get(topic_text(catalog[slug]))
        if vec is not None:
            topic_cos[col] = papers @ vec
    has_paper = np.array([p.id in vectors.papers for p in index.papers], dtype=bool)
    has_topic = np.array([topic_text(catalog[s]) in vectors.texts for s in catalog], dtype=bool)
    return Meaning(vectors, papers, topic_cos, tuning, has_paper, has_topic)
