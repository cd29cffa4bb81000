"""What a 👍 or 👎 teaches paperboy: the voted paper's distinctive terms, kept in the profile.

Pure functions over ``Profile``, ``Paper``, the topic ``Catalog`` and ``TermCounts`` (how many
stored papers contain each term, asked of the store first; see ``terms_to_count``). They live
in the core, not in ``subscribers/``, because the store's migration 0003 relearns every
profile's terms with them; ``subscribers/feedback.py`` applies them to a vote.

What a vote learns (``distinctive_terms``):

1. Candidates, in this order: the paper's keywords; catalog keywords the paper contains;
   phrases of two to four words from its title; such phrases its abstract repeats; and single
   words only when their form makes them names (``KV``, ``NeRF``, ``FlashAttention``). A
   plain single word of a title ("exact", "runs", "paged") is never a term on its own.
2. Form: no stopword or number at either end, no word pieces, not only generic words
   ("model", "framework"). A term is one of the paper's keywords, a catalog keyword whose
   stems its text has in a row, or a phrase exactly as the text writes it.
3. Specific across the store: a term in more than ``MAX_SHARE`` of the papers (and more than
   ``COMMON_FLOOR``) is not distinctive. A title or abstract phrase, or a name, must also be
   *established*, in at least one stored paper besides the voted one, so a one-off run of
   words ("exact runs sharing") is not a term. Keywords and catalog keywords need no second
   paper.
4. At most ``TERMS_PER_PAPER``, none inside another one chosen.

Then ``apply_vote`` takes the reader into account: a 👎 never learns a term that contains, or
is part of, one of the reader's own topics' titles or keywords or interest phrases (a 👎 on a
paper of their field means "not this paper", not "not my field"); a 👍 skips a term that
merely repeats one of them. A term the reader removed (``remove_term``) is kept in
``dismissed_terms`` and never learned again, from the old vote or any new one. Both lists stay
bounded, newest first, so old votes fade out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from pipeline.matching.textproc import ACRONYMS, STOPWORDS, fold, phrases, tokens
from pipeline.matching.topics import Catalog
from pipeline.models import Paper, Profile, TermCounts

MAX_TERMS = 40  # per list
MAX_DISMISSED = 200
TERMS_PER_PAPER = 8
MAX_TERM = 60
MAX_SHARE = 0.05  # a term in more than this share of the stored papers is not distinctive …
COMMON_FLOOR = 3  # … once that is more than this many papers (a small store proves little)
ESTABLISHED = 2  # papers (the voted one included) a title/abstract phrase or name must be in
MAX_ASKED = 48  # candidates counted per vote: one scan of the store, whatever the abstract
PHRASE_WORDS = range(2, 5)

# Words that say nothing about a paper's subject on their own: AI-title filler. They may sit
# inside a keyword ("diffusion model"), but never make a term alone, nor start or end a
# phrase cut from a title or abstract.
_GENERIC_TEXT = """
    large small better fast faster efficient simple scalable robust novel general unified
    approach approaches method methods framework frameworks model models learning learned
    neural network networks deep study analysis benchmark benchmarks towards toward using
    data dataset datasets task tasks system systems results improving improved improves
    based beyond new via vs state-of-the-art end-to-end
"""
GENERIC = frozenset(_GENERIC_TEXT.split())
# A word keeps its hyphens ("sim-to-real", "4-bit"); anything but spaces between two words
# ends a phrase, so a phrase always occurs in the text as written.
_WORD = re.compile(r"[^\W_]+(?:[-‐][^\W_]+)*")
Stems = tuple[str, ...]


@dataclass(frozen=True)
class Candidate:
    """A term a vote might learn, as shown, and what it takes to be kept."""

    text: str
    settled: bool  # a keyword or catalog keyword: needs no second paper


def term_key(term: str) -> str:
    """How terms compare and are counted: casefolded, hyphens as spaces, spaces collapsed."""
    return " ".join(term.casefold().replace("-", " ").replace("‐", " ").split())


def terms_to_count(paper: Paper, catalog: Catalog) -> tuple[str, ...]:
    """The keys (``term_key``) the store should count papers for before ``apply_vote``."""
    return tuple(dict.fromkeys(term_key(c.text) for c in _candidates(paper, catalog)))


def distinctive_terms(paper: Paper, counts: TermCounts, catalog: Catalog) -> tuple[str, ...]:
    """The paper's distinctive terms, best first (rules in the module docstring)."""
    chosen: list[tuple[str, Stems]] = []
    for candidate in _candidates(paper, catalog):
        df = counts.counts.get(term_key(candidate.text), 0)
        if _common(df, counts.papers) or (not candidate.settled and df < ESTABLISHED):
            continue
        stems = _stems(candidate.text)
        if not stems or any(_overlaps(stems, other) for _, other in chosen):
            continue
        chosen.append((candidate.text, stems))
        if len(chosen) == TERMS_PER_PAPER:
            break
    return tuple(text for text, _ in chosen)


