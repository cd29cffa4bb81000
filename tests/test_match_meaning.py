"""Matching by meaning: closeness of sentence vectors, blended with words, with its own floor."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import Match
from pipeline.embedding import Vectors, paper_text, profile_texts
from pipeline.embedding.model import load_embedder
from pipeline.matching.match import load_catalog, rank
from pipeline.models import Paper, Profile, ScoredPaper

CATALOG = load_catalog()
MODEL = load_embedder()


def paper(pid: str, title: str, abstract: str) -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, source_format="hf_api")


def vectors(papers: list[Paper], profile: Profile) -> Vectors:
    texts = list(profile_texts(profile, CATALOG.topics))
    paper_vecs = MODEL.embed([paper_text(p) for p in papers])
    text_vecs = MODEL.embed(texts)
    return Vectors(
        MODEL.name,
        {p.id: v for p, v in zip(papers, paper_vecs, strict=True)},
        dict(zip(texts, text_vecs, strict=True)),
    )


DEFAULT = Match()


def ranked(papers: list[Paper], profile: Profile, weights: Match = DEFAULT) -> list[ScoredPaper]:
    return rank(papers, profile, CATALOG, weights, vectors=vectors(papers, profile))


NOWCAST = paper(
    "nowcast",
    "Nowcasting Rain from Radar Sequences",
    "A convolutional model predicts precipitation an hour ahead from radar images, beating "
    "numerical prediction on short lead times over three national networks.",
)
PROTEIN = paper(
    "protein",
    "Side-Chain Packing with Equivariant Graph Networks",
    "We predict amino-acid side-chain conformations from backbone coordinates and improve "
    "rotamer recovery on CASP targets.",
)
KEYWORDS = paper(
    "kws",
    "Neuromorphic Keyword Spotting on a Milliwatt Budget",
    "Leaky integrate-and-fire neurons trained with surrogate gradients recognise spoken "
    "commands on an event-driven chip.",
)
PROSTHESIS = paper(
    "prosthesis",
    "Closed-Loop Speech Neuroprosthesis with Real-Time Voice Synthesis",
    "A brain-computer interface decodes intracortical signals into acoustic features every "
    "20 milliseconds and synthesises a personalised voice for a participant who cannot speak.",
)


def test_a_paper_that_says_it_in_other_words_is_found_by_meaning() -> None:
    """No word of "weather forecasting" is in the nowcasting paper; meaning finds it, says so,
    and leaves the protein paper out."""
    profile = Profile(interests="weather forecasting")
    without = rank([NOWCAST, PROTEIN], profile, CATALOG, Match())
    assert [sp.paper.id for sp in without] == []  # words alone: an empty digest
    found = ranked([NOWCAST, PROTEIN], profile)
    assert [sp.paper.id for sp in found] == ["nowcast"]
    assert [r.text for r in found[0].reasons] == ['close to your interest "weather forecasting"']


def test_a_pick_made_by_its_topic_does_not_claim_closeness_to_an_unrelated_interest() -> None:
    """A spiking-networks paper picked for its topic is not `close to your interest "graph
    neural networks"` (cosine 0.25: some closeness, not enough to have found it): only a
    closeness that would carry the paper alone is named."""
    profile = Profile(topics=("spiking-neural-networks",), interests="graph neural networks")
    [picked] = ranked([KEYWORDS], profile)
    kinds = [r.kind for r in picked.reasons]
    assert "topic" in kinds and "meaning" not in kinds, [r.text for r in picked.reasons]


def test_a_topic_close_to_a_whole_field_does_not_carry_an_off_topic_paper() -> None:
    """A speech neuroprosthesis is near "spiking neural networks" in meaning (neurons,
    signals) but not a spiking-network paper: ranked nowhere; a real SNN paper is picked."""
    profile = Profile(topics=("spiking-neural-networks",))
    picked = [sp.paper.id for sp in ranked([KEYWORDS, PROSTHESIS], profile)]
    assert picked == ["kws"]


def test_without_vectors_matching_is_lexical_and_still_works() -> None:
    """A missing vector is never an error: the paper is matched by its words."""
    profile = Profile(topics=("spiking-neural-networks",))
    partial = vectors([KEYWORDS], profile)
    found = rank([KEYWORDS, PROSTHESIS], profile, CATALOG, Match(), vectors=partial)
    assert [sp.paper.id for sp in found] == ["kws"]
    assert [sp.paper.id for sp in rank([KEYWORDS], profile, CATALOG, Match())] == ["kws"]


WORDS = st.sampled_from(
    [
        "weather",
        "radar",
        "rain",
        "protein",
        "folding",
        "robot",
        "grasping",
        "speech",
        "decoding",
        "spiking",
        "neurons",
        "language",
        "model",
        "quantization",
        "cache",
        "attention",
        "diffusion",
        "video",
        "camera",
        "agents",
        "memory",
        "graph",
        "chemistry",
        "molecules",
        "retrieval",
        "reasoning",
    ]
)
PROSE = st.lists(WORDS, min_size=2, max_size=12).map(" ".join)
ITEM = st.lists(WORDS, min_size=1, max_size=3).map(" ".join)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(PROSE, PROSE), min_size=1, max_size=6),
    st.lists(ITEM, min_size=1, max_size=3),
    ITEM,
)
def test_adding_an_item_never_drops_a_matched_paper_with_meaning(
    texts: list[tuple[str, str]], items: list[str], extra: str
) -> None:
    """With vectors for every text, an item added to an interest only adds evidence."""
    papers = [paper(f"p{i}", title, abstract) for i, (title, abstract) in enumerate(texts)]
    weights = Match(trending_weight=0.0)
    shorter = {sp.paper.id for sp in ranked(papers, Profile(interests="; ".join(items)), weights)}
    longer_profile = Profile(interests="; ".join([*items, extra]))
    longer = {sp.paper.id for sp in ranked(papers, longer_profile, weights)}
    assert shorter <= longer
