"""Backups of the store: a SQLite file copied with SQLite's online backup API (consistent while
the service writes), or the ``pg_dump`` command for a PostgreSQL database.

A copy is written to a temporary file beside the target and renamed into place, so the
target is never a half-written file, and an existing target is replaced only when asked.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pipeline.errors import BackupError
from pipeline.models import Frozen

SQLITE_PREFIX = "sqlite:///"


class BackupResult(Frozen):
    """A finished backup: where, how big, and the schema revision it holds."""

    path: str
    bytes: int
    revision: str | None


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; None for any other backend."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    name = url[len(SQLITE_PREFIX) :].split("?", 1)[0]
    if name in ("", ":memory:"):
        raise BackupError("storage.url is an in-memory SQLite database: no file to back up")
    return Path(name)


def check_target(target: Path, force: bool) -> None:
    """Refuse a target that exists (unless ``force``), is a folder, or has no folder to go in."""
    if target.is_dir():
        raise BackupError(f"{target} is a folder; give the backup's file name, e.g. {target}/x.db")
    if target.exists() and not force:
        raise BackupError(f"{target} already exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise BackupError(f"folder {target.parent} does not exist; create it first")


def backup_sqlite(source: Path, target: Path, *, force: bool = False) -> BackupResult:
    """Copy the SQLite database at ``source`` to ``target`` while other connections may be
    writing: the backup API copies one consistent snapshot (a read transaction in WAL mode
    never blocks writers). The copy is a single file (rollback journal, not WAL)."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}; check storage.url")
    check_target(target, force)
    if target.resolve() == source.resolve():
        raise BackupError(f"{target} is the live database itself; give another path")
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with (
            closing(sqlite3.connect(source, timeout=30)) as src,
            closing(sqlite3.connect(partial)) as dst,
        ):
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            problems = dst.execute("PRAGMA quick_check").fetchall()
            if problems != [("ok",)]:
                raise BackupError(f"the copy of {source} failed its check: {problems[0][0]}")
            revision = _revision(dst)
        os.replace(partial, target)
    except sqlite3.Error as e:
        raise BackupError(f"backup of {source} to {target} failed: {e}") from e
    except OSError as e:
        raise BackupError(f"cannot write {target}: {e.strerror}") from e
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path=str(target), bytes=target.stat().st_size, revision=revision)


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None  # a database no paperboy has migrated yet
    return str(row[0]) if row else None


def pg_dump_command(url: str, target: Path) -> tuple[list[str], dict[str, str]]:
    """The ``pg_dump`` arguments that back up the database of ``url`` to ``target`` (custom
    format, for ``pg_restore``), and the environment to add when running it (the password,
    which the arguments never carry). A ``search_path`` set in the URL's ``options`` dumps
    that schema only."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise BackupError(f"storage.url is not a database URL: {e}") from e
    if not parsed.database:
        raise BackupError("storage.url names no database; add /<name> to it")
    args = ["pg_dump", "--format=custom", f"--file={target}"]
    if parsed.host:
        args.append(f"--host={parsed.host}")
    if parsed.port:
        args.append(f"--port={parsed.port}")
    if parsed.username:
        args.append(f"--username={parsed.username}")
    schema = _search_path(parsed.query.get("options"))
    if schema:
        args.append(f"--schema={schema}")
    args.append(parsed.database)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    return args, {k: str(v) for k, v in env.items()}


def _search_path(options: str | tuple[str, ...] | None) -> str | None:
    """The schema of a ``-csearch_path=<schema>`` connection option, if there is one."""
    if options is None:
        return None
    text = unquote(options if isinstance(options, str) else " ".join(options))
    for part in text.split():
        name = part.removeprefix("-c").removeprefix("--")
        if name.startswith("search_path="):
            return name.split("=", 1)[1].split(",")[0].strip('"') or None
    return None


def shown(args: list[str]) -> str:
    """The command as a shell line to copy."""
    return shlex.join(args)


def run_pg_dump(url: str, target: Path, *, force: bool = False) -> BackupResult:
    """Run ``pg_dump_command`` into a temporary file beside ``target``, then move it there."""
    check_target(target, force)
    if shutil.which("pg_dump") is None:
        raise BackupError(
            "pg_dump is not installed here (PostgreSQL client tools); install it, or run the "
            "command without --run where it is"
        )
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    args, env = pg_dump_command(url, partial)
    try:
        # The arguments are built from storage.url by pg_dump_command, not from a shell.
        done = subprocess.run(  # noqa: S603
            args, env={**os.environ, **env}, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
            last = lines[-1].removeprefix("pg_dump: ").removeprefix("error: ")
            raise BackupError(f"pg_dump failed: {last}")
        os.replace(partial, target)
    except OSError as e:
        raise BackupError(f"cannot write {target}: {e.strerror}") from e
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path=str(target), bytes=target.stat().st_size, revision=None)
