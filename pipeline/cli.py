"""The ``paperboy`` admin CLI: the composition root that turns errors into one-line messages.

Commands live in ``pipeline/commands/<group>.py`` and are registered below, one call each.
Exit codes: 0 ok, 1 some work failed (reported), 2 usage or config error.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline import logs
from pipeline.commands import (
    bounces,
    config,
    deliveries,
    demo,
    email,
    ingest,
    maintenance,
    match,
    service,
    smtp,
    status,
    subscribers,
)
from pipeline.commands.common import package_version, state
from pipeline.errors import ConfigError, PaperboyError


class PaperboyApp(typer.Typer):
    """A Typer app whose PaperboyErrors become one line on stderr (a traceback only with -v)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except PaperboyError as e:
            if state.verbose:
                raise
            typer.echo(f"paperboy: error: {e}", err=True)
            sys.exit(2 if isinstance(e, ConfigError) else 1)


app = PaperboyApp(
    name="paperboy",
    help="Trending AI papers, matched to each reader's interests, in their inbox every morning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default ./config.toml or $PAPERBOY_CONFIG).",
        show_default=False,
    ),
]


def _version(asked: bool) -> None:
    if asked:
        typer.echo(f"paperboy {package_version()}")
        raise typer.Exit()


@app.callback()
def main(
    config: ConfigOption = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")
    ] = False,
    log_json: Annotated[
        bool,
        typer.Option("--log-json", help="Write log lines as JSON objects, one per line."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """paperboy: ingest paper dumps, match them to subscribers, send the digests."""
    state.config_path = config
    state.verbose = verbose
    state.log_json = log_json
    if log_json:  # otherwise warnings go to stderr as bare lines, as Python prints them
        logs.setup(logging.WARNING, as_json=True)


# The order here is the order of `paperboy --help`.
app.add_typer(config.config_app, name="config")
app.command("ingest")(ingest.ingest)
app.command("match")(match.match)
app.command("topics")(match.topics)
app.command("preview")(email.preview)
app.command("send")(email.send)
app.command("deliveries")(deliveries.deliveries)
app.command("bounces")(bounces.bounces)
app.add_typer(smtp.smtp_app, name="smtp")
app.add_typer(subscribers.subscribers_app, name="subscribers")
app.command("run")(service.run)
app.command("status")(status.status)
app.command("prune")(maintenance.prune)
app.command("backup")(maintenance.backup)
app.command("demo")(demo.demo)
