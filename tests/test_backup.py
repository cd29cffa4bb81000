"""``paperboy backup``: a consistent SQLite copy taken while another connection writes, and the
``pg_dump`` command (or its run) for PostgreSQL, with one-line refusals."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from pipeline.backup import pg_dump_command
from pipeline.config import load_config
from pipeline.models import SubscriberStatus
from pipeline.store import open_store
from tests.conftest import POSTGRES_URL, _postgres_schema_url, write_config

PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]


def backup(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PAPERBOY, "--config", str(config), "backup", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


class Writer(threading.Thread):
    """Another connection committing a row to each of two tables per transaction until
    stopped: any consistent snapshot has as many rows in one as in the other."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.commits = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with closing(sqlite3.connect(self.db, timeout=30, isolation_level=None)) as conn:
            while not self.stop.is_set():
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO pairs_a (n, pad) VALUES (?, randomblob(2000))", (1,))
                conn.execute("INSERT INTO pairs_b (n, pad) VALUES (?, randomblob(2000))", (1,))
                conn.execute("COMMIT")
                self.commits += 1


def test_a_backup_taken_while_another_connection_writes_is_consistent(tmp_path: Path) -> None:
    """Each copy taken while a writer commits opens as a paperboy store with the data, passes
    SQLite's integrity check, and holds whole transactions only; the writer kept going."""
    path = write_config(tmp_path, "sqlite:///var/paperboy.db")
    config = load_config(path, env={})
    with open_store(config) as store:
        store.subscribers.add("ada@example.org", status=SubscriberStatus.ACTIVE)
        with store.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE pairs_a (n INTEGER, pad BLOB)")
            conn.exec_driver_sql("CREATE TABLE pairs_b (n INTEGER, pad BLOB)")
    live = tmp_path / "var" / "paperboy.db"
    writer = Writer(live)
    writer.start()
    try:
        while writer.commits < 200:  # some megabytes to copy while it goes on writing
            threading.Event().wait(0.01)
        before = writer.commits
        copies = []
        for n in range(3):
            done = backup(path, str(tmp_path / f"copy{n}.db"))
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith(f"backed up to {tmp_path / f'copy{n}.db'} (")
            copies.append(tmp_path / f"copy{n}.db")
        after = writer.commits
    finally:
        writer.stop.set()
        writer.join()
    assert after > before
    for copy in copies:
        with closing(sqlite3.connect(copy)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            a = conn.execute("SELECT count(*) FROM pairs_a").fetchone()[0]
            b = conn.execute("SELECT count(*) FROM pairs_b").fetchone()[0]
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert a == b and before <= a <= writer.commits
        restored = load_config(write_config(tmp_path / copy.stem, f"sqlite:///{copy}"), env={})
        with open_store(restored) as store:
            found = store.subscribers.find("ada@example.org")
            assert found is not None and found.status == SubscriberStatus.ACTIVE


def test_backup_refuses_to_overwrite_or_guess_with_one_line(tmp_path: Path) -> None:
    """An existing PATH is kept unless --force; a folder, a missing folder or a missing
    database each get one line and exit 1, and leave nothing behind."""
    path = write_config(tmp_path, "sqlite:///var/paperboy.db")
    missing_db = backup(path, str(tmp_path / "b.db"))
    assert missing_db.returncode == 1
    assert missing_db.stderr.strip().splitlines() == [
        f"paperboy: error: no SQLite database at {tmp_path / 'var' / 'paperboy.db'}; "
        "check storage.url"
    ]
    with open_store(load_config(path, env={})) as store:
        store.subscribers.add("ada@example.org", status=SubscriberStatus.ACTIVE)
    target = tmp_path / "b.db"
    target.write_bytes(b"an older backup")
    refused = backup(path, str(target))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"paperboy: error: {target} already exists; pass --force to overwrite it"
    )
    assert target.read_bytes() == b"an older backup"
    assert backup(path, str(target), "--force").returncode == 0
    with closing(sqlite3.connect(target)) as conn:
        assert conn.execute("SELECT email FROM subscribers").fetchall() == [("ada@example.org",)]
    folder = backup(path, str(tmp_path))
    assert folder.returncode == 1 and "is a folder; give the backup's file name" in folder.stderr
    nowhere = backup(path, str(tmp_path / "no" / "such" / "b.db"))
    assert nowhere.returncode == 1
    assert nowhere.stderr.strip().endswith(
        f"folder {tmp_path / 'no' / 'such'} does not exist; create it first"
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_pg_dump_command_never_carries_the_password() -> None:
    """The command names host, port, user, database (and the schema a search_path sets);
    the password goes only into the environment pg_dump reads."""
    url = (
        "postgresql+psycopg://paperboy:s3cr%40t@db.example.org:5433/papers"
        "?options=-csearch_path%3Dpb"
    )
    args, env = pg_dump_command(url, Path("/srv/b.dump"))
    assert args == [
        "pg_dump",
        "--format=custom",
        "--file=/srv/b.dump",
        "--host=db.example.org",
        "--port=5433",
        "--username=paperboy",
        "--schema=pb",
        "papers",
    ]
    assert env == {"PGPASSWORD": "s3cr@t"}
    assert not any("s3cr" in a for a in args)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema's URL (its search_path set in the URL's options)."""
    yield from _postgres_schema_url()


@pytest.mark.postgres
def test_postgresql_backup_prints_pg_dump_then_runs_it(tmp_path: Path, postgres_url: str) -> None:
    """Without --run the command is printed (exit 0, nothing written); with --run pg_dump
    writes a custom-format dump of paperboy's schema, and pg_restore brings it back."""
    path = write_config(tmp_path, postgres_url)
    with open_store(load_config(path, env={})) as store:
        store.subscribers.add("ada@example.org", status=SubscriberStatus.ACTIVE)
    target = tmp_path / "paperboy.dump"
    printed = backup(path, str(target))
    assert printed.returncode == 0, printed.stderr
    assert "pg_dump --format=custom --file=" in printed.stdout
    assert "--schema=pb_test_" in printed.stdout
    assert not target.exists()
    ran = backup(path, str(target), "--run")
    assert ran.returncode == 0, ran.stderr
    listing = subprocess.run(
        ["pg_restore", "--list", str(target)], capture_output=True, text=True, check=True
    ).stdout
    assert "TABLE DATA pb_test_" in listing and " subscribers " in listing
    again = backup(path, str(target), "--run")
    assert again.returncode == 1 and "already exists; pass --force" in again.stderr

    # The README's restore: pg_restore --clean brings back what was lost since.
    with open_store(load_config(path, env={})) as store:
        lost = store.subscribers.find("ada@example.org")
        assert lost is not None and store.subscribers.delete(lost.id)
    args, env = pg_dump_command(postgres_url, target)
    connection = [a for a in args if a.startswith(("--host=", "--port=", "--username="))]
    restore = ["pg_restore", "--clean", "--if-exists", "--no-owner", *connection]
    subprocess.run(
        [*restore, f"--dbname={args[-1]}", str(target)],
        env={**os.environ, **env},
        capture_output=True,
        check=True,
    )
    with open_store(load_config(path, env={})) as store:
        assert store.subscribers.find("ada@example.org") is not None


@pytest.mark.postgres
def test_a_failing_pg_dump_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """pg_dump's own complaint (here: no such database) is the one line; no file is left."""
    url = make_url(POSTGRES_URL).set(database="pb_no_such_db")
    path = write_config(tmp_path, url.render_as_string(hide_password=False))
    failed = backup(path, str(tmp_path / "x.dump"), "--run")
    assert failed.returncode == 1
    [line] = failed.stderr.strip().splitlines()
    assert line.startswith("paperboy: error: pg_dump failed: ")
    assert '"pb_no_such_db" does not exist' in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]
