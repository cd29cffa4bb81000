"""Email cost: render + MIME per digest, and digests/s end to end into Postfix's smtp-sink.

    render+MIME  Renderer.digest + build_message + message_bytes for 10-paper digests drawn
                 from the evaluation papers (links, abstracts, authors as in real dumps):
                 median and p95 in ms (targets: ≤ 1 ms median, ≤ 2 ms p95); links are
                 pre-made, and signing them is its own figure (sign_links_median_ms)
    end to end   ``run.deliver_due`` on a fresh SQLite instance: due subscribers → match →
                 render → queue → claim → SMTP (pool of 16) → mark sent, into smtp-sink
    reference    Postfix's C client ``smtp-source -d -s 16`` sending messages of the same
                 size to the same sink in the same run; the figure is the ratio to it

smtp-sink and smtp-source come from Debian's ``postfix`` package (the Postfix daemon is never
started); both run on loopback on a free high port and the sink is stopped by its PID.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks.evalsets import load_synthetic
from pipeline.config import Config, load_config
from pipeline.ledger import digest_links
from pipeline.links import Links
from pipeline.matching.topics import load_catalog
from pipeline.mime import build_message, message_bytes, message_id_for
from pipeline.models import (
    Paper,
    Profile,
    Reason,
    ScoredPaper,
    Selection,
    Subscriber,
    SubscriberStatus,
)
from pipeline.render import DigestLinks, FeedbackLinks, Renderer
from pipeline.store import open_store
from pipeline.tokens import Tokens

SEED = 20260703
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
NOW = dt.datetime(2026, 7, 3, 8, 0, tzinfo=dt.UTC)
BASE = "https://papers.example.org"
TOKEN = "eyJzIjo0MjQyLCJwIjoiMjYwNy4wMTAxMSIsInYiOjF9.ZoXnYg.q3v9p5tWc2x8Jk1LmN0oPq7RsT4"


def paper_pool() -> list[Paper]:
    """The evaluation papers, with the links and counts a Daily Papers dump carries."""
    rng = random.Random(SEED)
    papers = load_synthetic().papers
    out = []
    for i, p in enumerate(papers):
        arxiv = p.arxiv_id or f"2607.{10000 + i}"
        out.append(
            p.model_copy(
                update={
                    "id": arxiv,
                    "arxiv_id": arxiv,
                    "url": f"https://huggingface.co/papers/{arxiv}",
                    "code_url": f"https://github.com/example/{arxiv}" if i % 2 else None,
                    "github_stars": rng.randint(10, 5000) if i % 2 else None,
                    "project_url": f"https://example.org/{arxiv}" if i % 3 == 0 else None,
                    "upvotes": rng.randint(0, 300),
                    "published": dt.date(2026, 7, 1),
                    "authors": p.authors or ("Ada Lovelace", "Alan Turing", "Grace Hopper"),
                }
            )
        )
    return out


def fake_links(sid: int, paper_ids: Sequence[str]) -> DigestLinks:
    """Links as long as real signed ones, without the signing (not part of this figure)."""
    return DigestLinks(
        web=f"{BASE}/e/{TOKEN}{sid}",
        preferences=f"{BASE}/p/{TOKEN}{sid}",
        unsubscribe=f"{BASE}/u/{TOKEN}{sid}",
        feedback={
            p: FeedbackLinks(up=f"{BASE}/f/{TOKEN}{sid}u{p}", down=f"{BASE}/f/{TOKEN}{sid}d{p}")
            for p in paper_ids
        },
    )


def render_mime(papers: Sequence[Paper], count: int) -> dict[str, float]:
    """Per-digest milliseconds for render + MIME (+ wire bytes), after a warm-up."""
    config = Config()
    renderer = Renderer.from_config(config)
    rng = random.Random(SEED)
    reasons = (
        Reason(kind="topic", label="Spiking neural networks", terms=("spiking", "SNN")),
        Reason(kind="trending", upvotes=131),
    )
    timings: list[float] = []
    html_sizes: list[int] = []
    wire_sizes: list[int] = []
    for i in range(count + 50):
        picked = rng.sample(list(papers), 10)
        sid = 1000 + i
        selection = Selection(
            subscriber_id=sid,
            edition_date=NOW.date(),
            papers=tuple(ScoredPaper(paper=p, score=1.0, reasons=reasons) for p in picked),
            more_count=rng.randint(0, 5),
        )
        sub = Subscriber(
            id=sid,
            email=f"reader{sid}@example.org",
            status=SubscriberStatus.ACTIVE,
            created_at=NOW,
            profile=Profile(topics=("spiking-neural-networks", "llm-inference")),
        )
        links = fake_links(sid, [p.id for p in picked])
        started = time.perf_counter()
        rendered = renderer.digest(selection, sub, links)
        message = build_message(
            rendered,
            to=sub.email,
            email=config.email,
            message_id=message_id_for(sid, NOW.date(), config.email),
            unsubscribe_url=links.unsubscribe,
            date=NOW,
        )
        wire = message_bytes(message)
        elapsed = time.perf_counter() - started
        if i >= 50:
            timings.append(elapsed * 1000)
            html_sizes.append(len(rendered.html.encode()))
            wire_sizes.append(len(wire))
    timings.sort()
    return {
        "digests": count,
        "median_ms": round(statistics.median(timings), 3),
        "sign_links_median_ms": signing_ms(config, rng, [p.id for p in papers]),
        "p95_ms": round(timings[int(len(timings) * 0.95)], 3),
        "html_kb_mean": round(statistics.mean(html_sizes) / 1000, 1),
        "wire_kb_mean": round(statistics.mean(wire_sizes) / 1000, 1),
    }


def signing_ms(config: Config, rng: random.Random, paper_ids: list[str]) -> float:
    """Median milliseconds to sign one digest's links (web view, preferences, unsubscribe,
    👍/👎 per paper), which fake_links leaves out of the render figure."""
    links = Links("https://papers.example.org", Tokens("benchmark-secret-0123456789"))
    timings = []
    for i in range(1000):
        picked = rng.sample(paper_ids, 10)
        started = time.perf_counter()
        digest_links(links, 1000 + i, NOW.date(), picked)
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_sink() -> Iterator[int]:
    """Postfix's smtp-sink on a free loopback port; stopped by PID."""
    port = free_port()
    user = ["-u", "postfix"] if os.geteuid() == 0 else []
    sink = subprocess.Popen([SINK, *user, f"127.0.0.1:{port}", "1024"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if sink.poll() is not None or time.monotonic() > deadline:
                    said = sink.stderr.read() if sink.stderr else b""
                    raise RuntimeError(f"smtp-sink did not start: {said!r}") from None
                time.sleep(0.02)
        yield port
    finally:
        os.kill(sink.pid, signal.SIGTERM)
        sink.wait(timeout=5)
        if sink.stderr is not None:
            sink.stderr.close()


def smtp_source(port: int, messages: int, size: int) -> float:
    """Messages per second from ``smtp-source -d -s 16`` (the C reference)."""
    started = time.perf_counter()
    subprocess.run(
        [SOURCE, "-d", "-s", "16", "-l", str(size), "-m", str(messages),
         "-f", "paperboy@example.org", "-t", "reader@example.org", f"127.0.0.1:{port}"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return messages / (time.perf_counter() - started)


def subscriber_entries(n: int, slugs: Sequence[str]) -> list[dict[str, object]]:
    rng = random.Random(SEED)
    return [
        {
            "email": f"reader{i}@example.org",
            "status": SubscriberStatus.ACTIVE,
            "profile": Profile(topics=tuple(rng.sample(list(slugs), rng.randint(1, 3)))),
            "send_hour": 7,
        }
        for i in range(n)
    ]


def end_to_end(papers: Sequence[Paper], subscribers: int, port: int) -> dict[str, float]:
    """deliver_due over a fresh SQLite instance into the sink: digests per second."""
    from pipeline.models import Dump
    from pipeline.papers import dump_id
    from pipeline.run import deliver_due

    folder = Path(tempfile.mkdtemp(prefix="pb-bench-"))
    try:
        path = folder / "config.toml"
        path.write_text(
            f"""[delivery]
backend = "smtp"
batch_size = 1000
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
pool_size = 16
rate_per_second = 1000000.0
[web]
base_url = "{BASE}"
secret_key = "{"b" * 32}"
""",
            encoding="utf-8",
        )
        config: Config = load_config(path, env={})
        slugs = relevant_slugs(papers)
        with open_store(config) as store:
            store.papers.ingest(
                Dump(
                    id=dump_id(b"bench"),
                    name="bench.json",
                    format="hf_api",
                    dump_date=NOW.date(),
                    papers=tuple(papers),
                ),
                now=NOW - dt.timedelta(hours=2),
            )
            store.subscribers.add_many(
                subscriber_entries(subscribers, slugs), now=NOW - dt.timedelta(days=9)
            )
            started = time.perf_counter()
            tally = deliver_due(config, NOW, store=store)
            elapsed = time.perf_counter() - started
        if tally.aborted or tally.failed or tally.deferred:
            raise RuntimeError(f"the benchmark run did not deliver cleanly: {tally.as_dict()}")
        return {
            "subscribers": subscribers,
            "sent": tally.sent,
            "skipped_nothing_matched": tally.skipped,
            "seconds": round(elapsed, 3),
            "digests_per_s": round(tally.sent / elapsed, 1),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def relevant_slugs(papers: Sequence[Paper]) -> list[str]:
    """Catalog topics that at least one paper of the pool is about (so digests are not empty)."""
    from pipeline.matching.match import rank

    catalog = load_catalog()
    weights = Config().match
    return [s for s in catalog if rank(papers, Profile(topics=(s,)), catalog, weights)]


def run(quick: bool = False) -> dict[str, object]:
    papers = paper_pool()
    figures: dict[str, object] = {"render_mime": render_mime(papers, 300 if quick else 3000)}
    wire_bytes = int(float(figures["render_mime"]["wire_kb_mean"]) * 1000)  # type: ignore[index]
    if not (Path(SINK).exists() and Path(SOURCE).exists()):
        figures["end_to_end"] = "skipped: apt-get install postfix for smtp-sink/smtp-source"
        return figures
    subscribers = 300 if quick else 3000
    with smtp_sink() as port:
        before = smtp_source(port, subscribers * 2, wire_bytes)
        ours = end_to_end(papers, subscribers, port)
        after = smtp_source(port, subscribers * 2, wire_bytes)
    reference = (before + after) / 2
    figures["end_to_end"] = {
        **ours,
        "smtp_source_msgs_per_s": round(reference, 1),
        "smtp_source_runs": [round(before, 1), round(after, 1)],
        "message_bytes": wire_bytes,
        "ratio_to_smtp_source": round(float(ours["digests_per_s"]) / reference, 3),
    }
    return figures
