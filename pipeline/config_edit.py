"""Editing config.toml in place: one key at a time, comments kept, validated before writing,
written atomically. ``paperboy config set`` and the admin app's Config page share it."""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit

from pipeline.config import Config, apply_env, validate
from pipeline.errors import ConfigEditRefused, ConfigError


def parse_value(raw: str) -> Any:
    """``587`` → 587, ``true`` → True, ``[1, 2]`` → list; anything else stays text."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def set_key(path: Path, key: str, value: Any, env: Mapping[str, str]) -> Config:
    """Set ``key`` (dotted) to ``value`` in the file at ``path`` and return the config it now
    makes. The file is left unchanged on ConfigError (it cannot be edited, or the key is not
    dotted) and on ConfigEditRefused (the result would not validate; one problem per line in
    ``problems``)."""
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        doc = tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as e:
        raise ConfigError(f"{path}: cannot edit ({e})") from e
    parts = key.split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"key {key!r} must be dotted, like smtp.port or topics.my-topic.title")
    node: Any = doc
    for part in parts[:-1]:
        if part not in node:
            node[part] = tomlkit.table()
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{key!r}: {part!r} is not a section")
    node[parts[-1]] = value
    edited = tomlkit.dumps(doc)
    data = tomllib.loads(edited)
    apply_env(data, env)
    try:
        config = validate(data, root=path.resolve().parent)
    except ConfigError as e:
        raise ConfigEditRefused(str(e), e.problems) from None
    atomic_write(path, edited)
    return config


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename: a reader sees the old file or the new."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
