"""``paperboy config check|show|set``: validate, inspect and edit config.toml safely."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import tomlkit
import typer

from pipeline.commands.common import fail, load, state
from pipeline.config import default_config_path, load_config
from pipeline.config_edit import parse_value
from pipeline.config_edit import set_key as edit
from pipeline.config_view import masked, start_warnings
from pipeline.errors import ConfigEditRefused, ConfigError

config_app = typer.Typer(help="Check, show or edit the config file.", no_args_is_help=True)


def _path(explicit: Path | None) -> Path:
    return explicit or state.config_path or default_config_path()


@config_app.command("check")
def check(
    path: Annotated[Path | None, typer.Argument(help="Config file to check.")] = None,
) -> None:
    """Validate a config file: prints ``ok``, or one line per problem and exits 2.

    Example: paperboy config check config.toml
    """
    target = _path(path)
    try:
        config = load_config(target)
    except ConfigError as e:
        for problem in e.problems:
            # Problems with the file itself (unreadable, not TOML) already start with its name.
            named = problem.startswith(f"{target}:")
            typer.echo(problem if named else f"{target}: {problem}", err=True)
        raise typer.Exit(2) from None
    for warning in start_warnings(config):
        typer.echo(f"{target}: warning: {warning}", err=True)
    typer.echo("ok")


@config_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML.")] = False,
) -> None:
    """Print the effective config (file + environment + defaults), secrets masked.

    Example: paperboy config show --json
    """
    data = masked(load())
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        typer.echo(tomlkit.dumps(data).rstrip())


@config_app.command("set")
def set_key(
    key: Annotated[str, typer.Argument(help="Dotted key, e.g. smtp.port.")],
    value: Annotated[str, typer.Argument(help='A TOML value (587, true, "text") or text.')],
) -> None:
    """Set one key, keeping comments; refuses (exit 2) if the result would not validate.

    Example: paperboy config set smtp.port 2525
    """
    target = _path(None)
    parsed = parse_value(value)
    try:
        edit(target, key, parsed, os.environ)
    except ConfigEditRefused as e:
        for problem in e.problems:
            typer.echo(f"paperboy: config error: {problem}", err=True)
        typer.echo(f"paperboy: {target} left unchanged", err=True)
        raise typer.Exit(2) from None
    except ConfigError as e:
        fail(str(e))
    typer.echo(f"{key} = {parsed!r} written to {target}")
