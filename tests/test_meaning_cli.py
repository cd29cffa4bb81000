"""The CLI with and without the sentence model: `ingest` embeds its dumps' papers after
storing them, `match` embeds an ad-hoc interest on the fly, and a missing model changes
nothing but one warning."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.store import open_store
from tests.conftest import write_config
from tests.test_cli_ingest import make_dumps

PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]
HAS_MODEL = importlib.util.find_spec("pipeline.embedding.model") is not None
INTEREST = "speculative decoding, tidal forecasting"


def paperboy(
    config: Path, *args: str, model_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PAPERBOY_MODEL_DIR"}
    if model_dir is not None:
        env["PAPERBOY_MODEL_DIR"] = str(model_dir)
    return subprocess.run(
        [*PAPERBOY, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_without_the_model_ingest_and_match_work_by_words(tmp_path: Path) -> None:
    """With the model pointed at an empty folder, `ingest` stores every paper (none embedded)
    and `match` ranks by words; each says once why meaning is off."""
    empty = tmp_path / "no-model"
    empty.mkdir()
    config = write_config(tmp_path, "sqlite:///var/paperboy.db")
    files = make_dumps(tmp_path)
    done = paperboy(config, "ingest", *map(str, files), "--json", model_dir=empty)
    assert done.returncode == 0, done.stderr
    papers = json.loads(done.stdout)
    assert papers and not any(p["embedded"] for p in papers)
    assert done.stderr.count("matching by meaning is unavailable") == 1
    with open_store(load_config(config, env={})) as store:
        assert store.papers.count() == 3
        assert store.vectors.counts("all-MiniLM-L6-v2/int8").papers_without == 3

    ranked = paperboy(config, "match", "--interest", INTEREST, "--json", model_dir=empty)
    assert ranked.returncode == 0, ranked.stderr
    titles = [p["title"] for p in json.loads(ranked.stdout)]
    assert "Quantized Draft Models for Speculative Decoding" in titles
    assert ranked.stderr.count("matching by meaning is unavailable") == 1


def test_meaning_off_in_the_config_says_so_and_never_loads(tmp_path: Path) -> None:
    """``meaning.enabled = false``: ingest embeds nothing and reports no model problem."""
    config = write_config(tmp_path, "sqlite:///var/paperboy.db", "[meaning]\nenabled = false\n")
    done = paperboy(config, "ingest", *map(str, make_dumps(tmp_path)), "--json")
    assert done.returncode == 0, done.stderr
    assert not any(p["embedded"] for p in json.loads(done.stdout))
    assert "unavailable" not in done.stderr
    assert "matching by meaning is off" in done.stderr


@pytest.mark.skipif(not HAS_MODEL, reason="the sentence model's runner is not in this checkout")
def test_ingest_embeds_its_papers_and_match_works_on_a_fresh_store(tmp_path: Path) -> None:
    """After `ingest`, every paper of the dumps has a vector (said on stderr, and per paper in
    --json); `match` on the store embeds the ad-hoc interest itself."""
    config = write_config(tmp_path, "sqlite:///var/paperboy.db")
    done = paperboy(config, "ingest", *map(str, make_dumps(tmp_path)), "--json")
    assert done.returncode == 0, done.stderr
    assert all(p["embedded"] for p in json.loads(done.stdout))
    assert "vectors: 3 papers embedded" in done.stderr
    with open_store(load_config(config, env={})) as store:
        counts = store.vectors.counts("all-MiniLM-L6-v2/int8")
        assert (counts.papers_with, counts.papers_without) == (3, 0)
    again = paperboy(config, "ingest", *map(str, make_dumps(tmp_path)), "--json")
    assert "vectors: 0 papers embedded" in again.stderr  # nothing changed, nothing recomputed

    ranked = paperboy(config, "match", "--interest", INTEREST, "--json")
    assert ranked.returncode == 0, ranked.stderr
    titles = [p["title"] for p in json.loads(ranked.stdout)]
    assert "Quantized Draft Models for Speculative Decoding" in titles
