"""Shared fixtures: isolated paperboy instances over every storage backend.

Store tests run against a fresh SQLite file and against the PostgreSQL server on 127.0.0.1
(one throw-away schema per test). In CI a missing PostgreSQL fails the run instead of
skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from pipeline.config import Config, load_config
from pipeline.store import Store, open_store

DATA = Path(__file__).parent / "data"

# In CI every property test draws the same examples run after run (a red build can be rerun
# and stays red), with no example database carried between runs; locally they stay random.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
POSTGRES_URL = os.environ.get(
    "PAPERBOY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = bool(os.environ.get("CI")) or bool(os.environ.get("PAPERBOY_REQUIRE_POSTGRES"))


def _postgres_schema_url() -> Iterator[str]:
    """A URL whose search_path is a brand-new schema, dropped afterwards."""
    schema = "pb_test_" + uuid.uuid4().hex[:12]
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as e:
        admin.dispose()
        message = f"PostgreSQL at {POSTGRES_URL} is not usable: {e.__class__.__name__}: {e}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message + " (set CI=1 to make this a failure)")
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A storage URL for each backend: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'paperboy.db'}"
    else:
        yield from _postgres_schema_url()


def write_config(folder: Path, storage_url: str, extra: str = "") -> Path:
    """A config.toml in ``folder`` making it a complete, isolated paperboy instance."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(f'[storage]\nurl = "{storage_url}"\n{extra}', encoding="utf-8")
    return path


@pytest.fixture
def instance(tmp_path: Path, backend_url: str) -> Config:
    """A config for an isolated instance in a temp folder, on each storage backend."""
    return load_config(write_config(tmp_path, backend_url), env={})


@pytest.fixture
def sqlite_instance(tmp_path: Path) -> Config:
    """A config for an isolated instance on SQLite only (for tests not about storage)."""
    return load_config(write_config(tmp_path, "sqlite:///var/paperboy.db"), env={})


@pytest.fixture
def store(instance: Config) -> Iterator[Store]:
    """A migrated, empty store on each backend."""
    with open_store(instance) as opened:
        yield opened
