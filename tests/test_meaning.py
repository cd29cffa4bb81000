"""Vectors get computed in bounded steps outside ingest, reach matching, and their absence
(meaning off, or the model unavailable) leaves everything working by words, said once."""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline.config import Config, load_config
from pipeline.editions import match_selector
from pipeline.embedding import (
    Embedder,
    ModelUnavailable,
    Vectors,
    interest_texts,
    paper_text,
    profile_texts,
    text_sha,
    topic_text,
)
from pipeline.embedding.backfill import BATCH, ProfileVectors, embed_pending, on_the_fly
from pipeline.embedding.runtime import SentenceModel
from pipeline.errors import ConfigError
from pipeline.matching.topics import load_catalog
from pipeline.models import Paper, Profile, SubscriberStatus
from pipeline.run import deliver_due, embed_step
from pipeline.store import Store, open_store
from tests.conftest import write_config
from tests.hash_embedder import HashEmbedder
from tests.test_store import dump, paper

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

NOW = dt.datetime(2026, 7, 3, 6, 0, tzinfo=dt.UTC)
CATALOG = load_catalog().topics


def unavailable() -> Embedder:
    raise ModelUnavailable("no model.onnx in /nowhere")


def loaded(embedder: Embedder) -> SentenceModel:
    model = SentenceModel(lambda: embedder)
    model.get(Config().meaning)
    return model


def seed(store: Store, n: int) -> list[Paper]:
    papers = [paper(f"2607.{i:05d}", f"Paper number {i} on spiking networks") for i in range(n)]
    store.papers.ingest(dump("seed.json", dt.date(2026, 7, 3), *papers), NOW)
    return papers


# --- the bounded step -------------------------------------------------------------------------


def test_embed_pending_is_bounded_batched_and_finishes(store: Store) -> None:
    """Each step embeds at most ``limit`` papers in batches of ``BATCH``; repeated steps
    reach every paper once, and a step with nothing left computes nothing."""
    seed(store, BATCH + 8)
    model = HashEmbedder()
    first = embed_pending(store, model, limit=BATCH + 4, topics={})
    assert first.papers == BATCH + 4
    assert model.calls[:2] == [BATCH, 4]
    second = embed_pending(store, model, limit=BATCH + 4, topics={})
    assert second.papers == 4
    assert embed_pending(store, model, limit=100, topics={}).papers == 0
    counts = store.vectors.counts(model.name)
    assert (counts.papers_with, counts.papers_without) == (BATCH + 8, 0)
    stored = store.papers.get("2607.00003")
    assert stored is not None
    sha, _ = store.vectors.papers(model.name, [stored.id])[stored.id]
    assert sha == text_sha(paper_text(stored))


def test_embed_pending_gives_topics_and_live_profiles_their_texts(store: Store) -> None:
    """Catalog topics and the texts of active and pending profiles get vectors, once each;
    an unsubscribed reader's interests do not."""
    profile = Profile(topics=("llm-inference",), interests="KV cache, speculative decoding")
    store.subscribers.add("a@example.org", profile=profile, status=SubscriberStatus.ACTIVE)
    store.subscribers.add(
        "b@example.org", profile=Profile(interests="hearing aids"), status=SubscriberStatus.PENDING
    )
    store.subscribers.add(
        "c@example.org",
        profile=Profile(interests="tidal forecasting"),
        status=SubscriberStatus.UNSUBSCRIBED,
    )
    model = HashEmbedder()
    done = embed_pending(store, model, limit=10, topics=CATALOG)
    wanted = [topic_text(t) for t in CATALOG.values()]
    wanted += [*interest_texts("KV cache, speculative decoding"), "hearing aids"]
    assert done.texts == len(set(wanted))
    assert set(store.vectors.texts(model.name, wanted)) == set(wanted)
    assert store.vectors.texts(model.name, ["tidal forecasting"]) == {}
    assert embed_pending(store, model, limit=10, topics=CATALOG).texts == 0


