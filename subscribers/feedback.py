"""What a 👍 or 👎 teaches paperboy: terms of the voted paper, kept in the voter's profile.

Pure functions over ``Profile`` and ``Paper``: a vote moves the paper's keywords and the
telling words of its title to the front of ``liked_terms`` (or ``disliked_terms``) and out of
the other list. Both lists are bounded, newest first, so old votes fade out.
"""

from __future__ import annotations

import re

from pipeline.models import Paper, Profile

MAX_TERMS = 40  # per list
TERMS_PER_PAPER = 8
MAX_TERM = 60

# Words that say nothing about a paper's subject: English glue and AI-title filler.
_STOP_TEXT = """
    a an and are as at be by can do does for from how in into is it its of on or our over than
    that the their this to toward towards under via vs what when where which while who why with
    without you your we all any more most new not only one two using use based beyond through
    between across via large small better fast faster efficient simple scalable robust
    approach approaches method methods framework frameworks model models learning learned
    neural network networks deep towards study analysis paper benchmark benchmarks
    data dataset datasets task tasks system systems results improving improved improves
"""
STOPWORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"[^\W_][\w\-]*[^\W_]|[^\W_]", re.UNICODE)


def paper_terms(paper: Paper, limit: int = TERMS_PER_PAPER) -> tuple[str, ...]:
    """The paper's keywords, then its title's telling words; lowercase, no duplicates."""
    out: dict[str, None] = {}
    for keyword in paper.keywords:
        term = " ".join(keyword.split()).casefold()
        if term and len(term) <= MAX_TERM and term not in STOPWORDS:
            out.setdefault(term, None)
    for word in _WORD.findall(paper.title):
        term = word.casefold()
        if len(term) >= 3 and len(term) <= MAX_TERM and term not in STOPWORDS:
            out.setdefault(term, None)
    return tuple(out)[:limit]


def apply_vote(profile: Profile, paper: Paper, vote: int) -> Profile:
    """The profile after a vote of +1 or -1 on ``paper``; voting twice changes nothing more."""
    if vote not in (1, -1):
        raise ValueError(f"vote must be +1 or -1, not {vote!r}")
    terms = paper_terms(paper)
    chosen = set(terms)
    same = profile.liked_terms if vote > 0 else profile.disliked_terms
    other = profile.disliked_terms if vote > 0 else profile.liked_terms
    same = (*terms, *(t for t in same if t not in chosen))[:MAX_TERMS]
    other = tuple(t for t in other if t not in chosen)
    liked, disliked = (same, other) if vote > 0 else (other, same)
    return profile.model_copy(update={"liked_terms": liked, "disliked_terms": disliked})
