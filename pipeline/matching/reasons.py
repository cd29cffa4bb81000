"""Why a paper was picked: the reasons behind a score, as data, built once and shared.

A reason names the strongest matching components (a topic with the catalog keywords the paper
holds, an interest with the items it met, liked terms), then followed authors, then the trend.
Evidence is quoted as the paper writes it, and only whole: a catalog keyword or a liked term
that occurs in the paper as whole words, never a stopword, a number or a piece of a word
("bit" of "4-bit"). A pick the matcher found by meaning, with no lexical evidence for the
reader's interest, names the interest item whose vector was closest (``meaning``).
How a reason reads is ``Reason.text`` (pipeline/models.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping

import numpy as np

from pipeline import config
from pipeline.matching.interests import parse_interest
from pipeline.matching.relevance import Index
from pipeline.matching.scoring import REASON_MIN, Scored
from pipeline.matching.textproc import (
    normalize_name,
    phrases,
    spellings,
    tokens,
    whole_occurrence,
)
from pipeline.matching.topics import Catalog
from pipeline.models import Paper, Reason, ScoredPaper

Entry = tuple[float, str, Reason | None]  # (-score, wording or "", reason): strongest first
Meaning = Mapping[tuple[int, int], str] | Callable[[int, int, bool], str | None]


def _order(entry: Entry) -> tuple[float, str]:
    return entry[0], entry[1]


class ReasonMaker:
    """Builds ScoredPapers with reasons, shared between rows whose profiles score alike.

    Reasons are the profile's component reasons (strongest first, ties by text), then followed
    authors, then the trend. A topic set's reasons for a paper are sorted once; the row's
    interest is merged in by bisection (reason texts of different kinds never collide).
    """

    def __init__(
        self,
        index: Index,
        scored: Scored,
        catalog: Catalog,
        weights: config.Match,
        meaning: Meaning | None = None,
    ) -> None:
        """``meaning`` tells, per (profile row, paper column) of ``scored``, which item of the
        row's interest (as ``Item.shown`` spells it) had the closest vector: a mapping, or a
        function of (row, column, whether no topic names the paper) returning None where
        meaning found nothing. It is read only where the row's
        interest has no lexical reason for the paper; there the pick says
        ``close to your interest "<item>"``. Rows with the same interest text must get the
        same item for a paper (they share their reasons)."""
        self.index, self.scored, self.catalog, self.weights = index, scored, catalog, weights
        if isinstance(meaning, Mapping):
            table = meaning
            self._meaning: Callable[[int, int, bool], str | None] | None = lambda row, col, alone: (
                table.get((row, col))
            )
        else:
            self._meaning = meaning
        n = self._n = index.size
        # Rows that score alike share ScoredPapers: plain rows by (topic set, interest), rows
        # with authors or feedback by their whole signature (a negative key). Exclusions and
        # thresholds decide eligibility only, never a score or a reason.
        width = self._width = len(scored.components.queries) + 1
        keys = (scored.set_of * width + scored.interest_of + 1).tolist()
        signatures: dict[tuple[object, ...], int] = {}
        self._special: set[int] = set()
        for row in scored.special:
            p = scored.profiles[row]
            if p.authors or p.liked_terms or p.disliked_terms:
                self._special.add(row)
                sig = (p.topics, p.interests, p.authors, p.liked_terms, p.disliked_terms)
                keys[row] = -1 - signatures.setdefault(sig, len(signatures))
        self.row_keys = np.array(keys, dtype=np.int64)
        self._sets: list[int] = scored.set_of.tolist()
        self._interests: list[int] = scored.interest_of.tolist()
        self._topic_parts: dict[int, tuple[tuple[Entry, ...], tuple[Reason, ...]]] = {}
        self._set_bits: dict[int, int] = {}
        self._plain: dict[int, tuple[Reason, ...]] = {}  # reasons of rows without special fields
        # Per paper: the topics whose component is strong enough to be named, as bits.
        named = scored.components.scores[:, : len(scored.topic_cols)] >= REASON_MIN
        self._named = [sum(1 << int(c) for c in np.flatnonzero(row)) for row in named]
        # Per paper: component → entry, filled as reasons are asked for.
        self._texts: list[dict[int, Entry]] = [{} for _ in range(n)]
        self._trends = [self._trend(col) for col in range(n)]
        self.slugs = list(scored.topic_cols)
        self._liked = {col: kind == "liked" for (kind, _), col in scored.text_cols.items()}
        self._rows: dict[int, dict[str, float]] = {}
        self._terms: dict[int, str] = {}
        self._found: dict[tuple[int, str], str | None] = {}  # (paper, term) → as the paper has it

    def scored_paper(self, row: int, col: int, score: float) -> ScoredPaper:
        """A new ScoredPaper of row ``row`` for paper ``col``, whose score is ``score``."""
        reasons = self._reasons(row, col)
        return ScoredPaper(paper=self.index.papers[col], score=round(score, 6), reasons=reasons)

    def _reasons(self, row: int, col: int) -> tuple[Reason, ...]:
        """Why row ``row`` gets paper ``col``."""
        set_id = self._sets[row]
        bits = self._set_bits.get(set_id)
        if bits is None:
            bits = self._set_bits[set_id] = self._bits(self.scored.profiles[row].topics)
        # Only topics strong enough to be named matter, so many rows share their reasons.
        bits &= self._named[col]
        if row in self._special:
            return self._special_reasons(row, col, bits)
        key = (bits * self._width + self._interests[row] + 1) * self._n + col
        found = self._plain.get(key)
        if found is None:
            entries, found = self._topic_part(bits, col)
            entry = self._interest_entry(row, col, alone=not found)
            if entry is not None and entry[2] is not None:
                at = bisect_right(entries, _order(entry), key=_order)
                found = (*found[:at], entry[2], *found[at:])
            trend = self._trends[col]
            found = self._plain[key] = (*found, trend) if trend else found
        return found

    def _interest_entry(self, row: int, col: int, alone: bool) -> Entry | None:
        """The row's interest component for the paper: its lexical reason, or else the item
        meaning found (see ``__init__``; ``alone``: no topic names the paper, so closeness may
        be all that found it); None for a row without an interest."""
        comp = self._interests[row]
        if comp < 0:
            return None
        entry = self._texts[col].get(comp) or self._component(comp, col)
        if entry[2] is not None or self._meaning is None:
            return entry
        item = self._meaning(row, col, alone)
        if item is None:
            return entry
        shown = {i.shown for i in parse_interest(self.scored.profiles[row].interests)}
        if item not in shown:
            raise ValueError(f"meaning named {item!r}, not an item of {sorted(shown)!r}")
        reason = Reason(kind="meaning", label=item)
        return (entry[0], reason.text, reason)

    def _bits(self, slugs: tuple[str, ...]) -> int:
        """The topic components of ``slugs`` as bits (a topic listed twice counts once)."""
        topic_cols = self.scored.topic_cols
        return sum({1 << topic_cols[s] for s in slugs if s in topic_cols})

    def _special_reasons(self, row: int, col: int, bits: int) -> tuple[Reason, ...]:
        """Reasons of a row with liked terms or followed authors."""
        entries, found = self._topic_part(bits, col)
        profile = self.scored.profiles[row]
        liked = self.scored.text_cols.get(("liked", profile.liked_terms))
        extra = [self._interest_entry(row, col, alone=not found)]
        if liked is not None:
            extra.append(self._texts[col].get(liked) or self._component(liked, col))
        shown = [e for e in extra if e is not None and e[2] is not None]
        if shown:
            merged = sorted([*entries, *shown], key=_order)
            found = tuple(e[2] for e in merged if e[2] is not None)
        if profile.authors:
            paper = self.index.papers[col]
            wanted = {normalize_name(a) for a in profile.authors}
            found += tuple(
                Reason(kind="author", label=a) for a in paper.authors if normalize_name(a) in wanted
            )
        trend = self._trends[col]
        return (*found, trend) if trend else found

    def _topic_part(self, bits: int, col: int) -> tuple[tuple[Entry, ...], tuple[Reason, ...]]:
        """Reasons of the topics in ``bits`` for one paper: entries, sorted, and the reasons."""
        found = self._topic_parts.get(bits * self._n + col)
        if found is None:
            texts = self._texts[col]
            comps = [c for c in range(bits.bit_length()) if bits >> c & 1]
            unique: dict[str, Entry] = {}
            for entry in sorted(
                (texts.get(c) or self._component(c, col) for c in comps), key=_order
            ):
                if entry[2] is not None:  # two topics may read the same: named once
                    unique.setdefault(entry[1], entry)
            found = (tuple(unique.values()), tuple(e[2] for e in unique.values() if e[2]))
            self._topic_parts[bits * self._n + col] = found
        return found

    def _trend(self, col: int) -> Reason | None:
        upvotes = self.index.papers[col].upvotes
        if self.weights.trending_weight <= 0 or upvotes <= 0:
            return None
        return Reason(kind="trending", upvotes=upvotes)

    def _component(self, comp: int, col: int) -> Entry:
        """(-score, wording, reason) of one component for one paper, computed once; the
        reason is None where the component is noise or the paper holds no evidence to quote."""
        value = float(self.scored.components.scores[col, comp])
        reason = self._describe(comp, col) if value >= REASON_MIN else None
        found = self._texts[col][comp] = (-value, reason.text if reason else "", reason)
        return found

    def _describe(self, comp: int, col: int) -> Reason | None:
        components = self.scored.components
        query = components.queries[comp]
        if comp < len(self.slugs):
            start = components.offsets[comp]
            keywords = [
                (-components.cover[col, start + i], i, shown)
                for i, (_, _, shown) in enumerate(query.phrases)
                if shown and i > 0 and components.cover[col, start + i] > 0
            ]
            terms = self._quotes([shown for *_, shown in sorted(keywords)], col)
            title = self.catalog[self.slugs[comp]].title
            # No keyword is there whole: the title's own runs ("Speech", "audio") may be.
            terms = terms or self._quotes(phrases(title), col)
            return Reason(kind="topic", label=title, terms=tuple(terms[:3]))
        if comp in components.items:
            return self._interest(comp, col)
        terms = self._quotes(self._by_weight([s for _, _, s in query.phrases], col), col)
        if not terms or not self._liked.get(comp):
            return None
        return Reason(kind="liked", terms=tuple(terms[:3]))

    def _interest(self, comp: int, col: int) -> Reason | None:
        """The interest items the paper met, as the reader wrote them, strongest first.

        Items whose own words the paper met come first; only when none did, the items whose
        implied topic brought it (naming a sibling item the paper merely shares a topic with
        would mislead).
        """
        items = self.scored.components.items[comp]
        own, total = items[col, :, 1], items[col, :, 0]
        row = own if own.max() >= REASON_MIN else total
        shown = [item.shown for item in self.scored.components.queries[comp].items]
        met = sorted(range(len(shown)), key=lambda i: (-row[i], i))
        named = tuple(shown[i] for i in met if row[i] >= REASON_MIN and _wordy(shown[i]))[:3]
        return Reason(kind="interest", terms=named) if named else None

    def _quotes(self, candidates: list[str], col: int) -> list[str]:
        """``candidates`` that occur whole in the paper, as the paper writes them, in order;
        one that only repeats part of another quote is left out ("Spiking" beside "Spiking
        Neural Networks")."""
        out: dict[str, str] = {}
        for candidate in candidates:
            written = self._occurrence(col, candidate)
            if written:
                out.setdefault(written.casefold(), written)
        padded = [f" {key} " for key in out]
        return [
            written
            for key, written in out.items()
            if not any(f" {key} " in other and other != f" {key} " for other in padded)
        ]

    def _occurrence(self, col: int, term: str) -> str | None:
        """``term`` as paper ``col`` writes it, whole (see whole_occurrence), or None."""
        key = (col, term)
        if key not in self._found:
            wanted = spellings(term)
            self._found[key] = next(
                (
                    found
                    for text in _texts(self.index.papers[col])
                    if (found := whole_occurrence(text, wanted))
                ),
                None,
            )
        return self._found[key]

    def _by_weight(self, terms: list[str], col: int) -> list[str]:
        """``terms`` by the weight of their words in the paper, heaviest first."""
        row = self._row(col)
        weight = {t: sum(row.get(s, 0.0) for w in spellings(t) for s in w) for t in terms}
        return sorted(terms, key=lambda t: -weight[t])

    def _row(self, col: int) -> dict[str, float]:
        """The paper's terms and their weights."""
        if col not in self._rows:
            if not self._terms:
                self._terms = {i: t for t, i in self.index.vocab.items()}
            matrix = self.index.weights
            lo, hi = matrix.indptr[col], matrix.indptr[col + 1]
            pairs = zip(matrix.indices[lo:hi], matrix.data[lo:hi], strict=True)
            self._rows[col] = {self._terms[int(i)]: float(v) for i, v in pairs}
        return self._rows[col]


def _texts(paper: Paper) -> tuple[str, ...]:
    """The paper's texts a reason may quote, in the order a reader meets them."""
    return (paper.title, "; ".join(paper.keywords), paper.ai_summary or "", paper.abstract)


def _wordy(item: str) -> bool:
    """False for an item that is only a number ("4"): met by "4-bit", it would be a fragment."""
    return not all(t.surface.isdigit() for t in tokens(item))
