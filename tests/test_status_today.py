"""``paperboy status`` as the Today page in text, and the stale-dump condition it shares with
``/healthz`` (served over real HTTP, HEAD included)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import Config, load_config
from pipeline.store import open_store
from tests.conftest import write_config
from tests.delivery_world import seed_papers
from tests.operator_world import seed_editions


def status(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--config", str(path), "status", *args], env={})
    return result.exit_code, result.stdout


def test_status_shows_how_today_went(tmp_path: Path, backend_url: str) -> None:
    """Dumps ingested and quarantined (with the reason), the last dump's age, new papers,
    subscribers and today's editions by status, and the next editions due."""
    path = write_config(tmp_path, backend_url)
    config = load_config(path, env={})
    now = dt.datetime.now(dt.UTC)
    with open_store(config) as store:
        seed_papers(store, 4, at=now - dt.timedelta(minutes=5))
        seed_editions(store, now)
    config.paths.quarantine.mkdir(parents=True)
    (config.paths.quarantine / "broken.json").write_text("{", encoding="utf-8")
    (config.paths.quarantine / "broken.json.error.txt").write_text(
        "broken.json: not valid JSON (line 1)\n", encoding="utf-8"
    )
    code, out = status(path)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "ok"
    assert lines[1] == f"dumps today ({now.date()}): 1 ingested, 1 quarantined"
    assert "  seed.json (hf_api): 4 papers" in out
    assert "  quarantined broken.json: not valid JSON (line 1)" in out
    assert "last dump: seed.json, 0.1 hours ago" in out
    assert "papers new today: 4" in out or now.hour == 0  # just after midnight: yesterday's
    assert "subscribers: 1 pending, 5 active" in out
    assert "editions today: 1 queued, 1 sent, 1 deferred, 1 failed, 1 missed" in out
    assert "next editions due: " in out and "(5 readers)" in out
    data = json.loads(status(path, "--json")[1])
    assert data["status"] == "ok" and data["dump_stale"] is False
    assert data["editions"] == {"queued": 1, "sent": 1, "deferred": 1, "failed": 1, "missed": 1}
    assert data["subscribers"] == {"pending": 1, "active": 5}
    assert data["quarantined"][0]["reason"] == "not valid JSON (line 1)"
    assert [d["papers"] for d in data["dumps"]] == [4]
    assert data["next_runs"][0]["subscribers"] == 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, Config, str]]:
    """The web app under uvicorn on a free port, with its config file."""
    path = write_config(
        tmp_path, "sqlite:///var/paperboy.db", '[web]\nsecret_key = "status-secret-0123456789"\n'
    )
    config = load_config(path, env={})
    port = free_port()
    from subscribers.web import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield path, config, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


def test_a_stale_dump_degrades_status_and_healthz_until_a_new_one(
    served: tuple[Path, Config, str],
) -> None:
    """No dump for longer than schedule.dump_stale_hours (36): status exits 1 and /healthz says
    degraded, both naming the dump; HEAD /healthz answers 200 with no body; a new dump makes
    both ok again."""
    path, config, base = served
    now = dt.datetime.now(dt.UTC)
    with open_store(config) as store:
        seed_papers(store, 2, at=now - dt.timedelta(hours=40))
    code, out = status(path)
    assert code == 1
    assert out.splitlines()[0] == "degraded"
    assert "  dump: no dump ingested for 40 hours (schedule.dump_stale_hours = 36)" in out
    assert "warning: older than schedule.dump_stale_hours = 36" in out
    body = httpx.get(f"{base}/healthz").json()
    assert body["status"] == "degraded"
    assert [r["name"] for r in body["reasons"]] == ["dump"]
    head = httpx.head(f"{base}/healthz")
    assert head.status_code == 200 and head.content == b""
    with open_store(config) as store:
        seed_papers(store, 2, at=now, start=10)
    assert status(path)[0] == 0
    assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
