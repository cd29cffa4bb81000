"""The digest's share (``match.relative_floor``): which of a reader's top papers go in the mail.

A paper stays if its relevance through the one topic or interest item it meets best (plus its
closeness by meaning) reaches ``share`` of the best such relevance among the reader's top
papers. Comparing one component at a time keeps what a reader listed: a paper that meets two
of their items does not push out the best paper on a third. The best paper always stays, so
no digest is emptied, and a favourite author's paper neither sets the bar nor falls under it.
"""

from __future__ import annotations

import numpy as np

from pipeline.matching.scoring import Prepared, Scored


def single_relevance(prepared: Prepared, scored: Scored, top: np.ndarray) -> np.ndarray:
    """rows × top columns: each paper's best single topic or interest item, plus closeness.

    Tables are built once per distinct topic set and interest in the chunk, then gathered at
    the top columns only (a few per row).
    """
    rows = np.arange(len(top))[:, None]
    out = np.zeros(top.shape, dtype=np.float32)
    topics = prepared.topics.scores
    sets, set_row = np.unique(scored.set_of, return_inverse=True)
    slugs_of = {i: key for key, i in prepared.sets.ids.items()}
    table = np.zeros((len(sets), prepared.index.size), dtype=np.float32)
    for j, set_id in enumerate(sets.tolist()):
        cols = [prepared.slugs[s] for s in slugs_of.get(set_id, ()) if s in prepared.slugs]
        if cols:
            table[j] = topics[:, cols].max(axis=1)
    np.maximum(out, table[set_row.reshape(-1)[:, None], top], out=out)
    interest = scored.interest_of
    texts, text_row = np.unique(interest, return_inverse=True)
    table = np.zeros((len(texts), prepared.index.size), dtype=np.float32)
    for j, col in enumerate(texts.tolist()):
        items = scored.components.items.get(col)
        if items is not None and items.shape[1]:
            table[j] = items[:, :, 0].max(axis=1)
    np.maximum(out, table[text_row.reshape(-1)[:, None], top], out=out)
    if scored.closeness is not None and prepared.meaning is not None:
        by_set, by_text = prepared.meaning.sets.rank, prepared.meaning.interests.rank
        set_rows, text_rows = scored.closeness
        near = np.maximum(by_set[set_rows[rows], top], by_text[text_rows[rows], top])
        out += near
    return out


def digest_first(
    scored: Scored,
    top: np.ndarray,
    take: np.ndarray,
    share: float,
    strength: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's top columns with its edition's papers first, and how many those are.

    The edition is the row's first ``max_papers`` (of ``take``) whose ``strength``
    (``single_relevance``) reaches ``share`` of the best among them that is not by a
    favourite author; favourite authors' papers stay. Papers cut stay in order after the
    edition's, where ``more`` finds them.
    """
    width = top.shape[1]
    position = np.arange(width)
    edition = position < np.minimum(take, scored.limits)[:, None]
    if share <= 0 or not width or strength is None:
        return top, np.count_nonzero(edition, axis=1)
    favourite = np.zeros(top.shape, dtype=bool)
    for row, col in zip(*scored.authored, strict=True):
        favourite[row] |= top[row] == col
    best = np.where(edition & ~favourite, strength, 0).max(axis=1, keepdims=True)
    edition &= (strength >= np.float32(share) * best) | favourite
    order = np.argsort(~edition, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.count_nonzero(edition, axis=1)
