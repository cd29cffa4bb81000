"""The "N more papers matched" of an edition: the ledger keeps which papers they were, with
their scores and reasons, for the web view; they are not sent papers. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from pipeline.config import Config
from pipeline.editions import match_selector
from pipeline.ledger import MORE_KEPT, edition_paper_ids, recorded, recorded_selection
from pipeline.matching import match
from pipeline.models import Delivery, DeliveryStatus, Pick, Profile, Selection
from pipeline.papers import title_key
from pipeline.run import deliver_due
from pipeline.store import Store
from tests.delivery_world import (
    EDITION,
    NOW,
    add_readers,
    make_paper,
    reader,
    scored,
    seed_papers,
)
from tests.test_deliver_resend import ingest


def queued_row(sid: int = 42) -> Delivery:
    return Delivery(
        subscriber_id=sid, edition_date=EDITION, status=DeliveryStatus.QUEUED, message_id="<m@x>"
    )


def test_the_real_matcher_keeps_the_further_matches_and_only_the_shown_count_as_sent(
    instance: Config, store: Store
) -> None:
    """A reader with max_papers=3 and 8 matching papers: 3 are mailed and recorded as sent;
    the other 5 are in the ledger with the scores and reasons match.rank gives them, best
    first, and remain selectable for a later edition."""
    papers = seed_papers(store, 8)
    [sub] = add_readers(store, 1)
    assert sub.profile.max_papers == 3
    assert deliver_due(instance, NOW, store=store).sent == 1

    row = store.ledger.get(sub.id, EDITION)
    assert row is not None and row.status == DeliveryStatus.SENT
    catalog = match.load_catalog(instance.topics)
    ranked = match.rank(papers, sub.profile, catalog, instance.match)
    assert len(ranked) == 8  # the oracle: every eligible paper, best first, with reasons
    assert row.paper_ids == tuple(sp.paper.id for sp in ranked[:3])
    assert row.more_count == 5
    assert row.more_picks == tuple(
        Pick(paper_id=sp.paper.id, score=sp.score, reasons=sp.reasons) for sp in ranked[3:]
    )
    assert all(pick.reasons for pick in row.more_picks)

    assert store.ledger.sent_paper_ids([sub.id]) == {sub.id: set(row.paper_ids)}
    # Not marked sent: a later edition (here, with no first-seen window) can still pick them.
    later = match_selector(instance.match, instance.topics)(
        [sub],
        papers,
        EDITION + dt.timedelta(days=1),
        store.ledger.sent_paper_ids([sub.id]),
        {sub.id: {p.id for p in papers}},
    )
    assert [sp.paper.id for sp in later[0].papers] == [p.paper_id for p in row.more_picks[:3]]


def test_match_selector_splits_at_max_papers_without_changing_the_ranking(
    instance: Config,
) -> None:
    """The selection's papers and more_count are what match.select alone gives; more_papers
    continue its ranking, up to MORE_KEPT."""
    papers = [make_paper(i) for i in range(12)]
    sub = reader(profile=Profile(topics=("spiking-neural-networks",), max_papers=4))
    eligible = {sub.id: {p.id for p in papers}}
    catalog = match.load_catalog(instance.topics)
    [plain] = match.select(
        papers, [sub], catalog, instance.match, edition_date=EDITION, sent={}, eligible=eligible
    )
    [ours] = match_selector(instance.match, instance.topics)([sub], papers, EDITION, {}, eligible)
    assert (ours.papers, ours.more_count) == (plain.papers, plain.more_count)
    assert len(ours.papers) == 4 and ours.more_count == 8
    ranked = match.rank(papers, sub.profile, catalog, instance.match)
    assert ours.more_papers == tuple(ranked[4:])


def test_papers_cut_by_the_size_budget_lead_the_further_matches_and_the_list_is_capped() -> None:
    """Papers the email had no room for come first (they ranked higher), then the matcher's
    further matches; at most MORE_KEPT are kept, while more_count still counts them all."""
    papers = [make_paper(i) for i in range(70)]
    ranked = scored(papers)
    selection = Selection(
        subscriber_id=42,
        edition_date=EDITION,
        papers=ranked[:5],
        more_papers=ranked[5:],
        more_count=65,
    )
    shown = [sp.paper.id for sp in ranked[:2]]  # the budget cut 3 of the 5
    row = recorded(queued_row(), selection, shown)
    assert row.paper_ids == tuple(shown)
    assert row.more_count == 68
    assert len(row.more_picks) == MORE_KEPT == 50
    assert [p.paper_id for p in row.more_picks] == [sp.paper.id for sp in ranked[2:52]]
    assert row.more_picks[0].reasons == ranked[2].reasons


def test_recorded_selection_rebuilds_shown_and_further_papers(store: Store) -> None:
    """What the ledger kept round-trips through the store and back into a Selection."""
    papers = seed_papers(store, 6)
    [sub] = add_readers(store, 1)
    ranked = scored(papers)
    selection = Selection(
        subscriber_id=sub.id,
        edition_date=EDITION,
        papers=ranked[:2],
        more_papers=ranked[2:5],
        more_count=4,
    )
    row = recorded(queued_row(sub.id), selection, [sp.paper.id for sp in ranked[:2]])
    assert store.ledger.queue_many([row], NOW) == 1
    kept = store.ledger.get(sub.id, EDITION)
    assert kept is not None and kept.more_picks == row.more_picks
    rebuilt = recorded_selection(kept, store.papers.by_ids(edition_paper_ids(kept)))
    assert rebuilt == selection


def test_a_further_match_rekeyed_after_queueing_keeps_its_place(store: Store) -> None:
    """A title-keyed paper among the further matches that a later dump gives its arXiv id is
    still listed (under the new id) by the web view."""
    seed_papers(store, 2)
    [sub] = add_readers(store, 1)
    title = "Neuromorphic chips learn on the fly without backpropagation"
    page = make_paper(50, id=title_key(title), arxiv_id=None, title=title, source_format="hf_page")
    ingest(store, "page", page, NOW - dt.timedelta(hours=2))
    row = queued_row(sub.id).model_copy(
        update={
            "paper_ids": ("2607.00000",),
            "more_count": 1,
            "more_picks": (Pick(paper_id=page.id, score=0.5, reasons=("interest: chips",)),),
        }
    )
    store.ledger.queue_many([row], NOW)
    arxiv = page.model_copy(
        update={"id": "2607.09999", "arxiv_id": "2607.09999", "source_format": "hf_api"}
    )
    ingest(store, "api", arxiv, NOW + dt.timedelta(minutes=5))
    kept = store.ledger.get(sub.id, EDITION)
    assert kept is not None
    assert kept.paper_ids == ("2607.00000",)
    assert kept.more_picks == (
        Pick(paper_id="2607.09999", score=0.5, reasons=("interest: chips",)),
    )
    rebuilt = recorded_selection(kept, store.papers.by_ids(edition_paper_ids(kept)))
    assert [sp.paper.title for sp in rebuilt.more_papers] == [title]
