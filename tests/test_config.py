"""config.toml is validated with errors that name the key, the bad value and an example."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from pipeline.config import Config, load_config
from pipeline.config_view import masked
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]


def problems_for(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    return caught.value.problems


def test_empty_file_is_a_working_config(tmp_path: Path) -> None:
    """Every key has a default, so an empty config file is valid."""
    path = tmp_path / "config.toml"
    path.write_text("", encoding="utf-8")
    config = load_config(path, env={})
    assert config.delivery.backend == "outbox"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    """A config copied into a folder makes that folder a separate instance."""
    path = tmp_path / "inst" / "config.toml"
    path.parent.mkdir()
    path.write_text('[paths]\ninbox = "in"\n', encoding="utf-8")
    config = load_config(path, env={})
    assert config.paths.inbox == path.parent / "in"
    assert config.storage.url == f"sqlite:///{path.parent / 'var' / 'paperboy.db'}"


def test_bad_value_names_key_value_and_example(tmp_path: Path) -> None:
    """A wrong value is reported with its dotted key, the value quoted and an example."""
    (problem,) = problems_for(tmp_path, "[smtp]\nport = 99999\n")
    assert problem.startswith("smtp.port = 99999:")
    assert "example: 587" in problem


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    """A misspelt key is not silently ignored."""
    (problem,) = problems_for(tmp_path, '[smtp]\nhots = "x"\n')
    assert problem.startswith("smtp.hots: unknown key")


def test_every_problem_is_listed(tmp_path: Path) -> None:
    """Several bad keys give one line each."""
    problems = problems_for(tmp_path, '[smtp]\nsecurity = "ssl"\n[web]\nbase_url = "ftp://x"\n')
    assert [p.split(" ")[0] for p in problems] == ["smtp.security", "web.base_url"]


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """Broken TOML is reported with its position."""
    (problem,) = problems_for(tmp_path, "[smtp\nport = 1\n")
    assert "not valid TOML" in problem and "line 1" in problem


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    """A missing config file is a one-line error naming the file."""
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml", env={})


def test_environment_overrides_nested_keys_and_secret_alias(tmp_path: Path) -> None:
    """PAPERBOY_SMTP__PASSWORD and PAPERBOY_SECRET_KEY set secrets from the environment."""
    path = tmp_path / "config.toml"
    path.write_text("[smtp]\nport = 25\n", encoding="utf-8")
    env = {
        "PAPERBOY_SMTP__PASSWORD": "hunter2",
        "PAPERBOY_SECRET_KEY": "k" * 32,
        "PAPERBOY_SMTP__PORT": "2525",
        "PAPERBOY_CONFIG": "ignored",
    }
    config = load_config(path, env=env)
    assert config.smtp.password.get_secret_value() == "hunter2"
    assert config.web.secret_key.get_secret_value() == "k" * 32
    assert config.smtp.port == 2525


def test_bad_environment_override_is_reported_like_a_file_error(tmp_path: Path) -> None:
    """An invalid override names the key it sets."""
    path = tmp_path / "config.toml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"PAPERBOY_SMTP__PORT": "many"})
    assert caught.value.problems[0].startswith("smtp.port = 'many'")


def test_secrets_are_masked_in_show_and_errors(tmp_path: Path) -> None:
    """config show and error messages never print a secret."""
    path = tmp_path / "config.toml"
    path.write_text("", encoding="utf-8")
    config = load_config(path, env={"PAPERBOY_SMTP__PASSWORD": "hunter2"})
    assert masked(config)["smtp"]["password"] == "***"
    assert "hunter2" not in repr(masked(config))


def _fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        if name in ("root", "topics"):
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += _fields(annotation, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def test_shipped_config_documents_every_key_with_its_default() -> None:
    """Each config key appears in config.toml (set or commented out) under a 'Default' comment."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    for block in re.split(r"^\[", text, flags=re.M)[1:]:
        name, _, body = block.partition("]")
        sections[name] = body
    for dotted in _fields(Config):
        section, _, key = dotted.rpartition(".")
        body = sections.get(section, "")
        line = re.search(rf"^#? ?{key} = ", body, flags=re.M)
        assert line, f"{dotted} is not in config.toml"
        before = body[: line.start()].rstrip().splitlines()
        comment = "\n".join(before[-4:])
        assert "Default" in comment, f"{dotted} has no 'Default' comment above it"


def test_shipped_config_matches_the_embedded_defaults() -> None:
    """The values written in config.toml are the defaults the code would use anyway."""
    data = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    defaults = Config().model_dump(mode="json", exclude={"root"})
    for section, values in data.items():
        for key, value in values.items():
            default = defaults[section][key]
            if key in ("password", "secret_key"):
                default = ""
            assert value == default, (
                f"{section}.{key}: config.toml says {value!r}, default {default!r}"
            )


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PAPERBOY, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_config_check_cli_prints_ok_or_problems(tmp_path: Path) -> None:
    """`paperboy config check` prints ok (exit 0) or one line per problem (exit 2)."""
    good = tmp_path / "good.toml"
    good.write_text("[smtp]\nport = 2525\n", encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp]\nport = -1\nsecurity = 'ssl'\n", encoding="utf-8")
    ok = run_cli("config", "check", str(good), cwd=tmp_path)
    assert (ok.returncode, ok.stdout.strip()) == (0, "ok")
    failed = run_cli("config", "check", str(bad), cwd=tmp_path)
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 2 and "smtp.port = -1" in lines[0] and "smtp.security = 'ssl'" in lines[1]
    assert "Traceback" not in failed.stderr


def test_config_set_validates_before_writing(tmp_path: Path) -> None:
    """`paperboy config set` keeps comments, and refuses a value that would not validate."""
    path = tmp_path / "config.toml"
    path.write_text("# my note\n[smtp]\nport = 25\n", encoding="utf-8")
    done = run_cli("--config", str(path), "config", "set", "smtp.port", "2525", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "# my note" in path.read_text() and "port = 2525" in path.read_text()
    refused = run_cli("--config", str(path), "config", "set", "smtp.port", "0", cwd=tmp_path)
    assert refused.returncode == 2 and "smtp.port = 0" in refused.stderr
    assert "port = 2525" in path.read_text()


def test_commands_exit_2_on_a_bad_config(tmp_path: Path) -> None:
    """Any command given a broken config stops with exit 2 and a one-line reason."""
    path = tmp_path / "config.toml"
    path.write_text("[storage]\nurl = 'mysql://x'\n", encoding="utf-8")
    result = run_cli("--config", str(path), "config", "show", cwd=tmp_path)
    assert result.returncode == 2
    assert "storage.url = 'mysql://x'" in result.stderr and "Traceback" not in result.stderr
