"""``paperboy status``: how today went and whether paperboy is healthy, for an admin or a
script."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.commands.common import load, plural, store_for

if TYPE_CHECKING:  # the report, for the annotations only
    from pipeline.today import Today


def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print status, reasons and today's figures as JSON.")
    ] = False,
) -> None:
    """How today went, and whether paperboy is healthy: ok, or degraded with one reason a line.

    Today (UTC): dumps ingested and quarantined (with the reasons), the last dump's age,
    papers new today, subscribers by status, today's editions by status, and when the next
    editions fall due. Degraded when: the circuit breaker paused delivery (until a run sends),
    the last delivery run was aborted, matching fell back to lexical, the service's last config
    reload failed, or no dump arrived within schedule.dump_stale_hours. Exit 0 when ok, 1 when
    degraded.

    Example: paperboy status --json
    """
    from pipeline.today import today  # SQLAlchemy: kept off `--help`

    config = load()
    with store_for(config) as store:
        report = today(store, config, dt.datetime.now(dt.UTC))
    if as_json:
        typer.echo(json.dumps(as_dict(report), ensure_ascii=False))
    else:
        for line in as_lines(report):
            typer.echo(line)
    if report.health.reasons:
        raise typer.Exit(1)


def as_dict(report: Today) -> dict[str, Any]:
    """The JSON form: ``status`` and ``reasons`` first, as scripts read them, then the day."""
    last = report.last_dump
    return {
        "status": report.health.status,
        "reasons": report.health.model_dump(mode="json")["reasons"],
        "date": report.now.astimezone(dt.UTC).date().isoformat(),
        "dumps": [d.model_dump(mode="json") for d in report.dumps],
        "quarantined": [q.model_dump(mode="json") for q in report.quarantined],
        "last_dump": None if last is None else last.model_dump(mode="json"),
        "last_dump_hours": _round(report.last_dump_hours),
        "dump_stale": report.dump_stale,
        "papers_new": report.papers_new,
        "subscribers": report.subscribers,
        "editions": report.editions,
        "next_runs": [r.model_dump(mode="json") for r in report.next_runs],
    }


def as_lines(report: Today) -> list[str]:
    """The text form: the status and its reasons, then one line per figure."""
    lines = [report.health.status]
    for reason in report.health.reasons:
        lines.append(f"  {reason.name}: {reason.reason} (since {_utc(reason.since)})")
    day = report.now.astimezone(dt.UTC).date()
    lines.append(
        f"dumps today ({day}): {len(report.dumps)} ingested, {len(report.quarantined)} quarantined"
    )
    for dump in report.dumps:
        lines.append(
            f"  {dump.name} ({dump.format}): {plural(dump.papers, 'paper')}, "
            f"ingested {_utc(dump.ingested_at)}"
        )
    for bad in report.quarantined:
        lines.append(f"  quarantined {bad.name}: {bad.reason or 'no reason recorded'}")
    lines.append(f"last dump: {_last_dump(report)}")
    lines.append(f"papers new today: {report.papers_new}")
    lines.append(f"subscribers: {_counts(report.subscribers)}")
    lines.append(f"editions today: {_counts(report.editions)}")
    runs = ", ".join(f"{_utc(r.at)} ({plural(r.subscribers, 'reader')})" for r in report.next_runs)
    lines.append(f"next editions due: {runs or 'none (no active subscribers)'}")
    return lines


def _last_dump(report: Today) -> str:
    hours, last = report.last_dump_hours, report.last_dump
    if hours is None or last is None:
        return "none yet"
    text = f"{last.name}, {hours:.1f} hours ago"
    if report.dump_stale:
        text += f" (warning: older than schedule.dump_stale_hours = {report.dump_stale_hours:g})"
    return text


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items()) or "none"


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _round(hours: float | None) -> float | None:
    return None if hours is None else round(hours, 2)
