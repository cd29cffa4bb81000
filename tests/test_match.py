"""Matching: stemming, acronyms, reasons, boosts, filters and selection rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from pipeline.config import Match, Topic
from pipeline.embedding import Vectors, interest_texts, paper_text, topic_text
from pipeline.errors import MatchError
from pipeline.matching import meaning, scoring
from pipeline.matching.match import iter_select, load_catalog, rank, select
from pipeline.matching.relevance import TUNING, distinctive_words, whole_parts
from pipeline.matching.textproc import analyze, normalize_name, phrases
from pipeline.models import Paper, Profile, ScoredPaper, Subscriber
from tests.hash_embedder import HashEmbedder

CATALOG = load_catalog()
WEIGHTS = Match()
EDITION = dt.date(2026, 7, 3)
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def paper(pid: str, title: str, abstract: str = "", **extra: object) -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, source_format="hf_api", **extra)


def subscriber(sid: int, **profile: object) -> Subscriber:
    return Subscriber(
        id=sid, email=f"s{sid}@example.org", profile=Profile(**profile), created_at=CREATED
    )


def ids(ranked: list[ScoredPaper]) -> list[str]:
    return [sp.paper.id for sp in ranked]


SNN = paper(
    "snn",
    "Training Deep Spiking Neural Networks with Surrogate Gradients",
    "Spiking neurons communicate with binary events; we train them end to end.",
    upvotes=12,
)
SNN_ACRONYM = paper(
    "snn-acronym", "Low-Latency SNNs for Edge Devices", "Our SNN runs in two timesteps.", upvotes=3
)
QUANT = paper(
    "quant",
    "Quantized Weights Everywhere",
    "We study weights quantized to four bits in large models.",
    upvotes=5,
)
IMAGE = paper(
    "image",
    "Learned Image Compression with Hyperpriors",
    "An entropy model for image codecs at low bitrate.",
    upvotes=40,
)
POPULAR = paper(
    "popular",
    "A Cooking Robot Makes Pancakes",
    "A kitchen story, wildly shared.",
    upvotes=5000,
)
BATCH = [SNN, SNN_ACRONYM, QUANT, IMAGE, POPULAR]


def test_stemming_meets_quantization_and_quantized() -> None:
    """The interest "quantization" finds a paper that only says "quantized"."""
    assert analyze("quantization").unigrams == analyze("quantized").unigrams
    assert "quant" in ids(rank(BATCH, Profile(interests="quantization"), CATALOG, WEIGHTS))


def test_spiking_and_spike_share_a_stem() -> None:
    """ "spiking" and "spikes" reduce to the same term."""
    assert analyze("spiking").unigrams == analyze("spikes").unigrams


def test_acronym_query_finds_the_expansion() -> None:
    """Searching "SNN" finds a paper that writes "spiking neural networks" in full."""
    assert "snn" in ids(rank(BATCH, Profile(interests="SNN"), CATALOG, WEIGHTS))


def test_expansion_query_finds_the_acronym() -> None:
    """Searching "spiking neural network" finds a paper that only writes "SNNs"."""
    ranked = ids(rank(BATCH, Profile(interests="spiking neural network"), CATALOG, WEIGHTS))
    assert "snn-acronym" in ranked


@pytest.mark.parametrize(
    ("acronym", "expansion"),
    [
        ("LLM", "large language models"),
        ("BCI", "brain-computer interface"),
        ("EEG", "electroencephalography"),
        ("NAS", "neural architecture search"),
        ("MoE", "mixture of experts"),
        ("RAG", "retrieval-augmented generation"),
        ("VLMs", "vision-language models"),
        ("RL", "reinforcement learning"),
        ("SSM", "state space model"),
        ("KV cache", "key-value cache"),
    ],
)
def test_acronyms_and_expansions_share_terms(acronym: str, expansion: str) -> None:
    """An acronym and its expansion analyse to the same terms, concept included."""
    assert analyze(acronym) == analyze(expansion)


def test_interest_facets_split_at_connectives() -> None:
    """A free-text interest splits into the phrases a reason can quote."""
    assert phrases("KV cache and speculative decoding for LLM serving") == [
        "KV cache",
        "speculative decoding",
        "LLM serving",
    ]
    assert phrases("mixture of experts, sim-to-real") == ["mixture of experts", "sim-to-real"]


def test_topic_reason_names_the_topic_and_keywords() -> None:
    """A topic match explains itself with the topic title and the keywords that matched."""
    ranked = rank([SNN], Profile(topics=("spiking-neural-networks",)), CATALOG, WEIGHTS)
    reason = ranked[0].reasons[0]
    assert reason.kind == "topic" and reason.label == "Spiking neural networks"
    # Quoted as the paper writes them: the keyword "SNN" is met by "Spiking Neural Networks".
    assert reason.text.startswith("topic: Spiking neural networks — ")
    assert '"Spiking Neural Networks"' in reason.text
    assert '"Surrogate Gradients"' in reason.text


def test_interest_reason_quotes_the_matched_phrases() -> None:
    """An interest match quotes the user's own words that the paper matched."""
    ranked = rank([SNN], Profile(interests="surrogate gradients and pancakes"), CATALOG, WEIGHTS)
    assert ranked[0].reasons[0].text == 'interest: "surrogate gradients"'


