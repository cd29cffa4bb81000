"""Free-text interests: alternatives, sentences, implied topics, and the reasons they give."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import Match
from pipeline.matching.interests import implied_topics
from pipeline.matching.items import split_items
from pipeline.matching.match import load_catalog, rank
from pipeline.matching.relevance import TUNING
from pipeline.matching.textproc import analyze
from pipeline.models import Paper, Profile

CATALOG = load_catalog()
WEIGHTS = Match()


def paper(pid: str, title: str, abstract: str = "") -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, source_format="hf_api")


def picked(papers: list[Paper], interest: str, weights: Match = WEIGHTS) -> list[str]:
    return [sp.paper.id for sp in rank(papers, Profile(interests=interest), CATALOG, weights)]


KV = paper(
    "kv",
    "Compressing the KV Cache of Long Prompts",
    "We evict and quantize key-value cache entries to cut memory during LLM serving.",
)
SPEC = paper(
    "spec",
    "Faster Speculative Decoding with Tree Drafts",
    "A small draft model proposes tokens that the target model verifies in parallel.",
)
QUANT = paper(
    "quant",
    "Post-Training Quantization of Large Language Models to 3 Bits",
    "We round weights of LLMs to three bits with little loss in perplexity.",
)
WEATHER = paper(
    "weather",
    "Nowcasting Rain from Radar Sequences",
    "A convolutional model predicts precipitation an hour ahead from radar images.",
)


def test_a_list_is_read_as_alternatives_not_as_all_at_once() -> None:
    """Each paper on one item of a three-item list is matched; an unrelated one is not."""
    interest = "KV cache compression, speculative decoding, quantization of LLMs"
    assert sorted(picked([KV, SPEC, QUANT, WEATHER], interest)) == ["kv", "quant", "spec"]


def test_the_longer_list_finds_what_each_item_finds_alone() -> None:
    """Telling more never gets less: a paper one item finds is found by the whole list."""
    papers = [KV, SPEC, QUANT, WEATHER]
    whole = set(picked(papers, "KV cache; speculative decoding; quantization"))
    for item in ("KV cache", "speculative decoding", "quantization"):
        assert set(picked(papers, item)) <= whole


ROBOT = paper(
    "robot",
    "Learning Dexterous Robot Manipulation from Human Video Demonstrations",
    "A policy for a robot arm is trained from videos of people grasping and placing objects.",
)
ROBOT_SIM = paper(
    "robot-sim",
    "Robot Manipulation Policies Trained in Simulation",
    "Grasping policies for a robot arm learned with reinforcement learning in a simulator.",
)


def test_a_sentence_is_reduced_to_its_content_phrases() -> None:
    """A sentence's framing words are dropped, and a paper meeting part of it still counts."""
    sentence = "I work on robot manipulation from video demonstrations"
    assert split_items(sentence) == ("robot manipulation from video demonstrations",)
    ranked = picked([WEATHER, ROBOT_SIM, ROBOT], sentence)
    assert ranked == ["robot", "robot-sim"]


def test_an_item_keeps_the_bracket_it_opened() -> None:
    """A reason never quotes half a bracket: "(SWE-bench style)" keeps its ")"."""
    text = "LLMs that fix bugs and write code in real repositories (SWE-bench style)"
    assert split_items(text) == (
        "LLMs that fix bugs",
        "write code in real repositories (SWE-bench style)",
    )


def test_vision_and_language_stays_one_item() -> None:
    """'and' inside a catalog phrase joins; between two separate things it separates."""
    assert split_items("vision and language") == ("vision and language",)
    assert split_items("vision and language models") == ("vision and language models",)
    assert split_items("surrogate gradients and pancakes") == ("surrogate gradients", "pancakes")
    assert split_items("pruning or quantization\nevent cameras") == (
        "pruning",
        "quantization",
        "event cameras",
    )
    assert split_items("and, or; of the") == ()


def test_dashes_colons_and_slashes_between_words_separate_items() -> None:
    """Lists are also written "cheaper - KV cache" or "LLM inference: …"; a hyphen inside a
    word, or a colon inside a number, joins."""
    assert split_items("making LLM inference cheaper - KV cache, quantization") == (
        "making LLM inference cheaper",
        "KV cache",
        "quantization",
    )
    assert split_items("LLM inference: KV cache; pruning") == (
        "LLM inference",
        "KV cache",
        "pruning",
    )
    assert split_items("cheaper—KV cache") == ("cheaper", "KV cache")
    assert split_items("sim-to-real transfer") == ("sim-to-real transfer",)
    assert split_items("2:4 sparsity") == ("2:4 sparsity",)


