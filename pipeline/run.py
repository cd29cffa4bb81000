"""The orchestrator: each step is idempotent and reads like the data flow in DESIGN.md.

inbox files ──ingest_inbox──▶ papers in the store (files archived or quarantined)
papers and profiles lacking vectors ──embed_step──▶ vectors in the store (bounded per tick)
due subscribers ──deliver_due──▶ match (with the stored vectors) → render → ledger → send
(the planner only; every process sends what is queued: claim → send → mark, fenced)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline import health, metrics
from pipeline.breaker import Breaker
from pipeline.config import Config
from pipeline.deliver import Engine, Job, Outcome, StopRequest, Tally
from pipeline.editions import (
    Composer,
    EditionPlan,
    SelectFn,
    match_selector,
    queue_editions,
    stored_vectors,
)
from pipeline.embedding.backfill import Backfill, embed_pending
from pipeline.embedding.runtime import SentenceModel, shared
from pipeline.errors import IngestError, StoreError
from pipeline.ingest import open_dump
from pipeline.ingest.chunked import store_dump
from pipeline.links import Links
from pipeline.matching.topics import load_catalog
from pipeline.models import IngestOutcome
from pipeline.render import Renderer
from pipeline.send import Sender, SmtpSender, sender_for
from pipeline.store import Store, open_store

log = logging.getLogger("paperboy.run")

# Names that writers use while a file is still being written.
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")


class InboxWatch:
    """The (size, mtime) each inbox file had at the previous scan, for this process's life.

    A file counts as complete when it is older than ``settle_seconds`` and either unchanged
    since the previous scan, or at first sight changed (ctime) ``settle_seconds`` or more after
    its last write — what a rename into the inbox or a back-dated copy looks like, while a
    writer that merely stalled leaves ctime and mtime together. A writer that stalls for longer
    than a scan interval still defeats this; writing to ``*.part`` and renaming never does.
    """

    def __init__(self) -> None:
        self._last: dict[Path, tuple[int, int]] = {}

    def ready(self, paths: Iterable[Path], settle_seconds: float, now: float) -> list[Path]:
        last, self._last = self._last, {}
        out = []
        for path in paths:
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            shape = (info.st_size, info.st_mtime_ns)
            renamed = info.st_ctime - info.st_mtime >= settle_seconds
            settled = now - info.st_mtime >= settle_seconds  # not modified moments ago
            if settled and (last.get(path) == shape or (path not in last and renamed)):
                out.append(path)  # taken now: a file by this name later is a new one
            else:
                self._last[path] = shape
        return out


_WATCH = InboxWatch()


def inbox_candidates(
    inbox: Path,
    settle_seconds: float,
    now: float | None = None,
    watch: InboxWatch | None = None,
) -> list[Path]:
    """Files in the inbox that look complete: no dotfiles, temp names or files still growing."""
    if not inbox.is_dir():
        return []
    now = time.time() if now is None else now
    names = []
    for path in sorted(inbox.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name.endswith(PARTIAL_SUFFIXES):
            continue
        if path.name.endswith(".error.txt"):
            continue
        names.append(path)
    return (watch or _WATCH).ready(names, settle_seconds, now)


def ingest_inbox(
    config: Config,
    store: Store | None = None,
    *,
    on_file: Callable[[IngestOutcome], None] | None = None,
    now: float | None = None,
    watch: InboxWatch | None = None,
) -> list[IngestOutcome]:
    """Ingest every complete file in ``paths.inbox``; archive or quarantine each.

    A file goes in chunk by chunk (``ingest.chunk_records`` entries per transaction) and is
    archived after its last chunk. A bad file is quarantined with ``<name>.error.txt`` and
    never stops the others; a database failure leaves the file in the inbox for next time.
    """
    inbox = config.paths.inbox
    with using_store(config, store) as opened:
        outcomes = []
        for path in inbox_candidates(inbox, config.ingest.settle_seconds, now, watch):
            outcome = ingest_file(config, opened, path)
            if outcome is None:
                continue
            outcomes.append(outcome)
            metrics.ingested(outcome)
            if on_file:
                on_file(outcome)
        return outcomes


def ingest_file(config: Config, store: Store, path: Path) -> IngestOutcome | None:
    """Ingest one inbox file and move it; None when it changed or vanished while being read."""
    try:
        before = path.stat()
    except FileNotFoundError:
        return None  # taken away by someone else between the scan and now
    try:
        dump = open_dump(
            path, max_bytes=config.ingest.max_file_bytes, max_records=config.ingest.max_records
        )
        outcome = store_dump(
            store, dump, config.ingest.chunk_records, before_finish=lambda: _same(path, before)
        )
    except IngestError as e:
        if not path.exists():
            return None
        target = quarantine(config, path, str(e))
        log.warning("quarantined %s: %s", path.name, e)
        return IngestOutcome(
            dump_id="", name=path.name, format=None, error=str(e), moved_to=str(target)
        )
    except StoreError as e:
        log.error("could not store %s, leaving it in the inbox: %s", path.name, e)
        return IngestOutcome(dump_id="", name=path.name, format=None, error=str(e))
    except Exception as e:
        # A parser bug must not take the other files down with it; keep the file and the reason.
        log.exception("internal error while parsing %s", path.name)
        reason = f"internal error while parsing ({e.__class__.__name__}: {e}); please report it"
        target = quarantine(config, path, reason)
        return IngestOutcome(
            dump_id="", name=path.name, format=None, error=reason, moved_to=str(target)
        )
    if outcome is None:
        log.info("%s changed while being read; will retry on the next scan", path.name)
        return None
    # The move comes after the last chunk: a crash before it re-reads the file, and its
    # chunks merge again as no-ops; only ``finish`` marks the dump's bytes as done.
    target = move_unique(path, config.paths.archive)
    return outcome.model_copy(update={"moved_to": str(target)})


def _same(path: Path, before: os.stat_result) -> bool:
    try:
        after = path.stat()
    except FileNotFoundError:
        return False
    return (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def quarantine(config: Config, path: Path, reason: str) -> Path:
    """Move a bad file aside with a ``<name>.error.txt`` that says why."""
    target = move_unique(path, config.paths.quarantine)
    note = target.with_name(target.name + ".error.txt")
    note.write_text(f"{path.name}: {reason}\n", encoding="utf-8")
    return target


def move_unique(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` without overwriting an earlier file of the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.stem}.{n}{path.suffix}"
        n += 1
    try:
        os.replace(path, target)
    except OSError:
        shutil.move(str(path), str(target))  # across file systems
    return target


@contextmanager
def using_store(config: Config, store: Store | None) -> Iterator[Store]:
    """The caller's store, or one opened (and closed) from the config."""
    if store is not None:
        yield store
    else:
        with open_store(config) as opened:
            yield opened


