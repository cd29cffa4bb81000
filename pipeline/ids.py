"""Stable identifiers: paper ids (arXiv id or title hash) and dump ids (sha256 of the bytes)."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# New-style arXiv ids (0704 onwards): YYMM.NNNN or YYMM.NNNNN, optionally with a version.
_ARXIV_ID = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\d])")
_ARXIV_URL = re.compile(
    r"arxiv\.org/(?:abs|pdf|html)/(\d{4}\.\d{4,5})(?:v\d+)?(?:\.pdf)?", re.IGNORECASE
)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def bare_arxiv_id(value: str | None) -> str | None:
    """``2607.01011v2``, ``http://arxiv.org/abs/2607.01011v2`` → ``2607.01011``; else None."""
    if not value:
        return None
    text = value.strip()
    url = _ARXIV_URL.search(text)
    if url:
        return url.group(1)
    match = _ARXIV_ID.fullmatch(text)
    if match:
        return match.group(1)
    return None


def arxiv_id_in_text(text: str) -> str | None:
    """The first arxiv.org/abs|pdf link's id in free text, if any."""
    match = _ARXIV_URL.search(text)
    return match.group(1) if match else None


def normalise_title(title: str) -> str:
    """NFC, casefold, punctuation and whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFC", title).casefold()
    return " ".join(_NON_WORD.sub(" ", text).split())


def title_key(title: str) -> str:
    """``t:`` + the first 16 hex digits of sha1 of the normalised title."""
    digest = hashlib.sha1(normalise_title(title).encode("utf-8")).hexdigest()
    return "t:" + digest[:16]


def paper_id(arxiv_id: str | None, title: str) -> str:
    """The paper id of DESIGN.md: the bare arXiv id when known, else the title key."""
    return arxiv_id if arxiv_id else title_key(title)


def dump_id(data: bytes) -> str:
    """sha256 of the file's bytes: ingesting the same bytes twice is a no-op."""
    return hashlib.sha256(data).hexdigest()