def test_each_sentence_is_an_item() -> None:
    """Two sentences are two alternatives; a full stop before a small letter ("e.g.") or
    inside a number ("3.5 bit") joins."""
    assert split_items("I work on speech recognition. Also interested in TTS.") == (
        "speech recognition",
        "TTS",
    )
    assert split_items("What is new in RAG? And agents!") == ("new in RAG", "agents")
    assert split_items("LLMs vs. RNNs") == ("LLMs", "RNNs")
    assert split_items("3.5 bit quantization, e.g. of LLMs") == (
        "3.5 bit quantization",
        "LLMs",
    )
    tts = paper("tts", "Fast text-to-speech with flow matching")
    assert picked([tts], "I work on speech recognition. Also interested in TTS.") == ["tts"]


def test_what_a_reader_does_not_want_is_never_an_item() -> None:
    """A plain negation ends the wanted part of a piece: "not interested in LLMs" asks for
    nothing, and a paper on what follows "not" is not picked for it."""
    assert split_items("NOT interested in LLMs, only graph neural networks") == (
        "graph neural networks",
    )
    assert split_items("LLMs but not agents or robots") == ("LLMs",)
    assert split_items("I don't want RL; diffusion") == ("diffusion",)
    assert split_items("everything except vision\nspeech") == ("everything", "speech")
    assert split_items("RAG excluding images, agents") == ("RAG", "agents")
    assert split_items("LLMs (not agents) for code generation") == ("LLMs for code generation",)
    assert split_items("I'm not interested in robotics") == ()
    agents = paper("agents", "Tool-using LLM agents for web navigation")
    assert picked([agents], "speech recognition, but not agents") == []


@pytest.mark.parametrize(
    "text",
    [
        "LLMs that don't hallucinate",
        "robots that do not fall",
        "models that can't reason",
        "not-so-large models",
        "whether or not LLMs reason",
        "not only vision but also speech",
        "anything, not just LLMs",
    ],
)
def test_a_negation_inside_a_subject_keeps_it(text: str) -> None:
    """Only a plain "I do not want" cuts: a subject that says "don't" or "not" keeps its
    words (the reader still gets a paper on it)."""
    (item,) = split_items(text)
    assert "LLMs" in item or "robots" in item or "models" in item or "vision" in item


def test_names_ranges_and_abbreviations_stay_whole() -> None:
    """An en dash without spaces joins ("Kullback–Leibler", "2–4 bit"); a full stop after an
    abbreviation or a single letter ends no sentence; a heading before a colon is framing."""
    assert split_items("Kullback–Leibler divergence") == ("Kullback–Leibler divergence",)
    assert split_items("2–4 bit quantization") == ("2–4 bit quantization",)
    assert split_items("cheaper – KV cache") == ("cheaper", "KV cache")
    assert split_items("AI policy in the U.S. Government") == ("AI policy in the U.S. Government",)
    assert split_items("Dr. Smith's work on RL") == ("Dr. Smith's work on RL",)
    assert split_items("Topic: RAG\nKeywords: RLHF, DPO") == ("RAG", "RLHF", "DPO")


def test_a_list_in_brackets_belongs_to_its_item() -> None:
    """Examples in brackets stay with the item they explain; the reason quotes it whole."""
    text = "efficient transformers for edge devices (mobile, microcontrollers), pruning"
    assert split_items(text) == (
        "efficient transformers for edge devices (mobile, microcontrollers)",
        "pruning",
    )
    assert split_items("robots (manipulation and grasping), agents") == (
        "robots (manipulation and grasping)",
        "agents",
    )
    # A bracket left open explains nothing: the list after it still splits.
    assert split_items("LLMs (esp. inference, RL, agents") == (
        "LLMs (esp. inference",
        "RL",
        "agents",
    )
    (pick,) = rank(
        [paper("mcu", "Keyword spotting on microcontrollers")],
        Profile(interests=text),
        CATALOG,
        Match(),
    )
    shown = "efficient transformers for edge devices (mobile, microcontrollers)"
    assert f'interest: "{shown}"' in [str(r) for r in pick.reasons]


def test_framing_before_about_is_dropped() -> None:
    """ "I'd like to read about X" asks for X; "learning on graphs" is a subject."""
    assert split_items("I want to read about robots learning from videos") == (
        "robots learning from videos",
    )
    assert split_items("learning more about continual learning") == ("continual learning",)
    assert split_items("learning on graphs") == ("learning on graphs",)
    assert split_items("agents reading about physics") == ("agents reading about physics",)