def test_trending_reason_counts_upvotes() -> None:
    """A paper with upvotes says how many, last."""
    ranked = rank([SNN], Profile(interests="spiking"), CATALOG, WEIGHTS)
    assert ranked[0].reasons[-1].text == "trending: 12 upvotes"


def test_author_boost_is_case_and_accent_insensitive() -> None:
    """Following "jose nunez" boosts a paper by "José Núñez" and says so."""
    by_jose = paper("jose", "Spiking Networks Again", "spiking", authors=("José Núñez", "Ann Lee"))
    other = paper("other", "Spiking Networks Again", "spiking", authors=("Someone Else",))
    profile = Profile(interests="spiking", authors=("jose  NUNEZ",))
    ranked = rank([other, by_jose], profile, CATALOG, WEIGHTS)
    assert ids(ranked) == ["jose", "other"]
    assert ranked[0].score > ranked[1].score + WEIGHTS.author_boost / 2
    assert "author: José Núñez" in [r.text for r in ranked[0].reasons]
    assert normalize_name("José  Núñez") == normalize_name("jose nunez")


def test_followed_author_is_selected_without_topic_match() -> None:
    """A favourite author's paper counts as relevant by itself."""
    by_her = paper("her", "Pancakes at Scale", "kitchen", authors=("Mira Okafor",))
    ranked = rank([by_her], Profile(authors=("Mira Okafor",)), CATALOG, WEIGHTS)
    assert ids(ranked) == ["her"]


def test_min_upvotes_drops_quieter_papers() -> None:
    """A profile's min_upvotes removes relevant papers with fewer upvotes."""
    profile = Profile(topics=("spiking-neural-networks",), min_upvotes=10)
    assert ids(rank(BATCH, profile, CATALOG, WEIGHTS)) == ["snn"]


def test_popular_but_irrelevant_never_appears() -> None:
    """5000 upvotes do not make a cooking paper relevant to spiking networks."""
    profile = Profile(topics=("spiking-neural-networks",))
    assert "popular" not in ids(rank(BATCH, profile, CATALOG, WEIGHTS))
    zero_threshold = Match(min_relevance=0.0, trending_weight=5.0)
    assert "popular" not in ids(rank(BATCH, profile, CATALOG, zero_threshold))


def test_trending_lifts_the_more_upvoted_of_equal_papers() -> None:
    """Between two equally relevant papers, the more upvoted ranks first."""
    quiet = paper("a-quiet", "Spiking Networks", "spiking", upvotes=1)
    loud = paper("b-loud", "Spiking Networks", "spiking", upvotes=300)
    ranked = rank([quiet, loud], Profile(interests="spiking"), CATALOG, WEIGHTS)
    assert ids(ranked) == ["b-loud", "a-quiet"]
    flat = rank([quiet, loud], Profile(interests="spiking"), CATALOG, Match(trending_weight=0))
    assert flat[0].score == flat[1].score


