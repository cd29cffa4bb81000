"""Untrusted text made safe to print: one clean line, a header-safe line, an http(s) URL.

Shared by the renderer (every value a template prints) and the message writer (headers), so
neither has to import the other.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from pipeline.errors import RenderError

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_URL_UNSAFE = re.compile(r"[\s<>\"'`\\\x00-\x1f\x7f]")


def one_line(value: str | None, limit: int = 300) -> str:
    """Text as one clean line: control characters dropped, whitespace collapsed, cut at a word."""
    if not value:
        return ""
    cap = limit * 2 + 200  # a 300 KB abstract is cut before it is cleaned, not after
    text = value[:cap]
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if _CONTROLS.search(text):
        text = _CONTROLS.sub("", text)
    text = " ".join(text.split())
    if len(value) > cap and len(text) <= limit:
        return text + "…"
    return cut_words(text, limit)


def cut_words(text: str, limit: int) -> str:
    """``text`` if it fits, else cut at the last word boundary before ``limit``, plus '…'."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—\u200c\u200d") + "…"  # a joiner cut from its pair joins nothing


def header_text(value: str, limit: int = 200) -> str:
    """A header-safe line: no CR/LF or other controls, no invisible format characters
    (bidi overrides that fake a subject, soft hyphens, zero-width spaces), but the joiners
    that emoji sequences (👩‍🔬) and Persian words need, and subdivision flags."""
    text = one_line(value, limit)
    if text.isascii():
        return text
    # Subdivision flags (🏴 + tag letters + cancel tag, e.g. Scotland's) are whole; tag
    # characters anywhere else are invisible and go with the rest.
    pieces, start = [], 0
    for flag in _SUBDIVISION_FLAG.finditer(text):
        pieces += [_visible(text[start : flag.start()]), flag.group()]
        start = flag.end()
    kept = "".join([*pieces, _visible(text[start:])])
    return kept.strip(" " + "".join(_JOINERS))  # a joiner at either end joins nothing


def _visible(text: str) -> str:
    return "".join(c for c in text if c in _JOINERS or unicodedata.category(c) not in INVISIBLE)


INVISIBLE = frozenset(("Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"))
# ZWNJ and ZWJ (both Cf) only say whether neighbouring characters join up; unlike bidi
# overrides they cannot reorder or hide text, so a subject keeps them.
_JOINERS = frozenset("\u200c\u200d")
# The subdivision flags emoji fonts draw (England, Scotland, Wales): 🏴 + tag letters +
# cancel tag. Only these, so a made-up tag run cannot smuggle invisible text into a header.
_SUBDIVISION_FLAG = re.compile(
    "|".join(
        "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in code) + "\U000e007f"
        for code in ("gbeng", "gbsct", "gbwls")
    )
)


def safe_url(value: str | None) -> str | None:
    """``value`` if it is an absolute http(s) URL that is safe in an attribute, else None."""
    if not value:
        return None
    url = value.strip()
    if len(url) > 2048 or _URL_UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def require_url(value: str, what: str) -> str:
    """``value`` if ``safe_url`` accepts it; RenderError naming the link otherwise."""
    url = safe_url(value)
    if url is None:
        raise RenderError(f"the {what} link {value!r} is not an http(s) URL")
    return url