def test_an_item_after_a_dash_names_the_pick() -> None:
    """A paper that meets the item after the dash is named by that item alone."""
    (pick,) = rank(
        [paper("kv", "Compressing the KV cache of long prompts")],
        Profile(interests="making inference cheaper - KV cache"),
        CATALOG,
        Match(),
    )
    assert 'interest: "KV cache"' in [str(r) for r in pick.reasons]


def test_an_item_naming_a_catalog_topic_brings_its_vocabulary() -> None:
    """'speculative decoding' implies LLM inference: a KV-cache paper is found, ranked below."""
    assert "llm-inference" in implied_topics("speculative decoding")
    assert implied_topics("transformer") == ()  # a word many topics share implies none
    ranked = rank([KV, SPEC, WEATHER], Profile(interests="speculative decoding"), CATALOG, WEIGHTS)
    assert [sp.paper.id for sp in ranked] == ["spec", "kv"]
    assert ranked[0].score > ranked[1].score
    assert ranked[1].reasons[0].text == 'interest: "speculative decoding"'


def test_a_reason_names_the_item_the_paper_met() -> None:
    """Every pick an interest drove names that item, as the reader wrote it."""
    ranked = rank([SPEC], Profile(interests="KV cache, speculative decoding"), CATALOG, WEIGHTS)
    assert ranked[0].reasons[0].text == 'interest: "speculative decoding"'


# ---- properties -----------------------------------------------------------------------------

WORDS = [
    "spiking", "quantization", "diffusion", "robot", "LLM", "KV cache", "retrieval", "agents",
    "pruning", "speech", "benchmark", "graph", "attention", "video", "pancake", "violin",
    "speculative decoding", "vision", "language", "I work on",
]  # fmt: skip
item = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
prose = st.lists(st.sampled_from(WORDS), max_size=10).map(" ".join)


@st.composite
def batches(draw: st.DrawFn) -> list[Paper]:
    count = draw(st.integers(1, 10))
    return [paper(f"p{i}", draw(prose), draw(prose)) for i in range(count)]


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    batches(),
    st.lists(item, min_size=1, max_size=3),
    item,
    st.sampled_from([0.0, 0.1, 0.3]),
)
def test_adding_an_item_never_drops_a_matched_paper(
    papers: list[Paper], items: list[str], extra: str, floor: float
) -> None:
    """A paper above the floor for an interest stays above it when the reader adds an item."""
    weights = Match(min_relevance=floor, trending_weight=0.0)
    shorter = set(picked(papers, "; ".join(items), weights))
    longer = set(picked(papers, "; ".join([*items, extra]), weights))
    assert shorter <= longer


def terms(text: str) -> set[str]:
    return set(analyze(text).unigrams)


@SETTINGS
@given(batches(), st.lists(item, min_size=1, max_size=4).map(", ".join))
def test_an_interest_reason_quotes_only_the_readers_items(papers: list[Paper], text: str) -> None:
    """An interest reason quotes an item of the interest, and only items the paper shares a
    word with or whose implied topic it meets."""
    items = split_items(text)
    for sp in rank(papers, Profile(interests=text), CATALOG, WEIGHTS):
        reasons = [r.text for r in sp.reasons if r.kind == "interest"]
        assert len(reasons) == 1
        quoted = re.findall(r'"([^"]*)"', reasons[0])
        assert quoted and set(quoted) <= set(items)
        paper_terms = terms(sp.paper.title) | terms(sp.paper.abstract)
        for q in quoted:
            assert terms(q) & paper_terms or implied_topics(q), (q, sp.paper)


GENERIC = [
    paper("ai-agents", "AI agents that plan long tasks", "An AI agent plans and acts with tools."),
    paper("ai-code", "Evaluating AI coding assistants", "We test AI assistants on code."),
    paper("ai-archives", "AI for the humanities", "Scholars use AI to read archives."),
    paper("ai-home", "Personal AI agents at home", "A general-purpose AI agent runs errands."),
]
CLINICAL = paper(
    "clinical",
    "Clinical notes summarised for medicine",
    "Doctors in internal medicine read shorter notes.",
)


def test_a_word_most_papers_hold_weighs_less_in_an_item() -> None:
    """In "AI for medicine", "AI" is in most of the day's papers and "medicine" in one: the
    medicine paper leads. Shared evenly, the two words tied and every AI paper came first."""
    profile = Profile(interests="AI for medicine")
    flat = Match(relative_floor=0)
    even = rank(
        [*GENERIC, CLINICAL], profile, CATALOG, flat, tuning=replace(TUNING, item_specificity=0)
    )
    assert even[0].paper.id != "clinical"
    ranked = rank([*GENERIC, CLINICAL], profile, CATALOG, flat)
    assert ranked[0].paper.id == "clinical"
