"""Reasons: structured evidence a reader can check, quoted whole from the paper, and read back
from any ledger row, old (strings) or new (data). SQLite and PostgreSQL for the ledger."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from pipeline.config import Config, Match
from pipeline.ledger import digest_links, recorded, recorded_selection
from pipeline.links import Links
from pipeline.matching.items import split_items
from pipeline.matching.match import load_catalog, rank
from pipeline.matching.reasons import Meaning, ReasonMaker
from pipeline.matching.relevance import build_index
from pipeline.matching.scoring import prepare, score_profiles
from pipeline.matching.textproc import STOPWORDS
from pipeline.models import (
    Delivery,
    DeliveryStatus,
    Paper,
    Pick,
    Profile,
    Reason,
    ScoredPaper,
    Selection,
)
from pipeline.render import Renderer
from pipeline.store import Store
from pipeline.store import tables as s
from pipeline.tokens import Tokens
from tests.delivery_world import reader

CATALOG = load_catalog()
WEIGHTS = Match(trending_weight=0.35, feedback_weight=0.3)
DAY = dt.date(2026, 7, 3)
NOW = dt.datetime(2026, 7, 3, 6, tzinfo=dt.UTC)
LINKS = Links("https://news.example.org/", Tokens("s" * 32))


def paper(pid: str, title: str, abstract: str = "", **extra: object) -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, source_format="hf_api", **extra)


def texts(p: Paper) -> list[str]:
    return [p.title, "; ".join(p.keywords), p.ai_summary or "", p.abstract]


def occurs_whole(term: str, p: Paper) -> bool:
    """``term`` is in the paper as written, bounded by the edges of written words (a hyphen
    or an apostrophe joins a word: "bit" is not a word of "4-bit")."""
    pattern = rf"(?<![\w'’-]){re.escape(term)}(?![\w'’-])"
    for text in texts(p):
        # A hyphen at a word's edge that no letter follows ("4-bit -" ) does not join.
        if re.search(pattern, text) or re.search(pattern, re.sub(r"-(?!\w)|(?<!\w)-", " ", text)):
            return True
    return False


def is_number(term: str) -> bool:
    return bool(re.fullmatch(r"[\d.,%]+", term))


# ---- properties -----------------------------------------------------------------------------

# Words that once made bad evidence: pieces of hyphenated and camel-case words, numbers,
# generic halves of catalog keywords; and stopwords, which must never be quoted.
WORDS = [
    "4-bit", "low-bit", "quantization-aware", "training", "quantization", "FlashAttention",
    "attention", "efficient", "window", "decision", "windows", "context", "long", "model",
    "compression", "image", "codec", "4", "12", "of", "the", "and", "spiking", "SNNs",
    "neural", "networks", "KV", "cache", "speculative", "decoding", "EEG", "auditory",
    "weather", "forecasting", "pruning", "sparse", "mixture", "experts", ",", ";", ".",
]  # fmt: skip
TERMS = ["bit", "4", "aware", "window", "the", "KV cache", "spiking", "model compression", "codec"]
prose = st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join)


@st.composite
def batches(draw: st.DrawFn) -> list[Paper]:
    return [
        paper(
            f"p{i}",
            draw(prose),
            draw(prose),
            keywords=tuple(draw(st.lists(st.sampled_from(WORDS), max_size=2))),
            upvotes=draw(st.integers(0, 30)),
        )
        for i in range(draw(st.integers(1, 8)))
    ]


profiles = st.builds(
    Profile,
    topics=st.lists(st.sampled_from(list(CATALOG)), max_size=3).map(tuple),
    interests=st.lists(st.sampled_from([*WORDS[:-3], "model compression"]), max_size=3).map(
        ", ".join
    ),
    liked_terms=st.lists(st.sampled_from(TERMS), max_size=3).map(tuple),
)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(batches(), profiles)
def test_a_reason_only_quotes_what_the_paper_or_the_reader_says(
    papers: list[Paper], profile: Profile
) -> None:
    """Topic and liked-term reasons quote whole words or phrases of the paper; an interest
    reason quotes the reader's items; nothing quoted is a stopword, a number or a fragment."""
    items = set(split_items(profile.interests))
    for sp in rank(papers, profile, CATALOG, WEIGHTS):
        for reason in sp.reasons:
            assert reason.kind != "text"
            for term in reason.terms:
                assert term.strip() and term.casefold() not in STOPWORDS, reason
                assert not is_number(term), reason
            if reason.kind in ("topic", "liked"):
                for term in reason.terms:
                    assert occurs_whole(term, sp.paper), (term, sp.paper)
            if reason.kind == "topic":
                assert reason.label in {CATALOG[slug].title for slug in CATALOG}
            if reason.kind == "interest":
                assert reason.terms and set(reason.terms) <= items
            if reason.kind == "author":
                assert reason.label in sp.paper.authors


