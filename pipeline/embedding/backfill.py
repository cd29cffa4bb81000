"""The bounded step that gives papers, interest items and topics their vectors.

    papers lacking a vector (newest first, ≤ limit) ──embed──▶ store.vectors
    catalog topics + active/pending profiles' texts lacking one ──embed──▶ store.vectors

Run every tick of the service, at the end of ``paperboy ingest`` and (for one profile) when a
profile is saved. Each batch is stored as soon as it is computed, so an interrupted step
keeps its work; whatever is left matches lexically until a later step reaches it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

from pipeline import config
from pipeline.embedding import (
    Embedder,
    Vectors,
    interest_texts,
    paper_text,
    profile_texts,
    text_sha,
    topic_text,
)
from pipeline.embedding.runtime import SentenceModel
from pipeline.models import Paper, Profile, SubscriberStatus
from pipeline.store import Store

log = logging.getLogger("paperboy.meaning")

BATCH = 32  # texts per model call: large enough to amortise the call, small enough to stream
TEXTS_PER_PAPER = 8  # interest items and topics are a few words, a paper a few hundred

Progress = Callable[[int, int], None]  # (papers done, papers in this step)


@dataclass(frozen=True, slots=True)
class Backfill:
    """What one step computed: paper vectors and text (interest item, topic) vectors."""

    papers: int = 0
    texts: int = 0


def embed_pending(
    store: Store,
    embedder: Embedder,
    *,
    limit: int,
    topics: Mapping[str, config.Topic] | None = None,
    text_limit: int | None = None,
    on_progress: Progress | None = None,
) -> Backfill:
    """Embed up to ``limit`` papers lacking a vector (newest first), then up to ``text_limit``
    (default ``8 × limit``) texts lacking one: catalog topics first, then the items and topics
    of active and pending subscribers' profiles. ``topics`` is the catalog (default: built-in)."""
    catalog = _catalog(topics)
    papers = embed_papers(
        store, embedder, store.vectors.pending_papers(embedder.name, limit), on_progress
    )
    budget = TEXTS_PER_PAPER * limit if text_limit is None else text_limit
    texts = 0
    wanted = [topic_text(t) for t in catalog.values()]
    for group in _chunked(_profile_texts(store, catalog), 500, first=wanted):
        if texts >= budget:
            break
        missing = store.vectors.missing_texts(embedder.name, group)[: budget - texts]
        texts += embed_texts(store, embedder, missing)
    return Backfill(papers=papers, texts=texts)


def embed_papers(
    store: Store,
    embedder: Embedder,
    papers: Sequence[Paper],
    on_progress: Progress | None = None,
) -> int:
    """Compute and store these papers' vectors, ``BATCH`` at a time; return how many."""
    done = 0
    for start in range(0, len(papers), BATCH):
        batch = papers[start : start + BATCH]
        texts = [paper_text(p) for p in batch]
        vectors = embedder.embed(texts)
        store.vectors.put_papers(
            embedder.name,
            [(p.id, text_sha(t), v) for p, t, v in zip(batch, texts, vectors, strict=True)],
        )
        done += len(batch)
        if on_progress is not None:
            on_progress(done, len(papers))
    return done


def lacking_vectors(store: Store, model: str, ids: Iterable[str]) -> tuple[list[Paper], set[str]]:
    """The stored papers of ``ids`` (an id a paper had before it was re-keyed finds it too)
    without a current vector of ``model``, and which of ``ids`` name a stored paper."""
    wanted = set(ids)
    found = store.papers.by_ids(wanted)
    for old in wanted - set(found):
        paper = store.papers.find(old)
        if paper is not None:
            found[old] = paper
    stored = store.vectors.papers(model, [p.id for p in found.values()])
    lacking: dict[str, Paper] = {}
    for paper in found.values():
        have = stored.get(paper.id)
        if have is None or have[0] != text_sha(paper_text(paper)):
            lacking[paper.id] = paper
    return sorted(lacking.values(), key=lambda p: p.id), set(found)


