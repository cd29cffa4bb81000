"""What a vote teaches: distinctive terms only, never the reader's own words as dislikes, and
never a term the reader removed (``pipeline/votes.py``)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import Match
from pipeline.matching.match import load_catalog, rank
from pipeline.matching.textproc import STOPWORDS
from pipeline.models import Dump, Paper, Profile, TermCounts
from pipeline.papers import dump_id
from pipeline.store import Store
from pipeline.votes import (
    MAX_DISMISSED,
    MAX_TERMS,
    TERMS_PER_PAPER,
    apply_vote,
    distinctive_terms,
    relearn,
    remove_term,
    term_key,
    terms_to_count,
)
from subscribers.feedback import learn

CATALOG = load_catalog()
DAY = dt.date(2026, 7, 3)
NOW = dt.datetime(2026, 7, 3, 8, tzinfo=dt.UTC)


def paper(pid: str, title: str, abstract: str = "", keywords: tuple[str, ...] = ()) -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, keywords=keywords, source_format="hf_page")


# Failure class 4 of issue 12: the old rule learned "exact", "runs", "sharing" and "paged".
PAGED = paper(
    "paged",
    "Exact Runs Sharing Paged Attention Across Decoding Streams",
    "Serving many requests wastes memory. We keep the KV cache in pages and share them between "
    "streams; paged attention then reads shared prefixes once. On long prompts the KV cache "
    "shrinks by half while outputs stay exact.",
)
VIDEO = paper(
    "video",
    "Minute-Long Video Diffusion with Temporal Attention",
    "We generate long videos with a video diffusion model whose attention spans frames; "
    "samples are on the project pages.",
)
# The rest of a small store: what makes a phrase common or established.
CORPUS = (
    PAGED,
    VIDEO,
    paper(
        "kv1", "Compressing the KV Cache by Token Eviction", "We evict tokens from the KV cache."
    ),
    paper("kv2", "Paged Attention on Small GPUs", "Paged attention for edge serving."),
    paper("vd1", "Video Diffusion Priors for Editing", "A video diffusion model edits clips."),
    paper("sp1", "Spiking Neural Networks on Loihi", "Spiking neural networks run on Loihi chips."),
    paper("sp2", "Surrogate Gradients for Deep SNNs", "We train SNNs with surrogate gradients."),
    *(
        paper(f"lm{i}", f"Language Models Reason Step {i}", "Large language models with attention.")
        for i in range(12)
    ),
    paper("rl1", "Reward Shaping for Robot Policies", "A robot learns grasping from reward."),
    paper("3d1", "Gaussian Splatting in Real Time", "Gaussian splatting renders scenes."),
)


def counts_over(papers: tuple[Paper, ...], keys: tuple[str, ...]) -> TermCounts:
    """What the store answers (``Feedback.term_counts``): papers containing each key as text."""
    texts = [term_key(f"{p.title} {p.abstract} {' '.join(p.keywords)}") for p in papers]
    return TermCounts(papers=len(papers), counts={k: sum(k in t for t in texts) for k in keys})


def vote(profile: Profile, voted: Paper, sign: int, papers: tuple[Paper, ...] = CORPUS) -> Profile:
    counts = counts_over(papers, terms_to_count(voted, CATALOG))
    return apply_vote(profile, voted, sign, counts, CATALOG)


def words_of(terms: tuple[str, ...]) -> set[str]:
    return {w for t in terms for w in term_key(t).split()}


def test_a_like_learns_phrases_not_the_plain_words_of_a_title() -> None:
    """👍 on "Exact Runs Sharing Paged Attention …" learns "paged attention" and "KV cache",
    never "exact", "runs" or "sharing", alone or in a one-off phrase."""
    liked = vote(Profile(), PAGED, 1).liked_terms
    assert "paged attention" in liked and "KV cache" in liked
    assert not words_of(liked) & {"exact", "runs", "sharing", "streams"}
    assert "paged" not in liked


def test_a_dislike_never_learns_the_readers_own_topic_or_interest_words() -> None:
    """👎 on a paper of the reader's topic leaves the topic's keywords alone; 👎 on a paper that
    shares the reader's interest leaves the interest alone."""
    inference = Profile(topics=("llm-inference",))
    disliked = vote(inference, PAGED, -1).disliked_terms
    assert not {"paged attention", "kv cache"} & {term_key(t) for t in disliked}
    video = vote(Profile(interests="video diffusion, robots"), VIDEO, -1).disliked_terms
    assert "video diffusion" not in video and "video generation" not in video
    # The same 👎 from a reader with other interests does learn it.
    assert "video diffusion" in vote(Profile(interests="robots"), VIDEO, -1).disliked_terms