def test_liked_terms_lift_and_disliked_terms_lower() -> None:
    """Feedback terms nudge scores of relevant papers up or down."""
    a = paper("a", "Spiking Networks for Robots", "spiking robots")
    b = paper("b", "Spiking Networks for Speech", "spiking speech")
    base = {
        s.paper.id: s.score for s in rank([a, b], Profile(interests="spiking"), CATALOG, WEIGHTS)
    }
    liked = rank([a, b], Profile(interests="spiking", liked_terms=("robots",)), CATALOG, WEIGHTS)
    assert ids(liked)[0] == "a" and liked[0].score > base["a"]
    disliked = rank(
        [a, b], Profile(interests="spiking", disliked_terms=("robots",)), CATALOG, WEIGHTS
    )
    assert ids(disliked)[0] == "b"
    assert {s.paper.id: s.score for s in disliked}["a"] < base["a"]


def test_liked_terms_alone_select_nothing() -> None:
    """Feedback only nudges: it does not make an unrelated paper relevant."""
    profile = Profile(interests="spiking", liked_terms=("pancakes",))
    assert "popular" not in ids(rank(BATCH, profile, CATALOG, WEIGHTS))


def test_exclusion_is_a_phrase_filter() -> None:
    """Excluding "image compression" drops that paper but keeps model compression ones."""
    model = paper("model", "Model Compression by Pruning", "We compress networks by pruning.")
    profile = Profile(topics=("model-compression",), exclude=("image compression",))
    without = ids(rank([model, IMAGE], profile, CATALOG, WEIGHTS))
    assert "image" not in without and "model" in without


def test_exclusion_meets_acronyms_and_stems() -> None:
    """Excluding "LLM" drops a paper that says "large language models"."""
    llm = paper("llm", "Quantizing Large Language Models", "quantized weights")
    profile = Profile(interests="quantization", exclude=("LLM",))
    assert ids(rank([llm, QUANT], profile, CATALOG, WEIGHTS)) == ["quant"]


def test_rank_rejects_an_unknown_topic_naming_valid_ones() -> None:
    """The CLI path names the bad slug and lists valid ones."""
    with pytest.raises(MatchError, match=r"unknown topic 'nope'.*llm-inference"):
        rank(BATCH, Profile(topics=("nope",)), CATALOG, WEIGHTS)


def test_select_ignores_an_unknown_topic() -> None:
    """Selection does not crash on a stale slug; the known ones still match."""
    sub = subscriber(1, topics=("gone-topic", "spiking-neural-networks"))
    (selection,) = select(BATCH, [sub], CATALOG, WEIGHTS, edition_date=EDITION)
    assert {sp.paper.id for sp in selection.papers} == {"snn", "snn-acronym"}


def test_select_caps_at_max_papers_and_counts_the_rest() -> None:
    """max_papers cuts the edition and more_count says how many were left out."""
    sub = subscriber(1, topics=("spiking-neural-networks",), max_papers=1)
    (selection,) = select(BATCH, [sub], CATALOG, WEIGHTS, edition_date=EDITION)
    assert [sp.paper.id for sp in selection.papers] == ["snn"]
    assert selection.more_count == 1
    assert selection.edition_date == EDITION and selection.subscriber_id == 1


def test_select_never_resends_and_respects_eligible() -> None:
    """Sent ids are never selected; eligible restricts to new papers for that subscriber."""
    subs = [subscriber(i, topics=("spiking-neural-networks",)) for i in (1, 2, 3)]
    selections = select(
        BATCH,
        subs,
        CATALOG,
        WEIGHTS,
        edition_date=EDITION,
        sent={1: {"snn"}},
        eligible={2: ["snn-acronym", "image"]},
    )
    picked = {s.subscriber_id: [sp.paper.id for sp in s.papers] for s in selections}
    assert picked == {1: ["snn-acronym"], 2: ["snn-acronym"], 3: ["snn", "snn-acronym"]}


