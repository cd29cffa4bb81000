"""``paperboy bounces``: read returned mail (DSNs and ARF complaints) and apply it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.commands.common import fail, load, store_for
from pipeline.errors import ReturnedMailError


def bounces(
    path: Annotated[Path, typer.Argument(help="A Maildir (with new/ and cur/) or an mbox file.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and count; change nothing, move nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Read returned mail and apply it: a gone address (5.1.1 …) or an ARF complaint
    suppresses at once, another permanent failure adds 1 to the bounce score (3 within 14
    days suppress), a policy block, 421 or temporary failure is only counted.

    Only mail naming a delivery through its signed VERP address (email.bounce_domain) counts.
    Maildir messages that were read move to its .processed folder; an mbox is only read, and
    reading it again counts nothing twice. Mail that is not such a report is left where it
    is, listed, and makes the exit status 1.

    Example: paperboy bounces /var/mail/paperboy-bounces --dry-run --json
    """
    from pipeline.bounce_scan import scan  # SQLAlchemy: only needed here
    from pipeline.tokens import tokens_for

    config = load()
    if not path.exists():
        fail(f"{path}: no such Maildir or mbox file")
    with store_for(config) as store:
        try:
            tally = scan(path, store, tokens_for(config), dry_run=dry_run)
        except ReturnedMailError as e:  # not a Maildir or mbox, or a file that cannot be read
            fail(str(e))
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, **tally.as_dict()}, indent=2))
    else:
        would = "would be " if dry_run else ""
        typer.echo(
            f"{tally.read} read: {tally.suppressed} {would}suppressed, {tally.bounces} bounces "
            f"{would}counted, {tally.complaints} complaints, {tally.soft} soft failures, "
            f"{tally.ignored} ignored, {tally.duplicates} already counted, "
            f"{tally.unparseable} unparseable (left in place)"
        )
        for problem in tally.problems:
            typer.echo(f"  unparseable: {problem}", err=True)
    if tally.unparseable:
        raise typer.Exit(1)
