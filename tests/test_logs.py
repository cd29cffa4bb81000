"""The service's log: one line per event, never wrapped off a terminal, each quarantine once,
and JSON lines with ``--log-json``; ``--version``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parent.parent
PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]
FAST = """
[schedule]
ingest_every_seconds = 0.2
deliver_every_seconds = 0.2
config_reload_seconds = 0.2
[ingest]
settle_seconds = 0
"""
# Long enough that a reason after it passes 80 columns, where rich used to wrap.
BAD = "hf_daily_papers_2026-07-03_exported_by_a_script_with_a_long_descriptive_name.json"
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) [\w.]+: ")


def run_until_quarantined(tmp_path: Path, *options: str) -> tuple[str, str]:
    """`paperboy [options] run --no-web` with its output in a file (not a terminal), until the
    bad inbox file is quarantined and a few more scans have passed; the log and the reason."""
    path = write_config(tmp_path, "sqlite:///var/paperboy.db", FAST)
    config = load_config(path, env={})
    config.paths.inbox.mkdir(parents=True)
    (config.paths.inbox / BAD).write_text('[{"paper": {"id": "2607.00001", "title": "Cut')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env["PYTHONPATH"] = str(ROOT)
    log = tmp_path / "service.log"
    note = config.paths.quarantine / f"{BAD}.error.txt"
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [*PAPERBOY, "--config", str(path), *options, "run", "--no-web"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while not note.exists():
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
                time.sleep(0.1)
            time.sleep(1.0)  # several more scans: none may report the file again
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    reason = note.read_text(encoding="utf-8").strip().removeprefix(f"{BAD}: ")
    return log.read_text(encoding="utf-8"), reason


def test_a_quarantine_is_logged_once_on_one_unwrapped_line(tmp_path: Path) -> None:
    """Off a terminal every line is one whole event with its time and level; the quarantined
    file appears once, with its full reason on the same line."""
    out, reason = run_until_quarantined(tmp_path)
    lines = out.splitlines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), out
    quarantined = [line for line in lines if "quarantined" in line]
    assert len(quarantined) == 1, out
    assert f"quarantined {BAD}: {reason}" in quarantined[0]
    assert len(quarantined[0]) > 120  # long, and still one line
    assert lines[-1].endswith("paperboy: stopped")


def test_log_json_writes_one_json_object_per_line(tmp_path: Path) -> None:
    """With --log-json each line is a JSON object with time, level, logger and message."""
    out, reason = run_until_quarantined(tmp_path, "--log-json")
    events = [json.loads(line) for line in out.splitlines()]
    assert events and all({"time", "level", "logger", "message"} <= e.keys() for e in events)
    [quarantine] = [e for e in events if e["message"].startswith("quarantined")]
    assert quarantine["level"] == "WARNING" and quarantine["logger"] == "paperboy.run"
    assert quarantine["message"] == f"quarantined {BAD}: {reason}"
    assert events[-1]["message"] == "stopped"


def test_version_prints_the_installed_version() -> None:
    """`paperboy --version` prints the package's version and exits 0, before any config."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"paperboy {metadata.version('paperboy')}\n"
