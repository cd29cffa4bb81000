"""``paperboy status``: the health record every process writes, for an admin or a script."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from pipeline.commands.common import load, store_for


def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the record as JSON: status and reasons.")
    ] = False,
) -> None:
    """Whether paperboy is healthy: ok, or degraded with one reason a line.

    The reasons: the circuit breaker paused delivery (until a run sends), the last delivery
    run was aborted, matching fell back to lexical, or the service's last config reload
    failed. Exit 0 when ok, 1 when degraded.

    Example: paperboy status --json
    """
    config = load()
    with store_for(config) as store:
        report = store.health.report(dt.datetime.now(dt.UTC))
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json") | {"status": report.status}))
    else:
        typer.echo(report.status)
        for reason in report.reasons:
            since = reason.since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            typer.echo(f"  {reason.name}: {reason.reason} (since {since})")
    if report.reasons:
        raise typer.Exit(1)
