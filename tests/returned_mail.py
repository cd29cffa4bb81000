"""Returned mail as mail servers write it, built with the stdlib: DSNs (RFC 3464) and ARF
complaints (RFC 5965), as multipart/report messages."""

from __future__ import annotations

from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import make_msgid


def _fields(**values: str) -> Message:
    block = Message()
    for name, value in values.items():
        block[name.replace("_", "-")] = value
    return block


def original(to: str, return_path: str) -> Message:
    """The digest as the reader's server stored it: its Return-Path is the envelope sender."""
    msg = MIMEText("Your papers for today.\n")
    msg["Return-Path"] = f"<{return_path}>"
    msg["From"] = "paperboy <paperboy@example.org>"
    msg["To"] = to
    msg["Subject"] = "Your papers"
    msg["Message-ID"] = "<digest.20260703.1.abcd@example.org>"
    return msg


def dsn(
    to: str,
    recipient: str,
    status: str,
    diagnostic: str,
    *,
    action: str = "failed",
    message_id: str | None = None,
) -> Message:
    """A bounce to ``to`` (our VERP address) saying what happened to mail for ``recipient``."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.net>"
    report["To"] = to
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Message-ID"] = message_id or make_msgid(domain="mx.example.net")
    report.attach(MIMEText(f"I'm sorry to have to inform you that your message to {recipient}\n"))
    status_part = MIMEBase("message", "delivery-status")
    status_part.set_payload(
        [
            _fields(Reporting_MTA="dns; mx.example.net", Arrival_Date="Fri, 3 Jul 2026"),
            _fields(
                Final_Recipient=f"rfc822; {recipient}",
                Original_Recipient=f"rfc822; {recipient}",
                Action=action,
                Status=status,
                Remote_MTA="dns; mx.reader.example",
                Diagnostic_Code=diagnostic,
            ),
        ]
    )
    report.attach(status_part)
    headers = MIMEText(original(recipient, to).as_string().split("\n\n")[0] + "\n")
    headers.replace_header("Content-Type", 'text/rfc822-headers; charset="us-ascii"')
    report.attach(headers)
    return report


def arf(
    return_path: str,
    recipient: str,
    *,
    feedback_type: str = "abuse",
    message_id: str | None = None,
) -> Message:
    """A complaint to the list's abuse address, quoting the digest (with its Return-Path)."""
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "feedback@mail.example.net"
    report["To"] = "abuse@example.org"
    report["Subject"] = "Email Feedback Report for IP 192.0.2.1"
    report["Message-ID"] = message_id or make_msgid(domain="mail.example.net")
    report.attach(MIMEText("This is an email abuse report for an email message received\n"))
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload(
        f"Feedback-Type: {feedback_type}\nUser-Agent: ExampleFBL/1.0\nVersion: 1\n"
        f"Original-Rcpt-To: {recipient}\nSource-IP: 192.0.2.1\n"
    )
    report.attach(feedback)
    report.attach(MIMEMessage(original(recipient, return_path)))
    return report


def auto_reply(to: str) -> Message:
    """An out-of-office reply: not a report, whatever it mentions."""
    msg = MIMEText("I am away until Monday. Your message about papers was not delivered?\n")
    msg["From"] = "reader@example.org"
    msg["To"] = to
    msg["Subject"] = "Auto: Your papers"
    msg["Message-ID"] = make_msgid(domain="example.org")
    return msg
