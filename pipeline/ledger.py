"""What a ledger row records of an edition, and how the edition is rebuilt from it.

The delivery engine writes a row with ``recorded`` when it queues an edition; a retry, the
``preview`` command and the web view read it back with ``recorded_selection``, and each of
them signs the edition's links with ``digest_links``. Pure: no store, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pipeline.links import Links
from pipeline.models import Delivery, Paper, Pick, ScoredPaper, Selection
from pipeline.render import DigestLinks, FeedbackLinks

# Further matches kept per edition for its web view ("N more papers matched your interests"):
# enough to browse past the email, while a ledger row grows by ~10 KB at most (a pick is
# ~200 bytes) and matching explains at most this many more papers per subscriber (the reasons
# are most of the extra matching time).
MORE_KEPT = 50


def recorded(row: Delivery, selection: Selection, shown: Sequence[str]) -> Delivery:
    """``row`` as the ledger keeps it: the papers the first rendering showed (the size budget
    may have cut some), each one's score and reasons, how many more matched, and the best of
    those (papers the budget cut first, then ``selection.more_papers``; ``MORE_KEPT`` at most)
    for the web view. Only ``paper_ids`` count as sent."""
    picked = {sp.paper.id: sp for sp in selection.papers}
    shown_ids = set(shown)
    cut = [sp for sp in selection.papers if sp.paper.id not in shown_ids]
    return row.model_copy(
        update={
            "paper_ids": tuple(shown),
            "picks": tuple(_pick(picked[i]) for i in shown if i in picked),
            "more_count": selection.more_count + len(selection.papers) - len(shown),
            "more_picks": tuple(_pick(sp) for sp in (*cut, *selection.more_papers)[:MORE_KEPT]),
        }
    )


def _pick(scored: ScoredPaper) -> Pick:
    return Pick(paper_id=scored.paper.id, score=scored.score, reasons=scored.reasons)


def edition_paper_ids(row: Delivery) -> tuple[str, ...]:
    """Every paper a ledger row names: those it showed, then its further matches."""
    return (*row.paper_ids, *(pick.paper_id for pick in row.more_picks))


def recorded_selection(row: Delivery, papers: Mapping[str, Paper]) -> Selection:
    """The selection a ledger row was rendered from, as far as ``papers`` still has them:
    the papers it showed with their recorded scores and reasons, the "N more" count, and the
    further matches it kept (pass ``edition_paper_ids(row)``'s papers to get those too)."""
    picks = {pick.paper_id: pick for pick in row.picks}
    scored = []
    for i in row.paper_ids:
        if i not in papers:
            continue
        pick = picks.get(i)
        scored.append(
            ScoredPaper(paper=papers[i], score=pick.score, reasons=pick.reasons)
            if pick is not None
            else ScoredPaper(paper=papers[i], score=0.0)  # queued before picks were kept
        )
    return Selection(
        subscriber_id=row.subscriber_id,
        edition_date=row.edition_date,
        papers=tuple(scored),
        more_count=row.more_count,
        more_papers=tuple(
            ScoredPaper(paper=papers[p.paper_id], score=p.score, reasons=p.reasons)
            for p in row.more_picks
            if p.paper_id in papers
        ),
    )


def digest_links(
    links: Links, subscriber_id: int, edition: dt.date, paper_ids: Sequence[str]
) -> DigestLinks:
    """The signed URLs for one digest: its web view, preferences, unsubscribe, and a 👍/👎
    pair for each of ``paper_ids``."""
    return DigestLinks(
        web=links.edition(subscriber_id, edition),
        preferences=links.preferences(subscriber_id),
        unsubscribe=links.unsubscribe(subscriber_id),
        feedback={
            p: FeedbackLinks(
                up=links.feedback(subscriber_id, p, 1), down=links.feedback(subscriber_id, p, -1)
            )
            for p in paper_ids
        },
    )


def edition_view_links(links: Links, selection: Selection) -> DigestLinks:
    """The links of an edition's web view: the digest's, with 👍/👎 for the further matches too."""
    ids = [sp.paper.id for sp in (*selection.papers, *selection.more_papers)]
    return digest_links(links, selection.subscriber_id, selection.edition_date, ids)
