"""The bounce class table (RFC 3463): each reply the issue names lands in its class."""

from __future__ import annotations

import pytest

from pipeline.bounces import EFFECTS, RULES, Bounce, classify, enhanced_code, table_markdown


@pytest.mark.parametrize(
    ("reply", "stage", "expected"),
    [
        ("550 5.1.1 no such mailbox", "rcpt", Bounce.GONE),
        ("550 5.1.2 bad destination domain", "rcpt", Bounce.GONE),
        ("553 5.1.3 bad address syntax", "rcpt", Bounce.GONE),
        ("556 5.1.10 null MX", "rcpt", Bounce.GONE),
        ("550 5.2.1 mailbox disabled", "rcpt", Bounce.GONE),
        ("554 5.2.1 mailbox disabled", "rcpt", Bounce.GONE),
        ("554 5.1.1 no such user", "rcpt", Bounce.GONE),
        ("550 5.1.1 no such user", "data", Bounce.GONE),
        ("554 5.7.1 client host [192.0.2.1] blocked", "rcpt", Bounce.POLICY),
        ("550 5.7.1 relaying denied", "rcpt", Bounce.POLICY),
        ("554 5.7.1 content refused", "data", Bounce.POLICY),
        ("554 transaction failed", "rcpt", Bounce.POLICY),
        ("554 5.0.0 blocked", "rcpt", Bounce.POLICY),
        ("421 4.7.0 try again later", "rcpt", Bounce.BUSY),
        ("421 service not available", "connect", Bounce.BUSY),
        ("450 4.2.0 mailbox busy", "rcpt", Bounce.TEMPORARY),
        ("451 4.7.1 greylisted", "rcpt", Bounce.TEMPORARY),
        ("552 5.2.2 mailbox full", "rcpt", Bounce.TEMPORARY),
        ("550 no such user", "rcpt", Bounce.BOUNCE),
        ("550 5.1.6 mailbox moved", "rcpt", Bounce.BOUNCE),
        ("553 sorry, that domain isn't in my list", "rcpt", Bounce.BOUNCE),
        ("550 5.6.0 content rejected", "data", Bounce.REJECTED),
        ("550 no thanks", "data", Bounce.REJECTED),
    ],
)
def test_each_reply_lands_in_its_class(reply: str, stage: str, expected: Bounce) -> None:
    """5.1.x and 5.2.1 are gone, 5.7.x and bare 554 are policy, 421 is busy, other 5xx at
    RCPT count a bounce and at DATA fail the message."""
    code, _, text = reply.partition(" ")
    assert classify(int(code), text, stage) == expected  # type: ignore[arg-type]


def test_the_enhanced_code_is_read_only_from_the_start_of_the_text() -> None:
    """A status code elsewhere in the text, or a version number, is not an enhanced code."""
    assert enhanced_code("5.1.10 null MX") == "5.1.10"
    assert enhanced_code("no such user 5.1.1") is None
    assert enhanced_code("5.1.1.2 odd") is None
    assert enhanced_code("") is None


def test_policy_refusals_never_suppress() -> None:
    """Only the gone class suppresses at once; a policy refusal or a 421 is deferred."""
    for bounce in (Bounce.POLICY, Bounce.BUSY):
        edition, address, _ = EFFECTS[bounce]
        assert (edition, address) == ("deferred", "never suppressed")
    assert [b for b, (_, address, _) in EFFECTS.items() if "at once" in address] == [Bounce.GONE]


def test_the_readme_table_has_one_row_per_rule() -> None:
    """table_markdown() renders every rule, in order, with its effects."""
    rows = table_markdown().splitlines()[2:]
    assert len(rows) == len(RULES)
    assert all(f"| {rule.bounce} |" in row for rule, row in zip(RULES, rows, strict=True))
