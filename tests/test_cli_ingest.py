"""`paperboy ingest`: parse dumps into the store, or print them as JSON without storing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline.config import load_config
from pipeline.store import open_store
from tests.conftest import write_config
from tests.test_inbox import API, PAGE

PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]
JSON_KEYS = {
    "id",
    "arxiv_id",
    "title",
    "abstract",
    "authors",
    "authors_count",
    "organization",
    "published",
    "upvotes",
    "url",
    "code_url",
    "project_url",
    "keywords",
    "ai_summary",
    "source_format",
}


def paperboy(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PAPERBOY, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def make_dumps(folder: Path) -> list[Path]:
    page = folder / "hf_daily_papers_2026-07-03.txt"
    page.write_text(PAGE, encoding="utf-8")
    api = folder / "daily_2026-07-02.json"
    api.write_text(json.dumps(API), encoding="utf-8")
    return [page, api]


def test_dry_run_json_prints_papers_and_stores_nothing(tmp_path: Path) -> None:
    """--dry-run --json prints every paper with the documented keys; the store stays empty."""
    config = write_config(tmp_path, "sqlite:///var/paperboy.db")
    files = make_dumps(tmp_path)
    result = paperboy(config, "ingest", *map(str, files), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    papers = json.loads(result.stdout)
    assert len(papers) == 3
    assert all(set(p) >= JSON_KEYS for p in papers)
    by_title = {p["title"]: p for p in papers}
    tides = by_title["Tidal Forecasting with Neural Operators"]
    assert tides["organization"] == "Example Lab"
    assert tides["published"] == "2026-06-30"
    assert tides["code_url"] == "https://github.com/example-org/tides"
    assert by_title["Quantized Draft Models for Speculative Decoding"]["arxiv_id"] == "2607.07001"
    with open_store(load_config(config, env={})) as store:
        assert store.papers.count() == 0


def test_ingest_stores_and_summarises_per_file(tmp_path: Path) -> None:
    """Without --json, a per-file summary of new / merged / skipped papers is printed."""
    config = write_config(tmp_path, "sqlite:///var/paperboy.db")
    files = make_dumps(tmp_path)
    result = paperboy(config, "ingest", *map(str, files))
    assert result.returncode == 0, result.stderr
    assert "hf_daily_papers_2026-07-03.txt" in result.stdout
    with open_store(load_config(config, env={})) as store:
        assert store.papers.count() == 3
    again = paperboy(config, "ingest", str(files[0]))
    assert "already ingested" in again.stdout


def test_a_bad_file_exits_1_and_the_good_ones_are_stored(tmp_path: Path) -> None:
    """One unreadable dump is reported in one line and exit 1; the others still go in."""
    config = write_config(tmp_path, "sqlite:///var/paperboy.db")
    good, _ = make_dumps(tmp_path)
    bad = tmp_path / "broken_2026-07-02.json"
    bad.write_text('[{"paper": ', encoding="utf-8")
    missing = tmp_path / "missing.txt"
    result = paperboy(config, "ingest", str(good), str(bad), str(missing))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("paperboy: error:")]
    assert len(errors) == 2
    assert "broken_2026-07-02.json" in errors[0] and "missing.txt" in errors[1]
    with open_store(load_config(config, env={})) as store:
        assert store.papers.count() == 2


def test_date_option_resolves_year_less_dates(tmp_path: Path) -> None:
    """--date dates a dump whose file name has no date; 'Jun 30' resolves against it."""
    config = write_config(tmp_path, "sqlite:///var/paperboy.db")
    page = tmp_path / "page.txt"
    page.write_text(PAGE, encoding="utf-8")
    result = paperboy(config, "ingest", str(page), "--date", "2027-01-05", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    dates = {p["title"]: p["published"] for p in json.loads(result.stdout)}
    assert dates["Tidal Forecasting with Neural Operators"] == "2026-06-30"
    bad = paperboy(config, "ingest", str(page), "--date", "05/01/2027")
    assert bad.returncode == 2
