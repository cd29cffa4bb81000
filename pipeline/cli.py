"""The ``paperboy`` admin CLI: the composition root that turns errors into one-line messages.

Commands live in ``pipeline/commands/<group>.py``; each module exposes ``register(app)``.
Exit codes: 0 ok, 1 some work failed (reported), 2 usage or config error.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from pipeline.config import Config, load_config
from pipeline.errors import ConfigError, PaperboyError

COMMAND_MODULES = ("config", "ingest", "match", "email", "subscribers", "service", "demo")


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
)


class State:
    """Global options, read by every command through ``state``."""

    config_path: Path | None = None
    verbose: bool = False


state = State()

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default ./config.toml or $PAPERBOY_CONFIG).",
        show_default=False,
    ),
]


@app.callback()
def main(
    config: ConfigOption = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")
    ] = False,
) -> None:
    """paperboy: ingest paper dumps, match them to subscribers, send the digests."""
    state.config_path = config
    state.verbose = verbose


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    typer.echo(f"paperboy: error: {message}", err=True)
    raise typer.Exit(code)


def load() -> Config:
    """The validated config for the current invocation (exit 2 with the problems if invalid)."""
    try:
        return load_config(state.config_path)
    except ConfigError as e:
        for problem in e.problems:
            typer.echo(f"paperboy: config error: {problem}", err=True)
        raise typer.Exit(2) from None


for _name in COMMAND_MODULES:
    importlib.import_module(f"pipeline.commands.{_name}").register(app)
