"""Pure rules of the subscriber side: address normalising, form parsing, rate-limit keys.

What votes teach is tested in ``test_feedback_terms.py``.
"""

from __future__ import annotations

import pytest

from pipeline.errors import AddressError
from pipeline.models import Paper
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
