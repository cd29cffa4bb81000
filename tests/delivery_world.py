"""Small worlds for email tests: papers, readers, a stand-in matcher and an SMTP-bound config."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pydantic import SecretStr

from pipeline.config import Config, Smtp
from pipeline.models import (
    Dump,
    Paper,
    Profile,
    Reason,
    ScoredPaper,
    Selection,
    Subscriber,
    SubscriberStatus,
)
from pipeline.papers import dump_id
from pipeline.render import DigestLinks, FeedbackLinks
from pipeline.store import Store

NOW = dt.datetime(2026, 7, 3, 8, 0, tzinfo=dt.UTC)  # 08:00 UTC on Friday 3 July 2026
EDITION = dt.date(2026, 7, 3)
BASE = "https://papers.example.org"

ABSTRACT = (
    "We study how event-driven networks of spiking neurons can be trained end to end with "
    "surrogate gradients, and show that a sparse spiking transformer matches a dense baseline "
    "on language modelling while using a fraction of the energy on neuromorphic hardware. "
    "We release code, checkpoints and a benchmark of twelve tasks."
)


def make_paper(i: int, **fields: object) -> Paper:
    data: dict[str, object] = {
        "id": f"2607.{i:05d}",
        "arxiv_id": f"2607.{i:05d}",
        "title": f"Sparse spiking transformers, part {i}: energy-aware language models",
        "abstract": ABSTRACT,
        "authors": ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
        "published": dt.date(2026, 7, 1),
        "upvotes": 200 - i,
        "url": f"https://huggingface.co/papers/2607.{i:05d}",
        "code_url": f"https://github.com/example/spiking-{i}",
        "github_stars": 1200 + i,
        "project_url": f"https://example.org/spiking-{i}",
        "source_format": "hf_api",
    }
    data.update(fields)
    return Paper.model_validate(data)


def scored(papers: Sequence[Paper]) -> tuple[ScoredPaper, ...]:
    return tuple(
        ScoredPaper(
            paper=p,
            score=1.0 - i / 100,
            reasons=(
                Reason(kind="topic", label="Spiking neural networks", terms=("spiking", "SNN")),
                Reason(kind="trending", upvotes=p.upvotes),
            ),
        )
        for i, p in enumerate(papers)
    )


def reader(sid: int = 42, **fields: object) -> Subscriber:
    data: dict[str, object] = {
        "id": sid,
        "email": f"reader{sid}@example.org",
        "status": SubscriberStatus.ACTIVE,
        "created_at": dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        "profile": Profile(topics=("snn", "llm-inference")),
    }
    data.update(fields)
    return Subscriber.model_validate(data)


def links_for(sid: int, paper_ids: Sequence[str]) -> DigestLinks:
    return DigestLinks(
        web=f"{BASE}/e/edition-token-{sid}",
        preferences=f"{BASE}/p/preferences-token-{sid}",
        unsubscribe=f"{BASE}/u/unsubscribe-token-{sid}",
        feedback={
            p: FeedbackLinks(up=f"{BASE}/f/up-{sid}-{p}", down=f"{BASE}/f/down-{sid}-{p}")
            for p in paper_ids
        },
    )


def seed_papers(
    store: Store, n: int = 12, at: dt.datetime = NOW - dt.timedelta(hours=2), start: int = 0
) -> list[Paper]:
    papers = [make_paper(i) for i in range(start, start + n)]
    store.papers.ingest(
        Dump(
            id=dump_id(f"seed-{start}-{n}-{at.isoformat()}".encode()),
            name="seed.json",
            format="hf_api",
            dump_date=at.date(),
            papers=tuple(papers),
        ),
        now=at,
    )
    return papers


def add_readers(store: Store, n: int, **fields: object) -> list[Subscriber]:
    out = []
    for i in range(n):
        out.append(
            store.subscribers.add(
                f"reader{i}@example.org",
                status=SubscriberStatus.ACTIVE,
                profile=Profile(topics=("spiking-neural-networks",), max_papers=3),
                send_hour=7,
                now=NOW - dt.timedelta(days=30),
                **fields,  # type: ignore[arg-type]
            )
        )
    return out


def stub_select(
    subscribers: Sequence[Subscriber],
    papers: Sequence[Paper],
    edition: dt.date,
    sent: Mapping[int, set[str]],
    eligible: Mapping[int, set[str]],
) -> list[Selection]:
    """A stand-in for pipeline.matching.match: the most upvoted eligible, unsent papers."""
    out = []
    for sub in subscribers:
        pool = [
            p for p in papers if p.id in eligible[sub.id] and p.id not in sent.get(sub.id, set())
        ]
        pool.sort(key=lambda p: -p.upvotes)
        top = pool[: sub.profile.max_papers]
        out.append(
            Selection(
                subscriber_id=sub.id,
                edition_date=edition,
                papers=scored(top),
                more_count=len(pool) - len(top),
            )
        )
    return out


def smtp_config(config: Config, port: int, **smtp: object) -> Config:
    """``config`` delivering to 127.0.0.1:``port`` (plain, fast retries unless overridden)."""
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "timeout_seconds": 5.0,
        "rate_per_second": 10_000.0,
        "pool_size": 2,
    }
    settings.update(smtp)
    return config.model_copy(
        update={
            "delivery": config.delivery.model_copy(update={"backend": "smtp"}),
            "smtp": Smtp.model_validate({**config.smtp.model_dump(), **settings}),
            "web": config.web.model_copy(update={"secret_key": SecretStr("s" * 32)}),
        }
    )
