"""An interest as readers type it → the items it lists, as written (interests.py scores them).

    "Topic: LLM inference - KV cache, speculative decoding (draft models), but not agents"
        ──▶ "LLM inference" | "KV cache" | "speculative decoding (draft models)"

Items are separated by commas, semicolons, line ends, sentence ends, a colon before a space
and dashes between words; by "and"/"or" only between content words that do not form a
catalog phrase. Nothing inside a pair of brackets separates: examples in brackets stay with
the item they explain. What the reader does not want ("but not agents", "except vision",
"not interested in LLMs") is never an item, and framing ("I'd like to read about", "Topics:")
is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from itertools import pairwise

from pipeline.matching.textproc import ACRONYMS, analyze, tokens
from pipeline.matching.topics import default_topics

# Always separators: commas, semicolons, line ends, a sentence's end before a capital or a
# digit ("e.g. diffusion" and "3.5 bit" join), a colon before a space ("LLM inference: KV
# cache"; "2:4 sparsity" joins), a hyphen or en dash with spaces around it ("cheaper - KV
# cache"; "sim-to-real" and "Kullback–Leibler" join) and an em dash.
_HARD = re.compile(r"(?:[,;\n]|[.!?]\s+(?=[A-Z0-9\"“(])|:\s|\s[-–]+\s|\s*—\s*)+")
_CONJUNCTION = re.compile(r"\s+(?:and|or|&)\s+", re.IGNORECASE)
# A full stop after these ends no sentence: "Dr. Smith", "et al. On …", "U.S. Census".
_ABBREVIATIONS = frozenset(
    ("dr", "mr", "mrs", "ms", "prof", "st", "no", "al", "cf", "fig", "jr", "sr", "approx")
)
_WORD_BEFORE = re.compile(r"(\w+)\W*$")

# Where what a reader does not want starts; the piece ends there. Only phrases that say so
# plainly: "LLMs that don't hallucinate" or "robots that do not fall" are subjects, as are
# "whether or not" and "not only/just".
_NEGATION = re.compile(
    r"^\W*not\b(?!-|\s+(?:only|just|necessarily)\b)"
    r"|\b(?:but|and|or)\s+not\b(?!-|\s+(?:only|just|necessarily)\b)"
    r"|\bnot\s+(?:interested|into|keen|looking|a\s+fan)\b"
    r"|\b(?:except|excluding)\b"
    r"|\b(?:do|does)\s+not\s+(?:want|need|care|like)\b"
    r"|\b(?:don|doesn)[’']?t\s+(?:want|need|care|like)\b",
    re.IGNORECASE,
)
_WHETHER = re.compile(r"\bwhether\s*$", re.IGNORECASE)
# A bracketed aside that only excludes: "LLMs (not agents) for code".
_EXCLUDING_ASIDE = re.compile(r"\s*[(\[]\s*(?:not|except|excluding|no)\b[^()\[\]]*[)\]]", re.I)
# Framing before the subject: "I'd like to read about …", "learning more about …" (only when
# nothing but framing precedes it), a leading "e.g.", and a heading such as "Topics:".
_ABOUT = re.compile(r"\b(?:read|reading|learn|learning|hear|hearing)\s+(?:more\s+)?about\b", re.I)
_LEADING_EG = re.compile(r"^\W*(?:e\.\s?g\.|i\.\s?e\.)\s*", re.IGNORECASE)
_HEADING = re.compile(
    r"^[^\w\n]*(?:my\s+|main\s+|research\s+)?"
    r"(?:topics?|keywords?|focus|areas?|fields?|subjects?|interests?|interested\s+in)\s*:\s*",
    re.IGNORECASE | re.MULTILINE,
)
_OPENING = {"(": ")", "[": "]", "{": "}"}
_CLOSING = {"(": ")", "[": "]", "{": "}", '"': '"', "“": "”"}


def _stems(text: str) -> tuple[str, ...]:
    return analyze(text).unigrams


@cache
def catalog_texts() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(slug, stems) of every title and keyword of the shipped catalog, and acronym expansions."""
    out = [
        (slug, _stems(text))
        for slug, topic in default_topics().items()
        for text in (topic.title, *topic.keywords)
    ]
    out += [("", _stems(e)) for expansions in ACRONYMS.values() for e in expansions]
    return tuple((slug, stems) for slug, stems in out if stems)


