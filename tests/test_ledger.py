"""What a ledger row records of an edition and how the edition and its links are rebuilt."""

from __future__ import annotations

import datetime as dt

from pipeline.ledger import (
    edition_paper_ids,
    edition_view_links,
    recorded,
    recorded_selection,
)
from pipeline.links import Links
from pipeline.models import Delivery, DeliveryStatus, ScoredPaper, Selection
from pipeline.tokens import Tokens
from tests.delivery_world import make_paper

DAY = dt.date(2026, 7, 3)
LINKS = Links("https://news.example.org/", Tokens("s" * 32))


def row() -> Delivery:
    return Delivery(
        subscriber_id=7, edition_date=DAY, status=DeliveryStatus.QUEUED, message_id="<m@x>"
    )


def selection(shown: int, more: int) -> Selection:
    papers = [make_paper(i) for i in range(shown + more)]
    return Selection(
        subscriber_id=7,
        edition_date=DAY,
        papers=tuple(ScoredPaper(paper=p, score=0.9, reasons=("r",)) for p in papers[:shown]),
        more_papers=tuple(ScoredPaper(paper=p, score=0.5) for p in papers[shown:]),
        more_count=more,
    )


def test_a_recorded_row_rebuilds_the_selection_it_was_rendered_from() -> None:
    """The papers shown, then the further matches, with their scores and reasons, round-trip."""
    chosen = selection(2, 3)
    kept = recorded(row(), chosen, [sp.paper.id for sp in chosen.papers])
    papers = {sp.paper.id: sp.paper for sp in (*chosen.papers, *chosen.more_papers)}
    assert edition_paper_ids(kept) == tuple(papers)
    assert recorded_selection(kept, papers) == chosen


def test_the_web_view_signs_votes_for_shown_and_further_papers() -> None:
    """An edition's web view offers 👍/👎 for every paper it lists, each link for that paper."""
    chosen = selection(1, 2)
    links = edition_view_links(LINKS, chosen)
    assert list(links.feedback) == [sp.paper.id for sp in (*chosen.papers, *chosen.more_papers)]
    for paper_id, pair in links.feedback.items():
        up = LINKS.tokens.read("feedback", pair.up.rpartition("/")[2])
        down = LINKS.tokens.read("feedback", pair.down.rpartition("/")[2])
        assert (up, down) == ({"s": 7, "p": paper_id, "v": 1}, {"s": 7, "p": paper_id, "v": -1})
    edition = LINKS.tokens.read("edition", links.web.rpartition("/")[2])
    assert edition == {"s": 7, "d": DAY.isoformat()}
    assert links.unsubscribe.startswith("https://news.example.org/u/")