def test_a_like_skips_only_what_repeats_the_readers_words() -> None:
    """A 👍 adds nothing the reader already said, but a narrower phrase is worth learning."""
    liked = vote(Profile(topics=("llm-inference",)), PAGED, 1).liked_terms
    assert "paged attention" not in liked and "KV cache" not in liked
    assert "paged attention" in vote(Profile(interests="attention"), PAGED, 1).liked_terms


def test_common_terms_are_not_distinctive() -> None:
    """A keyword found in most stored papers ("language models") is not learned; a rare one is."""
    voted = paper("lm0", "Language Models Reason", keywords=("language models", "proof search"))
    found = distinctive_terms(voted, counts_over(CORPUS, terms_to_count(voted, CATALOG)), CATALOG)
    assert "proof search" in found and "language models" not in found


def test_one_off_phrases_and_names_need_a_second_paper() -> None:
    """A title phrase or a name in no other stored paper is not a term yet; once another
    paper has it, it is."""
    voted = paper("z", "Zebra Striping for ZMix", "Zebra striping helps ZMix and ZebraNet.")
    alone = vote(Profile(), voted, 1, (voted,)).liked_terms
    assert alone == ()
    later = paper("z2", "Zebra Striping Again", "More zebra striping with ZMix.")
    assert set(vote(Profile(), voted, 1, (voted, later)).liked_terms) == {"zebra striping", "ZMix"}


def test_numbers_stopwords_and_word_pieces_are_never_terms() -> None:
    """Keywords like "4", "the", "x" or "of the" are dropped; "4-bit" is a term."""
    voted = paper("n", "Four Bits", keywords=("4", "2024", "the", "x", "of the", "4-bit", "models"))
    found = distinctive_terms(voted, counts_over((voted,), terms_to_count(voted, CATALOG)), CATALOG)
    assert found == ("4-bit",)


def test_a_removed_term_is_gone_and_never_comes_back() -> None:
    """Removing a term drops it from its list and remembers it: the same vote again, or a
    relearning from all votes, does not bring it back; other terms are untouched."""
    liked = vote(Profile(), PAGED, 1)
    removed = remove_term(liked, "Paged Attention")
    assert "paged attention" not in removed.liked_terms
    assert removed.dismissed_terms == ("paged attention",)
    assert set(removed.liked_terms) == set(liked.liked_terms) - {"paged attention"}
    assert "paged attention" not in vote(removed, PAGED, 1).liked_terms
    assert "paged attention" not in vote(removed, PAGED, -1).disliked_terms
    counts = counts_over(CORPUS, terms_to_count(PAGED, CATALOG))
    assert "paged attention" not in relearn(removed, [(PAGED, 1, counts)], CATALOG).liked_terms
    assert remove_term(removed, "paged attention") == removed  # a second click changes nothing


def test_dismissed_terms_stay_bounded() -> None:
    """The dismissed list keeps the newest ``MAX_DISMISSED``."""
    profile = Profile(liked_terms=tuple(f"t{i} term" for i in range(MAX_TERMS)))
    for i in range(MAX_DISMISSED + 5):
        profile = remove_term(profile.model_copy(update={"liked_terms": (f"x{i} y",)}), f"x{i} y")
    assert len(profile.dismissed_terms) == MAX_DISMISSED
    assert profile.dismissed_terms[0] == f"x{MAX_DISMISSED + 4} y"


def test_relearning_replays_votes_oldest_first() -> None:
    """Rebuilding from votes drops old-rule terms and ends like voting afresh."""
    old = Profile(liked_terms=("exact", "runs", "sharing"), disliked_terms=("paged",))
    counts = counts_over(CORPUS, terms_to_count(PAGED, CATALOG))
    video_counts = counts_over(CORPUS, terms_to_count(VIDEO, CATALOG))
    rebuilt = relearn(old, [(VIDEO, -1, video_counts), (PAGED, 1, counts)], CATALOG)
    assert rebuilt == vote(vote(Profile(), VIDEO, -1), PAGED, 1)
    assert not {"exact", "runs", "sharing", "paged"} & set(rebuilt.liked_terms)


def test_learned_terms_are_named_as_reasons_when_the_paper_has_them_whole() -> None:
    """A paper that says "paged attention" gets `you liked: "paged attention"`."""
    liked = vote(Profile(), PAGED, 1)
    kv = CORPUS[3]
    (picked,) = rank([kv], liked.model_copy(update={"interests": "serving"}), CATALOG, Match())
    texts = [r.text for r in picked.reasons]
    assert any(r.startswith("you liked:") and '"paged attention"' in r.lower() for r in texts)


def test_learned_terms_are_never_reasons_unless_the_paper_has_them_whole() -> None:
    """A video paper that mentions "pages" and "attention" apart is not `you liked: "paged
    attention"`, and no learned term it lacks is quoted."""
    liked = vote(Profile(topics=("video-generation",)), PAGED, 1)
    (picked,) = rank([VIDEO], liked, CATALOG, Match())
    text = term_key(f"{VIDEO.title} {VIDEO.abstract}")
    quoted = [r.text for r in picked.reasons if r.kind == "liked"]
    for reason in quoted:
        for term in reason.removeprefix("you liked: ").split(", "):
            assert term_key(term.strip('"')) in {term_key(t) for t in liked.liked_terms}
            assert term_key(term.strip('"')) in text


