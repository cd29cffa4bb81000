"""The README documents every CLI command, and every command has help with an example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main
from typer.core import TyperGroup

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def all_commands() -> dict[str, Any]:
    """Every leaf command as 'group sub' → its command object."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    out: dict[str, Any] = {}

    def walk(group: TyperGroup, prefix: str) -> None:
        for name, command in group.commands.items():
            if isinstance(command, TyperGroup):
                walk(command, f"{prefix}{name} ")
            else:
                out[prefix + name] = command

    walk(root, "")
    return out


def test_every_command_is_in_the_readme() -> None:
    """Each `paperboy …` command appears in the README's CLI reference."""
    missing = [name for name in all_commands() if f"paperboy {name}" not in README]
    assert missing == []


def test_every_command_has_help_with_an_example() -> None:
    """Each command's help text has a summary and an 'Example:' line."""
    for name, command in all_commands().items():
        text = command.help or ""
        assert text.strip(), f"{name} has no help"
        assert "Example:" in text, f"{name} help has no example"


def test_quick_start_is_two_commands() -> None:
    """The Quick start is `make run` and `make test`, both real Makefile targets."""
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run:", makefile, re.M)
    assert re.search(r"^test:", makefile, re.M)


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run ends by running `make test`, the README's test command."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.rstrip().splitlines()[-1] == "make test"


def test_the_readme_shows_the_bounce_class_table_the_code_uses() -> None:
    """The README's table of replies is the one `pipeline/bounces.py` applies, row for row."""
    from pipeline.bounces import table_markdown

    assert table_markdown().strip() in README