def test_restrictions_find_their_subscribers_in_any_chunk() -> None:
    """Sent and eligible apply to the right rows whichever chunk a subscriber lands in,
    including an id that occurs twice, a shared eligible set, and an id in no chunk."""
    ids = [5, 1, 5, 9, 3, 7]
    subs = [subscriber(i, topics=("spiking-neural-networks",)) for i in ids]
    shared = {"snn-acronym", "image"}
    sent = {5: {"snn"}, 9: {"snn-acronym", "not-in-batch"}, 42: {"snn"}}
    eligible = {3: shared, 7: shared, 1: ["snn", "image"]}
    expected = {
        5: ["snn-acronym"],
        1: ["snn"],
        9: ["snn"],
        3: ["snn-acronym"],
        7: ["snn-acronym"],
    }
    for size in (1, 2, 100):
        selections = iter_select(
            BATCH,
            iter(subs),
            CATALOG,
            WEIGHTS,
            edition_date=EDITION,
            sent=sent,
            eligible=eligible,
            chunk_size=size,
        )
        picked = [(s.subscriber_id, [sp.paper.id for sp in s.papers]) for s in selections]
        assert picked == [(i, expected[i]) for i in ids], size


class _FreshLists(Mapping[int, list[str] | None]):
    """An ``eligible`` mapping that makes a new list each time a value is read."""

    def __init__(self, data: dict[int, list[str] | None]) -> None:
        self.data = data

    def __getitem__(self, key: int) -> list[str] | None:
        value = self.data[key]
        return None if value is None else list(value)

    def __iter__(self) -> Iterator[int]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_eligible_values_made_on_the_fly_keep_their_own_masks() -> None:
    """Values that live only while read (their ids get reused) still restrict the right
    subscriber each; a None value is unrestricted, like an absent one."""
    groups = [["snn"], ["snn-acronym"], ["snn", "snn-acronym"], []]
    subs = [subscriber(i, topics=("spiking-neural-networks",)) for i in range(12)]
    eligible: dict[int, list[str] | None] = {i: groups[i % 4] for i in range(11)}
    eligible[11] = None
    selections = select(
        BATCH,
        subs,
        CATALOG,
        WEIGHTS,
        edition_date=EDITION,
        eligible=_FreshLists(eligible),  # type: ignore[arg-type]
    )
    picked = {s.subscriber_id: {sp.paper.id for sp in s.papers} for s in selections}
    assert picked == {
        **{i: set(groups[i % 4]) for i in range(11)},
        11: {"snn", "snn-acronym"},
    }


def test_empty_selections_are_returned() -> None:
    """A subscriber with nothing relevant still gets a Selection, with no papers."""
    subs = [subscriber(1, interests="protein folding"), subscriber(2)]
    selections = select(BATCH, subs, CATALOG, WEIGHTS, edition_date=EDITION)
    assert [(s.subscriber_id, s.papers, s.more_count) for s in selections] == [
        (1, (), 0),
        (2, (), 0),
    ]


def test_select_agrees_with_rank() -> None:
    """A subscriber's edition is the head of rank() for the same profile."""
    profile = {"topics": ("model-compression",), "interests": "spiking", "max_papers": 2}
    (selection,) = select(BATCH, [subscriber(1, **profile)], CATALOG, WEIGHTS, edition_date=EDITION)
    ranked = rank(BATCH, Profile(**profile), CATALOG, WEIGHTS)
    assert selection.papers == tuple(ranked[:2])
    assert selection.more_count == len(ranked) - 2


def test_catalog_overrides_replace_and_add() -> None:
    """config.toml's topics replace a built-in slug and add new ones after the defaults."""
    catalog = load_catalog(
        {
            "robotics": Topic(title="Robots only", keywords=["robot"]),
            "weather-ml": Topic(title="Weather ML", keywords=["nowcasting"]),
        }
    )
    assert catalog["robotics"].title == "Robots only"
    assert list(catalog)[-1] == "weather-ml"
    assert len(catalog) == len(CATALOG) + 1
    storm = paper("storm", "Radar Nowcasting of Storms", "precipitation nowcasting")
    ranked = rank([storm], Profile(topics=("weather-ml",)), catalog, WEIGHTS)
    assert ranked[0].reasons[0].text.startswith("topic: Weather ML")


