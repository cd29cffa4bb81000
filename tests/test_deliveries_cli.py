"""``paperboy deliveries``: an edition date's ledger rows with attempts and the last error."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.store import open_store
from tests.conftest import write_config
from tests.operator_world import DEFERRAL, FAILURE, seed_editions

NOW = dt.datetime(2026, 7, 3, 9, 30, tzinfo=dt.UTC)


def deliveries(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--config", str(path), "deliveries", *args], env={})
    return result.exit_code, result.stdout


def test_deliveries_lists_each_edition_with_attempts_and_last_error(
    tmp_path: Path, backend_url: str
) -> None:
    """Every row of the date, filtered by status when asked, each with its reader, attempts and
    the server's last reply in full (never cut to the terminal's width)."""
    path = write_config(tmp_path, backend_url)
    with open_store(load_config(path, env={})) as store:
        ids = seed_editions(store, NOW)
    code, out = deliveries(path, "--date", "2026-07-03")
    assert code == 0
    assert out.rstrip().endswith("5 deliveries for the edition of 2026-07-03")
    [deferred] = [line for line in out.splitlines() if "deferred" in line]
    assert "reader1@example.org" in deferred and " 2 " in deferred and DEFERRAL in deferred
    [failed] = [line for line in out.splitlines() if " failed " in line]
    assert "reader2@example.org" in failed and FAILURE in failed
    code, out = deliveries(path, "--date", "2026-07-03", "--status", "failed", "--json")
    [row] = json.loads(out)
    assert row["subscriber_id"] == ids["failed"] and row["email"] == "reader2@example.org"
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 1, FAILURE)
    code, out = deliveries(path, "--date", "2026-07-03", "-s", "deferred", "-s", "missed")
    assert "2 deliveries" in out and "not sent by its send hour" in out
    code, out = deliveries(path, "--date", "2026-07-04")
    assert code == 0 and "0 deliveries for the edition of 2026-07-04" in out


def test_deliveries_refuses_an_unknown_status(tmp_path: Path) -> None:
    """A status that is not a ledger status is a usage error naming the choices."""
    path = write_config(tmp_path, "sqlite:///var/paperboy.db")
    result = CliRunner().invoke(app, ["--config", str(path), "deliveries", "-s", "lost"], env={})
    assert result.exit_code == 2 and "deferred" in result.stderr
