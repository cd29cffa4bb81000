"""``paperboy status``: the health record, read by an admin or a script."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from pipeline.config import load_config
from pipeline.store import open_store
from tests.conftest import write_config

PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]


def status(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PAPERBOY, "--config", str(config), "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_is_ok_then_degraded_with_its_reason_then_ok_again(tmp_path: Path) -> None:
    """Exit 0 and "ok" on a healthy store; a noted condition makes it "degraded" (exit 1) with
    the reason, in text and JSON; clearing the condition makes it ok again."""
    path = write_config(tmp_path, "sqlite:///var/paperboy.db")
    config = load_config(path, env={})
    ok = status(path)
    assert ok.returncode == 0 and ok.stdout.splitlines()[0] == "ok", ok.stderr
    with open_store(config) as store:
        store.health.set(
            "run", "last delivery run aborted: 535 auth failed", dt.datetime.now(dt.UTC)
        )
    bad = status(path)
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[0] == "degraded"
    assert "run: last delivery run aborted: 535 auth failed" in bad.stdout
    data = json.loads(status(path, "--json").stdout)
    assert data["status"] == "degraded"
    assert [r["name"] for r in data["reasons"]] == ["run"]
    with open_store(config) as store:
        store.health.clear("run")
    data = json.loads(status(path, "--json").stdout)
    assert (data["status"], data["reasons"]) == ("ok", [])
