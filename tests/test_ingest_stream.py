"""Big and damaged dumps: a record cap, chunked short transactions, stalled writers, bad bytes.

The big dump is ingested by a real ``paperboy`` process while the web app, under uvicorn on
the same SQLite file, answers one-click unsubscribes; the crash test kills a real process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.config import Config, load_config
from pipeline.ingest import hf_page, json_items
from pipeline.ingest.common import combine
from pipeline.links import Links
from pipeline.models import SubscriberStatus
from pipeline.run import InboxWatch, ingest_inbox
from pipeline.store import Store, open_store
from subscribers.web import create_app
from tests.conftest import write_config
from tests.served import AppServer
from tests.test_inbox import API, PAGE, drop

ROOT = Path(__file__).resolve().parent.parent
# The child process ingests and reports its own peak resident set size. VmHWM, not
# getrusage: ru_maxrss survives exec, so it would report the forking pytest process's size.
INGEST = """
import json, re, sys
from pathlib import Path
from pipeline.config import load_config
from pipeline.run import ingest_inbox
outcomes = ingest_inbox(load_config(sys.argv[1], env={}))
peak = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())
print(json.dumps({
    "rss_kb": int(peak.group(1)),
    "outcomes": [o.model_dump() for o in outcomes],
}))
"""


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def api_dump(path: Path, entries: int, every: int) -> int:
    """A Daily Papers API dump of ``entries`` items, every ``every``-th one a paper and the
    others withdrawn (each a skipped entry); written item by item, never held whole."""
    papers = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for i in range(entries):
            if i:
                out.write(",")
            if i % every == 0:
                papers += 1
                paper = {"id": f"{2400 + i // 100_000}.{i % 100_000:05d}", "title": f"Paper {i}"}
                out.write(json.dumps({"paper": {**paper, "upvotes": i % 97}}))
            else:
                out.write(f'{{"title":"W{i}","withdrawnAt":1}}')
        out.write("]")
    return papers


def back_date(path: Path, seconds: float = 60) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_million_entry_dump_streams_in_300_mb_while_unsubscribes_answer(
    tmp_path: Path,
) -> None:
    """10⁶ entries (37 MB) go in chunk by chunk: the ingesting process peaks under 300 MB and
    every one-click unsubscribe posted meanwhile gets its 200 at once."""
    port = free_port()
    path = write_config(
        tmp_path,
        "sqlite:///var/paperboy.db",
        f'[web]\nbase_url = "http://127.0.0.1:{port}"\nsecret_key = "stream-secret-0123456789"\n'
        "[meaning]\nenabled = false\n[ingest]\nmax_records = 2000000\n",
    )
    config = load_config(path, env={})
    config.paths.inbox.mkdir(parents=True)
    dump = config.paths.inbox / "daily_2026-07-02.json"
    papers = api_dump(dump, 1_000_000, every=20)
    back_date(dump)
    with open_store(config) as store:
        readers = [
            store.subscribers.add(f"reader{i}@example.org", status=SubscriberStatus.ACTIVE)
            for i in range(40)
        ]
    links = Links.for_config(config)
    codes: list[int] = []
    with (
        AppServer(create_app(config), port),
        open_store(config) as store,
        httpx.Client(timeout=30) as client,
    ):
        child = subprocess.Popen(
            [sys.executable, "-c", INGEST, str(path)],
            stdout=subprocess.PIPE,
            env=child_env(),
        )
        while child.poll() is None and store.papers.count() == 0:
            time.sleep(0.05)  # the file is checked and counted before the first chunk
        for number, reader in enumerate(readers):
            if child.poll() is not None:
                break
            url = links.unsubscribe(reader.id)
            reply = client.post(url, data={"List-Unsubscribe": "One-Click"})
            codes.append(reply.status_code)
            if number % 4 == 0:
                time.sleep(0.2)
        out, _ = child.communicate(timeout=600)
        assert child.returncode == 0
        report = json.loads(out)
        (outcome,) = report["outcomes"]
        assert (outcome["new"], outcome["skipped"], outcome["error"]) == (papers, 950_000, None)
        assert store.papers.count() == papers
        unsubscribed = [s for s in store.subscribers.all() if s.status == "unsubscribed"]
    assert len(codes) >= 10, "the ingest ended before the unsubscribes could overlap it"
    assert codes == [200] * len(codes)
    assert len(unsubscribed) == len(codes)
    assert report["rss_kb"] <= 300 * 1024, f"peak RSS {report['rss_kb'] // 1024} MB"
    assert [p.name for p in config.paths.archive.iterdir()] == [dump.name]


def test_a_dump_over_max_records_is_refused_whole(tmp_path: Path, backend_url: str) -> None:
    """One entry over ``ingest.max_records`` quarantines the dump, the reason naming the count
    and the key; nothing of it is stored."""
    config = load_config(write_config(tmp_path, backend_url, "[ingest]\nmax_records = 3\n"), env={})
    items = [{"paper": {"id": f"2607.0700{i}", "title": f"Paper {i}"}} for i in range(4)]
    drop(config, "daily_2026-07-02.json", json.dumps(items))
    with open_store(config) as store:
        (outcome,) = ingest_inbox(config, store)
        assert store.papers.count() == 0
    assert outcome.error is not None
    assert "4 entries" in outcome.error and "ingest.max_records" in outcome.error
    note = config.paths.quarantine / "daily_2026-07-02.json.error.txt"
    assert "ingest.max_records" in note.read_text()


def test_a_stalled_writers_file_waits_for_the_next_scan(instance: Config, store: Store) -> None:
    """A file written in place is taken only once it is unchanged across two scans: a writer
    that stalls longer than settle_seconds and then goes on loses nothing."""
    instance.paths.inbox.mkdir(parents=True)
    path = instance.paths.inbox / "hf_daily_papers_2026-07-03.txt"
    half = PAGE.index("Tidal Forecasting")
    path.write_text(PAGE[:half], encoding="utf-8")  # the writer stalls here
    watch = InboxWatch()
    later = time.time() + 600  # long past settle_seconds
    assert ingest_inbox(instance, store, now=later, watch=watch) == []
    assert path.exists() and store.papers.count() == 0
    with path.open("a", encoding="utf-8") as out:
        out.write(PAGE[half:])  # … and goes on
    assert ingest_inbox(instance, store, now=later + 60, watch=watch) == []
    assert path.exists()
    (outcome,) = ingest_inbox(instance, store, now=later + 120, watch=watch)
    assert (outcome.new, outcome.skipped, outcome.error) == (2, 0, None)
    assert not path.exists()


def test_a_file_renamed_into_the_inbox_is_taken_at_once(instance: Config, store: Store) -> None:
    """Written elsewhere and renamed in (its ctime after its last write), a dump needs no
    second scan."""
    outside = instance.paths.inbox.parent / "upload.txt"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_text(PAGE, encoding="utf-8")
    back_date(outside)
    instance.paths.inbox.mkdir(parents=True)
    outside.rename(instance.paths.inbox / "hf_daily_papers_2026-07-03.txt")
    (outcome,) = ingest_inbox(instance, store, watch=InboxWatch())
    assert (outcome.new, outcome.error) == (2, None)


def test_a_nul_byte_drops_only_its_entry(instance: Config, store: Store) -> None:
    """A NUL byte in one entry of a page dump costs that entry; the warning names it."""
    damaged = PAGE.replace("tiny experts", "tiny\x00experts")
    drop(instance, "hf_daily_papers_2026-07-03.txt", damaged.encode())
    (outcome,) = ingest_inbox(instance, store)
    assert (outcome.new, outcome.skipped, outcome.error) == (1, 1, None)
    assert any(
        "Sparse Experts for Keyword Spotting" in w and "NUL byte" in w and w.startswith("line ")
        for w in outcome.warnings
    )
    assert [p.title for p in store.papers.recent(days=None)] == [
        "Tidal Forecasting with Neural Operators"
    ]
    assert outcome.moved_to is not None and "archive" in outcome.moved_to


def test_a_nul_byte_or_a_huge_number_in_json_drops_only_that_item(
    instance: Config, store: Store
) -> None:
    """In API JSON, an item with a NUL byte and one with a 5,000-digit number are skipped,
    each named by its place and id; the third item is stored and the file archived."""
    nul = '{"paper": {"id": "2607.07002", "title": "Broken\x00title"}}'
    huge = '{"paper": {"id": "2607.07003", "title": "Huge", "upvotes": ' + "7" * 5000 + "}}"
    text = f"[{json.dumps(API[0])},\n{nul},\n{huge}]"
    drop(instance, "daily_2026-07-02.json", text.encode())
    (outcome,) = ingest_inbox(instance, store)
    assert (outcome.new, outcome.skipped, outcome.error) == (1, 2, None)
    assert any(w.startswith("item 2:") and "NUL byte" in w for w in outcome.warnings)
    assert any(w.startswith("item 3:") and "2607.07003" in w for w in outcome.warnings)
    assert store.papers.get("2607.07001") is not None


def test_an_ingest_killed_mid_way_resumes_without_duplicates(
    tmp_path: Path, backend_url: str
) -> None:
    """A ``paperboy`` process killed between chunks leaves the file in the inbox, not marked
    done; the next run stores the rest, every paper once, and archives the file once."""
    path = write_config(
        tmp_path,
        backend_url,
        "[meaning]\nenabled = false\n[ingest]\nchunk_records = 50\n",
    )
    config = load_config(path, env={})
    config.paths.inbox.mkdir(parents=True)
    dump = config.paths.inbox / "daily_2026-07-02.json"
    papers = api_dump(dump, 20_000, every=1)
    back_date(dump)
    with open_store(config) as store:
        child = subprocess.Popen([sys.executable, "-c", INGEST, str(path)], env=child_env())
        while child.poll() is None and store.papers.count() < 500:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        stored = store.papers.count()
        assert 0 < stored < papers, "the process was not killed between chunks"
        assert dump.exists() and not list(config.paths.archive.glob("*"))
        (outcome,) = ingest_inbox(config, store)
        assert outcome.error is None and outcome.new + outcome.merged == papers
        assert outcome.new == papers - stored
        assert store.papers.count() == papers
        assert ingest_inbox(config, store) == []
        (record,) = store.papers.dumps()
        assert record["paper_count"] == papers
    assert [p.name for p in config.paths.archive.iterdir()] == [dump.name]


def page_text(entries: int) -> Iterator[str]:
    """A page dump of many entries, some of them damaged, as lines."""
    yield from ("Daily Papers", "", "Jul 3", "")
    for i in range(entries):
        if i % 101 == 7:
            yield from ("  • 2 authors", "·", "Jul 1, 2026 3", "")  # a footer without an entry
        yield f"Title number {i}"
        yield ""
        if i % 97 == 5:
            continue  # a lost abstract and footer: the next entry's paragraphs absorb it
        yield f"Abstract of paper {i}. It ends here."
        yield ""
        yield f"  • {i % 7 + 1} authors"
        yield "·"
        if i % 89 == 3:
            yield "Feb 30, 2026"
            yield str(i % 50)
        else:
            yield f"Jul 1, 2026 {i % 50}"
        yield ""


def test_a_streamed_page_dump_reads_like_the_whole_text() -> None:
    """Parsed in windows of lines, a page dump gives the papers, skips and warnings (with their
    line numbers) that the whole text gives."""
    lines = list(page_text(3000))
    day = dt.date(2026, 7, 3)
    whole = hf_page.parse("\n".join(lines), day)
    parts = list(hf_page.chunks(iter(lines), day, size=100))
    assert len(parts) > 5
    streamed = combine(parts)
    assert streamed == whole
    assert streamed.skipped > 0 and streamed.warnings


def test_damaged_items_are_found_across_block_boundaries() -> None:
    """Read in 64 KB blocks through a window that slides, a 6 MB array still yields every good
    item once and names each damaged one by its own id."""
    items = []
    for i in range(30_000):
        paper = f'"id": "2607.{i:05d}", "title": "Paper {i}", "summary": "{"x" * 150}"'
        if i % 1_000 == 999:
            items.append(f'{{"paper": {{{paper}, "upvotes": {"9" * 5000}}}}}')
        elif i % 1_000 == 500:
            damaged = paper.replace("Paper", "Pa\x00per")
            items.append(f'{{"paper": {{{damaged}}}}}')
        else:
            items.append(f'{{"paper": {{{paper}}}}}')
    text = "[\n" + ",\n".join(items) + "\n]"
    assert len(text) > 6_000_000
    blocks = (text[i : i + 65_536] for i in range(0, len(text), 65_536))
    read = list(json_items.items(blocks, ("papers",)))
    assert [item.number for item in read] == list(range(1, 30_001))
    bad = [(item.number, item.hint) for item in read if item.bad]
    assert bad == [(i + 1, f"2607.{i:05d}") for i in range(999, 30_000, 1_000)]
    nul = [item.number for item in read if item.nul]
    assert nul == [i + 1 for i in range(500, 30_000, 1_000)]
    good = [item.value for item in read if not item.bad and not item.nul]
    assert len(good) == 30_000 - 60
    assert all(isinstance(v, dict) and v["paper"]["title"].startswith("Paper") for v in good)