def test_default_catalog_is_broad_and_well_formed() -> None:
    """The shipped catalog has ~30 topics, each with a title and keywords."""
    assert len(CATALOG) >= 30
    for slug in CATALOG:
        assert CATALOG[slug].title and CATALOG[slug].keywords, slug
    for slug in ("llm-inference", "spiking-neural-networks", "brain-computer-interfaces"):
        assert slug in CATALOG


def test_no_papers_gives_empty_selections() -> None:
    """A day without papers still yields one empty Selection per subscriber."""
    subs = [subscriber(1, topics=("robotics",)), subscriber(2, interests="spiking")]
    selections = select([], subs, CATALOG, WEIGHTS, edition_date=EDITION)
    assert [(s.subscriber_id, s.papers) for s in selections] == [(1, ()), (2, ())]
    assert rank([], Profile(interests="spiking"), CATALOG, WEIGHTS) == []


def test_chunking_does_not_change_selections() -> None:
    """Streaming subscribers in small chunks selects exactly what one big chunk does."""
    subs = [
        subscriber(i, topics=topics, interests=text, max_papers=2)
        for i, (topics, text) in enumerate(
            [
                (("spiking-neural-networks",), ""),
                ((), "quantization"),
                (("model-compression",), "image compression"),
                ((), "pancakes"),
                (("spiking-neural-networks",), "spiking"),
            ]
        )
    ]
    whole = select(BATCH, subs, CATALOG, WEIGHTS, edition_date=EDITION)
    streamed = list(
        iter_select(BATCH, iter(subs), CATALOG, WEIGHTS, edition_date=EDITION, chunk_size=2)
    )
    assert streamed == whole


def hashed_vectors(papers: list[Paper], subs: list[Subscriber]) -> Vectors:
    """Vectors of the papers, every catalog topic and the subscribers' interest items."""
    model = HashEmbedder()
    texts = [topic_text(CATALOG[slug]) for slug in CATALOG]
    texts += [t for s in subs for t in interest_texts(s.profile.interests)]
    texts = list(dict.fromkeys(texts))
    paper_vecs = model.embed([paper_text(p) for p in papers])
    by_paper = dict(zip([p.id for p in papers], paper_vecs, strict=True))
    return Vectors(model.name, by_paper, dict(zip(texts, model.embed(texts), strict=True)))


@pytest.mark.parametrize("with_meaning", [False, True], ids=["words", "meaning"])
def test_tables_kept_between_chunks_do_not_change_selections(
    monkeypatch: pytest.MonkeyPatch, with_meaning: bool
) -> None:
    """Topic sets, texts and exclusions kept between chunks, and emptied when full, change
    nothing: each chunk selects what one big chunk does, with closeness by meaning too (whose
    rows of topic sets follow the kept table of sets)."""
    profiles: list[dict[str, Any]] = [
        {"topics": ("spiking-neural-networks",), "interests": "quantization"},
        {"topics": ("model-compression", "spiking-neural-networks"), "exclude": ("image",)},
        {"interests": "image compression", "liked_terms": ("robots",)},
        {"topics": ("model-compression",), "interests": "spiking", "authors": ("Ada Lovelace",)},
        {"interests": "SNN, quantization", "exclude": ("benchmark",), "min_upvotes": 5},
    ]
    subs = [subscriber(i, max_papers=2, **profiles[i % 5]) for i in range(15)]
    vectors = hashed_vectors(BATCH, subs) if with_meaning else None
    whole = select(
        BATCH, subs, CATALOG, WEIGHTS, edition_date=EDITION, sent={3: {"snn"}}, vectors=vectors
    )
    monkeypatch.setattr(scoring, "SETS_KEPT", 1)
    monkeypatch.setattr(scoring, "TEXTS_KEPT", 1)
    monkeypatch.setattr(meaning, "KEPT", 1)
    streamed = iter_select(
        BATCH,
        iter(subs),
        CATALOG,
        WEIGHTS,
        edition_date=EDITION,
        sent={3: {"snn"}},
        chunk_size=4,
        vectors=vectors,
    )
    assert list(streamed) == whole


