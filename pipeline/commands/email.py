"""``paperboy preview`` and ``paperboy send``: look at a digest, deliver what is due."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.commands.common import console, fail, load, store_for
from pipeline.links import Links

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.deliver import Tally


def parse_now(value: str | None) -> dt.datetime:
    """``--now``: an ISO date-time; without an offset it is UTC."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"--now {value!r} is not an ISO date-time (example: 2026-07-03T07:30:00+02:00)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def preview(
    email: Annotated[str, typer.Argument(help="A subscriber's address.")],
    date: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Edition date (default: today, their time)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write FILE.html (the HTML part) or FILE.eml (all)."),
    ] = None,
) -> None:
    """Render a subscriber's digest without sending it or touching the ledger.

    Without --out the subject and the text part are printed. An edition already in the
    ledger is shown as it was mailed (its papers, reasons and "N more"); otherwise the
    papers are matched now.

    Example: paperboy preview reader@example.org --out /tmp/digest.html
    """
    # The delivery engine and the renderer (SQLAlchemy, Jinja, MJML): only needed here.
    from pipeline.editions import local_now
    from pipeline.ledger import digest_links
    from pipeline.mime import build_message, message_bytes, message_id_for
    from pipeline.preview import edition_selection
    from pipeline.render import Renderer

    if out is not None and out.suffix.lower() not in (".html", ".htm", ".eml"):
        fail(f"--out {str(out)!r}: the file must end in .html or .eml")
    config = load()
    now = dt.datetime.now(dt.UTC)
    with store_for(config) as store:
        sub = store.subscribers.find(email)
        if sub is None:
            fail(f"no subscriber with address {email!r}; see `paperboy subscribers list`")
        edition = date.date() if date else local_now(sub, now).date()
        if date:  # match as of that edition's send time, not as of today
            local = local_now(sub, now).tzinfo
            now = dt.datetime.combine(edition, dt.time(sub.send_hour), local).astimezone(dt.UTC)
        # As mailed when the ledger has it, else as `send` would match: with the stored vectors.
        selection = edition_selection(store, config, sub, edition, now)
    renderer = Renderer.from_config(config)
    ids = [sp.paper.id for sp in selection.papers]
    links = digest_links(Links.for_config(config), sub.id, edition, ids)
    rendered = renderer.digest(selection, sub, links)
    err = console(stderr=True, highlight=True)
    if not selection.papers:
        err.print(f"nothing new matched {email} for {edition}; this is the empty digest")
    if out is None:
        typer.echo(f"Subject: {rendered.subject}\n")
        typer.echo(rendered.text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".eml":
        message = build_message(
            rendered,
            to=sub.email,
            email=config.email,
            message_id=message_id_for(sub.id, edition, config.email),
            unsubscribe_url=links.unsubscribe,
            date=now,
        )
        out.write_bytes(message_bytes(message))
    else:
        out.write_text(rendered.html, encoding="utf-8")
    err.print(f"wrote {out} ({len(selection.papers)} papers, subject: {rendered.subject})")


def send(
    now: Annotated[
        str | None,
        typer.Option("--now", help="Act as if it were this ISO time (default: now)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what is due; queue and send nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Deliver every digest that is due: new editions, retries, and sends a crash cut short.

    Prints sent / deferred / failed / skipped (and sent_ambiguous: the connection was lost
    after the message and before the server's reply; perhaps delivered, never resent), then
    one line per reason for deferrals and failures, with how many editions each
    (`paperboy deliveries` lists them one by one). Only
    one process plans (queues) editions at a time; while another holds that role (e.g.
    `paperboy run`), this one sends only what is already queued, and says so. Exit 1 if any
    delivery failed, if the run was aborted (e.g. SMTP authentication or TLS failed; nothing
    is marked then) or paused by the circuit breaker, or if editions were due and none was
    sent; the last line says why. SIGTERM stops claiming editions, finishes the sends in
    flight, leaves the rest queued for the next run, and exits 143.

    Example: paperboy send --dry-run
    """
    # The delivery engine (SQLAlchemy, the renderer, the SMTP client): only needed here.
    from pipeline.deliver import Outcome, StopRequest
    from pipeline.run import deliver_due

    config = load()
    when = parse_now(now)
    err = console(stderr=True, highlight=True)
    progress = Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json or dry_run,
    )
    task = progress.add_task("sending", total=0)

    def on_total(n: int) -> None:
        progress.update(task, total=(progress.tasks[0].total or 0) + n)

    def on_outcome(outcome: Outcome) -> None:
        progress.advance(task)

    # SIGTERM (systemctl stop, a container shutting down) lets the sends in flight finish and
    # releases the lease, so the next run starts at once instead of after sending_stale_minutes.
    stop = StopRequest()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set("SIGTERM"))
    try:
        with progress:
            tally = deliver_due(
                config,
                when,
                dry_run=dry_run,
                on_total=on_total,
                on_outcome=on_outcome,
                stop=stop,
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
    _report(tally, as_json=as_json, dry_run=dry_run, err=err)
    if tally.stopped:
        typer.echo(f"paperboy: {tally.stopped}", err=True)
        sys.exit(128 + signal.SIGTERM)  # what a shell reports for a process SIGTERM ended
    problem = None if dry_run else tally.problem()
    if problem:
        typer.echo(f"paperboy: error: {problem}", err=True)
    if problem or tally.failed:
        sys.exit(1)


def _report(tally: Tally, *, as_json: bool, dry_run: bool, err: Console) -> None:
    """What ``send`` prints: the summary (or JSON), then one line per reason."""
    if tally.busy and not as_json:
        err.print(
            "another paperboy is the planner (a `paperboy run`, or a send): this run queued "
            "no new editions and sent only what was already queued"
        )
    if as_json:
        # "planned": false when another process held the planner role (then "busy": true)
        typer.echo(json.dumps({**tally.as_dict(), "planned": not tally.busy}, indent=2))
    elif dry_run:
        typer.echo(
            f"dry run: {tally.queued} new editions to queue, {tally.skipped} with nothing new, "
            f"{tally.missed} too late (missed), {tally.due} due to send now"
        )
    else:
        ambiguous = f", sent_ambiguous {tally.ambiguous}" if tally.ambiguous else ""
        typer.echo(
            f"sent {tally.sent}{ambiguous}, deferred {tally.deferred}, failed {tally.failed}, "
            f"skipped {tally.skipped}, missed {tally.missed} ({tally.queued} new editions queued)"
        )
        for status, reason, n in tally.grouped():
            typer.echo(f"  {status} {n}: {reason}", err=True)
        if tally.ambiguous:
            typer.echo(
                f"  {tally.ambiguous} editions lost their connection after the message was "
                "sent: perhaps delivered, possibly duplicates if resent, so not resent",
                err=True,
            )