def test_texts_per_step_are_bounded_too(store: Store) -> None:
    """``text_limit`` caps the texts of one step; the next step goes on where it stopped."""
    model = HashEmbedder()
    assert embed_pending(store, model, limit=1, topics=CATALOG, text_limit=5).texts == 5
    assert embed_pending(store, model, limit=1, topics=CATALOG, text_limit=5).texts == 5
    assert store.vectors.counts(model.name).texts == 10


def test_on_the_fly_fills_in_memory_only(store: Store) -> None:
    """An ad-hoc match embeds its texts and the papers lacking a vector, bounded, storing
    nothing."""
    papers = seed(store, 5)
    model = HashEmbedder()
    stored = Vectors(model=model.name, papers={papers[0].id: model.embed(["x"])[0]})
    got = on_the_fly(model, papers, ["speculative decoding"], limit=2, stored=stored)
    assert set(got.papers) == {p.id for p in papers[:3]}
    assert set(got.texts) == {"speculative decoding"}
    assert store.vectors.counts(model.name).papers_with == 0


# --- matching receives them -------------------------------------------------------------------


def test_the_selector_loads_vectors_for_the_papers_and_the_readers_texts(store: Store) -> None:
    """The select step asks for the vectors of exactly its papers and the due readers' texts
    (topics and interest items), and matching still selects with them."""
    papers = seed(store, 3)
    subs = [
        store.subscribers.add(
            "a@example.org",
            profile=Profile(topics=("llm-inference",), interests="spiking networks, SNN"),
            status=SubscriberStatus.ACTIVE,
        )
    ]
    asked: list[tuple[list[str], list[str]]] = []

    def source(ps: Sequence[Paper], texts: Sequence[str]) -> Vectors:
        asked.append(([p.id for p in ps], list(texts)))
        return Vectors(model="m")

    select = match_selector(Config().match, {}, source)
    (selection,) = select(subs, papers, NOW.date(), {}, {subs[0].id: {p.id for p in papers}})
    assert selection.papers  # lexical matching still picks the spiking papers
    ((ids, texts),) = asked
    assert ids == [p.id for p in papers]
    assert sorted(texts) == sorted(profile_texts(subs[0].profile, CATALOG))


# --- saving a profile -------------------------------------------------------------------------


def test_a_saved_profile_gets_its_vectors_when_the_model_is_loaded(store: Store) -> None:
    """With the model loaded, a saved profile's texts get vectors at once; without it they
    wait for the tick, and the save stands either way."""
    profile = Profile(topics=("llm-inference",), interests="KV cache; quantization")
    texts = profile_texts(profile, CATALOG)
    meaning = Config().meaning
    cold = ProfileVectors(store, SentenceModel(HashEmbedder), meaning, CATALOG)
    assert cold(profile) == 0
    model = HashEmbedder()
    warm = ProfileVectors(store, loaded(model), meaning, CATALOG)
    assert warm(profile) == len(texts)
    assert set(store.vectors.texts(model.name, texts)) == set(texts)
    assert warm(profile) == 0


def test_confirming_on_the_web_embeds_the_readers_texts(tmp_path: Path, backend_url: str) -> None:
    """Signing up and confirming on the web app gives the reader's interests their vectors
    when the process has the model, and /healthz counts them."""
    from subscribers.web import create_app
    from tests.test_web import Site, config_text, link, text_of

    config = load_config(write_config(tmp_path, backend_url, config_text()), env={})
    model = HashEmbedder()
    app = create_app(config, sentences=loaded(model))
    with TestClient(app, follow_redirects=False) as client, open_store(config) as store:
        site = Site(config, client, store)
        site.signup("reader@example.org", interests="KV cache, hearing aids")
        (mail,) = [m for m in site.mails() if "/c/" in text_of(m)]
        assert client.post(link(mail, "c")).status_code == 200
        assert site.sub("reader@example.org").status == SubscriberStatus.ACTIVE
        texts = ["KV cache", "hearing aids"]
        assert set(store.vectors.texts(model.name, texts)) == set(texts)
        health = client.get("/healthz").json()
    assert health["meaning"] == "on"
    assert health["vectors"] == {
        "model": model.name,
        "papers_with": 0,
        "papers_without": 0,
        "texts": health["vectors"]["texts"],
    }
    assert health["vectors"]["texts"] >= 2