def apply_vote(
    profile: Profile, paper: Paper, vote: int, counts: TermCounts, catalog: Catalog
) -> Profile:
    """The profile after a vote of +1 or -1 on ``paper``; voting twice changes nothing more.

    The paper's distinctive terms leave the other list in any case (a changed mind), and join
    this one unless the reader dismissed them or they are the reader's own words.
    """
    if vote not in (1, -1):
        raise ValueError(f"vote must be +1 or -1, not {vote!r}")
    found = distinctive_terms(paper, counts, catalog)
    own = reader_phrases(profile, catalog)
    dismissed = {term_key(t) for t in profile.dismissed_terms}
    learned = [
        t
        for t in found
        if term_key(t) not in dismissed and not _is_readers(_stems(t), own, negative=vote < 0)
    ]
    keys = {term_key(t) for t in found}
    same = profile.liked_terms if vote > 0 else profile.disliked_terms
    other = profile.disliked_terms if vote > 0 else profile.liked_terms
    same = _merge(learned, same)
    other = tuple(t for t in other if term_key(t) not in keys)
    liked, disliked = (same, other) if vote > 0 else (other, same)
    return profile.model_copy(update={"liked_terms": liked, "disliked_terms": disliked})


def relearn(
    profile: Profile,
    votes: Iterable[tuple[Paper, int, TermCounts]],
    catalog: Catalog,
) -> Profile:
    """The profile's learned terms rebuilt from its votes, oldest first; dismissals stay."""
    fresh = profile.model_copy(update={"liked_terms": (), "disliked_terms": ()})
    for paper, vote, counts in votes:
        fresh = apply_vote(fresh, paper, vote, counts, catalog)
    return fresh


def remove_term(profile: Profile, term: str) -> Profile:
    """The profile without ``term`` in either list, and with it dismissed for good.

    A term in neither list changes nothing (a page submitted twice, or from an old tab).
    """
    key = term_key(term)
    liked = tuple(t for t in profile.liked_terms if term_key(t) != key)
    disliked = tuple(t for t in profile.disliked_terms if term_key(t) != key)
    if len(liked) == len(profile.liked_terms) and len(disliked) == len(profile.disliked_terms):
        return profile
    shown = next(t for t in (*profile.liked_terms, *profile.disliked_terms) if term_key(t) == key)
    dismissed = (shown, *(t for t in profile.dismissed_terms if term_key(t) != key))
    return profile.model_copy(
        update={
            "liked_terms": liked,
            "disliked_terms": disliked,
            "dismissed_terms": dismissed[:MAX_DISMISSED],
        }
    )


def reader_phrases(profile: Profile, catalog: Catalog) -> tuple[Stems, ...]:
    """The reader's own words as stem sequences: their topics' titles and keywords, and the
    phrases of their interests."""
    texts: list[str] = []
    for slug in profile.topics:
        if slug in catalog:
            topic = catalog[slug]
            texts += [*phrases(topic.title), *topic.keywords]
    texts += phrases(profile.interests)
    return tuple(s for s in dict.fromkeys(map(_stems, texts)) if s)


# --- candidates -------------------------------------------------------------------------------


def _candidates(paper: Paper, catalog: Catalog) -> list[Candidate]:
    """Every candidate term, in order of preference, at most ``MAX_ASKED``, each key once."""
    out: dict[str, Candidate] = {}
    body = f"{paper.title}\n{paper.abstract}"
    found = [
        *(Candidate(" ".join(k.split()), True) for k in paper.keywords),
        *(Candidate(k, True) for k in _catalog_terms(body, catalog)),
        *(Candidate(p, False) for p in _title_phrases(paper.title)),
        *(Candidate(p, False) for p in _repeated_phrases(paper.title, paper.abstract)),
        *(Candidate(w, False) for w in _names(body)),
    ]
    for candidate in found:
        if _well_formed(candidate.text):
            out.setdefault(term_key(candidate.text), candidate)
    return list(out.values())[:MAX_ASKED]


def _catalog_terms(text: str, catalog: Catalog) -> list[str]:
    """Catalog keywords (of any topic) whose stems occur in ``text`` in a row, the most
    specific (longest) first: "spiking neuron" before "spiking"."""
    runs = _stem_runs(text)
    found: dict[Stems, str] = {}
    for slug in catalog:
        for keyword in catalog[slug].keywords:
            stems = _stems(keyword)
            if stems and stems not in found and any(_contains(run, stems) for run in runs):
                found[stems] = " ".join(keyword.split())
    return [found[s] for s in sorted(found, key=lambda s: -len(s))]


