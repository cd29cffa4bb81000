"""match.relative_floor: a digest drops papers far weaker than its best pick, never all."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline.config import Match
from pipeline.matching.match import load_catalog, rank, select
from pipeline.models import Paper, Profile, Selection, Subscriber

CATALOG = load_catalog()
EDITION = dt.date(2026, 7, 3)
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def paper(pid: str, title: str, abstract: str, **extra: Any) -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, source_format="hf_api", **extra)


STRONG = paper(
    "strong",
    "Spiking neural networks trained with surrogate gradients",
    "We train deep spiking neural networks end to end; the spiking neurons fire sparsely.",
)
WEAK = paper(
    "weak",
    "A survey of optimisers for vision transformers",
    "Among the many optimisers we compare, one was first tried on spiking models.",
)
BY_HER = paper(
    "by-her",
    "Notes on tokenisers",
    "A short note; spiking models are mentioned once.",
    authors=("Mira Okafor",),
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
    both = paper(
        "both",
        "Quantized spiking neural networks on neuromorphic chips",
        "Spiking neural networks with quantization to four bits keep their accuracy.",
    )
    one = paper(
        "one",
        "Speculative decoding with a small draft model",
        "Speculative decoding drafts tokens cheaply and verifies them in one pass.",
    )
    profile = Profile(interests="spiking neural networks, quantization, speculative decoding")
    flat = Match(relative_floor=0, trending_weight=0)
    ranked = rank([both, one], profile, CATALOG, flat)
    assert [sp.paper.id for sp in ranked] == ["both", "one"]
    assert ranked[1].score < 0.7 * ranked[0].score  # a bar on the total would cut "one"
    picked = edition([both, one], profile, Match(relative_floor=0.7, trending_weight=0))
    assert [sp.paper.id for sp in picked.papers] == ["both", "one"]