# --- the fallback -----------------------------------------------------------------------------


def test_an_unavailable_model_is_one_warning_and_lexical_delivery(
    instance: Config, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """With the model unavailable, every tick and every send still works, by words: the log
    says so once per process, not once per tick, and the status names the reason."""
    from tests.delivery_world import NOW as SEND_TIME
    from tests.delivery_world import add_readers, seed_papers

    seed_papers(store)
    add_readers(store, 2)
    model = SentenceModel(unavailable)
    with caplog.at_level(logging.WARNING, logger="paperboy.meaning"):
        assert embed_step(instance, store, model=model) is None
        assert embed_step(instance, store, model=model) is None
        tally = deliver_due(instance, SEND_TIME, store=store, model=model)
    assert tally.sent == 2 and tally.failed == 0
    said = [r for r in caplog.records if r.name == "paperboy.meaning"]
    assert len(said) == 1 and "no model.onnx in /nowhere" in said[0].getMessage()
    assert model.status(instance.meaning) == "unavailable: no model.onnx in /nowhere"


def test_a_send_with_the_model_matches_with_the_stored_vectors(
    instance: Config, store: Store
) -> None:
    """With the model loaded, the tick embeds papers and texts and the send uses them."""
    from tests.delivery_world import NOW as SEND_TIME
    from tests.delivery_world import add_readers, seed_papers

    seed_papers(store)
    add_readers(store, 2)
    model = loaded(HashEmbedder())
    done = embed_step(instance, store, model=model)
    assert done is not None and done.papers == 12 and done.texts > 0
    tally = deliver_due(instance, SEND_TIME, store=store, model=model)
    assert tally.sent == 2 and tally.failed == 0


def test_meaning_off_in_the_config_never_loads_the_model(instance: Config, store: Store) -> None:
    """``meaning.enabled = false``: the loader is never called, the status says "off (config)"."""
    calls: list[int] = []

    def loader() -> Embedder:
        calls.append(1)
        return HashEmbedder()

    off = instance.model_copy(
        update={"meaning": instance.meaning.model_copy(update={"enabled": False})}
    )
    model = SentenceModel(loader)
    assert embed_step(off, store, model=model) is None
    assert model.status(off.meaning) == "off (config)"
    assert calls == []


def test_the_health_status_names_an_unavailable_model(tmp_path: Path) -> None:
    """/healthz says why matching is lexical, is degraded for it, and has no vector counts
    then."""
    from subscribers.web import create_app

    config = load_config(write_config(tmp_path, "sqlite:///var/paperboy.db"), env={})
    app = create_app(config, sentences=SentenceModel(unavailable))
    with TestClient(app) as client:
        body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    [reason] = body["reasons"]
    assert reason["name"] == "matching"
    assert reason["reason"] == (
        "matching fell back to lexical: the sentence model is "
        "unavailable: no model.onnx in /nowhere"
    )
    assert body["meaning"] == "unavailable: no model.onnx in /nowhere"
    assert body["vectors"] is None


def test_a_step_with_the_model_embeds_per_tick_papers(instance: Config, store: Store) -> None:
    """The service's step embeds ``meaning.per_tick`` papers per tick."""
    seed(store, 5)
    config = instance.model_copy(
        update={"meaning": instance.meaning.model_copy(update={"per_tick": 3})}
    )
    model = HashEmbedder()
    done = embed_step(config, store, model=loaded(model))
    assert done is not None and done.papers == 3


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[meaning]\nper_tick = 0\n", "meaning.per_tick = 0"),
        ('[meaning]\nenabled = "maybe"\n', "meaning.enabled = 'maybe'"),
        ("[meaning]\nweight = 0.5\n", "meaning.weight: unknown key"),
    ],
)
def test_bad_meaning_values_are_named_with_an_example(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value).startswith(key)
    if "unknown" not in key:
        assert "example:" in str(caught.value)