def test_equal_scores_keep_paper_id_order_at_the_cut() -> None:
    """Papers that score exactly alike are picked and listed by paper id, also at max_papers."""
    twins = [paper(pid, "Spiking neural networks", upvotes=7) for pid in ("t3", "t1", "t2")]
    (selection,) = select(
        twins,
        [subscriber(1, interests="spiking", max_papers=2)],
        CATALOG,
        WEIGHTS,
        edition_date=EDITION,
    )
    assert [sp.paper.id for sp in selection.papers] == ["t1", "t2"]
    assert selection.more_count == 1


SPIKING_TRANSFORMER = paper(
    "spikformer",
    "A Spiking Transformer for Event Cameras",
    "Self-attention over binary spikes lets a spiking transformer classify event streams "
    "with a fraction of the energy of its dense counterpart.",
    upvotes=4,
)
TRAFFIC_TRANSFORMER = paper(
    "traffic",
    "Transformers for City-Wide Traffic Forecasting",
    "A transformer reads a week of loop-detector counts and predicts congestion for the "
    "next hour on every road segment.",
    upvotes=4,
)
CROP_CNN = paper(
    "crop-cnn",
    "Convolutional Neural Networks for Crop Disease Detection",
    "Neural networks trained on leaf photographs flag blight before farmers can see it.",
    upvotes=4,
)
GRID_GNN = paper(
    "grid-gnn",
    "Message Passing for Power Grid Stability",
    "Our GNN reads the grid as a graph and predicts which lines will trip.",
    upvotes=4,
)
GENERIC_BATCH = [*BATCH, SPIKING_TRANSFORMER, TRAFFIC_TRANSFORMER, CROP_CNN, GRID_GNN]


def test_distinctive_words_are_those_of_one_catalog_topic() -> None:
    """ "spiking" belongs to one topic, "transformer" to several; all-generic phrases keep none."""
    assert distinctive_words(analyze("spiking transformer").unigrams, TUNING.distinctive) == (
        "spike",
    )
    assert distinctive_words(analyze("vision transformer").unigrams, TUNING.distinctive) == ()
    assert distinctive_words(analyze("spiking").unigrams, TUNING.distinctive) == ()


def test_a_generic_word_does_not_carry_a_topic_keyword() -> None:
    """ "transformer" alone (of "spiking transformer") or "neural networks" alone (of "spiking
    neural networks") does not make a paper eligible for the spiking topic."""
    (selection,) = select(
        GENERIC_BATCH,
        [subscriber(1, topics=("spiking-neural-networks",))],
        CATALOG,
        WEIGHTS,
        edition_date=EDITION,
    )
    picked = {sp.paper.id for sp in selection.papers}
    assert {"spikformer", "snn", "snn-acronym"} <= picked
    assert not picked & {"traffic", "crop-cnn", "grid-gnn"}  # "GNN" expands to "neural network"


def test_an_interest_facet_needs_its_distinctive_word() -> None:
    """ "graph neural networks" finds a paper that writes "GNN", not one about other networks."""
    ranked = ids(rank(GENERIC_BATCH, Profile(interests="graph neural networks"), CATALOG, WEIGHTS))
    assert ranked == ["grid-gnn"]


def test_a_road_segment_is_not_image_segmentation() -> None:
    """Computer vision's keywords say whose segmentation and tracking they mean: "segment"
    stems like "segmentation", so a bare keyword made a traffic-forecasting paper about road
    segments a computer-vision paper."""
    segmenting = paper("cells", "Instance Segmentation of Cells in Microscopy Images")
    batch = [*GENERIC_BATCH, segmenting]
    ranked = ids(rank(batch, Profile(topics=("computer-vision",)), CATALOG, WEIGHTS))
    assert "traffic" not in ranked
    assert "cells" in ranked  # a keyword met whole still counts
    # "image" alone does not meet "image classification" or "image segmentation" (see
    # test_a_half_met_keyword_is_not_met): the image codec is not a computer-vision paper.
    assert "image" not in ranked


