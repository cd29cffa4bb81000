"""Returned mail, read: a delivery status notification (RFC 3464) or a complaint (ARF,
RFC 5965) as the delivery it is about and what it says. Pure; ``bounce_scan.py`` does the I/O.

A report counts against a reader only through a signed VERP address paperboy made for them
(``pipeline.verp``), found in the returned mail or in the original it quotes; the report's own
recipient fields can be written by anyone and only go into the recorded reason. Anything else
(an auto-reply, a bounce in free text, a report without our address) is a ReturnedMailError:
it is left for a person, never guessed at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from typing import Literal

from pipeline.bounces import Bounce, classify
from pipeline.errors import ReturnedMailError
from pipeline.tokens import Tokens
from pipeline.verp import find_delivery

Kind = Literal["failed", "delayed", "complaint", "other"]

COMPLAINTS = frozenset({"abuse", "fraud"})  # feedback types that mean "the reader objected"
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_SMTP_DIAGNOSTIC = re.compile(r"\s*smtp\s*;\s*([45]\d\d)(?:[ -](.*))?", re.I | re.S)


@dataclass(frozen=True, slots=True)
class Report:
    """What one returned message says about one delivery."""

    kind: Kind  # failed / delayed (DSN action), complaint (ARF), other (delivered, not-spam …)
    key: str  # identifies the returned message: reading it twice must count once
    subscriber_id: int
    edition: dt.date
    status: str  # the DSN's Status ("5.1.1") or the ARF Feedback-Type ("abuse")
    detail: str  # one line for the recorded reason: recipient and diagnostic
    bounce: Bounce | None = None  # the class of a failed delivery (pipeline.bounces)


def read_report(data: bytes, tokens: Tokens) -> Report:
    """The report in ``data`` (one whole message); ReturnedMailError says why there is none."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(data)
    except (ValueError, TypeError, LookupError) as e:  # the parser is lenient; this is rare
        raise ReturnedMailError(f"not a mail message: {e}") from e
    if not isinstance(msg, EmailMessage) or msg.get_content_type() != "multipart/report":
        raise ReturnedMailError(
            "not a multipart/report (a free-text bounce or an auto-reply); read it yourself"
        )
    report_type = str(msg.get_param("report-type", "")).lower()
    found = find_delivery(tokens, _searchable(data, msg))
    if found is None:
        raise ReturnedMailError(
            "names no delivery of ours (no signed bounces+… address; is email.bounce_domain set?)"
        )
    key = _key(msg, data)
    if report_type == "delivery-status":
        kind, status, detail, bounce = _delivery_status(msg)
    elif report_type == "feedback-report":
        kind, status, detail = _feedback(msg)
        bounce = None
    else:
        raise ReturnedMailError(f"report-type {report_type!r} is neither a DSN nor ARF")
    return Report(kind, key, found.subscriber_id, found.edition, status, detail, bounce)


def _searchable(data: bytes, msg: EmailMessage) -> str:
    """Where a VERP address may be: the raw message (To, the quoted original's Return-Path)
    and any quoted headers sent as encoded text."""
    texts = [data.decode("latin-1")]
    for part in msg.walk():
        if part.get_content_type() == "text/rfc822-headers" and isinstance(part, EmailMessage):
            try:
                texts.append(str(part.get_content()))
            except (LookupError, ValueError):
                continue
    return "\n".join(texts)


def _key(msg: EmailMessage, data: bytes) -> str:
    message_id = str(msg.get("Message-ID", "")).strip()
    source = f"mid:{message_id}".encode() if message_id else data
    return hashlib.sha256(source).hexdigest()[:32]


def _part(msg: EmailMessage, *types: str) -> Message:
    for part in msg.walk():
        if part.get_content_type() in types:
            return part
    raise ReturnedMailError(f"a {types[0]} report without its {types[0]} part")


def _blocks(part: Message) -> list[dict[str, str]]:
    """The groups of fields in a delivery-status or feedback-report part, names lowercased."""
    payload = part.get_payload()
    texts: list[str] = []
    if isinstance(payload, list):  # the parser has split them into header-only messages
        for sub in payload:
            if not isinstance(sub, Message):
                continue
            texts.append("".join(f"{k}: {v}\n" for k, v in sub.items()))
            rest = sub.get_payload()
            if isinstance(rest, str) and rest.strip():
                texts.append(rest)
    elif isinstance(payload, str):
        texts.append(payload)
    blocks: list[dict[str, str]] = []
    for text in texts:
        for chunk in re.split(r"\r?\n\s*\r?\n", text.strip()):
            if not chunk.strip():
                continue
            fields = HeaderParser().parsestr(chunk.strip() + "\n\n", headersonly=True)
            blocks.append({k.lower(): " ".join(str(v).split()) for k, v in fields.items()})
    return blocks


def _delivery_status(msg: EmailMessage) -> tuple[Kind, str, str, Bounce | None]:
    blocks = _blocks(_part(msg, "message/delivery-status", "message/global-delivery-status"))
    recipients = [b for b in blocks if "action" in b or "status" in b]
    if not recipients:
        raise ReturnedMailError("a delivery status notification without a recipient's status")
    block = next((b for b in recipients if b.get("action", "").lower() == "failed"), recipients[0])
    action = block.get("action", "").lower()
    status = block.get("status", "").split(" ")[0]
    if not _STATUS.fullmatch(status):
        raise ReturnedMailError(f"a DSN Status that is no RFC 3463 code: {status!r}")
    diagnostic = block.get("diagnostic-code", "")
    who = block.get("final-recipient", "").split(";")[-1].strip()
    detail = f"{who} {status} {diagnostic}".strip()[:300]
    if action == "delayed":
        return "delayed", status, detail, None
    if action != "failed":
        return "other", status, detail, None
    if status[0] == "2":
        raise ReturnedMailError(f"a DSN that says failed with the success status {status}")
    match = _SMTP_DIAGNOSTIC.match(diagnostic)
    code = int(match.group(1)) if match else 0
    if str(code)[0] != status[0]:  # the Status field is the report's word (RFC 3464, 2.3.4)
        code = 550 if status[0] == "5" else 450
    text = (match.group(2) or "") if match else diagnostic
    return "failed", status, detail, classify(code, f"{status} {text}", "rcpt")


def _feedback(msg: EmailMessage) -> tuple[Kind, str, str]:
    blocks = _blocks(_part(msg, "message/feedback-report"))
    fields = blocks[0] if blocks else {}
    feedback_type = fields.get("feedback-type", "").lower()
    if not feedback_type:
        raise ReturnedMailError("an ARF report without a Feedback-Type")
    who = fields.get("original-rcpt-to", "")
    detail = f"{who} {fields.get('user-agent', '')}".strip()[:300]
    return ("complaint" if feedback_type in COMPLAINTS else "other"), feedback_type, detail
