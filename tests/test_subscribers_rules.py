"""Pure rules of the subscriber side: address normalising, form parsing, votes, rate-limit keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import AddressError
from pipeline.models import Paper, Profile
from subscribers.feedback import MAX_TERMS, apply_vote, paper_terms
from subscribers.forms import normalize_email, parse_preferences, parse_signup
from subscribers.web.pages import resend_text
from subscribers.web.ratelimit import network_key


def paper(title: str, keywords: tuple[str, ...] = ()) -> Paper:
    return Paper(id="t:1", title=title, keywords=keywords, source_format="hf_page")


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("  Reader@Example.ORG ", "Reader@example.org"),
        ("leser@BÜCHER.example.org", "leser@xn--bcher-kva.example.org"),
        ("user+tag@sub.example.co.uk", "user+tag@sub.example.co.uk"),
    ],
)
def test_addresses_are_normalised_one_way(raw: str, stored: str) -> None:
    """Whitespace trimmed, domain lowercased, IDN domains in punycode."""
    assert normalize_email(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "a@b.org\r\nBcc: c@d.org",
        "a@b.org\nX: y",
        "a@b.org\x00",
        "x" * 300 + "@example.org",
        "no at sign",
        "a@localhost",
        "a@example.test",
    ],
)
def test_bad_addresses_raise_address_error(raw: str) -> None:
    """Header injection, overlong, malformed and special-use addresses are refused."""
    with pytest.raises(AddressError):
        normalize_email(raw)


def test_signup_parsing_dedupes_topics_and_defaults_the_schedule() -> None:
    """A minimal valid form: repeated topics once, UTC at the given hour, daily."""
    parsed = parse_signup(
        {"email": ["a@example.org"], "topics": ["x", "x"], "send_hour": ["6"]}, ["x", "y"]
    )
    assert parsed.data is not None and parsed.errors == {}
    assert parsed.data.topics == ("x",) and parsed.data.timezone == "UTC"
    assert parsed.data.send_hour == 6 and parsed.data.frequency.value == "daily"


@pytest.mark.parametrize("hour", ["24", "25", "007x", "²", "1e1", " ", "9999"])
def test_hours_outside_0_to_23_are_refused(hour: str) -> None:
    """Only plain ASCII numbers 0–23 are hours."""
    parsed = parse_signup({"email": ["a@example.org"], "topics": ["x"], "send_hour": [hour]}, ["x"])
    assert parsed.data is None and "send_hour" in parsed.errors


def test_preference_lists_are_trimmed_and_bounded() -> None:
    """Keywords split on commas and lines; 51 entries are too many."""
    ok = parse_preferences(
        {"exclude": ["a, b\n\n c ,A"], "max_papers": ["3"], "send_hour": ["1"]}, []
    )
    assert ok.data is not None and ok.data.exclude == ("a", "b", "c")
    many = parse_preferences(
        {"authors": ["\n".join(f"Author {i}" for i in range(51))], "max_papers": ["3"]}, []
    )
    assert many.data is None and "authors" in many.errors


def test_paper_terms_are_keywords_then_telling_title_words() -> None:
    """Keywords come first, then title words without filler like 'towards' or 'models'."""
    terms = paper_terms(paper("Towards Efficient Diffusion Models for Proteins", ("Protein",)))
    assert terms == ("protein", "diffusion", "proteins")


words = st.text(alphabet=st.characters(categories=["L", "N", "Zs", "P"]), max_size=80)
profiles = st.builds(
    Profile,
    liked_terms=st.lists(st.text(min_size=1, max_size=12), max_size=MAX_TERMS, unique=True).map(
        tuple
    ),
    disliked_terms=st.lists(st.text(min_size=1, max_size=12), max_size=MAX_TERMS, unique=True).map(
        tuple
    ),
)


@given(profiles, words, st.lists(words, max_size=6), st.sampled_from([1, -1]))
def test_a_vote_keeps_lists_bounded_disjoint_and_is_idempotent(
    profile: Profile, title: str, keywords: list[str], vote: int
) -> None:
    """After a vote: both lists bounded, the paper's terms on one side only, re-voting no-op."""
    voted = paper(title or "x", tuple(keywords))
    once = apply_vote(profile, voted, vote)
    assert len(once.liked_terms) <= MAX_TERMS and len(once.disliked_terms) <= MAX_TERMS
    terms = set(paper_terms(voted))
    mine, other = (
        (once.liked_terms, once.disliked_terms)
        if vote > 0
        else (once.disliked_terms, once.liked_terms)
    )
    assert terms <= set(mine) and not terms & set(other)
    assert apply_vote(once, voted, vote) == once


def test_votes_must_be_plus_or_minus_one() -> None:
    """A vote of 0 or 2 is a programming error, not a silent no-op."""
    with pytest.raises(ValueError, match="vote"):
        apply_vote(Profile(), paper("x"), 2)


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("testclient", "testclient"),
    ],
)
def test_rate_limit_keys_group_an_ipv6_64(host: str, key: str) -> None:
    """IPv4 per address; IPv6 per /64, since one host usually holds a whole /64."""
    assert network_key(host) == key


@pytest.mark.parametrize(
    ("hours", "text"), [(0, ""), (24, "day"), (1, "1 hour"), (6, "6 hours"), (1.5, "1.5 hours")]
)
def test_the_sign_up_pages_name_the_resend_limit_in_words(hours: float, text: str) -> None:
    """The pages say how often a confirmation can be mailed again ("once a day")."""
    assert resend_text(hours) == text
