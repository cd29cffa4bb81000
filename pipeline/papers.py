"""Paper identity and merge rules (pure): ids, aliases, which field wins when sightings merge.

A paper's id is its arXiv id without version when any source gives one, else ``t:`` + a hash
of its normalised title (DESIGN.md, "Paper id"). A paper seen again is merged, never
duplicated; a title-keyed paper that learns its arXiv id is re-keyed, and its old id becomes
an alias. The store applies a ``MergePlan``; the rules themselves live here, without SQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.models import Dump, Paper

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


def merge_paper(old: Paper, new: Paper, new_is_newer: bool) -> Paper:
    """One record from two sightings of a paper: fill gaps, union lists, latest upvotes win."""
    data = old.model_dump()
    incoming = new.model_dump()
    for key, value in incoming.items():
        if key in ("id", "upvotes", "source_format"):
            continue
        current = data.get(key)
        if isinstance(value, tuple):
            old_items: tuple[Any, ...] = current or ()
            # Author lists are ordered and complete per source: keep the first full one.
            data[key] = (
                old_items or value
                if key == "authors"
                else (tuple(dict.fromkeys((*old_items, *value))))
            )
        elif current in (None, "") and value not in (None, ""):
            data[key] = value
        elif key == "abstract" and isinstance(value, str) and len(value) > len(current or ""):
            data[key] = value  # a later, fuller abstract beats a clipped one
    if new.arxiv_id and not old.arxiv_id:
        data["id"] = new.id
        data["arxiv_id"] = new.arxiv_id
    data["upvotes"] = new.upvotes if new_is_newer else old.upvotes
    return Paper.model_validate(data)


@dataclass
class MergePlan:
    """What one dump does to the stored papers: the store writes it in one transaction.

    ``papers`` holds every paper known after the merge (stored ones included), ``as_of`` the
    dump date each one's upvote count came from, ``renamed`` the title-keyed ids that learned
    their arXiv id (old → new), ``fresh`` the ids new to the store and ``touched`` every id
    the dump added or changed (fresh ones included).
    """

    papers: dict[str, Paper]
    as_of: dict[str, dt.date | None]
    renamed: dict[str, str] = field(default_factory=dict)
    fresh: set[str] = field(default_factory=set)
    touched: set[str] = field(default_factory=set)

    @property
    def merged(self) -> set[str]:
        """Ids of stored papers this dump changed."""
        return self.touched - self.fresh


def merge_dump(
    stored: Mapping[str, Paper], stored_as_of: Mapping[str, dt.date | None], dump: Dump
) -> MergePlan:
    """Merge a dump's papers into the ``stored`` ones that share an id or a title key.

    Merged in memory first, so a paper listed twice in one dump is one record. Two papers
    with the same normalised title are one paper unless both carry different arXiv ids.
    """
    plan = MergePlan(papers=dict(stored), as_of=dict(stored_as_of))
    by_key: dict[str, str] = {}
    for paper in stored.values():
        by_key.setdefault(title_key(paper.title), paper.id)
    for paper in dump.papers:
        key = title_key(paper.title)
        target = paper.id if paper.id in plan.papers else by_key.get(key)
        if (
            target is not None
            and paper.id != target
            and paper.arxiv_id
            and plan.papers[target].arxiv_id
        ):
            target = None
        if target is None:
            plan.papers[paper.id] = paper
            plan.as_of[paper.id] = dump.dump_date
            by_key.setdefault(key, paper.id)
            plan.fresh.add(paper.id)
            plan.touched.add(paper.id)
            continue
        _merge_into(plan, target, paper, dump.dump_date, key, by_key)
    return plan


def _merge_into(
    plan: MergePlan,
    target: str,
    paper: Paper,
    day: dt.date,
    key: str,
    by_key: dict[str, str],
) -> None:
    """Merge one sighting into the known paper ``target``, re-keying it if it learns an id."""
    seen = plan.as_of.get(target)
    newer = seen is None or day >= seen
    combined = merge_paper(plan.papers[target], paper, newer)
    if newer:
        plan.as_of[target] = day
    if combined.id != target:
        plan.renamed[target] = combined.id
        del plan.papers[target]
        plan.as_of[combined.id] = plan.as_of.pop(target)
        by_key[key] = combined.id
        if target in plan.fresh:
            plan.fresh.discard(target)
            plan.fresh.add(combined.id)
        plan.touched.discard(target)
    plan.papers[combined.id] = combined
    plan.touched.add(combined.id)
