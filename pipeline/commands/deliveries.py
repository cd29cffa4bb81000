"""``paperboy deliveries``: one edition date's ledger rows, with attempts and the last error."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from pipeline.commands.common import console, load, plural, store_for
from pipeline.models import Delivery, DeliveryStatus


def deliveries(
    date: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Edition date (default: today, UTC)."),
    ] = None,
    status: Annotated[
        list[DeliveryStatus] | None,
        typer.Option("--status", "-s", help="Only these statuses; repeat for more."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List one edition date's deliveries: reader, status, attempts, next try, last error.

    The last error is the server's reply or the reason the edition was skipped or missed.

    Example: paperboy deliveries --status deferred --status failed
    """
    edition = date.date() if date else dt.datetime.now(dt.UTC).date()
    with store_for(load()) as store:
        rows = store.ledger.all(status or None, edition)
        emails = {s.id: s.email for s in store.subscribers.all()}
    listed = [_row(d, emails.get(d.subscriber_id)) for d in rows]
    if as_json:
        typer.echo(json.dumps(listed, indent=2, ensure_ascii=False))
        return
    table = Table(show_edge=False)
    for column in ("subscriber", "status", "attempts", "first try", "next try", "last error"):
        table.add_column(column, justify="right" if column == "attempts" else "left")
    for row in listed:
        table.add_row(
            row["email"] or f"#{row['subscriber_id']} (erased)",
            row["status"],
            str(row["attempts"]),
            _hhmm(row["first_attempt_at"]),
            _hhmm(row["next_attempt_at"]) if row["status"] == "deferred" else "-",
            row["last_error"] or "-",
        )
    console().print(table)
    typer.echo(f"{plural(len(listed), 'delivery', 'deliveries')} for the edition of {edition}")


def _row(delivery: Delivery, email: str | None) -> dict[str, Any]:
    return {
        "subscriber_id": delivery.subscriber_id,
        "email": email,
        "edition_date": delivery.edition_date.isoformat(),
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "first_attempt_at": _iso(delivery.first_attempt_at),
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "last_error": delivery.last_error,
        "server_reply": delivery.server_reply,
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat() if moment else None


def _hhmm(iso: str | None) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%H:%M UTC") if iso else "-"
