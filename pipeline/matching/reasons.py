"""Why a paper was picked: the human reasons behind a score, built once and shared.

A reason names the strongest matching components (a topic with its covered keywords, an
interest with its words, liked terms), then followed authors, then the trend.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from pipeline import config
from pipeline.matching.relevance import Index
from pipeline.matching.scoring import KEYWORD_SHOWN, REASON_MIN, Scored, query_tokens
from pipeline.matching.textproc import normalize_name
from pipeline.matching.topics import Catalog
from pipeline.models import ScoredPaper

Entry = tuple[float, str]  # (-score, reason text or ""): sorts strongest first


class ReasonMaker:
    """Builds ScoredPapers with reasons, shared between rows whose profiles score alike.

    Reasons are the profile's component reasons (strongest first, ties by text), then followed
    authors, then the trend. A topic set's reasons for a paper are sorted once; the row's
    interest is merged in by bisection (reason texts of different kinds never collide).
    """

    def __init__(
        self, index: Index, scored: Scored, catalog: Catalog, weights: config.Match
    ) -> None:
        self.index, self.scored, self.catalog, self.weights = index, scored, catalog, weights
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
        self._topic_parts: dict[int, tuple[tuple[Entry, ...], tuple[str, ...]]] = {}
        self._set_bits: dict[int, int] = {}
        self._plain: dict[int, tuple[str, ...]] = {}  # reasons of rows without special fields
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

    def scored_paper(self, row: int, col: int, score: float) -> ScoredPaper:
        """A new ScoredPaper of row ``row`` for paper ``col``, whose score is ``score``."""
        reasons = self._reasons(row, col)
        return ScoredPaper(paper=self.index.papers[col], score=round(score, 6), reasons=reasons)

    def _reasons(self, row: int, col: int) -> tuple[str, ...]:
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
            comp = self._interests[row]
            entry = (
                (self._texts[col].get(comp) or self._component(comp, col)) if comp >= 0 else None
            )
            if entry and entry[1]:
                at = bisect_right(entries, entry)
                found = (*found[:at], entry[1], *found[at:])
            trend = self._trends[col]
            found = self._plain[key] = (*found, trend) if trend else found
        return found

    def _bits(self, slugs: tuple[str, ...]) -> int:
        """The topic components of ``slugs`` as bits (a topic listed twice counts once)."""
        topic_cols = self.scored.topic_cols
        return sum({1 << topic_cols[s] for s in slugs if s in topic_cols})

    def _special_reasons(self, row: int, col: int, bits: int) -> tuple[str, ...]:
        """Reasons of a row with liked terms or followed authors."""
        entries, found = self._topic_part(bits, col)
        profile = self.scored.profiles[row]
        texts = self._texts[col]
        comps = [self._interests[row], self.scored.text_cols.get(("liked", profile.liked_terms))]
        extra = [texts.get(c) or self._component(c, col) for c in comps if c is not None and c >= 0]
        if any(text for _, text in extra):
            found = tuple(text for _, text in sorted([*entries, *extra]) if text)
        if profile.authors:
            paper = self.index.papers[col]
            wanted = {normalize_name(a) for a in profile.authors}
            found += tuple(f"author: {a}" for a in paper.authors if normalize_name(a) in wanted)
        trend = self._trends[col]
        return (*found, trend) if trend else found

    def _topic_part(self, bits: int, col: int) -> tuple[tuple[Entry, ...], tuple[str, ...]]:
        """Reasons of the topics in ``bits`` for one paper: entries, sorted, and their texts."""
        found = self._topic_parts.get(bits * self._n + col)
        if found is None:
            texts = self._texts[col]
            comps = [c for c in range(bits.bit_length()) if bits >> c & 1]
            unique: dict[str, Entry] = {}
            for entry in sorted(texts.get(c) or self._component(c, col) for c in comps):
                unique.setdefault(entry[1], entry)  # two topics may read the same: named once
            found = (tuple(unique.values()), tuple(unique))
            self._topic_parts[bits * self._n + col] = found
        return found

    def _trend(self, col: int) -> str:
        upvotes = self.index.papers[col].upvotes
        if self.weights.trending_weight <= 0 or upvotes <= 0:
            return ""
        return f"trending: {upvotes} upvote{'s' if upvotes != 1 else ''}"

    def _component(self, comp: int, col: int) -> tuple[float, str]:
        """(-score, reason text or "") of one component for one paper, computed once."""
        value = float(self.scored.components.scores[col, comp])
        text = self._describe(comp, col) if value >= REASON_MIN else ""
        found = self._texts[col][comp] = (-value, text)
        return found

    def _describe(self, comp: int, col: int) -> str:
        components = self.scored.components
        query = components.queries[comp]
        if comp < len(self.slugs):
            start = components.offsets[comp]
            named = [
                (components.cover[col, start + i], shown)
                for i, (_, _, shown) in enumerate(query.phrases)
                if shown and i > 0
            ]
            best = [s for c, s in sorted(named, key=lambda n: -n[0]) if c >= KEYWORD_SHOWN][:3]
            # No keyword is mostly there: name the words that did match instead.
            best = best or self._matched_runs(" ; ".join(s for _, _, s in query.phrases), col)
            title = self.catalog[self.slugs[comp]].title
            return f"topic: {title} — " + ", ".join(f'"{s}"' for s in best)
        runs = self._matched_runs(" ; ".join(s for _, _, s in query.phrases), col)
        if not runs:
            return ""
        label = "you liked" if self._liked.get(comp) else "interest"
        return f"{label}: " + ", ".join(f'"{r}"' for r in runs)

    def _matched_runs(self, text: str, col: int) -> list[str]:
        """Up to three stretches of ``text`` whose words the paper has, strongest first."""
        row = self._row(col)
        runs: list[tuple[float, str]] = []
        start = end = -1
        weight = 0.0
        for token in [*query_tokens(text), None]:
            hit = token is not None and all(s in row for s in token.stems)
            if start >= 0 and (not hit or token is None or token.breaks):
                runs.append((weight, text[start:end]))
                start, weight = -1, 0.0
            if token is not None and hit:
                if start < 0:
                    start = token.start
                end = token.end
                weight += sum(row[s] for s in token.stems)
        out: dict[str, str] = {}
        for _, run in sorted(runs, key=lambda r: -r[0]):
            out.setdefault(run.casefold(), run)
        return list(out.values())[:3]

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
