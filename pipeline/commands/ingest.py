"""``paperboy ingest``: parse dump files and store their papers (or just print them)."""

from __future__ import annotations

import datetime as dt
import json
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from pipeline.commands.common import load, store_for
from pipeline.config import Config
from pipeline.errors import IngestError, StoreError
from pipeline.ingest import OpenDump, ParsedEntries, open_dump
from pipeline.ingest.chunked import store_dump
from pipeline.models import IngestOutcome, Paper

if TYPE_CHECKING:  # SQLAlchemy, for the annotation only
    from pipeline.store import Store

BATCH = 32  # the backfill's batch: a progress bar for fewer than two of them only flickers


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders become their visible files, sorted."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")
            )
        else:
            out.append(path)
    return out


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Dump files or folders of dumps.")],
    date: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Dump date when the file name has none."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Parse only; store nothing.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the parsed papers as a JSON array.")
    ] = False,
) -> None:
    """Parse dumps (page text, Daily Papers API JSON, arXiv Atom) and store their papers.

    The format is detected from the content. Exit 1 if any file could not be ingested.

    Example: paperboy ingest var/inbox/hf_daily_papers_2026-07-03.txt --dry-run --json
    """
    config = load()
    files = expand(paths)
    day = date.date() if date else None
    err = Console(stderr=True, soft_wrap=True)
    seen = _Seen(papers=as_json, ids=as_json or (not dry_run and config.meaning.enabled))
    outcomes: list[IngestOutcome] = []
    embedded: set[str] = set()
    with ExitStack() as stack:
        store = None if dry_run else stack.enter_context(store_for(config))
        with Progress(console=err, transient=True, disable=len(files) < 3) as progress:
            task = progress.add_task("ingesting", total=len(files))
            for path in files:
                outcomes.append(_one(config, store, path, day, seen))
                progress.advance(task)
        if store is not None and seen.ids:
            # After each dump's last chunk has committed: the vectors are an extra, and a
            # model that cannot load leaves the papers to match by words until a later tick.
            embedded = _embed(config, store, seen.ids, err)
    outcomes.sort(key=lambda o: o.error is not None)  # failures listed last, as before
    if as_json:
        papers = [{**p.public_dict(), "embedded": p.id in embedded} for p in seen.papers]
        typer.echo(json.dumps(papers, indent=2, ensure_ascii=False))
        for outcome in outcomes:
            _warn(err, outcome)
    else:
        _summary(outcomes, dry_run)
    if any(o.error for o in outcomes):
        raise typer.Exit(1)


class _Seen:
    """What the command keeps of the papers streamed past: all of them only for ``--json``,
    their ids only when something needs them (embedding, ``--json``)."""

    def __init__(self, *, papers: bool, ids: bool) -> None:
        self.keep_papers = papers
        self.keep_ids = ids
        self.papers: list[Paper] = []
        self.ids: set[str] = set()

    def __call__(self, part: ParsedEntries) -> None:
        if self.keep_papers:
            self.papers.extend(part.papers)
        if self.keep_ids:
            self.ids.update(p.id for p in part.papers)


def _one(
    config: Config, store: Store | None, path: Path, day: dt.date | None, seen: _Seen
) -> IngestOutcome:
    """Ingest (or, without a store, only parse) one file, chunk by chunk."""
    size = config.ingest.chunk_records
    try:
        dump = open_dump(
            path,
            max_bytes=config.ingest.max_file_bytes,
            max_records=config.ingest.max_records,
            date=day,
        )
        if store is None:
            return _would_be(dump, size, seen)
        outcome = store_dump(store, dump, size, on_chunk=seen)
        if outcome is None:  # only with a before_finish check, which is not asked for here
            raise IngestError("the file changed while being read")
        if outcome.already_ingested and seen.keep_papers:
            for part in dump.chunks(size):
                seen(part)
    except (IngestError, OSError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        return IngestOutcome(dump_id="", name=str(path), format=None, error=reason)
    except StoreError as e:
        return IngestOutcome(dump_id="", name=str(path), format=None, error=str(e))
    return outcome


def _embed(config: Config, store: Store, ids: set[str], err: Console) -> set[str]:
    """Give the dumps' papers the vectors they lack, with a progress bar on stderr; the ids
    (as parsed) of the papers that have a current vector afterwards."""
    from pipeline.embedding.backfill import embed_papers, lacking_vectors
    from pipeline.embedding.runtime import shared

    embedder = shared().get(config.meaning)
    if embedder is None:
        return set()
    papers, found = lacking_vectors(store, embedder.name, ids)
    with Progress(console=err, transient=True, disable=len(papers) < 2 * BATCH) as progress:
        task = progress.add_task("embedding", total=len(papers))
        embed_papers(store, embedder, papers, lambda done, _: progress.update(task, completed=done))
    err.print(f"vectors: {len(papers)} papers embedded ({embedder.name})", highlight=False)
    return found


def _would_be(dump: OpenDump, size: int, seen: _Seen) -> IngestOutcome:
    """What storing the dump would report, as far as parsing alone can tell."""
    ids: set[str] = set()
    papers = skipped = 0
    warnings = [str(w) for w in dump.head.warnings]
    for part in dump.chunks(size):
        seen(part)
        ids.update(p.id for p in part.papers)
        papers += len(part.papers)
        skipped += part.skipped
        warnings.extend(str(w) for w in part.warnings)
    head = dump.head
    return IngestOutcome(
        dump_id=head.id,
        name=head.name,
        format=head.format,
        new=len(ids),
        merged=papers - len(ids),
        skipped=skipped,
        warnings=tuple(warnings),
    )


def _warn(err: Console, outcome: IngestOutcome) -> None:
    """Errors and warnings, one line each on stderr, for scripts and humans alike."""
    if outcome.error:
        err.print(
            f"paperboy: error: {outcome.name}: {outcome.error}", highlight=False, markup=False
        )
    for warning in outcome.warnings:
        err.print(f"warning: {outcome.name}: {warning}", highlight=False, markup=False)


def _summary(outcomes: list[IngestOutcome], dry_run: bool) -> None:
    out = Console()
    table = Table(title="dry run: nothing stored" if dry_run else None)
    for column in ("file", "format", "new", "merged", "skipped", "status"):
        table.add_column(
            column, justify="right" if column in ("new", "merged", "skipped") else "left"
        )
    for o in outcomes:
        status = (
            f"error: {o.error}"
            if o.error
            else "already ingested"
            if o.already_ingested
            else f"{len(o.warnings)} warning{'' if len(o.warnings) == 1 else 's'}"
            if o.warnings
            else "ok"
        )
        table.add_row(
            Path(o.name).name, o.format or "-", str(o.new), str(o.merged), str(o.skipped), status
        )
    out.print(table)
    err = Console(stderr=True, soft_wrap=True)
    for o in outcomes:
        _warn(err, o)