# --- vectors ----------------------------------------------------------------------------------


def embed_step(
    config: Config, store: Store | None = None, *, model: SentenceModel | None = None
) -> Backfill | None:
    """Give up to ``meaning.per_tick`` papers lacking a vector theirs (newest first), then the
    catalog's and the profiles' texts lacking one; None when meaning is off or unavailable."""
    embedder = (model or shared()).get(config.meaning)
    if embedder is None:
        return None
    with using_store(config, store) as opened:
        done = embed_pending(
            opened,
            embedder,
            limit=config.meaning.per_tick,
            topics=load_catalog(config.topics).topics,
        )
    if done.papers or done.texts:
        log.info("vectors: %d papers, %d texts (%s)", done.papers, done.texts, embedder.name)
    return done


# --- delivery ---------------------------------------------------------------------------------


def deliver_due(
    config: Config,
    now: dt.datetime | None = None,
    *,
    store: Store | None = None,
    sender: Sender | None = None,
    select: SelectFn | None = None,
    dry_run: bool = False,
    on_total: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    model: SentenceModel | None = None,
    stop: StopRequest | None = None,
    planner: Planner | None = None,
) -> Tally:
    """Queue the editions due at ``now`` and send them, then every other due ledger row.

    due subscribers ──match──▶ selections ──render──▶ queued rows ──claim/send/mark──▶ ledger
    New editions go batch by batch (``delivery.batch_size``), so memory stays bounded.
    Deferred rows whose time has come and rows stuck in ``sending`` after a crash go out too.
    Only the planner queues editions (``planner``: the service's, kept between runs; without
    it this run tries for the role and gives it up at the end). Any number of runs send:
    claims are fenced, so without the role a run sends what is queued (``tally.busy``).
    Matching uses the stored vectors of the process's sentence model (``model``, default the
    shared one) when meaning is on.
    Once ``stop`` is set (SIGTERM), no further row is claimed; the sends in flight finish.
    """
    now = now or dt.datetime.now(dt.UTC)
    started = time.monotonic()

    def clock() -> dt.datetime:  # ``now`` moving on at wall-clock speed
        return now + dt.timedelta(seconds=time.monotonic() - started)

    with using_store(config, store) as opened:
        stale = dt.timedelta(minutes=config.delivery.sending_stale_minutes)
        own = planner is None and not dry_run
        role = Planner(opened, stale) if own else planner
        try:
            tally = Tally()
            planning = dry_run or (role is not None and role.take())
            tally.busy = not planning
            if not dry_run and _paused(opened, clock(), tally):
                return tally
            renderer = Renderer(config.email, config.web, config.topics)
            composer = Composer(config.email, opened, renderer, Links.for_config(config))
            plan = EditionPlan(
                now=now,
                clock=clock,
                select=select or selector(config, opened, model),
                email=config.email,
                batch_size=config.delivery.batch_size,
                dry_run=dry_run,
                late_cutoff=dt.timedelta(hours=config.delivery.late_cutoff_hours),
            )
            batches: Iterable[list[Job]] = []
            if planning:
                batches = queue_editions(plan, opened, composer, tally)
            if dry_run:
                for _ in batches:
                    pass
                tally.due = tally.queued + len(opened.ledger.due(now, stale))
                return tally
            if role is not None and planning:
                batches = _while_planner(batches, role)
            sender = sender or sender_for(config)
            engine = Engine(
                config.delivery,
                opened,
                sender,
                composer,
                clock,
                concurrency=config.smtp.pool_size if isinstance(sender, SmtpSender) else 1,
                on_outcome=on_outcome,
                tally=tally,
                breaker=Breaker(config.delivery.breaker),
                stop=stop,
            )
            asyncio.run(engine.run_all(batches, now, on_total))
            _after_run(config, opened, tally, clock(), model)
            return tally
        finally:
            if own and role is not None:
                role.release()