@cache
def _catalog_pairs() -> frozenset[tuple[str, str]]:
    """Adjacent stem pairs of catalog phrases: "and"/"or" between them joins, not separates."""
    return frozenset(pair for _, stems in catalog_texts() for pair in pairwise(stems))


def _inside_brackets(text: str) -> list[bool]:
    """Per character: inside a pair of brackets that closes on the same line."""
    inside = [False] * len(text)
    stack: list[tuple[int, str]] = []
    for i, char in enumerate(text):
        if char == "\n":
            stack.clear()  # a bracket left open at a line's end explains nothing after it
        elif char in _OPENING:
            stack.append((i, _OPENING[char]))
        elif stack and char == stack[-1][1]:
            start, _ = stack.pop()
            inside[start + 1 : i] = [True] * (i - start - 1)
    return inside


def _split(
    pattern: re.Pattern[str], text: str, keep: Callable[[re.Match[str]], bool] | None = None
) -> tuple[list[str], list[str]]:
    """``text`` cut where ``pattern`` matches outside brackets (and ``keep`` agrees), and the
    separators cut at."""
    inside = _inside_brackets(text)
    parts: list[str] = []
    seps: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        if inside[match.start()] or (keep is not None and not keep(match)):
            continue
        parts.append(text[last : match.start()])
        seps.append(match.group())
        last = match.end()
    parts.append(text[last:])
    return parts, seps


def _ends_sentence(match: re.Match[str]) -> bool:
    """False for a full stop after an abbreviation or a single letter ("U.S.", "Dr.")."""
    if match.group()[0] != ".":
        return True
    word = _WORD_BEFORE.search(match.string[: match.start()])
    return word is None or (len(word.group(1)) > 1 and word.group(1).lower() not in _ABBREVIATIONS)


def _negation_at(piece: str) -> int | None:
    """Where the first plain negation of ``piece`` starts, if any."""
    for match in _NEGATION.finditer(piece):
        if not _WHETHER.search(piece[: match.start()]):
            return match.start()
    return None


def _wanted(piece: str) -> str:
    """``piece`` without what the reader does not want and without framing."""
    piece = _EXCLUDING_ASIDE.sub("", piece)
    cut = _negation_at(piece)
    if cut is not None:
        piece = piece[:cut]
    about = _ABOUT.search(piece)
    if about is not None and not _stems(piece[: about.start()]):
        piece = piece[about.end() :]
    return _LEADING_EG.sub("", piece)


def _split_conjunctions(piece: str) -> list[str]:
    """``piece`` cut at "and"/"or" where both sides carry content and no catalog phrase spans."""
    parts, seps = _split(_CONJUNCTION, piece)
    out = [parts[0]]
    for sep, part in zip(seps, parts[1:], strict=True):
        left, right = _stems(out[-1]), _stems(part)
        joined = bool(left and right) and (left[-1], right[0]) in _catalog_pairs()
        if left and right and not joined:
            out.append(part)
        else:
            out[-1] = out[-1] + sep + part
    return out


def _shown(text: str) -> str:
    """The stretch of ``text`` from its first content word to its last, with the brackets
    and quotes it opened closed again: "(SWE-bench style)" keeps its ")"."""
    found = tokens(text)
    if not found:
        return ""
    start, end = found[0].start, found[-1].end
    shown = text[start:end]
    for opening, closing in _CLOSING.items():
        unclosed = shown.count(opening) - (shown.count(closing) if opening != closing else 0)
        if opening == closing:
            unclosed = shown.count(opening) % 2
        if unclosed > 0 and closing in text[end:]:
            shown += closing * unclosed
    return shown


def split_items(text: str) -> tuple[str, ...]:
    """The alternatives of an interest, as written (framing words dropped), each once."""
    out: list[str] = []
    for piece in _split(_HARD, _HEADING.sub("", text), _ends_sentence)[0]:
        out += [s for s in map(_shown, _split_conjunctions(_wanted(piece))) if s]
    return tuple(dict.fromkeys(out))
