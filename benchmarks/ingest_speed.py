"""How fast dumps are parsed: papers/s, and ratios against plain Python work on the same bytes.

The page parser is timed on a generated 10,000-paper page dump (``parse_dump``: decode, detect,
parse, build frozen Papers) against ``text.splitlines()`` plus one compiled-regex pass over the
same text. The API parser is timed on the same papers as Daily Papers JSON against
``json.loads``. Ratios (how many times slower than the reference) compare across machines.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.config import validate
from pipeline.ingest import parse_dump
from pipeline.store import open_store

DUMP_DATE = dt.date(2026, 7, 3)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TOPICS = (
    "Speculative Decoding",
    "Spiking Neural Networks",
    "Latent Diffusion",
    "Robot Manipulation",
    "Post-Training Quantization",
    "Brain-Computer Interfaces",
    "Mixture-of-Experts Routing",
    "Event Cameras",
    "KV-Cache Compression",
    "Offline Reinforcement Learning",
)
PHRASES = (
    "We propose a method that reduces memory traffic during inference.",
    "Experiments on three benchmarks show consistent gains over strong baselines.",
    "The approach needs no additional training data and runs on commodity hardware.",
    "We analyse failure cases and release an evaluation harness.",
    "Ablations show that each component contributes to the final accuracy.",
    "Our model matches a dense baseline while using a fraction of the energy.",
)
# The reference pass: find every author-count line, as a minimal "parser" would.
REFERENCE_PATTERN = re.compile(r"^\s*• (\d+) authors$", re.MULTILINE)


def make_papers(count: int, seed: int = 20260703) -> list[dict[str, object]]:
    """Deterministic invented papers: title, abstract, byline, date, upvotes."""
    rng = random.Random(seed)
    papers: list[dict[str, object]] = []
    for number in range(count):
        topic = rng.choice(TOPICS)
        abstract = " ".join(rng.choice(PHRASES) for _ in range(rng.randint(5, 12)))
        if number % 7 == 0:
            abstract += f" Code: https://github.com/example-org/project-{number}."
        papers.append(
            {
                "id": f"2607.{number:05d}",
                "title": f"{topic} at Scale, Study {number}: What Really Matters",
                "summary": abstract,
                "authors": rng.randint(1, 30),
                "month": rng.choice(MONTHS),
                "day": rng.randint(1, 28),
                "year": rng.choice((None, 2025, 2026)),
                "upvotes": rng.choice((None, rng.randint(1, 500))),
                "org": number % 5 == 0,
            }
        )
    return papers


def page_dump(papers: list[dict[str, object]]) -> str:
    parts = [
        "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
        "byAK and the research community\n\nJul 3\n\n"
    ]
    for p in papers:
        byline = "ExampleLab Example Lab" if p["org"] else f"  • {p['authors']} authors"
        date = f"{p['month']} {p['day']}" + (f", {p['year']}" if p["year"] else "")
        date += f" {p['upvotes']}" if p["upvotes"] else ""
        parts.append(f"{p['title']}\n\n{p['summary']}\n\n{byline}\n·\n{date}\n\n")
    return "".join(parts)


def api_dump(papers: list[dict[str, object]]) -> str:
    items = [
        {
            "paper": {
                "id": p["id"],
                "title": p["title"],
                "summary": p["summary"],
                "authors": [{"name": f"Author {i}"} for i in range(int(str(p["authors"])))],
                "publishedAt": "2026-07-01T12:00:00.000Z",
                "upvotes": p["upvotes"] or 0,
            },
            "title": p["title"],
            "numComments": 0,
        }
        for p in papers
    ]
    return json.dumps(items)


def best_of(repeat: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs: the least disturbed by the rest of the machine."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def reference_pass(text: str) -> int:
    return len(text.splitlines()) + len(REFERENCE_PATTERN.findall(text))


def run(quick: bool = False) -> dict[str, object]:
    count = 1_000 if quick else 10_000
    repeat = 2 if quick else 3
    papers = make_papers(count)
    page = page_dump(papers).encode()
    api = api_dump(papers).encode()
    for data, name in ((page, "bench_2026-07-03.txt"), (api, "bench_2026-07-03.json")):
        dump = parse_dump(data, name, DUMP_DATE)
        # A fast parser that drops papers would be no result at all.
        assert len(dump.papers) == count and not dump.warnings, (name, dump.warnings[:3])

    page_text = page.decode()
    page_seconds = best_of(repeat, lambda: parse_dump(page, "bench_2026-07-03.txt", DUMP_DATE))
    page_reference = best_of(repeat, lambda: reference_pass(page_text))
    api_seconds = best_of(repeat, lambda: parse_dump(api, "bench_2026-07-03.json", DUMP_DATE))
    api_reference = best_of(repeat, lambda: json.loads(api))
    store_seconds = store_once(page)
    return {
        "papers": count,
        "page_dump_bytes": len(page),
        "page_parse_seconds": round(page_seconds, 4),
        "page_papers_per_second": round(count / page_seconds),
        "page_reference_seconds": round(page_reference, 4),
        "page_ratio_vs_splitlines_and_regex": round(page_seconds / page_reference, 1),
        "api_dump_bytes": len(api),
        "api_parse_seconds": round(api_seconds, 4),
        "api_papers_per_second": round(count / api_seconds),
        "api_reference_seconds": round(api_reference, 4),
        "api_ratio_vs_json_loads": round(api_seconds / api_reference, 1),
        # End to end as the inbox does it: parse, then one transaction into a fresh SQLite file.
        "page_ingest_seconds": round(store_seconds, 4),
        "page_ingest_papers_per_second": round(count / store_seconds),
        "page_ingest_ratio_vs_splitlines_and_regex": round(store_seconds / page_reference, 1),
    }


def store_once(page: bytes) -> float:
    """Seconds to parse the page dump and store it in a new SQLite store (what inbox does)."""
    with tempfile.TemporaryDirectory() as folder:
        config = validate({}, root=Path(folder))
        with open_store(config) as store:
            started = time.perf_counter()
            outcome = store.papers.ingest(parse_dump(page, "bench_2026-07-03.txt", DUMP_DATE))
            elapsed = time.perf_counter() - started
        assert outcome.new == len(parse_dump(page, "bench_2026-07-03.txt", DUMP_DATE).papers)
    return elapsed