def embed_texts(store: Store, embedder: Embedder, texts: Sequence[str]) -> int:
    """Compute and store these texts' vectors, ``BATCH`` at a time; return how many."""
    for start in range(0, len(texts), BATCH):
        batch = list(texts[start : start + BATCH])
        vectors = embedder.embed(batch)
        store.vectors.put_texts(embedder.name, dict(zip(batch, vectors, strict=True)))
    return len(texts)


def on_the_fly(
    embedder: Embedder,
    papers: Sequence[Paper],
    texts: Sequence[str],
    *,
    limit: int,
    stored: Vectors | None = None,
) -> Vectors:
    """``stored`` completed in memory: the texts lacking a vector and up to ``limit`` of the
    papers lacking one (in the given order) are embedded now and kept nowhere else. For an
    ad-hoc match, which stores nothing."""
    have_papers = dict(stored.papers) if stored is not None else {}
    have_texts = dict(stored.texts) if stored is not None else {}
    todo = [p for p in papers if p.id not in have_papers][:limit]
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        vectors = embedder.embed([paper_text(p) for p in batch])
        have_papers.update(zip((p.id for p in batch), vectors, strict=True))
    missing = [t for t in dict.fromkeys(texts) if t not in have_texts]
    for start in range(0, len(missing), BATCH):
        chunk = missing[start : start + BATCH]
        have_texts.update(zip(chunk, embedder.embed(chunk), strict=True))
    return Vectors(model=embedder.name, papers=have_papers, texts=have_texts)


def embed_profiles(
    store: Store,
    embedder: Embedder,
    profiles: Iterable[Profile],
    topics: Mapping[str, config.Topic] | None = None,
) -> int:
    """Give these profiles' texts (their topics and interest items) the vectors they lack."""
    catalog = _catalog(topics)
    texts = [t for profile in profiles for t in profile_texts(profile, catalog)]
    return embed_texts(store, embedder, store.vectors.missing_texts(embedder.name, texts))


class ProfileVectors:
    """Called with a profile just saved (``many``: several): gives their texts the vectors
    they lack, at once, when the process has the model (``load``: load it now if need be);
    otherwise, and on any failure, the texts are left for the next tick and the save stands."""

    def __init__(
        self,
        store: Store,
        sentences: SentenceModel,
        meaning: config.Meaning,
        topics: Mapping[str, config.Topic] | None = None,
        *,
        load: bool = False,
    ) -> None:
        self.store = store
        self.sentences = sentences
        self.meaning = meaning
        self.topics = topics
        self.load = load

    def __call__(self, profile: Profile) -> int:
        return self.many([profile])

    def many(self, profiles: Sequence[Profile]) -> int:
        embedder = (
            self.sentences.get(self.meaning) if self.load else self.sentences.loaded(self.meaning)
        )
        if embedder is None:
            return 0
        try:
            return embed_profiles(self.store, embedder, profiles, self.topics)
        except Exception:
            # The profile is saved already; its vectors are an extra the tick will add.
            log.exception("could not embed a saved profile's texts; the next tick will")
            return 0


def _catalog(topics: Mapping[str, config.Topic] | None) -> Mapping[str, config.Topic]:
    if topics is not None:
        return topics
    from pipeline.matching.topics import default_topics

    return default_topics()


def _profile_texts(store: Store, topics: Mapping[str, config.Topic]) -> Iterator[str]:
    """The texts of every active and pending profile, each distinct interest parsed once."""
    seen_interests: set[str] = set()
    seen_topics: set[str] = set()
    for page in store.subscribers.pages([SubscriberStatus.ACTIVE, SubscriberStatus.PENDING]):
        for sub in page:
            for slug in sub.profile.topics:
                if slug in topics and slug not in seen_topics:
                    seen_topics.add(slug)
                    yield topic_text(topics[slug])
            if sub.profile.interests not in seen_interests:
                seen_interests.add(sub.profile.interests)
                yield from interest_texts(sub.profile.interests)


def _chunked(texts: Iterator[str], size: int, first: Sequence[str]) -> Iterator[list[str]]:
    """``first``, then ``texts``, in lists of about ``size`` distinct texts."""
    seen: set[str] = set()
    group: list[str] = []
    for text in chain(first, texts):
        if text in seen:
            continue
        seen.add(text)
        group.append(text)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group
