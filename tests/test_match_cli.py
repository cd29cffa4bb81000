"""``paperboy match`` and ``paperboy topics`` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]


def api_item(pid: str, title: str, summary: str, upvotes: int) -> dict[str, object]:
    paper = {
        "id": pid,
        "title": title,
        "summary": summary,
        "upvotes": upvotes,
        "authors": [{"name": "Mira Okafor"}],
        "publishedAt": "2026-07-03T00:00:00.000Z",
    }
    return {"paper": paper, "title": title, "summary": summary}


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """An isolated instance with a weather topic in its config and a three-paper dump."""
    (tmp_path / "config.toml").write_text(
        '[storage]\nurl = "sqlite:///var/paperboy.db"\n'
        '[topics.weather-ml]\ntitle = "Weather ML"\nkeywords = ["nowcasting"]\n',
        encoding="utf-8",
    )
    items = [
        api_item("2607.00001", "Speculative Decoding with Draft Trees",
                 "A draft model proposes tokens for the LLM to verify.", 40),
        api_item("2607.00002", "Evicting the KV Cache under Memory Budgets",
                 "Key-value cache eviction for long-context LLM serving.", 120),
        api_item("2607.00003", "Pancakes in Space", "A cooking story everybody shared.", 900),
    ]  # fmt: skip
    dump = tmp_path / "hf_daily_papers_api_2026-07-03.json"
    dump.write_text(json.dumps(items), encoding="utf-8")
    return tmp_path


def paperboy(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PAPERBOY, "--config", str(folder / "config.toml"), *args],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=60,
        check=False,
    )


def test_match_json_ranks_the_dump_by_score(instance: Path) -> None:
    """--json prints relevant papers only, sorted by score, with reasons and links."""
    dump = str(instance / "hf_daily_papers_api_2026-07-03.json")
    done = paperboy(instance, "match", "--interest", "KV cache, speculative decoding",
                    "--dump", dump, "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["id"] for r in rows] == ["2607.00002", "2607.00001"]
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert rows[0]["reasons"][0] == 'interest: "KV cache"'
    # The same reason as data, as the ledger records it.
    assert rows[0]["reason_data"][0] == {
        "kind": "interest",
        "label": "",
        "terms": ["KV cache"],
        "upvotes": 0,
    }
    assert {"id", "title", "score", "reasons", "url", "upvotes"} <= set(rows[0])


def test_match_ranks_the_store_without_dump(instance: Path) -> None:
    """Without --dump, the papers stored by `paperboy ingest` are ranked."""
    ingested = paperboy(instance, "ingest", str(instance / "hf_daily_papers_api_2026-07-03.json"))
    assert ingested.returncode == 0, ingested.stderr
    done = paperboy(instance, "match", "--interest", "speculative decoding", "--top", "1",
                    "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [r["id"] for r in json.loads(done.stdout)] == ["2607.00001"]


def test_match_table_shows_title_and_reasons(instance: Path) -> None:
    """The human output is a table with the title, the score and why."""
    dump = str(instance / "hf_daily_papers_api_2026-07-03.json")
    done = paperboy(instance, "match", "--author", "mira okafor", "--dump", dump, "--top", "2")
    assert done.returncode == 0, done.stderr
    assert "Pancakes in Space" in done.stdout and "author: Mira Okafor" in done.stdout
    assert "3 of 3 papers matched; showing 2" in done.stdout


def test_unknown_topic_is_a_one_line_usage_error(instance: Path) -> None:
    """An unknown slug exits 2 with one line naming it and valid ones."""
    dump = str(instance / "hf_daily_papers_api_2026-07-03.json")
    done = paperboy(instance, "match", "--topic", "nope", "--dump", dump)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "unknown topic 'nope'" in done.stderr and "llm-inference" in done.stderr


def test_match_without_criteria_is_a_usage_error(instance: Path) -> None:
    """Nothing to match on exits 2 and says which options to give."""
    done = paperboy(instance, "match")
    assert done.returncode == 2
    assert "--interest" in done.stderr


def test_topics_lists_builtins_and_config_topics(instance: Path) -> None:
    """`topics --json` lists the catalog, config topics marked as such."""
    done = paperboy(instance, "topics", "--json")
    assert done.returncode == 0, done.stderr
    topics = {t["slug"]: t for t in json.loads(done.stdout)}
    assert topics["weather-ml"]["source"] == "config"
    assert topics["spiking-neural-networks"]["source"] == "built-in"
    assert len(topics) >= 31


@pytest.mark.parametrize("command", ["match", "topics"])
def test_commands_have_help_with_an_example(instance: Path, command: str) -> None:
    """Each command's help shows an example invocation."""
    done = paperboy(instance, command, "--help")
    assert done.returncode == 0
    assert "Example: paperboy " + command in done.stdout