@SETTINGS
@given(batches(), profiles)
def test_a_reason_reads_from_its_data(papers: list[Paper], profile: Profile) -> None:
    """Every reason's wording comes from its kind, label and terms, and round-trips as JSON."""
    for sp in rank(papers, profile, CATALOG, WEIGHTS):
        for reason in sp.reasons:
            assert Reason.model_validate_json(reason.model_dump_json()) == reason
            assert reason.text == str(reason) and reason.text
            assert all(f'"{t}"' in reason.text for t in reason.terms)


# ---- regressions: fragments and numbers ------------------------------------------------------

FRAGMENTS = paper(
    "fragments",
    "4-bit Quantization-Aware Training with FlashAttention Kernels",
    "We train 4-bit models with quantization-aware training and a sliding window attention "
    "kernel; decision windows of 4 seconds. Low-bit weights cut memory 4 times.",
)


def test_reasons_never_quote_pieces_of_words_or_numbers() -> None:
    """ "bit" of "4-bit", "aware" of "quantization-aware", "4" and a lone "window" are never
    evidence; the whole keywords are."""
    profile = Profile(
        topics=("model-compression", "efficient-attention"),
        liked_terms=("bit", "aware", "4", "FlashAttention"),
    )
    (sp,) = rank([FRAGMENTS], profile, CATALOG, WEIGHTS)
    quoted = {t.casefold() for r in sp.reasons for t in r.terms}
    assert not {"bit", "aware", "4", "window", "windows", "attention"} & quoted
    topic = next(r for r in sp.reasons if r.label == "Model compression and quantization")
    assert {"4-bit", "quantization-aware training"} <= {t.casefold() for t in topic.terms}
    attention = next(r for r in sp.reasons if r.label == "Efficient attention and long context")
    assert "sliding window attention" in attention.terms
    assert Reason(kind="liked", terms=("FlashAttention",)) in sp.reasons


def test_a_keyword_is_quoted_as_the_paper_writes_it() -> None:
    """ "SNN" is met by "spiking networks": the reason quotes the paper, not the catalog."""
    snn = paper("snn", "Training Spiking Networks on Event Data")
    (sp,) = rank([snn], Profile(topics=("spiking-neural-networks",)), CATALOG, WEIGHTS)
    assert sp.reasons[0] == Reason(
        kind="topic", label="Spiking neural networks", terms=("Spiking Networks",)
    )
    assert sp.reasons[0].text == 'topic: Spiking neural networks — "Spiking Networks"'


# ---- meaning ----------------------------------------------------------------------------------

WEATHER = paper(
    "weather", "Global Medium-Range Prediction of the Atmosphere", "Graph networks roll out."
)
CACHE = paper("cache", "Evicting KV Cache Entries", "We evict KV cache entries.")


def maker(
    papers: list[Paper], profile: Profile, meaning: Meaning
) -> tuple[ReasonMaker, dict[str, int]]:
    index = build_index(papers)
    scored = score_profiles(prepare(index, CATALOG), [profile], WEIGHTS)
    cols = {p.id: i for i, p in enumerate(index.papers)}
    return ReasonMaker(index, scored, CATALOG, WEIGHTS, meaning=meaning), cols


@pytest.mark.parametrize("form", ["mapping", "function"])
def test_a_pick_found_by_meaning_names_the_closest_item(form: str) -> None:
    """Where the interest has no lexical evidence, the item meaning found is named."""
    profile = Profile(interests="weather forecasting, KV cache")
    closest = {(0, 1): "weather forecasting"}  # papers sort by id: cache 0, weather 1
    meaning: Meaning = closest
    if form == "function":
        meaning = lambda row, col, alone: closest.get((row, col))  # noqa: E731
    make, cols = maker([WEATHER, CACHE], profile, meaning)
    picked = make.scored_paper(0, cols["weather"], 0.4)
    assert picked.reasons == (Reason(kind="meaning", label="weather forecasting"),)
    assert picked.reasons[0].text == 'close to your interest "weather forecasting"'


