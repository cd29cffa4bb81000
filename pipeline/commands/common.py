"""What every command shares: the global options, the config loader and the one-line failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

from pipeline.config import Config, load_config
from pipeline.errors import ConfigError

if TYPE_CHECKING:  # SQLAlchemy, for the annotation only
    from pipeline.store import Store


class State:
    """Global options, set by the app's callback and read by every command through ``state``."""

    config_path: Path | None = None
    verbose: bool = False
    log_json: bool = False


state = State()


# Wide enough for any line paperboy prints: off a terminal, lines are never wrapped.
UNWRAPPED = 1_000_000


def console(*, stderr: bool = False, highlight: bool = False) -> Console:
    """A rich console that wraps to the terminal's width on a terminal, and never when the
    output is a pipe, a file or a log collector (rich would otherwise assume 80 columns)."""
    out = Console(stderr=stderr, soft_wrap=True, highlight=highlight)
    if out.is_terminal:
        return out
    return Console(stderr=stderr, soft_wrap=True, highlight=highlight, width=UNWRAPPED)


def package_version() -> str:
    """The installed package's version, for ``--version``."""
    try:
        return metadata.version("paperboy")
    except metadata.PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown (not installed)"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows``: a count with its noun agreeing."""
    return f"{n} {word if n == 1 else many or word + 's'}"


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


@contextmanager
def store_for(config: Config) -> Iterator[Store]:
    """The store, opened for one command."""
    # SQLAlchemy takes a noticeable part of a second to import: kept off `--help` and `config`.
    from pipeline.store import open_store

    with open_store(config) as store:
        yield store