OPTIMIZED_DPO = paper(
    "dpo-noise",
    "Preference Optimization That Tolerates Mislabeled Pairs",
    "We optimize a chat model directly on pairwise preferences and derive the optimal "
    "weighting of pairs that annotators likely swapped, without training a reward model.",
    upvotes=9,
)
CHECKPOINTING = paper(
    "checkpointing",
    "Mixed Precision and Gradient Checkpointing for Training on One GPU",
    "Recomputing activations and keeping FP16 weights fits a 7B model's training in 24 GB.",
    upvotes=9,
)
DESKTOP_AGENT = paper(
    "desk-agent",
    "A Desktop Agent That Clicks Like a Person",
    "The agent reads screenshots and issues mouse actions to finish office tasks a person "
    "would do.",
    upvotes=9,
)
SUBJECT_IMAGES = paper(
    "subject-images",
    "Personalized Image Generation from Three Photos",
    "A text-to-image model learns a new subject from three photos and renders it in new scenes.",
    upvotes=9,
)
STEM_BATCH = [OPTIMIZED_DPO, CHECKPOINTING, DESKTOP_AGENT, SUBJECT_IMAGES]


def test_a_shared_stem_is_not_the_topic_word() -> None:
    """ "optimizer" stems like "optimize", "optimal" and "optimization", "personalization"
    like "person": as bare keywords they made a preference-optimization paper efficient
    training and a desktop agent image generation."""
    training = ids(rank(STEM_BATCH, Profile(topics=("efficient-training",)), CATALOG, WEIGHTS))
    assert training == ["checkpointing"]
    images = ids(rank(STEM_BATCH, Profile(topics=("image-generation-editing",)), CATALOG, WEIGHTS))
    assert images == ["subject-images"]


ROBUST_TRIALS = paper(
    "robust-trials",
    "Robust Bayesian Pooling of Clinical Trials",
    "Hierarchical priors keep effect estimates robust to outlying sites; we align the sites' "
    "follow-up schedules and explore how much each trial borrows from the others.",
    upvotes=9,
)
JAILBREAK = paper(
    "jailbreak",
    "Jailbreak Prompts Transfer Across Chat Models",
    "Red teaming finds that one adversarial prompt unlocks harmful answers in most assistants.",
    upvotes=9,
)
CHEST_XRAY = paper(
    "chest-xray",
    "Weakly Supervised Chest X-Ray Classification",
    "A radiology model learns findings from report sentences instead of pixel masks.",
    upvotes=9,
)
EVERYDAY_BATCH = [ROBUST_TRIALS, JAILBREAK, CHEST_XRAY]


def test_an_everyday_word_is_not_a_field_term() -> None:
    """ "robust", "clinical", "align" and "explore" are ordinary words outside safety, medical
    imaging, alignment and reinforcement learning: as bare keywords they made a statistics
    paper that uses all four a paper of each of those topics."""
    for slug, on_topic in [
        ("safety-security", ["jailbreak"]),
        ("medical-imaging", ["chest-xray"]),
        ("alignment-rlhf", []),
        ("reinforcement-learning", []),
    ]:
        ranked = ids(rank(EVERYDAY_BATCH, Profile(topics=(slug,)), CATALOG, WEIGHTS))
        assert ranked == on_topic, slug


LINKED_CODE = paper(
    "cascade",
    "Draft-Verify Cascades for Faster LLM Serving",
    "A small draft model proposes tokens that a verifier accepts or rejects, cutting the "
    "per-token latency of large language models by half. Code: https://github.com/example/cascade",
    upvotes=9,
)
PROGRAM_REPAIR = paper(
    "repair",
    "Repairing Failing Tests with a Code LLM",
    "Given a failing unit test, the model proposes patches for program repair.",
    upvotes=9,
)


