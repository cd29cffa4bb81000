"""``paperboy ingest``: parse dump files and store their papers (or just print them)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from pipeline.commands.common import load, store_for
from pipeline.config import Config
from pipeline.errors import IngestError
from pipeline.ingest import read_dump
from pipeline.models import Dump, IngestOutcome

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
    dumps: list[Dump] = []
    outcomes: list[IngestOutcome] = []
    with Progress(console=err, transient=True, disable=len(files) < 3) as progress:
        task = progress.add_task("parsing", total=len(files))
        for path in files:
            try:
                dump = read_dump(path, max_bytes=config.ingest.max_file_bytes, date=day)
            except (IngestError, OSError) as e:
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                outcomes.append(
                    IngestOutcome(dump_id="", name=str(path), format=None, error=reason)
                )
            else:
                dumps.append(dump)
            progress.advance(task)
    embedded: set[str] = set()
    if not dry_run and dumps:
        with store_for(config) as store:
            stored = {d.id: store.papers.ingest(d) for d in dumps}
            # After each dump's transaction has committed: the vectors are an extra, and a
            # model that cannot load leaves the papers to match by words until a later tick.
            embedded = _embed(config, store, dumps, err)
    else:
        stored = {d.id: _would_be(d) for d in dumps}
    outcomes = [stored[d.id] for d in dumps] + outcomes
    if as_json:
        papers = [
            {**p.public_dict(), "embedded": p.id in embedded} for d in dumps for p in d.papers
        ]
        typer.echo(json.dumps(papers, indent=2, ensure_ascii=False))
        for outcome in outcomes:
            _warn(err, outcome)
    else:
        _summary(outcomes, dry_run)
    if any(o.error for o in outcomes):
        raise typer.Exit(1)


def _embed(config: Config, store: Store, dumps: list[Dump], err: Console) -> set[str]:
    """Give the dumps' papers the vectors they lack, with a progress bar on stderr; the ids
    (as parsed) of the papers that have a current vector afterwards."""
    from pipeline.embedding.backfill import embed_papers, lacking_vectors
    from pipeline.embedding.runtime import shared

    embedder = shared().get(config.meaning)
    if embedder is None:
        return set()
    ids = {p.id for d in dumps for p in d.papers}
    papers, found = lacking_vectors(store, embedder.name, ids)
    with Progress(console=err, transient=True, disable=len(papers) < 2 * BATCH) as progress:
        task = progress.add_task("embedding", total=len(papers))
        embed_papers(store, embedder, papers, lambda done, _: progress.update(task, completed=done))
    err.print(f"vectors: {len(papers)} papers embedded ({embedder.name})", highlight=False)
    return found


def _would_be(dump: Dump) -> IngestOutcome:
    return IngestOutcome(
        dump_id=dump.id,
        name=dump.name,
        format=dump.format,
        new=len({p.id for p in dump.papers}),
        merged=len(dump.papers) - len({p.id for p in dump.papers}),
        skipped=dump.skipped,
        warnings=tuple(str(w) for w in dump.warnings),
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
