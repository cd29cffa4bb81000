"""``paperboy prune`` and ``paperboy backup``: keeping the store's size and a copy of it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.commands.common import load, store_for


def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; remove nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Remove what [retention] no longer keeps: finished ledger rows, sent-paper records no
    edition can need (a paper still never reaches a reader twice), old archive and outbox
    files. `paperboy run` does the same every retention.prune_every_hours.

    Exit 1 when a file could not be removed (each one is named).

    Example: paperboy prune --dry-run
    """
    from pipeline.prune import prune as prune_now

    config = load()
    with store_for(config) as store:
        report = prune_now(config, store, dt.datetime.now(dt.UTC), dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), sort_keys=True))
    else:
        for line in report.lines():
            typer.echo(line)
    if report.errors:
        raise typer.Exit(1)


def backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write.", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Overwrite PATH if it exists.")] = False,
    run: Annotated[
        bool, typer.Option("--run", help="PostgreSQL: run pg_dump instead of printing it.")
    ] = False,
) -> None:
    """Copy the database to PATH, safely while the service runs.

    SQLite: a consistent copy through SQLite's online backup API. PostgreSQL: prints the
    pg_dump command to run (the password is never shown; pg_dump reads PGPASSWORD or
    ~/.pgpass), or runs it with --run. Restoring is described in the README.

    Example: paperboy backup /srv/backups/paperboy-2026-07-03.db
    """
    from pipeline.backup import (
        backup_sqlite,
        pg_dump_command,
        run_pg_dump,
        shown,
        sqlite_file,
    )

    config = load()
    url = config.storage.url
    source = sqlite_file(url)
    if source is not None:
        done = backup_sqlite(source, path, force=force)
    elif run:
        done = run_pg_dump(url, path, force=force)
    else:
        args, _ = pg_dump_command(url, path)
        typer.echo("PostgreSQL: back up with pg_dump (the password comes from PGPASSWORD or")
        typer.echo("~/.pgpass, never the command line):")
        typer.echo(f"  {shown(args)}")
        typer.echo("or let paperboy run it: paperboy backup --run PATH")
        return
    revision = f", schema revision {done.revision}" if done.revision else ""
    typer.echo(f"backed up to {done.path} ({done.bytes} bytes{revision})")
