"""The admin CLI's rough edges, each filed down: bad import files, unknown topics, plurals,
erasing only when confirmed, and config errors that name the file once."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.store import open_store
from tests.conftest import write_config


class Cli:
    """The CLI in-process on one SQLite instance."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = write_config(folder, "sqlite:///var/paperboy.db")
        self.runner = CliRunner()

    def __call__(self, *args: str) -> tuple[int, str, str]:
        result = self.runner.invoke(app, ["--config", str(self.path), *args], env={})
        return result.exit_code, result.stdout, result.stderr

    def emails(self) -> list[str]:
        with open_store(load_config(self.path, env={})) as store:
            return [s.email for s in store.subscribers.all()]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00b\xee\x9dh^\x01", "not a text file"),
        (b"\xff\xfe\x00e\x00m\x00a", "not a text file"),
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (b"email,topics\n", "no subscriber rows"),
    ],
)
def test_import_of_an_unusable_file_fails_saying_why(
    cli: Cli, tmp_path: Path, content: bytes, message: str
) -> None:
    """A binary, empty or header-only file exits 1 with one line naming the problem, not
    "imported 0 subscribers"."""
    path = tmp_path / "readers.csv"
    path.write_bytes(content)
    code, out, err = cli("subscribers", "import", str(path), "--no-opt-in")
    assert code == 1
    assert message in err and "nothing imported" in err and err.count("\n") == 1
    assert "imported 0" not in out
    assert cli.emails() == []


def test_import_with_wrong_headers_names_the_expected_columns(cli: Cli, tmp_path: Path) -> None:
    """A header without `email` says which columns it found and which are expected."""
    path = tmp_path / "readers.csv"
    path.write_text("mail,topic\nreader@example.org,robotics\n", encoding="utf-8")
    code, _out, err = cli("subscribers", "import", str(path), "--no-opt-in")
    assert code == 1
    assert "no 'email' column" in err and "'mail', 'topic'" in err
    assert "email, status, topics" in err and "None" not in err


def test_import_reads_a_semicolon_separated_csv(cli: Cli, tmp_path: Path) -> None:
    """Spreadsheets in comma-decimal locales write ';' between cells: the import detects it."""
    path = tmp_path / "readers.csv"
    path.write_text(
        "email;topics;send_hour\na@example.org;robotics;8\nb@example.org;llm-inference;9\n",
        encoding="utf-8",
    )
    code, out, err = cli("subscribers", "import", str(path), "--no-opt-in")
    assert code == 0, err
    assert "imported 2 subscribers" in out
    assert sorted(cli.emails()) == ["a@example.org", "b@example.org"]


def test_unknown_topic_is_named(cli: Cli, tmp_path: Path) -> None:
    """`--topic nonexistent` (and an import row with it) names the slug that is not a topic."""
    code, _out, err = cli("subscribers", "add", "a@example.org", "--topic", "nonexistent")
    assert code == 1 and "unknown topic 'nonexistent'" in err and "paperboy topics" in err
    path = tmp_path / "readers.csv"
    path.write_text("email,topics\nb@example.org,robotics;nonexistent\n", encoding="utf-8")
    code, _out, err = cli("subscribers", "import", str(path), "--no-opt-in")
    assert code == 1 and f"{path}:2: topics: unknown topic 'nonexistent'" in err
    assert "Pick topics" not in err


def test_counts_of_one_are_singular(cli: Cli, tmp_path: Path) -> None:
    """ "1 row", "1 subscriber", "1 bad row": never "1 rows"."""
    path = tmp_path / "readers.csv"
    path.write_text("email\none@example.org\n", encoding="utf-8")
    _, out, _ = cli("subscribers", "import", str(path), "--no-opt-in", "--dry-run")
    assert "1 row is valid" in out
    _, out, _ = cli("subscribers", "import", str(path), "--no-opt-in")
    assert "imported 1 subscriber;" in out and "0 confirmation mails" in out
    _, _, err = cli("subscribers", "import", str(path), "--no-opt-in")
    assert "1 bad row in" in err
    _, out, _ = cli("subscribers", "list")
    assert out.rstrip().endswith("\n1 subscriber")
    _, _, err = cli("subscribers", "export", "--out", str(tmp_path / "out.csv"))
    assert "1 subscriber written" in err


def test_erase_needs_yes_when_nobody_can_answer(cli: Cli) -> None:
    """Without a terminal, `remove --erase` refuses (exit 2) and keeps the reader; with --yes
    it erases."""
    cli("subscribers", "add", "a@example.org", "--no-opt-in", "--topic", "robotics")
    code, _out, err = cli("subscribers", "remove", "a@example.org", "--erase")
    assert code == 2 and "add --yes" in err and "Nothing erased" in err
    assert cli.emails() == ["a@example.org"]
    code, out, _ = cli("subscribers", "remove", "a@example.org", "--erase", "--yes")
    assert code == 0 and "erased" in out and cli.emails() == []


def test_config_check_on_broken_toml_names_the_file_once(tmp_path: Path) -> None:
    """A TOML syntax error is one line with the file name once."""
    path = tmp_path / "broken.toml"
    path.write_text("[smtp\nport = 1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "check", str(path)], env={})
    assert result.exit_code == 2
    assert result.stderr.count(str(path)) == 1 and "not valid TOML" in result.stderr


def test_import_from_stdin_is_checked_like_a_file(cli: Cli) -> None:
    """`import -` reads standard input: a row is imported, and empty input is refused."""
    result = cli.runner.invoke(
        app,
        ["--config", str(cli.path), "subscribers", "import", "-", "--format", "csv", "--no-opt-in"],
        input="email\nstdin@example.org\n",
        env={},
    )
    assert result.exit_code == 0 and "imported 1 subscriber;" in result.stdout
    empty = cli.runner.invoke(
        app,
        ["--config", str(cli.path), "subscribers", "import", "-", "--format", "csv"],
        input="",
        env={},
    )
    assert empty.exit_code == 1 and "-: the file is empty; nothing imported" in empty.stderr
    assert cli.emails() == ["stdin@example.org"]


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["prune"], "Remove what [retention] no longer keeps"),
        (["smtp", "test"], "Uses the [smtp] settings"),
        (["topics"], "config.toml's [topics.<slug>] tables"),
        # One sentence the docstring wraps over two lines: a paragraph reflows to the
        # terminal's width instead of keeping the source's line ends.
        (["send"], "the connection was lost after the message and before the server's reply"),
    ],
    ids=["prune", "smtp-test", "topics", "send"],
)
def test_help_keeps_bracketed_names_and_reflows_paragraphs(command: list[str], shown: str) -> None:
    """--help shows config sections in brackets (rich markup used to swallow them) and
    joins a docstring's lines into paragraphs rather than breaking them twice."""
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert any(shown in line for line in result.stdout.splitlines())