# --- properties -------------------------------------------------------------------------------

texts = st.text(alphabet=st.characters(categories=["L", "N", "Zs", "P"]), max_size=80)
known = st.sampled_from(
    ["paged attention", "KV cache", "exact", "runs", "4", "the", "Video Diffusion", "SNN"]
)
profiles = st.builds(
    Profile,
    topics=st.lists(st.sampled_from(list(CATALOG)), max_size=2, unique=True).map(tuple),
    interests=st.sampled_from(["", "video diffusion", "KV cache, robots"]),
    liked_terms=st.lists(st.text(min_size=1, max_size=12), max_size=MAX_TERMS, unique=True).map(
        tuple
    ),
    disliked_terms=st.lists(st.text(min_size=1, max_size=12), max_size=MAX_TERMS, unique=True).map(
        tuple
    ),
)


@given(
    profiles,
    st.lists(st.one_of(known, texts), min_size=1, max_size=4).map(" ".join),
    st.lists(st.one_of(known, texts), max_size=3).map(" ".join),
    st.lists(st.one_of(known, texts), max_size=4),
    st.sampled_from([1, -1]),
    st.integers(min_value=0, max_value=3),
)
def test_a_vote_learns_only_well_formed_terms_of_the_paper(
    profile: Profile, title: str, abstract: str, keywords: list[str], sign: int, df: int
) -> None:
    """Whatever the paper: lists bounded and disjoint, re-voting a no-op, every learned term
    the paper's own (a keyword, a catalog keyword or its text) with no stopword or number at
    an end, and a 👎 never overlaps the reader's words."""
    voted = paper("p", title or "x", abstract, tuple(keywords))
    counts = TermCounts(papers=40, counts=dict.fromkeys(terms_to_count(voted, CATALOG), df))
    once = apply_vote(profile, voted, sign, counts, CATALOG)
    assert len(once.liked_terms) <= MAX_TERMS and len(once.disliked_terms) <= MAX_TERMS
    assert apply_vote(once, voted, sign, counts, CATALOG) == once
    found = distinctive_terms(voted, counts, CATALOG)
    assert len(found) <= TERMS_PER_PAPER
    mine, other = (
        (once.liked_terms, once.disliked_terms)
        if sign > 0
        else (once.disliked_terms, once.liked_terms)
    )
    assert not {term_key(t) for t in found} & {term_key(t) for t in other}
    learned = [t for t in mine[: len(found)] if t in found]
    body = term_key(f"{voted.title} {voted.abstract}")
    catalog_keywords = {term_key(k) for s in CATALOG for k in CATALOG[s].keywords}
    for term in learned:
        key = term_key(term)
        words = term.casefold().split()  # "4-bit" is one word
        assert key in {term_key(k) for k in keywords} | catalog_keywords or key in body
        for edge in (words[0], words[-1]):
            assert edge not in STOPWORDS and sum(c.isalpha() for c in edge) >= 2
    if sign < 0:
        own = {term_key(k) for s in profile.topics for k in CATALOG[s].keywords}
        assert not {term_key(t) for t in learned} & own


# --- the store's counts -------------------------------------------------------------------------


def test_the_store_counts_terms_like_the_rule_expects(store: Store) -> None:
    """``Feedback.term_counts`` gives each term's document frequency over the stored papers,
    case- and hyphen-blind, with LIKE's wildcards taken literally, on every backend."""
    odd = paper("odd", "100% Sim-to-Real_Transfer", "with 50% less data", ("KV-Cache",))
    papers = (*CORPUS, odd)
    store.papers.ingest(
        Dump(id=dump_id(b"c"), name="c.json", format="hf_api", dump_date=DAY, papers=papers), NOW
    )
    keys = (*terms_to_count(PAGED, CATALOG), "100%", "0% less", "sim to real_transfer", "kv cache")
    found = store.feedback.term_counts(keys)
    assert found == counts_over(papers, keys)
    assert found.counts["paged attention"] == 2 and found.counts["0% less"] == 1
    assert found.counts["kv cache"] == 3 and found.papers == len(papers)


def test_a_vote_through_the_service_learns_from_the_stored_papers(store: Store) -> None:
    """``subscribers.feedback.learn`` asks the store, then applies the rule."""
    store.papers.ingest(
        Dump(id=dump_id(b"c"), name="c.json", format="hf_api", dump_date=DAY, papers=CORPUS), NOW
    )
    learned = learn(store, CATALOG, Profile(), PAGED, 1)
    assert learned == vote(Profile(), PAGED, 1)
