"""The topic catalog: the built-in topics.toml merged with config.toml's [topics.<slug>]."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files

from pipeline.config import Topic
from pipeline.errors import MatchError


@dataclass(frozen=True)
class Catalog:
    """Topics by slug, in display order (built-ins first, then the config's new ones)."""

    topics: Mapping[str, Topic] = field(default_factory=dict)

    def __contains__(self, slug: object) -> bool:
        return slug in self.topics

    def __iter__(self) -> Iterator[str]:
        return iter(self.topics)

    def __len__(self) -> int:
        return len(self.topics)

    def __getitem__(self, slug: str) -> Topic:
        return self.topics[slug]

    def check(self, slugs: tuple[str, ...] | list[str]) -> None:
        """Raise MatchError naming the first unknown slug and a few valid ones."""
        for slug in slugs:
            if slug not in self.topics:
                known = ", ".join(list(self.topics)[:6])
                raise MatchError(
                    f"unknown topic {slug!r}; valid ones include {known} "
                    "(`paperboy topics` lists them all)"
                )


@cache
def default_topics() -> dict[str, Topic]:
    """The catalog shipped as package data (``topics.toml`` here), validated like config."""
    text = files(__package__).joinpath("topics.toml").read_text(encoding="utf-8")
    return {slug: Topic.model_validate(body) for slug, body in tomllib.loads(text).items()}


def load_catalog(overrides: Mapping[str, Topic] | None = None) -> Catalog:
    """The default catalog with ``overrides`` applied: a known slug is replaced, a new one added."""
    topics = dict(default_topics())
    topics.update(overrides or {})
    return Catalog(topics)
