"""Message bytes: a rendered email as MIME (text + HTML), RFC 2047 headers, and DKIM.

Pure apart from reading the DKIM key (once per key file version). ``send.py`` needs only
``message_bytes`` from here, so sending never loads the template machinery.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.policy
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, formataddr
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.cleantext import INVISIBLE, header_text, require_url
from pipeline.config import Email
from pipeline.errors import ConfigError, RenderError
from pipeline.models import RenderedEmail

# Headers are written pre-folded (set_raw) and must go out as written: the default policy would
# RFC 2047-encode a long List-Unsubscribe URL, which breaks it.
POLICY = email.policy.SMTP.clone(refold_source="none")
POLICY_UTF8 = POLICY.clone(utf8=True)  # for a message to or from a non-ASCII address
DKIM_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
)  # fmt: skip
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+")
_MESSAGE_ID = re.compile(r"<[^\s<>@]+@[^\s<>@]+>")


def message_id_for(subscriber_id: int, edition: dt.date, email: Email) -> str:
    """``<digest.20260703.42.ab12cd34@example.org>``: the same for every resend of an edition."""
    domain = _ascii_domain(email.from_address.rpartition("@")[2] or "localhost")
    tag = hashlib.sha256(email.list_id.encode("utf-8")).hexdigest()[:8]
    return f"<digest.{edition:%Y%m%d}.{subscriber_id}.{tag}@{domain}>"


def build_message(
    rendered: RenderedEmail,
    *,
    to: str,
    email: Email,
    message_id: str,
    unsubscribe_url: str | None,
    date: dt.datetime,
    return_path: str | None = None,
) -> EmailMessage:
    """multipart/alternative (text + HTML), UTF-8, quoted-printable, list headers, DKIM.

    ``return_path`` (a VERP address) becomes the envelope sender: the outbox keeps it as the
    ``Return-Path`` header, and ``SmtpSender`` sends it as MAIL FROM instead (``envelope``).
    """
    e = email
    if date.tzinfo is None:
        raise RenderError("the Date of an email must be timezone-aware")
    if not _MESSAGE_ID.fullmatch(message_id):
        raise RenderError(f"invalid Message-ID {message_id!r}")
    msg = EmailMessage(policy=POLICY)
    if return_path is not None:
        msg.set_raw("Return-Path", f"<{address(return_path)}>")
    msg.set_raw(
        "From", formataddr((header_text(e.from_name, 80), address(e.from_address)), "utf-8")
    )
    msg.set_raw("To", address(to))
    if e.reply_to:
        msg.set_raw("Reply-To", address(e.reply_to))
    msg.set_raw("Subject", encode_header("Subject", rendered.subject))
    msg.set_raw("Date", format_datetime(date))
    msg.set_raw("Message-ID", message_id)
    list_name = header_text(e.from_name, 80)
    msg.set_raw("List-Id", formataddr((list_name, header_text(e.list_id, 200)), "utf-8"))
    if unsubscribe_url is not None:
        targets = [f"<{require_url(unsubscribe_url, 'unsubscribe')}>"]
        if e.unsubscribe_mailto:
            mailbox = address(e.unsubscribe_mailto)
            if not mailbox.isascii():  # a URL carries UTF-8 percent-encoded (RFC 6068)
                mailbox = quote(mailbox, safe="@")
            targets.append(f"<mailto:{mailbox}?subject=unsubscribe>")
        msg.set_raw("List-Unsubscribe", ",\r\n ".join(targets))
        msg.set_raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    msg.set_raw("MIME-Version", "1.0")
    # QP escapes '=', so a boundary starting with '=_' can never occur inside a part.
    boundary = "=_pb_" + hashlib.sha256(message_id.encode()).hexdigest()[:24]
    msg.set_raw("Content-Type", f'multipart/alternative;\r\n boundary="{boundary}"')
    msg.set_payload([_text_part("plain", rendered.text), _text_part("html", rendered.html)])
    if e.dkim_selector and e.dkim_domain and e.dkim_private_key_file:
        msg = dkim_sign(msg, e)
    return msg


def _text_part(subtype: str, content: str) -> MIMEPart:
    """A UTF-8 text part: quoted-printable for text/plain; 7-bit HTML (base64 if it must)."""
    part = MIMEPart(policy=POLICY)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    if "\r" in content:
        content = content.replace("\r\n", "\n").replace("\r", "\n")
    if subtype == "plain":
        part.set_raw("Content-Transfer-Encoding", "quoted-printable")
        part.set_payload(binascii.b2a_qp(content.encode("utf-8"), istext=True).decode("ascii"))
        return part
    seven_bit = html_7bit(content)
    if seven_bit is not None:
        part.set_raw("Content-Transfer-Encoding", "7bit")
        part.set_payload(seven_bit)
    else:
        part.set_raw("Content-Transfer-Encoding", "base64")
        part.set_payload(base64_lines(content.encode("utf-8")))
    return part


HTML_LINE = 900  # well under SMTP's 998, so nothing downstream rewraps it


def html_7bit(html: str) -> str | None:
    """The same document as ASCII in short lines, or None if it cannot be broken safely.

    Non-ASCII characters become character references (``&#220;``), and long lines are
    broken where a newline means exactly what a space means: between a tag's attributes
    (``" style="`` only occurs inside tags, text being escaped) or, failing that, at a space.
    Sending HTML this way is smaller than base64 and lets SMTP clients stream it untouched.
    """
    text = html.encode("ascii", "xmlcharrefreplace").decode("ascii")
    if len(text) <= HTML_LINE and "\n" not in text:
        return text + "\n"
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > HTML_LINE:
            cut = line.rfind(' style="', 0, HTML_LINE)
            if cut <= 0:
                cut = line.rfind(" ", 0, HTML_LINE)
            if cut <= 0:
                return None
            out.append(line[:cut])
            line = line[cut + 1 :]
        out.append(line)
    return "\n".join(out) + ("" if text.endswith("\n") else "\n")


def base64_lines(data: bytes) -> str:
    """Base64 in lines of 76 characters, each ending in a newline (RFC 2045)."""
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii")
    return "".join(encoded[i : i + 76] + "\n" for i in range(0, len(encoded), 76))


def message_bytes(message: EmailMessage) -> bytes:
    """The message as it goes on the wire: CRLF line ends, headers exactly as written.

    The same bytes as ``message.as_bytes(policy=POLICY)`` (``POLICY_UTF8`` for a non-ASCII
    address; a test holds them equal), written directly for the shape ``build_message`` makes;
    anything else goes through the generator.
    """
    fast = _flat(message, top=True)
    if fast is not None:
        return fast
    utf8 = any(isinstance(v, str) and not v.isascii() for _, v in message.raw_items())
    return message.as_bytes(policy=POLICY_UTF8 if utf8 else POLICY)


def envelope(message: EmailMessage, default: str) -> tuple[str, bytes]:
    """The envelope sender and the bytes to send: a ``Return-Path`` header is the sender
    (``default`` without one) and is left out of the bytes, since the receiving server writes
    its own from MAIL FROM (RFC 5321, 4.4)."""
    data = message_bytes(message)
    raw = next((v for n, v in message.raw_items() if n.lower() == "return-path"), None)
    if raw is None:
        return default, data
    sender = address(str(raw).strip().removeprefix("<").removesuffix(">"))
    head, sep, body = data.partition(b"\r\n\r\n")
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = line[:12].lower() == b"return-path:"
        if not dropping:
            kept.append(line)
    return sender, b"\r\n".join(kept) + sep + body


_BOUNDARY = re.compile(r'boundary="([^"\r\n]+)"')


def _flat(part: MIMEPart, top: bool = False) -> bytes | None:
    raw = part.raw_items()
    headers = []
    content_type = ""
    for name, value in raw:
        if not isinstance(value, str):
            return None
        if name.lower() == "content-type":
            content_type = value
        headers.append(f"{name}: " + "\r\n".join(value.splitlines()) + "\r\n")
    payload: Any = part.get_payload()
    if isinstance(payload, list):
        match = _BOUNDARY.search(content_type)
        if not content_type.startswith("multipart/") or match is None or not payload:
            return None
        boundary = match.group(1)
        chunks = []
        for sub in payload:
            flat = _flat(sub) if isinstance(sub, MIMEPart) else None
            if flat is None:
                return None
            chunks.append(flat)
        sep = f"\r\n--{boundary}\r\n".encode("ascii")
        body = (
            f"--{boundary}\r\n".encode("ascii")
            + sep.join(chunks)
            + f"\r\n--{boundary}--\r\n".encode("ascii")
        )
    elif isinstance(payload, str) and payload.isascii() and content_type.startswith("text/"):
        if "\r" in payload:
            payload = payload.replace("\r\n", "\n").replace("\r", "\n")
        body = payload.replace("\n", "\r\n").encode("ascii")
    else:
        return None
    if part.preamble is not None or part.epilogue is not None:
        return None
    # Headers are ASCII but for an internationalised address (RFC 6532), sent as UTF-8.
    return "".join(headers).encode("utf-8") + b"\r\n" + body


def encode_header(name: str, value: str) -> str:
    """One header value, cleaned of CR/LF, RFC 2047-encoded when not ASCII, folded at 78."""
    text = header_text(value, 250)
    first = 78 - len(name) - 2
    if text.isascii():
        return _fold_words(text.split(" "), first)
    # Base64 encoded-words of at most 75 characters, never splitting a character's bytes.
    words: list[str] = []
    chunk = bytearray()
    room = (first - 12) // 4 * 3
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > room:
            words.append(_encoded_word(chunk))
            chunk = bytearray()
            room = (78 - 1 - 12) // 4 * 3
        chunk += data
    words.append(_encoded_word(chunk))
    return "\r\n ".join(words)


def _encoded_word(data: bytes | bytearray) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(data, newline=False).decode("ascii") + "?="


def _fold_words(words: Sequence[str], first: int) -> str:
    """ASCII words joined by spaces, with a fold before any word that would pass column 78."""
    lines: list[str] = []
    line = ""
    room = first
    for word in words:
        if line and len(line) + 1 + len(word) > room:
            lines.append(line)
            line, room = word, 78 - 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def address(value: str) -> str:
    """A bare address safe for a header; RenderError when it is not exactly one address."""
    text = value.strip()
    if not _ADDRESS.fullmatch(text):
        raise RenderError(f"invalid email address {value!r}")
    local, _, domain = text.rpartition("@")
    if not local.isascii() and any(unicodedata.category(c) in INVISIBLE for c in local):
        raise RenderError(f"invalid email address {value!r} (invisible characters)")
    # A non-ASCII local part (jörg@…) stays as it is (RFC 6532): the sender then needs SMTPUTF8.
    return f"{local}@{_ascii_domain(domain)}"


def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError as e:
        raise RenderError(f"invalid domain {domain!r}: {e}") from e


@lru_cache(maxsize=4)
def _dkim_key(path: str, mtime_ns: int) -> bytes:
    return Path(path).read_bytes()


def dkim_sign(message: EmailMessage, email: Email) -> EmailMessage:
    """A copy of ``message`` with a DKIM-Signature (relaxed/relaxed) over the list headers too."""
    import dkim  # dkimpy pulls in its crypto stack; only a signing instance pays for it

    e = email
    path = e.dkim_private_key_file
    if path is None:
        raise ConfigError("email.dkim_private_key_file is not set; DKIM signing needs the key")
    try:
        key = _dkim_key(str(path), path.stat().st_mtime_ns)
    except OSError as err:
        raise ConfigError(
            f"email.dkim_private_key_file = {str(path)!r}: cannot read it ({err.strerror})"
        ) from err
    try:
        signature = dkim.sign(
            message_bytes(message),
            e.dkim_selector.encode("ascii"),
            e.dkim_domain.encode("ascii"),
            key,
            include_headers=list(DKIM_HEADERS),
            canonicalize=(b"relaxed", b"relaxed"),
            linesep=b"\r\n",
        )
    except (dkim.DKIMException, UnicodeError, ValueError) as err:
        raise ConfigError(f"email.dkim_*: cannot sign with this key and selector: {err}") from err
    name, _, value = signature.decode("ascii").partition(":")
    signed = EmailMessage(policy=POLICY)
    signed.set_raw(name, value.strip(" ").removesuffix("\r\n"))
    for header, raw in message.raw_items():
        signed.set_raw(header, raw)
    signed.set_payload(message.get_payload())
    return signed