def _after_run(
    config: Config, store: Store, tally: Tally, at: dt.datetime, model: SentenceModel | None
) -> None:
    """Pause the sending if the breaker tripped (or lift a pause a clean run outlived), and
    record the run and the matcher's state for /healthz."""
    if tally.paused is not None:
        _trip(config, store, at, tally)
    elif tally.sent and tally.aborted is None:
        store.pauses.clear()
    health.note_run(store, tally, at)
    health.note_matching(store, model or shared(), config.meaning, at)


def _while_planner(batches: Iterable[list[Job]], planner: Planner) -> Iterator[list[Job]]:
    """The planned batches while this process is still the planner: each is confirmed (and
    the lease renewed) before the next is planned; a lost role leaves the rest to the new one.
    """
    pending = iter(batches)
    while planner.take():
        batch = next(pending, None)
        if batch is None:
            return
        yield batch
    log.warning("another paperboy took over planning; this run sends what it queued and stops")


def _paused(store: Store, now: dt.datetime, tally: Tally) -> bool:
    """While the breaker's pause lasts, nothing is planned or sent; rows that became due
    meanwhile are deferred to its end. True if delivery is paused."""
    pause = store.pauses.current(now)
    if pause is None:
        return False
    tally.held = store.pauses.hold(pause, now)
    tally.paused = f"delivery is paused until {pause.until:%Y-%m-%d %H:%M} UTC: {pause.reason}"
    return True


def _trip(config: Config, store: Store, now: dt.datetime, tally: Tally) -> None:
    """The breaker tripped this run: pause delivery (15 min, doubling per trip in a row, up to
    6 h by default) and defer every row not yet sent to the pause's end."""
    settings = config.delivery.breaker
    pause, tally.held = store.pauses.trip(
        tally.paused or "circuit breaker",
        now,
        first=dt.timedelta(minutes=settings.pause_minutes),
        longest=dt.timedelta(hours=settings.pause_max_hours),
    )
    tally.paused = (
        f"circuit breaker: {pause.reason}; delivery paused until "
        f"{pause.until:%Y-%m-%d %H:%M} UTC (trip {pause.trips} in a row), "
        f"{tally.held} editions wait until then"
    )
    log.warning("%s", tally.paused)


def selector(config: Config, store: Store, model: SentenceModel | None = None) -> SelectFn:
    """The matcher for ``config``, with the store's vectors when the model is there."""
    sentences = model or shared()
    vectors = stored_vectors(store, lambda: sentences.get(config.meaning))
    return match_selector(config.match, config.topics, vectors)


class Planner:
    """This process's hold on the planner role (``store.planner_role``): one process plans
    editions at a time; the others stand by, send what is queued, and take the role over when
    its holder stops or dies (at once on PostgreSQL, within ``ttl`` of its last renewal with
    the lease row). Lease arithmetic is the database's clock, never ``--now``."""

    def __init__(self, store: Store, ttl: dt.timedelta) -> None:
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.role = store.planner_role(holder, ttl)
        self.held: bool | None = None  # None until the first ``take``

    def take(self) -> bool:
        """Take, keep or renew the role; False while another process has it. Logs changes."""
        held = self.role.take()
        if held and self.held is not True:
            log.info("this paperboy is the planner now: it queues due editions and sends them")
        elif not held and self.held is not False:
            log.info("standing by: another paperboy plans editions; this one sends what is queued")
        self.held = held
        return held

    def release(self) -> None:
        self.role.release()
        self.held = None


@contextmanager
def standby(config: Config) -> Iterator[Planner]:
    """The service's planner, on a store of its own kept for its lifetime; given up on exit."""
    with open_store(config) as store:
        planner = Planner(store, dt.timedelta(minutes=config.delivery.sending_stale_minutes))
        try:
            yield planner
        finally:
            planner.release()