def _title_phrases(title: str) -> Iterator[str]:
    """Every run of two to four words of the title, shortest first."""
    runs = _runs(title)
    for size in PHRASE_WORDS:
        for run in runs:
            for i in range(len(run) - size + 1):
                if _specific_edges(run[i : i + size]):
                    yield _shown(run[i : i + size])


def _repeated_phrases(*texts: str) -> Iterator[str]:
    """Runs of two to four words that ``texts`` use more than once, most used first."""
    seen: dict[str, list[str]] = {}
    for run in (run for text in texts for run in _runs(text)):
        for size in PHRASE_WORDS:
            for i in range(len(run) - size + 1):
                words = run[i : i + size]
                if not _specific_edges(words):
                    continue
                seen.setdefault(term_key(" ".join(words)), []).append(_shown(words))
    repeated = sorted((v for v in seen.values() if len(v) > 1), key=lambda v: -len(v))
    return (v[0] for v in repeated)


def _names(text: str) -> Iterator[str]:
    """Words whose form makes them names: a capital after the first letter (KV, NeRF)."""
    words = _WORD.findall(text)
    # A title in capitals ("EXACT RUNS") says nothing about which words are names.
    shouting = sum(w.isupper() for w in words) * 2 > len(words)
    for word in words if not shouting else ():
        letters = sum(c.isalpha() for c in word)
        # Two capitals are a unit or an initial ("KB", "AI") unless matching knows the acronym.
        if _name_shaped(word) and (letters >= 3 or fold(word) in ACRONYMS):
            yield word


def _name_shaped(word: str) -> bool:
    """A capital after the first letter of a part: "KV", "NeRF", "GPT-4o", not "Long-Context"."""
    return any(c.isupper() for part in re.split(r"[-‐]", word) for c in part[1:])


def _runs(text: str) -> list[list[str]]:
    """The words of ``text`` in runs: punctuation, stopwords and numbers end a run."""
    out: list[list[str]] = []
    run: list[str] = []
    last = 0
    for match in _WORD.finditer(text):
        word = match.group()
        gap = text[last : match.start()]
        if (gap and not gap.isspace()) or not _content(word):
            if len(run) > 1:
                out.append(run)
            run = []
        if _content(word):
            run.append(word)
        last = match.end()
    if len(run) > 1:
        out.append(run)
    return out


def _shown(words: Sequence[str]) -> str:
    """A phrase as the lists show it: lowercase, but names keep their capitals (KV cache)."""
    return " ".join(w if _name_shaped(w) else w.lower() for w in words)


# --- form -------------------------------------------------------------------------------------


def _content(word: str) -> bool:
    """A word that can be part of a term: not a stopword, and a part of two letters or more
    ("4-bit" is a word, "A-B" and "4" are not)."""
    parts = re.split(r"[-‐]", word)
    return any(sum(c.isalpha() for c in p) >= 2 for p in parts) and fold(word) not in STOPWORDS


def _well_formed(term: str) -> bool:
    """Not too long, content words at both ends, and not only generic words."""
    words = _WORD.findall(term)
    if not words or len(term) > MAX_TERM or not (_content(words[0]) and _content(words[-1])):
        return False
    if all(fold(w) in GENERIC for w in words if _content(w)):
        return False
    single = len(words) == 1
    return not single or len(words[0]) >= 3 or words[0].isupper()


def _specific_edges(words: Sequence[str]) -> bool:
    """A phrase cut from running text starts and ends on a telling word ("paged attention",
    not "efficient paged" or "attention model")."""
    return fold(words[0]) not in GENERIC and fold(words[-1]) not in GENERIC


def _common(df: int, papers: int) -> bool:
    return df > max(MAX_SHARE * papers, COMMON_FLOOR)


# --- stems ------------------------------------------------------------------------------------


def _stems(text: str) -> Stems:
    """The stems of a term, as matching reads it (acronyms as their expansions)."""
    return tuple(s for token in tokens(text) for s in token.stems)


def _stem_runs(text: str) -> list[Stems]:
    """The stems of ``text`` per segment (a catalog keyword never spans punctuation)."""
    runs: dict[int, list[str]] = {}
    for token in tokens(text):
        runs.setdefault(token.segment, []).extend(token.stems)
    return [tuple(r) for r in runs.values()]


def _contains(longer: Stems, shorter: Stems) -> bool:
    n = len(shorter)
    return any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))


def _overlaps(a: Stems, b: Stems) -> bool:
    return _contains(a, b) or _contains(b, a)


def _is_readers(stems: Stems, own: Sequence[Stems], *, negative: bool) -> bool:
    """A 👎 avoids any overlap with the reader's words; a 👍 only their exact repetition."""
    if negative:
        return any(_overlaps(stems, o) for o in own)
    return stems in own


def _merge(new: Sequence[str], old: Sequence[str]) -> tuple[str, ...]:
    keys = {term_key(t) for t in new}
    return (*new, *(t for t in old if term_key(t) not in keys))[:MAX_TERMS]
