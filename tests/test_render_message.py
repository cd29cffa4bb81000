"""The MIME message: headers a good newsletter carries, safe on the wire, optionally DKIM-signed."""

from __future__ import annotations

import base64
import datetime as dt
from email import message_from_bytes, policy
from html import unescape
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.config import Config
from pipeline.errors import RenderError
from pipeline.mime import (
    POLICY,
    POLICY_UTF8,
    build_message,
    html_7bit,
    message_bytes,
    message_id_for,
)
from pipeline.models import Selection
from pipeline.render import RenderedEmail, Renderer, header_text
from tests.delivery_world import EDITION, NOW, links_for, make_paper, reader, scored

UNSUB = "https://papers.example.org/u/eyJzIjo0Mn0.aGVsbG8td29ybGQtdG9rZW4tdGhhdC1pcy1sb25nZXI.ZXhhbXBsZQ"


def config(**email: object) -> Config:
    base = Config()
    return base.model_copy(update={"email": base.email.model_copy(update=email)})


def digest(cfg: Config, title: str = "Spiking transformers") -> RenderedEmail:
    papers = [make_paper(i, title=f"{title} {i}") for i in range(10)]
    sel = Selection(subscriber_id=42, edition_date=EDITION, papers=scored(papers))
    return Renderer.from_config(cfg).digest(sel, reader(), links_for(42, [p.id for p in papers]))


def message(cfg: Config, rendered: RenderedEmail | None = None, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "to": "reader42@example.org",
        "email": cfg.email,
        "message_id": message_id_for(42, EDITION, cfg.email),
        "unsubscribe_url": UNSUB,
        "date": NOW,
    }
    args.update(kw)
    return build_message(rendered or digest(cfg), **args)  # type: ignore[arg-type]


