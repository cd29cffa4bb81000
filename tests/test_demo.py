"""`paperboy demo`: one whole cycle on the bundled samples, inside a folder of its own."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import shutil
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from rich.console import Console

from pipeline.commands.demo import _cycle, _new_instance
from pipeline.config import load_config
from pipeline.models import Profile
from pipeline.resources import sample_inbox

PAPERBOY = [sys.executable, "-c", "from pipeline.cli import app; app()"]
ROOT = Path(__file__).resolve().parents[1]


def demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [*PAPERBOY, "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=cwd,
        env=env,
    )


def test_demo_ingests_matches_and_delivers_one_digest(tmp_path: Path) -> None:
    """The sample dumps go in, the reader's topics pick papers, one .eml comes out."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    folder = tmp_path / "demo"
    result = demo(
        "--dir", str(folder), "--topic", "spiking-neural-networks", "--json", cwd=elsewhere
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)

    assert [f["error"] for f in out["files"]] == [None, None, None]
    assert sum(f["new"] for f in out["files"]) > 10
    assert out["delivery"]["sent"] == 1
    titles = [p["title"] for p in out["papers"]]
    assert titles, "the spiking-network samples should match"
    spiking = [t for t in titles if "spik" in t.lower() or "neuromorphic" in t.lower()]
    # Only the on-topic samples: a paper that shares just a generic word of a topic keyword
    # ("transformer" of "spiking transformer") is not mailed.
    assert len(spiking) == 3 and titles == spiking, titles

    [eml] = out["emails"]
    assert Path(eml).parent == folder / "var" / "outbox"
    message = email.message_from_bytes(Path(eml).read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == out["reader"]["email"]
    html = message.get_body(("html",))
    assert html is not None
    body = html.get_content()
    assert all(t in body for t in titles)
    assert "Image Compression" not in body  # a sample paper about none of the reader's topics
    assert list(elsewhere.iterdir()) == []  # the demo wrote only into its own folder


@pytest.mark.parametrize("clock", ["00:05", "06:30", "13:59", "23:55"])
def test_the_demo_reader_is_due_whatever_the_time_of_day(tmp_path: Path, clock: str) -> None:
    """The demo mails its reader at once at any hour: a fixed early send hour made the reader
    "joined too late for today" after delivery.late_cutoff_hours, and the demo sent nothing."""
    hour, minute = map(int, clock.split(":"))
    now = dt.datetime(2026, 7, 6, hour, minute, tzinfo=dt.UTC)
    config = load_config(_new_instance(tmp_path / "demo"), env={})
    config.paths.inbox.mkdir(parents=True)
    for path in sample_inbox().iterdir():
        shutil.copyfile(path, config.paths.inbox / path.name)
    profile = Profile(topics=("spiking-neural-networks",))
    _, tally, picked = _cycle(config, profile, Console(quiet=True), now)
    assert (tally.sent, tally.missed) == (1, 0)
    assert picked


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    """An existing instance is never overwritten."""
    keep = tmp_path / "config.toml"
    keep.write_text("# mine\n", encoding="utf-8")
    result = demo("--dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "not an empty folder" in result.stderr
    assert keep.read_text(encoding="utf-8") == "# mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_demo_names_an_unknown_topic_before_creating_anything(tmp_path: Path) -> None:
    result = demo("--dir", str(tmp_path / "new"), "--topic", "astrology", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "paperboy: error: unknown topic 'astrology'; `paperboy topics` lists them"
    )
    assert not (tmp_path / "new").exists()
