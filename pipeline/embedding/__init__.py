"""Sentence vectors for matching by meaning: the model, the texts it embeds, and the vectors.

The contract every part codes against (the model runner lives in ``model.py``, the store's
table in ``pipeline/store/vectors.py``, the blend in ``pipeline/matching``):

- ``Embedder.embed(texts)`` → float32 array (len(texts), dim), each row L2-normalised, so a
  dot product is the cosine. ``Embedder.name`` names model and precision; a vector is only
  ever compared with vectors of the same name.
- A paper is embedded as ``paper_text(paper)``; ``text_sha`` of that text is stored beside the
  vector, so a merge that changes the text is noticed and the vector re-computed.
- ``Vectors`` is what matching receives: the vectors that exist, by paper id and by interest
  item / topic text. Anything missing is matched lexically, never an error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from pipeline import config
from pipeline.models import Paper, Profile

Vector = np.ndarray[Any, np.dtype[np.float32]]


class ModelUnavailable(RuntimeError):
    """The sentence model cannot be loaded (missing package data or runtime)."""


class Embedder(Protocol):
    """A sentence-embedding model: texts → unit vectors."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> Vector: ...


def paper_text(paper: Paper) -> str:
    """The text a paper is embedded as: its title, then its abstract."""
    title = " ".join(paper.title.split())
    abstract = " ".join(paper.abstract.split())
    return f"{title}. {abstract}" if abstract else title


def text_sha(text: str) -> str:
    """The key a text's vector is stored under (hex sha256 of its UTF-8 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Vectors:
    """The vectors matching may use: one model's, by paper id and by text (item or topic)."""

    model: str
    papers: Mapping[str, Vector] = field(default_factory=dict)
    texts: Mapping[str, Vector] = field(default_factory=dict)


def topic_text(topic: config.Topic) -> str:
    """The text a catalog topic is embedded as: its title, then its keywords.

    Keywords rather than the description: they name what papers on the topic say (compared on
    both evaluation sets, title + keywords ranked slightly better than title + description).
    """
    title = " ".join(topic.title.split())
    keywords = ", ".join(" ".join(k.split()) for k in topic.keywords if k.strip())
    return f"{title}: {keywords}" if keywords else title


def interest_texts(interests: str) -> tuple[str, ...]:
    """The texts an interest is embedded as: each of its items, as the reader wrote it."""
    from pipeline.matching.interests import parse_interest  # the matcher imports this module

    return tuple(dict.fromkeys(item.shown for item in parse_interest(interests) if item.shown))


def profile_texts(profile: Profile, topics: Mapping[str, config.Topic]) -> tuple[str, ...]:
    """Every text of a profile that matching by meaning needs a vector for."""
    out = [topic_text(topics[slug]) for slug in profile.topics if slug in topics]
    out += interest_texts(profile.interests)
    return tuple(dict.fromkeys(out))