def test_multipart_alternative_text_then_html_in_utf8() -> None:
    """Text and HTML alternatives, UTF-8, both decoding back to what was rendered."""
    cfg = config()
    rendered = digest(cfg, "Ünïcode 🚀 transformers")
    parsed = message_from_bytes(message_bytes(message(cfg, rendered)), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert text.get_content().replace("\r\n", "\n") == rendered.text  # CRLF on the wire
    # The HTML travels as 7-bit ASCII: character references for non-ASCII, and long lines
    # broken where a newline means what a space means. The document is the same.
    wire_html = html.get_content()
    assert wire_html.isascii() and html["Content-Transfer-Encoding"] == "7bit"
    assert unescape(wire_html).replace("\r\n", " ").replace("\n", " ").strip() == unescape(
        rendered.html
    ).replace("\n", " ")


def test_html_7bit_only_turns_spaces_into_newlines() -> None:
    """Lines are cut at a space inside a tag (or in text), never inside a word or a value."""
    document = '<p style="a">' + '<b class="x" style="y">Ü</b>' * 200 + " word" * 300
    seven = html_7bit(document)
    assert seven is not None and seven.isascii()
    assert max(len(line) for line in seven.splitlines()) <= 900
    assert seven.replace("\n", " ").strip() == document.replace("Ü", "&#220;")
    assert html_7bit("x" * 2000) is None  # no safe place to break: the caller uses base64


def test_list_headers_sender_and_stable_message_id() -> None:
    """From, Reply-To, Date, List-Id, one-click List-Unsubscribe (https + mailto), Message-ID."""
    cfg = config(
        from_name="Lab digest",
        from_address="papers@lab.example",
        reply_to="editor@lab.example",
        list_id="daily.lab.example",
        unsubscribe_mailto="unsubscribe@lab.example",
    )
    parsed = message_from_bytes(message_bytes(message(cfg)), policy=policy.default)
    assert parsed["From"] == "Lab digest <papers@lab.example>"
    assert parsed["Reply-To"] == "editor@lab.example"
    assert parsed["To"] == "reader42@example.org"
    assert parsed["Date"].datetime == NOW
    assert parsed["List-Id"] == "Lab digest <daily.lab.example>"
    assert parsed["List-Unsubscribe"] == (
        f"<{UNSUB}>, <mailto:unsubscribe@lab.example?subject=unsubscribe>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"] == message_id_for(42, EDITION, cfg.email)
    e = cfg.email
    assert message_id_for(42, EDITION, e) == message_id_for(42, EDITION, e)
    assert message_id_for(42, EDITION, e) != message_id_for(43, EDITION, e)
    assert message_id_for(42, EDITION, e) != message_id_for(42, dt.date(2026, 7, 4), e)
    assert message_id_for(42, EDITION, e).endswith("@lab.example>")


def test_notices_without_unsubscribe_have_no_list_unsubscribe() -> None:
    """A confirmation mail carries no List-Unsubscribe (there is nothing to leave yet)."""
    cfg = config()
    renderer = Renderer.from_config(cfg)
    notice = renderer.notice("confirm", to="a@example.org", links={"confirm": UNSUB})
    wire = message_bytes(message(cfg, notice, unsubscribe_url=None, message_id="<c.1@x.org>"))
    assert (
        b"List-Unsubscribe" not in wire and b"Subject: Confirm your paperboy subscription" in wire
    )


def test_non_ascii_subject_is_rfc2047_and_decodes_back() -> None:
    """A Unicode subject goes out as encoded words and reads back unchanged."""
    cfg = config(from_name="Läb ☕ digest")
    rendered = digest(cfg, "Ünïcode 🚀 spiking — a long title that will need folding over lines")
    wire = message_bytes(message(cfg, rendered))
    header = wire.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?b?" in header
    parsed = message_from_bytes(wire, policy=policy.default)
    assert parsed["Subject"] == rendered.subject
    assert parsed["From"].addresses[0].display_name == "Läb ☕ digest"


def test_no_line_over_998_bytes_and_headers_folded() -> None:
    """Every line on the wire is short, the bytes are 7-bit, headers fold before column 78+."""
    cfg = config(unsubscribe_mailto="unsubscribe@lab.example")
    wire = message_bytes(message(cfg, digest(cfg, "x" * 400)))
    assert wire.isascii()
    lines = wire.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    head = wire.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    long = [line for line in head if len(line) > 78]
    assert all(line.startswith(b"List-Unsubscribe: <https://") for line in long)
    assert b"\n" not in wire.replace(b"\r\n", b"")  # no bare LF anywhere


def test_fast_serialisation_equals_the_email_generator() -> None:
    """message_bytes writes exactly what email's generator writes for the same message."""
    cfg = config(reply_to="editor@lab.example", unsubscribe_mailto="u@lab.example")
    renderer = Renderer.from_config(cfg)
    for msg in (
        message(cfg),
        message(cfg, renderer.notice("goodbye", to="a@b.org", links={"home": UNSUB})),
    ):
        assert message_bytes(msg) == msg.as_bytes(policy=POLICY)
    international = message(cfg, to="jörg@bücher.example")
    assert message_bytes(international) == international.as_bytes(policy=POLICY_UTF8)


@pytest.mark.parametrize(
    "field",
    ["subject", "from_name"],
)
def test_cr_lf_in_values_never_reach_a_header(field: str) -> None:
    """CR/LF (and other controls) in a title or the sender name are flattened, not injected."""
    evil = "Hello\r\nBcc: victim@example.org\r\n\r\n<html>injected"
    cfg = config(from_name=evil) if field == "from_name" else config()
    rendered = digest(cfg)
    if field == "subject":
        rendered = rendered.model_copy(update={"subject": evil})
    wire = message_bytes(message(cfg, rendered))
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head
    parsed = message_from_bytes(wire, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed.get_content_type() == "multipart/alternative"


@pytest.mark.parametrize(
    "title",
    [
        "\U0001f469\u200d\U0001f52c Lab notes",  # 👩‍🔬: woman + ZWJ + microscope
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 family-scale models",  # 👨‍👩‍👧
        # Persian "I want models": ZWNJ stops the prefix می and the suffix ها joining the word
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u0645\u062f\u0644\u200c\u0647\u0627",
        # 🏴 + tag letters "gbsct" + cancel tag: the flag of Scotland
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Scottish NLP",
    ],
    ids=["emoji-zwj", "family-zwj", "persian-zwnj", "subdivision-flag"],
)
def test_joiners_in_a_title_reach_the_subject_and_the_sender_name(title: str) -> None:
    """ZWJ, ZWNJ and a subdivision flag's tags are kept in Subject, From and the HTML <title>:
    without them an emoji sequence falls apart into separate pictures, a Persian word changes
    its letters and Scotland's flag becomes a plain black one."""
    cfg = config(from_name=f"{title} digest")
    rendered = digest(cfg, title)
    assert rendered.subject.startswith(f"Fri 3 Jul: {title} 0")
    assert f"<title>{rendered.subject}</title>" in rendered.html
    parsed = message_from_bytes(message_bytes(message(cfg, rendered)), policy=policy.default)
    assert parsed["Subject"] == rendered.subject
    assert parsed["From"].addresses[0].display_name == f"{title} digest"


def test_header_text_still_drops_spoofing_and_invisible_characters() -> None:
    """Bidi overrides and isolates, zero-width spaces, soft hyphens, controls and line breaks
    go; joiners stay, except where they join nothing (at either end)."""
    hostile = "\u200dInvoice\u202e fdp.exe\u202c\u2066 ok\u2069\u200b\u00ad\x07\r\nBcc: x\u200c"
    assert header_text(hostile) == "Invoice fdp.exe ok Bcc: x"
    assert header_text("a\u200db\u200cc") == "a\u200db\u200cc"
    # Tag characters outside a flag are invisible text; a black flag without tags stays.
    assert header_text("a\U000e0041\U000e007fb \U0001f3f4") == "ab \U0001f3f4"
    # Tags spelling something other than a drawn flag are hidden text, and go.
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "ignore") + "\U000e007f"
    assert header_text(f"Hi \U0001f3f4{hidden} there") == "Hi \U0001f3f4 there"


@pytest.mark.parametrize(
    "to",
    [
        "victim@example.org\r\nBcc: all@example.org",
        "a@example.org, b@example.org",
        "Name <a@example.org>",
        "not-an-address",
        "",
    ],
)
def test_a_hostile_recipient_is_refused(to: str) -> None:
    """Anything but exactly one plain address as recipient is a RenderError."""
    cfg = config()
    with pytest.raises(RenderError):
        message(cfg, to=to)


def test_a_non_ascii_local_part_is_kept_in_a_utf8_header() -> None:
    """jörg@example.org is addressed as written (RFC 6532), with no encoded-word or escape;
    in a mailto: URL it is percent-encoded (RFC 6068)."""
    cfg = config(unsubscribe_mailto="désabonner@lab.example")
    wire = message_bytes(message(cfg, to="jörg@example.org"))
    assert "To: jörg@example.org\r\n".encode() in wire
    assert b"<mailto:d%C3%A9sabonner@lab.example?subject=unsubscribe>" in wire
    assert message_from_bytes(wire, policy=policy.default)["To"] == "jörg@example.org"
    with pytest.raises(RenderError, match="invisible"):
        message(config(), to="jo\u200brg@example.org")


def test_idn_domains_are_punycoded() -> None:
    """An internationalised domain goes out in its ASCII form."""
    cfg = config()
    parsed = message_from_bytes(message_bytes(message(cfg, to="a@bücher.example")))
    assert parsed["To"] == "a@xn--bcher-kva.example"


def test_dkim_signature_covers_both_unsubscribe_headers(tmp_path: Path) -> None:
    """With email.dkim_* set the message is signed and verifies, List-Unsubscribe included."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "dkim.pem").write_bytes(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"pb2026._domainkey.lab.example." else None

    cfg = config(
        from_address="papers@lab.example",
        dkim_selector="pb2026",
        dkim_domain="lab.example",
        dkim_private_key_file=tmp_path / "dkim.pem",
    )
    wire = message_bytes(message(cfg))
    assert wire.startswith(b"DKIM-Signature: ")
    assert dkim.verify(wire, dnsfunc=dns)
    signed = dkim.DKIM(wire)
    signed.verify(dnsfunc=dns)
    covered = {name.lower() for name, _ in signed.signed_headers}
    assert {b"list-unsubscribe", b"list-unsubscribe-post", b"from", b"subject"} <= covered
    tampered = wire.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nope"
    )
    assert not dkim.verify(tampered, dnsfunc=dns)
    assert max(len(line) for line in wire.split(b"\r\n")) <= 998


def test_missing_dkim_key_is_a_config_error(tmp_path: Path) -> None:
    """A DKIM key file that cannot be read names the config key."""
    from pipeline.errors import ConfigError

    cfg = config(dkim_selector="s", dkim_domain="lab.example", dkim_private_key_file=tmp_path / "x")
    with pytest.raises(ConfigError, match=r"email\.dkim_private_key_file"):
        message(cfg)


def test_signing_without_a_key_file_is_a_config_error() -> None:
    """dkim_sign called with no key file configured says which key to set (no assert)."""
    from pipeline.errors import ConfigError
    from pipeline.mime import dkim_sign

    cfg = config(dkim_selector="s", dkim_domain="lab.example")
    with pytest.raises(ConfigError, match=r"email\.dkim_private_key_file is not set"):
        dkim_sign(message(cfg), cfg.email)
