"""Properties of selection that hold for any papers and profiles (hypothesis)."""

from __future__ import annotations

import datetime as dt
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import Match
from pipeline.matching.match import load_catalog, rank, select
from pipeline.matching.textproc import analyze
from pipeline.models import Paper, Profile, ScoredPaper, Selection, Subscriber

CATALOG = load_catalog()
EDITION = dt.date(2026, 7, 3)
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# Profiles draw from RELEVANT words; NOISE words appear only in papers, never in a profile.
RELEVANT = [
    "spiking", "SNN", "quantization", "quantized", "diffusion", "robot", "LLM",
    "large language models", "KV cache", "EEG", "brain-computer interface", "retrieval",
    "agents", "pruning", "Mamba", "graph", "attention", "speech", "benchmark", "image",
]  # fmt: skip
NOISE = ["pancake", "violin", "harbour", "tulip", "granite", "saxophone", "meadow"]
AUTHORS = ["Mira Okafor", "José Núñez", "Lea Hoffmann"]
NOISE_AUTHORS = ["Nobody Noise"]

text = st.lists(st.sampled_from(RELEVANT + NOISE), max_size=8).map(" ".join)


@st.composite
def papers(draw: st.DrawFn) -> list[Paper]:
    count = draw(st.integers(0, 12))
    out = [
        Paper(
            id=f"p{i}",
            title=draw(text),
            abstract=draw(text),
            keywords=tuple(draw(st.lists(st.sampled_from(RELEVANT + NOISE), max_size=3))),
            authors=tuple(draw(st.lists(st.sampled_from(AUTHORS), max_size=2, unique=True))),
            upvotes=draw(st.integers(0, 500)),
            source_format="hf_api",
        )
        for i in range(count)
    ]
    # Papers with nothing a profile could ask for, and enormous popularity.
    noise = st.lists(st.sampled_from(NOISE), min_size=1, max_size=6).map(" ".join)
    out += [
        Paper(
            id=f"noise{i}",
            title=draw(noise),
            abstract=draw(noise),
            authors=tuple(NOISE_AUTHORS),
            upvotes=100_000,
            source_format="hf_api",
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    return out


profiles = st.builds(
    Profile,
    topics=st.lists(st.sampled_from([*list(CATALOG), "no-such-topic"]), max_size=3).map(tuple),
    interests=st.lists(st.sampled_from(RELEVANT), max_size=4).map(", ".join),
    authors=st.lists(st.sampled_from(AUTHORS), max_size=1).map(tuple),
    exclude=st.lists(st.sampled_from(RELEVANT), max_size=2).map(tuple),
    min_upvotes=st.sampled_from([0, 0, 10, 200]),
    max_papers=st.integers(1, 5),
    liked_terms=st.lists(st.sampled_from(RELEVANT + NOISE), max_size=2).map(tuple),
    disliked_terms=st.lists(st.sampled_from(RELEVANT + NOISE), max_size=2).map(tuple),
)
weights = st.builds(
    Match,
    trending_weight=st.sampled_from([0.0, 0.35, 2.0]),
    author_boost=st.sampled_from([0.0, 1.0]),
    feedback_weight=st.sampled_from([0.0, 0.3, 2.0]),
    min_relevance=st.sampled_from([0.0, 0.1, 0.5]),
    relative_floor=st.sampled_from([0.0, 0.55, 0.8]),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Paper], list[Subscriber], dict[int, set[str]], Match]:
    batch = draw(papers())
    subs = [
        Subscriber(id=i, email=f"s{i}@example.org", profile=p, created_at=CREATED)
        for i, p in enumerate(draw(st.lists(profiles, min_size=1, max_size=6)))
    ]
    all_ids = [p.id for p in batch]
    sent = {
        s.id: set(draw(st.lists(st.sampled_from(all_ids), max_size=4))) if all_ids else set()
        for s in subs
        if draw(st.booleans())
    }
    return batch, subs, sent, draw(weights)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(case: tuple[list[Paper], list[Subscriber], dict[int, set[str]], Match]) -> list[Selection]:
    batch, subs, sent, w = case
    return select(batch, subs, CATALOG, w, edition_date=EDITION, sent=sent)


def stems_of(paper: Paper) -> set[str]:
    fields = [paper.title, paper.abstract, "; ".join(paper.keywords)]
    return {term for f in fields for term in analyze(f).terms()}


@SETTINGS
@given(cases())
def test_scores_are_finite_and_deterministic(case) -> None:  # type: ignore[no-untyped-def]
    """The same input gives the same selections, whatever the order of the papers."""
    first = run(case)
    batch, subs, sent, w = case
    shuffled = run((list(reversed(batch)), subs, sent, w))
    assert first == run(case) == shuffled
    for selection in first:
        assert all(math.isfinite(sp.score) and sp.score > 0 for sp in selection.papers)
        scores = [sp.score for sp in selection.papers]
        assert scores == sorted(scores, reverse=True)


@SETTINGS
@given(cases())
def test_selection_rules_always_hold(case) -> None:  # type: ignore[no-untyped-def]
    """One selection per subscriber; no duplicate, sent, excluded or surplus paper in it."""
    _, subs, sent, _ = case
    selections = run(case)
    assert [s.subscriber_id for s in selections] == [s.id for s in subs]
    for sub, selection in zip(subs, selections, strict=True):
        picked = [sp.paper for sp in selection.papers]
        assert len({p.id for p in picked}) == len(picked)
        assert len(picked) <= sub.profile.max_papers
        assert selection.more_count >= 0
        assert not {p.id for p in picked} & sent.get(sub.id, set())
        for p in picked:
            assert p.upvotes >= sub.profile.min_upvotes
            for word in sub.profile.exclude:
                required = set(analyze(word).bigrams or analyze(word).unigrams)
                assert not required <= stems_of(p), (word, p.title)


@SETTINGS
@given(cases())
def test_popular_but_irrelevant_is_never_selected(case) -> None:  # type: ignore[no-untyped-def]
    """Papers that share no term with any profile are never picked, at 100,000 upvotes."""
    for selection in run(case):
        assert not [sp for sp in selection.papers if sp.paper.id.startswith("noise")]


def ranked_unsent(
    batch: list[Paper], sub: Subscriber, sent: dict[int, set[str]], w: Match
) -> list[ScoredPaper]:
    """rank()'s order for the subscriber's profile (known topics only), sent papers removed."""
    known = Profile(
        **{
            **sub.profile.model_dump(),
            "topics": tuple(t for t in sub.profile.topics if t in CATALOG),
        }
    )
    return [
        sp for sp in rank(batch, known, CATALOG, w) if sp.paper.id not in sent.get(sub.id, set())
    ]


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    it = iter(whole)
    return all(x in it for x in part)


@SETTINGS
@given(cases())
def test_select_is_the_head_of_rank_minus_sent(case) -> None:  # type: ignore[no-untyped-def]
    """Each edition is rank()'s order with sent papers removed, cut at max_papers; the
    digest's share (match.relative_floor) only drops papers from that head, never all."""
    batch, subs, sent, w = case
    for sub, selection in zip(subs, run(case), strict=True):
        ranked = ranked_unsent(batch, sub, sent, w)
        head = [sp.paper.id for sp in ranked[: sub.profile.max_papers]]
        picked = [sp.paper.id for sp in selection.papers]
        if w.relative_floor == 0:
            assert picked == head
        assert is_subsequence(picked, head)
        assert bool(picked) == bool(ranked)  # the share never empties a digest
        assert selection.more_count == len(ranked) - len(picked)


@SETTINGS
@given(cases(), st.sampled_from([0.3, 0.6, 0.9]))
def test_a_higher_share_never_adds_a_paper(case, share: float) -> None:  # type: ignore[no-untyped-def]
    """Raising match.relative_floor keeps a subset of the papers a lower one mailed."""
    batch, subs, sent, w = case
    lower = select(
        batch,
        subs,
        CATALOG,
        w.model_copy(update={"relative_floor": share}),
        edition_date=EDITION,
        sent=sent,
    )
    higher = select(
        batch,
        subs,
        CATALOG,
        w.model_copy(update={"relative_floor": share + 0.1}),
        edition_date=EDITION,
        sent=sent,
    )
    for low, high in zip(lower, higher, strict=True):
        low_ids = [sp.paper.id for sp in low.papers]
        assert is_subsequence([sp.paper.id for sp in high.papers], low_ids)
        assert bool(high.papers) == bool(low.papers)


@SETTINGS
@given(cases(), st.integers(0, 6))
def test_more_papers_continue_the_ranking(case, more: int) -> None:  # type: ignore[no-untyped-def]
    """Asking for ``more`` leaves the edition as it was and adds, up to ``more``, the papers of
    rank()'s order it left out (cut by the share, then beyond max_papers) as more_papers;
    more_count still counts everything left out."""
    batch, subs, sent, w = case
    widened = select(batch, subs, CATALOG, w, edition_date=EDITION, sent=sent, more=more)
    for sub, before, after in zip(subs, run(case), widened, strict=True):
        assert (after.papers, after.more_count) == (before.papers, before.more_count)
        assert before.more_papers == ()
        cut = sub.profile.max_papers
        ranked = ranked_unsent(batch, sub, sent, w)
        shown = {sp.paper.id for sp in after.papers}
        left_out = [sp for sp in ranked[:cut] if sp.paper.id not in shown]
        expected = (left_out + ranked[cut : cut + more])[:more]
        assert [sp.paper.id for sp in after.more_papers] == [sp.paper.id for sp in expected]
        assert [sp.reasons for sp in after.more_papers] == [sp.reasons for sp in expected]
