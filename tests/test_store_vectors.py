"""The store keeps sentence vectors of papers and texts, per model, on SQLite and PostgreSQL,
and forgets a paper's vectors when a merge changes the text they were computed from."""

from __future__ import annotations

import datetime as dt

import numpy as np

from pipeline.embedding import paper_text, text_sha
from pipeline.store import Store
from tests.test_store import DAY1, DAY2, NOW, dump, paper

M = "test-model"


def vec(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_paper_vectors_round_trip_as_float32_with_their_text_sha(store: Store) -> None:
    """A stored vector comes back bit for bit, with the sha it was stored under."""
    v = np.random.default_rng(1).standard_normal(384).astype(np.float32)
    store.vectors.put_papers(M, [("2607.01011", "a" * 64, v)])
    got = store.vectors.papers(M, ["2607.01011", "2607.09999"])
    assert set(got) == {"2607.01011"}
    sha, back = got["2607.01011"]
    assert sha == "a" * 64 and back.dtype == np.float32
    assert np.array_equal(back, v)


def test_putting_a_paper_vector_again_replaces_it(store: Store) -> None:
    """One row per (paper, model): a recomputed vector replaces the old one, other models stay."""
    store.vectors.put_papers(M, [("p1", "a" * 64, vec(1, 0))])
    store.vectors.put_papers("other", [("p1", "c" * 64, vec(0, 0, 1))])
    store.vectors.put_papers(M, [("p1", "b" * 64, vec(0, 1))])
    sha, back = store.vectors.papers(M, ["p1"])["p1"]
    assert sha == "b" * 64 and back.tolist() == [0.0, 1.0]
    assert store.vectors.papers("other", ["p1"])["p1"][0] == "c" * 64


def test_text_vectors_are_found_by_text(store: Store) -> None:
    """Texts are stored under their sha and found by the text itself."""
    store.vectors.put_texts(M, {"speculative decoding": vec(1, 0), "KV cache": vec(0, 1)})
    store.vectors.put_texts(M, {"KV cache": vec(0.5, 0.5)})
    got = store.vectors.texts(M, ["KV cache", "quantization", "KV cache"])
    assert set(got) == {"KV cache"} and got["KV cache"].tolist() == [0.5, 0.5]
    assert store.vectors.missing_texts(M, ["quantization", "KV cache", "quantization"]) == [
        "quantization"
    ]
    assert store.vectors.texts("other", ["KV cache"]) == {}


def test_pending_papers_are_those_without_a_vector_newest_first_and_bounded(store: Store) -> None:
    """Papers lacking a vector of the model come newest first, at most ``limit`` of them."""
    store.papers.ingest(dump("old.json", DAY1, paper("2607.00001", "Old paper")), NOW)
    later = NOW + dt.timedelta(hours=1)
    store.papers.ingest(
        dump("new.json", DAY2, paper("2607.00002", "New paper"), paper("2607.00003", "Third")),
        later,
    )
    assert [p.id for p in store.vectors.pending_papers(M, 10)] == [
        "2607.00002",
        "2607.00003",
        "2607.00001",
    ]
    assert len(store.vectors.pending_papers(M, 2)) == 2
    assert store.vectors.pending_papers(M, 0) == []
    store.vectors.put_papers(M, [("2607.00002", "x" * 64, vec(1))])
    assert [p.id for p in store.vectors.pending_papers(M, 10)] == ["2607.00003", "2607.00001"]
    assert len(store.vectors.pending_papers("other", 10)) == 3
    counts = store.vectors.counts(M)
    assert (counts.papers_with, counts.papers_without, counts.texts) == (1, 2, 0)


def test_a_merge_that_changes_the_embedded_text_drops_the_papers_vectors(store: Store) -> None:
    """A later, fuller abstract changes what the paper is embedded as: its vectors go in the
    ingest transaction and the paper is pending again; a merge that only changes upvotes
    keeps them."""
    short = paper("2607.01011", "Spiking Transformers", abstract="Short.", upvotes=3)
    store.papers.ingest(dump("a.json", DAY1, short), NOW)
    stored = store.papers.get("2607.01011")
    assert stored is not None
    store.vectors.put_papers(M, [(stored.id, text_sha(paper_text(stored)), vec(1, 0))])
    assert store.vectors.pending_papers(M, 10) == []

    more_votes = paper("2607.01011", "Spiking Transformers", abstract="Short.", upvotes=9)
    store.papers.ingest(dump("b.json", DAY2, more_votes), NOW)
    assert store.vectors.pending_papers(M, 10) == []

    fuller = paper("2607.01011", "Spiking Transformers", abstract="A much longer abstract.")
    store.papers.ingest(dump("c.json", DAY2, fuller), NOW)
    assert [p.id for p in store.vectors.pending_papers(M, 10)] == ["2607.01011"]
    assert store.vectors.papers(M, ["2607.01011"]) == {}


def test_a_re_keyed_paper_keeps_its_vectors_under_its_new_id(store: Store) -> None:
    """A title-keyed paper that learns its arXiv id (same text) keeps its vector."""
    page = paper(None, "Graph Diffusion Priors", source_format="hf_page")
    store.papers.ingest(dump("page.txt", DAY1, page, fmt="hf_page"), NOW)
    store.vectors.put_papers(M, [(page.id, text_sha(paper_text(page)), vec(0, 1))])
    api = paper("2607.04444", "Graph Diffusion Priors")
    store.papers.ingest(dump("api.json", DAY2, api), NOW)
    assert store.vectors.papers(M, [page.id]) == {}
    assert set(store.vectors.papers(M, ["2607.04444"])) == {"2607.04444"}
    assert store.vectors.pending_papers(M, 10) == []


def test_for_matching_returns_what_exists_and_skips_stale_paper_vectors(store: Store) -> None:
    """Matching gets current paper vectors and the texts' vectors; a vector computed from
    another text than the paper's now, or of another model, is left out."""
    a = paper("2607.00001", "Alpha")
    b = paper("2607.00002", "Beta")
    c = paper("2607.00003", "Gamma")
    store.vectors.put_papers(
        M,
        [
            (a.id, text_sha(paper_text(a)), vec(1, 0)),
            (b.id, text_sha("what Beta used to say"), vec(0, 1)),
        ],
    )
    store.vectors.put_texts(M, {"topic text": vec(1, 1)})
    got = store.vectors.for_matching(M, [a, b, c], ["topic text", "unknown"])
    assert got.model == M
    assert set(got.papers) == {a.id}
    assert set(got.texts) == {"topic text"}
    assert store.vectors.for_matching("other", [a], ["topic text"]).papers == {}
