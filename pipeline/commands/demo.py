"""``paperboy demo``: one whole cycle (ingest, match, render, deliver) in a throw-away instance."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from pipeline.commands.common import console, fail, store_for
from pipeline.config import load_config
from pipeline.matching.topics import load_catalog
from pipeline.models import IngestOutcome, Paper, Profile, SubscriberStatus
from pipeline.resources import sample_inbox

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.deliver import Tally

DEMO_ADDRESS = "reader@demo.invalid"
DEMO_TOPICS = ("llm-inference", "spiking-neural-networks", "robotics")

CONFIG_TEXT = """\
# A demo instance made by `paperboy demo`: every default, mail written to var/outbox/.
# Try: paperboy --config {path} preview {address} --out digest.html
"""


def demo(
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Instance folder to create (must be new or empty; default: a new temp folder).",
            show_default=False,
        ),
    ] = None,
    dumps: Annotated[
        Path | None,
        typer.Option(
            "--dumps",
            help="Folder of dumps to ingest (default: the bundled sample dumps).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    topics: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="The demo reader's topics (repeatable)."),
    ] = None,
    interests: Annotated[
        str, typer.Option("--interest", "-i", help="The demo reader's free-text interests.")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run one end-to-end cycle on the sample dumps, in a new instance that touches nothing else.

    Creates a config, ingests the dumps, adds one active reader, matches and delivers their
    digest to the instance's outbox, and prints where the .eml is. The instance is kept, so
    every other command can be pointed at it with --config.

    Example: paperboy demo --topic diffusion-models --interest "video generation"
    """
    dumps = dumps or sample_inbox()
    files = sorted(p for p in dumps.glob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        fail(f"no dumps in {dumps}; pass --dumps with a folder of dump files")
    chosen = tuple(topics) if topics else DEMO_TOPICS
    unknown = [t for t in chosen if t not in load_catalog()]  # the demo config adds none
    if unknown:
        fail(f"unknown topic {unknown[0]!r}; `paperboy topics` lists them")
    config_path = _new_instance(folder)
    folder = config_path.parent
    config = load_config(config_path, env={})  # no PAPERBOY_* override may point elsewhere

    err = Console(stderr=True, quiet=as_json)
    err.print(f"demo instance: {folder}")
    config.paths.inbox.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copyfile(path, config.paths.inbox / path.name)
    profile = Profile(topics=chosen, interests=interests)
    outcomes, tally, picked = _cycle(config, profile, err, dt.datetime.now(dt.UTC))

    emails = sorted(config.paths.outbox.glob("*.eml"))
    result: dict[str, Any] = {
        "instance": str(folder),
        "config": str(config_path),
        "files": [_file_json(o) for o in outcomes],
        "reader": {"email": DEMO_ADDRESS, "topics": list(chosen), "interests": interests},
        "delivery": tally.as_dict(),
        "papers": [{"id": p.id, "title": p.title} for p in picked],
        "emails": [str(p) for p in emails],
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _report(chosen, interests, picked, emails, config_path)
    if tally.failed or tally.aborted or any(o.error for o in outcomes):
        raise typer.Exit(1)


def _cycle(
    config: Config, profile: Profile, err: Console, now: dt.datetime
) -> tuple[list[IngestOutcome], Tally, list[Paper]]:
    """Ingest the inbox, add the demo reader, give papers and texts their vectors (when the
    model is there), deliver what is due at ``now``; what came of each step."""
    from pipeline import run as steps  # SQLAlchemy, the matcher, the renderer: only needed here

    outcomes: list[IngestOutcome] = []
    with store_for(config) as store:
        for path in sorted(config.paths.inbox.iterdir()):
            outcome = steps.ingest_file(config, store, path)
            if outcome is not None:
                outcomes.append(outcome)
                err.print(f"  ingested {_describe(outcome)}", highlight=False)
        reader = store.subscribers.add(
            DEMO_ADDRESS,
            profile=profile,
            status=SubscriberStatus.ACTIVE,
            # This hour in the reader's zone (UTC): the edition is due at ``now`` and not late,
            # whatever the time of day. An earlier hour would make a reader who joined after it
            # (plus delivery.late_cutoff_hours) wait for tomorrow's edition.
            send_hour=now.hour,
            consent={"method": "admin entry without opt-in", "source": "paperboy demo"},
            now=now,
        )
        vectors = steps.embed_step(config, store)
        if vectors is not None:
            err.print(f"  vectors: {vectors.papers} papers, {vectors.texts} texts", highlight=False)
        tally = steps.deliver_due(config, now, store=store)
        row = store.ledger.get(reader.id, now.date())
        papers = store.papers.by_ids(row.paper_ids) if row else {}
        picked = [papers[i] for i in (row.paper_ids if row else ()) if i in papers]
    return outcomes, tally, picked


def _new_instance(folder: Path | None) -> Path:
    """The config file of a new demo instance in ``folder`` (default: a new temp folder)."""
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="paperboy-demo-"))
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        fail(f"{folder} is not an empty folder; the demo only writes into a new one")
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "config.toml"
    config_path.write_text(
        CONFIG_TEXT.format(path=config_path, address=DEMO_ADDRESS), encoding="utf-8"
    )
    return config_path


def _report(
    chosen: tuple[str, ...],
    interests: str,
    picked: list[Paper],
    emails: list[Path],
    config_path: Path,
) -> None:
    """What the demo did, for a person: the reader, their digest's papers, where the mail is."""
    out = console()
    out.print(f"{DEMO_ADDRESS} reads {', '.join(chosen)}" + (f"; {interests}" if interests else ""))
    if picked:
        out.print(f"their digest has {len(picked)} papers:")
        for paper in picked:
            out.print(f"  • {paper.title}", markup=False)
    else:
        out.print("nothing in the dumps matched them, so no digest was sent")
    for path in emails:
        typer.echo(f"mail: {path}")
    typer.echo(f"look at it: paperboy --config {config_path} preview {DEMO_ADDRESS} --out x.html")


def _describe(outcome: IngestOutcome) -> str:
    if outcome.error:
        return f"{outcome.name}: quarantined ({outcome.error})"
    return f"{outcome.name} ({outcome.format}): {outcome.new} new, {outcome.merged} merged"


def _file_json(outcome: IngestOutcome) -> dict[str, Any]:
    return {
        "name": outcome.name,
        "format": outcome.format,
        "new": outcome.new,
        "merged": outcome.merged,
        "error": outcome.error,
    }