def test_a_code_link_is_not_code_generation() -> None:
    """Daily Papers abstracts often end with "Code: https://...": a "code LLM" keyword is
    covered by any LLM paper that says "code", so every one that linked its code was a
    code-generation paper."""
    batch = [LINKED_CODE, PROGRAM_REPAIR]
    ranked = ids(rank(batch, Profile(topics=("code-generation",)), CATALOG, WEIGHTS))
    assert ranked == ["repair"]


def test_clip_the_model_is_not_clips_or_clipping() -> None:
    """ "CLIP" in capitals is the image-text model and meets its expansion; "clips" and
    "gradient clipping" are everyday words and do not make a paper multimodal."""
    assert analyze("CLIP") == analyze("contrastive language-image pretraining")
    assert "=clip" not in analyze("video clips and gradient clipping").concepts
    batch = [
        paper(
            "clip-probe",
            "Probing CLIP Features for Zero-Shot Counting",
            "We read object counts off frozen CLIP image embeddings with a linear head.",
            upvotes=9,
        ),
        paper(
            "clipping",
            "Adaptive Gradient Clipping for Stable Training",
            "Clipping each layer's gradient norm to a running quantile keeps loss spikes away; "
            "we also cut training videos into short clips.",
            upvotes=9,
        ),
    ]
    ranked = ids(rank(batch, Profile(topics=("multimodal",)), CATALOG, WEIGHTS))
    assert ranked == ["clip-probe"]


def test_a_negative_more_is_refused() -> None:
    """Asking for fewer than zero further matches is a caller's mistake, said plainly."""
    with pytest.raises(ValueError, match="more must be 0 or more"):
        select(BATCH, [subscriber(1)], CATALOG, WEIGHTS, edition_date=EDITION, more=-1)


CODEC = paper(
    "codec",
    "Learned Image Compression with Checkerboard Context Models",
    "We present a learned image codec that improves rate-distortion performance. An entropy "
    "model with a checkerboard context predicts the latent distribution, and the hyperprior "
    "captures spatial redundancy. At low bitrates our codec saves 12% over VVC on Kodak.",
)
QUANTIZED_LLM = paper(
    "quantized-llm",
    "4-bit Post-Training Quantization of Large Language Models",
    "We quantize the weights of large language models to 4 bits after training.",
)
AUDITORY = paper(
    "auditory",
    "Decoding Auditory Attention from EEG with Short Decision Windows",
    "Auditory attention decoding identifies which speaker a listener attends to from "
    "electroencephalography. A convolutional network trained on 1-second decision windows "
    "reaches 85% accuracy, with attention to the target speaker tracked over long recordings.",
)
LINEAR_ATTENTION = paper(
    "linear-attention",
    "Linear Attention Transformers for Long Context Modelling",
    "We replace softmax attention with a linear attention kernel, so the cost grows linearly "
    "with the context window.",
)


@pytest.mark.parametrize(
    ("slug", "met", "half_met"),
    [
        ("model-compression", "quantized-llm", "codec"),
        ("efficient-attention", "linear-attention", "auditory"),
    ],
)
def test_a_half_met_keyword_is_not_met(slug: str, met: str, half_met: str) -> None:
    """A catalog keyword of several words counts only where the paper holds its words side by
    side: an image codec says "compression" and "model" but not "model compression", an EEG
    study says "attention" and "window" but not "efficient attention" or "context window"."""
    batch = [CODEC, QUANTIZED_LLM, AUDITORY, LINEAR_ATTENTION]
    assert ids(rank(batch, Profile(topics=(slug,)), CATALOG, WEIGHTS)) == [met]


def test_whole_parts_are_word_pairs_or_one_word_runs() -> None:
    """A keyword needs a word pair (or its acronym's concept); a title's one-word run will do."""
    assert whole_parts(analyze("model compression")) == ("model compress",)
    assert "=snn" in whole_parts(analyze("SNN"))
    assert whole_parts(analyze("Model compression and quantization")) == (
        "model compress",
        "quantiz",
    )
    assert whole_parts(analyze("Speech and audio")) == ()  # single words: nothing more
    assert whole_parts(analyze("quantization")) == ()