def test_meaning_is_told_whether_a_topic_already_names_the_pick() -> None:
    """A pick no topic names may owe itself to closeness alone, so the matcher may name it at
    the interest's own bar; a topic pick is told so and held to the stricter one."""
    asked: list[bool] = []

    def closest(row: int, col: int, alone: bool) -> str | None:
        asked.append(alone)
        return "weather forecasting" if alone else None

    alone, _ = maker([WEATHER], Profile(interests="weather forecasting"), closest)
    picked = alone.scored_paper(0, 0, 0.4)
    assert asked == [True] and picked.reasons[0].kind == "meaning"
    asked.clear()
    spiking = paper("snn", "Spiking neural networks", "Spiking neurons, surrogate gradients.")
    profile = Profile(topics=("spiking-neural-networks",), interests="weather forecasting")
    by_topic, _ = maker([spiking], profile, closest)
    picked = by_topic.scored_paper(0, 0, 0.9)
    assert asked == [False] and [r.kind for r in picked.reasons] == ["topic"]


def test_lexical_evidence_comes_before_meaning() -> None:
    """A paper the interest meets in words gets the interest reason, whatever meaning says."""
    profile = Profile(interests="weather forecasting, KV cache")
    make, cols = maker([WEATHER, CACHE], profile, lambda row, col, alone: "weather forecasting")
    picked = make.scored_paper(0, cols["cache"], 0.9)
    assert picked.reasons == (Reason(kind="interest", terms=("KV cache",)),)


def test_meaning_must_name_an_item_of_the_interest() -> None:
    """A matcher naming something the reader never wrote is a bug, not a reason."""
    make, cols = maker([WEATHER], Profile(interests="weather forecasting"), {(0, 0): "climate"})
    with pytest.raises(ValueError, match="'climate'"):
        make.scored_paper(0, cols["weather"], 0.4)


# ---- recorded reasons: old strings and new data ------------------------------------------------

OLD_PICKS = [{"paper_id": "p1", "score": 0.9, "reasons": ['topic: SNN — "spiking"', "trending: 3"]}]


def test_reasons_recorded_as_strings_read_as_recorded() -> None:
    """A ledger row from before reasons were data reads back with its strings as worded."""
    row = Delivery.model_validate(
        {
            "subscriber_id": 1,
            "edition_date": DAY,
            "status": "sent",
            "message_id": "<m@x>",
            "paper_ids": ["p1"],
            "picks": OLD_PICKS,
        }
    )
    reasons = row.picks[0].reasons
    assert [r.kind for r in reasons] == ["text", "text"]
    assert [r.text for r in reasons] == ['topic: SNN — "spiking"', "trending: 3"]


def test_structured_reasons_round_trip_through_the_ledger(store: Store) -> None:
    """The ledger keeps kind, label and terms, so a resend words them as they read today."""
    p1 = paper("p1", "Spiking Networks")
    reasons = (
        Reason(kind="topic", label="Spiking neural networks", terms=("Spiking Networks",)),
        Reason(kind="meaning", label="neuromorphic chips"),
        Reason(kind="trending", upvotes=3),
    )
    selection = Selection(
        subscriber_id=1,
        edition_date=DAY,
        papers=(ScoredPaper(paper=p1, score=0.9, reasons=reasons),),
    )
    base = Delivery(
        subscriber_id=1, edition_date=DAY, status=DeliveryStatus.QUEUED, message_id="<m@x>"
    )
    store.ledger.queue_many([recorded(base, selection, ["p1"])], NOW)
    row = store.ledger.get(1, DAY)
    assert row is not None
    assert row.picks[0].reasons == reasons


def old_row_edition(store: Store) -> tuple[Delivery, Selection]:
    """An edition queued by today's code, then its picks rewritten as an older version of
    paperboy recorded them (reasons as strings), read back through the store."""
    p1 = paper("p1", "Spiking Networks")
    picks = (Pick(paper_id="p1", score=0.9, reasons=(Reason(kind="trending", upvotes=3),)),)
    store.ledger.queue_many(
        [
            Delivery(
                subscriber_id=1,
                edition_date=DAY,
                status=DeliveryStatus.QUEUED,
                message_id="<m@x>",
                paper_ids=("p1",),
                picks=picks,
            )
        ],
        NOW,
    )
    with store.engine.begin() as conn:
        conn.execute(update(s.deliveries).values(picks=OLD_PICKS))
    row = store.ledger.get(1, DAY)
    assert row is not None
    return row, recorded_selection(row, {"p1": p1})


def test_an_old_rows_reasons_render_in_the_mail(store: Store) -> None:
    """The retry path re-renders an old row's picks: its string reasons show as recorded."""
    row, selection = old_row_edition(store)
    renderer = Renderer.from_config(Config())
    links = digest_links(LINKS, 1, DAY, row.paper_ids)
    mail = renderer.digest(selection, reader(), links)
    assert 'topic: SNN — "spiking" · trending: 3' in mail.text
    assert "topic: SNN — &#34;spiking&#34; · trending: 3" in mail.html or (
        "topic: SNN — &quot;spiking&quot; · trending: 3" in mail.html
    )
