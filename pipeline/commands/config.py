"""``paperboy config check|show|set``: validate, inspect and edit config.toml safely."""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Annotated, Any

import tomlkit
import typer

from pipeline.commands.common import fail, load, state
from pipeline.config import (
    apply_env,
    default_config_path,
    load_config,
    masked,
    start_warnings,
    validate,
)
from pipeline.errors import ConfigError

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
    try:
        doc = (
            tomlkit.parse(target.read_text(encoding="utf-8"))
            if target.exists()
            else tomlkit.document()
        )
    except (OSError, tomlkit.exceptions.TOMLKitError) as e:
        fail(f"{target}: cannot edit ({e})")
    parts = key.split(".")
    if len(parts) < 2 or not all(parts):
        fail(f"key {key!r} must be dotted, like smtp.port or topics.my-topic.title")
    node: Any = doc
    for part in parts[:-1]:
        if part not in node:
            node[part] = tomlkit.table()
        node = node[part]
        if not isinstance(node, dict):
            fail(f"{key!r}: {part!r} is not a section")
    node[parts[-1]] = _parse_value(value)
    text = tomlkit.dumps(doc)
    data = tomllib.loads(text)
    apply_env(data, os.environ)
    try:
        validate(data, root=target.resolve().parent)
    except ConfigError as e:
        for problem in e.problems:
            typer.echo(f"paperboy: config error: {problem}", err=True)
        typer.echo(f"paperboy: {target} left unchanged", err=True)
        raise typer.Exit(2) from None
    _atomic_write(target, text)
    typer.echo(f"{key} = {_parse_value(value)!r} written to {target}")


def _parse_value(raw: str) -> Any:
    """``587`` → 587, ``true`` → True, ``[1, 2]`` → list; anything else stays text."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
