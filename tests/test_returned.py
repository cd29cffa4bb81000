"""Reading one returned message (pure): what a DSN or ARF report says, or why it says nothing."""

from __future__ import annotations

import pytest

from pipeline.bounces import Bounce
from pipeline.errors import ReturnedMailError
from pipeline.returned import read_report
from pipeline.tokens import Tokens
from pipeline.verp import return_path
from tests.delivery_world import EDITION
from tests.returned_mail import arf, auto_reply, dsn

TOKENS = Tokens("k" * 32)
VERP = return_path(TOKENS, "b.example.org", 9, EDITION)


@pytest.mark.parametrize(
    ("status", "diagnostic", "bounce"),
    [
        ("5.1.1", "smtp; 550 5.1.1 user unknown", Bounce.GONE),
        ("5.1.10", "smtp; 554 5.1.10 null MX", Bounce.GONE),
        ("5.2.1", "x-unix; account disabled", Bounce.GONE),
        ("5.7.1", "smtp; 550 5.7.1 blocked", Bounce.POLICY),
        ("5.0.0", "smtp; 554 denied", Bounce.POLICY),
        ("5.2.2", "smtp; 552 5.2.2 quota", Bounce.TEMPORARY),
        ("4.4.7", "smtp; 550 gave up", Bounce.TEMPORARY),  # the Status outranks the code
        ("5.0.0", "smtp; 550 no such user", Bounce.BOUNCE),
        ("5.1.0", "", Bounce.BOUNCE),
    ],
)
def test_a_failed_dsn_gets_the_class_a_refusal_at_rcpt_would(
    status: str, diagnostic: str, bounce: Bounce
) -> None:
    """Status and Diagnostic-Code go through the same table as an SMTP reply at RCPT."""
    report = read_report(dsn(VERP, "r@example.org", status, diagnostic).as_bytes(), TOKENS)
    assert (report.kind, report.bounce, report.status) == ("failed", bounce, status)
    assert (report.subscriber_id, report.edition) == (9, EDITION)


def test_delayed_and_delivered_reports_and_non_complaint_feedback_do_nothing() -> None:
    """Only "failed" DSNs and abuse/fraud complaints have an effect."""
    delayed = dsn(VERP, "r@example.org", "4.4.1", "smtp; 451 later", action="delayed")
    delivered = dsn(VERP, "r@example.org", "2.0.0", "smtp; 250 ok", action="delivered")
    assert read_report(delayed.as_bytes(), TOKENS).kind == "delayed"
    assert read_report(delivered.as_bytes(), TOKENS).kind == "other"
    assert read_report(arf(VERP, "r@example.org").as_bytes(), TOKENS).kind == "complaint"
    not_spam = arf(VERP, "r@example.org", feedback_type="not-spam")
    assert read_report(not_spam.as_bytes(), TOKENS).kind == "other"


def test_the_key_follows_the_message_id() -> None:
    """The same report twice has one key; another report another."""
    one = dsn(VERP, "r@example.org", "5.0.0", "smtp; 550 x", message_id="<a@mx>")
    two = dsn(VERP, "r@example.org", "5.0.0", "smtp; 550 y", message_id="<a@mx>")
    three = dsn(VERP, "r@example.org", "5.0.0", "smtp; 550 x", message_id="<b@mx>")
    keys = [read_report(m.as_bytes(), TOKENS).key for m in (one, two, three)]
    assert keys[0] == keys[1] != keys[2]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (auto_reply(VERP).as_bytes(), "not a multipart/report"),
        (b"\x00\xff garbage", "not a multipart/report"),
        (dsn("paperboy@example.org", "r@example.org", "5.1.1", "x").as_bytes(), "no delivery"),
        (dsn(VERP, "r@example.org", "550", "smtp; 550 x").as_bytes(), "RFC 3463"),
    ],
)
def test_what_cannot_be_read_says_why(data: bytes, why: str) -> None:
    """Free text, garbage, an unsigned report and a malformed Status raise ReturnedMailError."""
    with pytest.raises(ReturnedMailError, match=why):
        read_report(data, TOKENS)
