"""match.relative_floor: a digest drops papers far weaker than its best pick, never all."""

from __future__ import annotations

import datetime as dt

from pipeline.config import Match
from pipeline.matching.match import load_catalog, rank, select
from pipeline.models import Paper, Profile, Selection, Subscriber

CATALOG = load_catalog()
EDITION = dt.date(2026, 7, 3)
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

STRONG = Paper(
    id="strong",
    title="Spiking neural networks trained with surrogate gradients",
    abstract="We train deep spiking neural networks end to end; the spiking neurons fire sparsely.",
    source_format="hf_api",
)
WEAK = Paper(
    id="weak",
    title="A survey of optimisers for vision transformers",
    abstract="Among the many optimisers we compare, one was first tried on spiking models.",
    source_format="hf_api",
)
BY_HER = Paper(
    id="by-her",
    title="Notes on tokenisers",
    abstract="A short note; spiking models are mentioned once.",
    authors=("Mira Okafor",),
    source_format="hf_api",
)
PROFILE = Profile(interests="spiking neural networks")


def edition(papers: list[Paper], profile: Profile, weights: Match) -> Selection:
    reader = Subscriber(id=1, email="r@example.org", profile=profile, created_at=CREATED)
    [selection] = select(papers, [reader], CATALOG, weights, edition_date=EDITION)
    return selection


def test_a_weak_paper_behind_a_strong_one_moves_out_of_the_mail() -> None:
    ranked = rank([STRONG, WEAK], PROFILE, CATALOG, Match(relative_floor=0))
    assert [sp.paper.id for sp in ranked] == ["strong", "weak"]  # both pass the floor
    assert ranked[1].score < 0.7 * ranked[0].score  # …and the weak one is far behind

    uncut = edition([STRONG, WEAK], PROFILE, Match(relative_floor=0))
    assert [sp.paper.id for sp in uncut.papers] == ["strong", "weak"]

    cut = edition([STRONG, WEAK], PROFILE, Match(relative_floor=0.7))
    assert [sp.paper.id for sp in cut.papers] == ["strong"]
    assert cut.more_count == 1  # counted under "more papers", not lost


def test_the_best_pick_stays_however_weak() -> None:
    alone = edition([WEAK], PROFILE, Match(relative_floor=1.0))
    assert [sp.paper.id for sp in alone.papers] == ["weak"]


def test_a_favourite_authors_paper_neither_sets_the_bar_nor_falls_under_it() -> None:
    profile = PROFILE.model_copy(update={"authors": ("Mira Okafor",)})
    weights = Match(relative_floor=0.7, author_boost=0.0)
    picked = edition([STRONG, WEAK, BY_HER], profile, weights)
    assert [sp.paper.id for sp in picked.papers if sp.paper.id != "strong"] == ["by-her"]
    # With a large boost her paper leads, but the bar is still set by the strong paper.
    boosted = edition([STRONG, WEAK, BY_HER], profile, Match(relative_floor=0.7))
    assert [sp.paper.id for sp in boosted.papers] == ["by-her", "strong"]


def test_trending_does_not_move_the_bar() -> None:
    """The share compares relevance: a popular weak paper is cut like a quiet one."""
    popular_weak = WEAK.model_copy(update={"upvotes": 5000})
    cut = edition([STRONG, popular_weak], PROFILE, Match(relative_floor=0.7, trending_weight=5))
    assert [sp.paper.id for sp in cut.papers] == ["strong"]


def test_a_paper_on_two_listed_items_does_not_push_out_the_best_on_a_third() -> None:
    """The share compares one item at a time: the more a reader lists, the more they get."""
    both = Paper(
        id="both",
        title="Quantized spiking neural networks on neuromorphic chips",
        abstract="Spiking neural networks with quantization to four bits keep their accuracy.",
        source_format="hf_api",
    )
    one = Paper(
        id="one",
        title="Speculative decoding with a small draft model",
        abstract="Speculative decoding drafts tokens cheaply and verifies them in one pass.",
        source_format="hf_api",
    )
    profile = Profile(interests="spiking neural networks, quantization, speculative decoding")
    flat = Match(relative_floor=0, trending_weight=0)
    ranked = rank([both, one], profile, CATALOG, flat)
    assert [sp.paper.id for sp in ranked] == ["both", "one"]
    assert ranked[1].score < 0.7 * ranked[0].score  # a bar on the total would cut "one"
    picked = edition([both, one], profile, Match(relative_floor=0.7, trending_weight=0))
    assert [sp.paper.id for sp in picked.papers] == ["both", "one"]
