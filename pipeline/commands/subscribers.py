"""``paperboy subscribers add|list|show|remove|import|export``: manage readers by hand."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pipeline.commands.common import console, fail, load, plural, store_for
from pipeline.config import Config
from pipeline.errors import AddressError
from pipeline.links import Links
from pipeline.matching.topics import load_catalog
from pipeline.models import Frequency, Subscriber, SubscriberStatus
from pipeline.send import remove_mail_to
from subscribers.forms import normalize_email
from subscribers.roster import Format, check_rows, dump_rows, export_rows, jsonable, read_rows

if TYPE_CHECKING:  # SQLAlchemy and the renderer, for the annotations only
    from pipeline.store import Store
    from subscribers.signup import Notice

subscribers_app = typer.Typer(
    help="Add, list, show, remove, import and export subscribers.", no_args_is_help=True
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
FormatOption = Annotated[
    str | None, typer.Option("--format", help="csv or json (default: from the file name).")
]


@subscribers_app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The reader's address.")],
    topic: Annotated[
        list[str] | None, typer.Option("--topic", "-t", help="A topic slug; repeat for more.")
    ] = None,
    interests: Annotated[str, typer.Option(help="Interests in the reader's words.")] = "",
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Berlin.")] = "UTC",
    hour: Annotated[int, typer.Option(help="Local send hour, 0-23.")] = 7,
    frequency: Annotated[Frequency, typer.Option(help="daily, weekdays or weekly.")] = (
        Frequency.DAILY
    ),
    weekly_day: Annotated[int, typer.Option(help="0 = Monday … 6 = Sunday, when weekly.")] = 0,
    min_upvotes: Annotated[
        int, typer.Option(help="Skip papers with fewer Hugging Face upvotes (0 = no floor).")
    ] = 0,
    no_opt_in: Annotated[
        bool,
        typer.Option(
            "--no-opt-in",
            help="Activate at once without a confirmation mail (recorded as admin-entered).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Add one subscriber: pending with a confirmation mail, or active with --no-opt-in.

    Example: paperboy subscribers add reader@example.org --topic llm-inference --hour 8
    """
    config = load()
    fields = {
        "email": email,
        "status": "active" if no_opt_in else "pending",
        "topics": topic or [],
        "interests": interests,
        "timezone": timezone,
        "send_hour": str(hour),
        "frequency": frequency.value,
        "weekly_day": str(weekly_day),
        "min_upvotes": str(min_upvotes),
    }
    with store_for(config) as store:
        existing = _taken(store, [email])
        entries, errors = check_rows(
            [(1, fields)],
            known_topics=_topic_slugs(config),
            opt_in_skipped=no_opt_in,
            existing=existing,
            consent=_consent(no_opt_in, "cli add"),
        )
        if errors:
            fail("; ".join(e.message for e in errors), code=1)
        (new_id,) = store.subscribers.add_many(entries)
        sub = store.subscribers.get(new_id)
        if sub is None:  # removed by someone else in between: say so rather than crash
            fail(f"subscriber {new_id} was removed while being added", code=1)
        _embed_profiles(config, store, [sub])
        sent = _confirm([sub], config, store) if not no_opt_in else []
    _report_subscriber(sub, as_json, mailed=bool(sent))


@subscribers_app.command("list")
def list_(
    status: Annotated[
        list[SubscriberStatus] | None, typer.Option("--status", "-s", help="Only these statuses.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List subscribers with their status, topics and schedule.

    Example: paperboy subscribers list --status active --json
    """
    with store_for(load()) as store:
        subs = store.subscribers.all(status or None)
    if as_json:
        typer.echo(json.dumps(export_rows(subs), indent=2, ensure_ascii=False))
        return
    table = Table(show_edge=False)
    for column in ("id", "email", "status", "topics", "schedule", "since"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for sub in subs:
        table.add_row(
            str(sub.id),
            sub.email,
            sub.status.value,
            ", ".join(sub.profile.topics) or "-",
            _schedule(sub),
            f"{sub.created_at:%Y-%m-%d}",
        )
    console(highlight=True).print(table)
    typer.echo(plural(len(subs), "subscriber"))


@subscribers_app.command("show")
def show(
    who: Annotated[str, typer.Argument(help="Email address or subscriber id.")],
    as_json: JsonOption = False,
) -> None:
    """Show everything stored about one subscriber, consent record included.

    Example: paperboy subscribers show reader@example.org --json
    """
    with store_for(load()) as store:
        sub = _find(store, who)
        record = jsonable(store.subscribers.record(sub.id) or {})
    if as_json:
        typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
        return
    deliveries = record.pop("deliveries", [])
    votes = record.pop("feedback", [])
    for key, value in record.items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
        typer.echo(f"{key:>20}: {shown}")
    sent = sum(1 for d in deliveries if d["status"] == "sent")
    typer.echo(f"{'deliveries':>20}: {len(deliveries)} ({sent} sent)")
    up = sum(1 for v in votes if v["vote"] > 0)
    typer.echo(f"{'votes':>20}: {up} up, {len(votes) - up} down")


@subscribers_app.command("remove")
def remove(
    who: Annotated[str, typer.Argument(help="Email address or subscriber id.")],
    erase: Annotated[
        bool,
        typer.Option(
            "--erase", help="Delete the row and its history; keep only a suppression hash."
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Erase without asking (for scripts).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Unsubscribe a reader (nothing more is sent), or erase them for good with --erase.

    Erasing cannot be undone: it asks first on a terminal, and needs --yes otherwise.

    Example: paperboy subscribers remove reader@example.org --erase --yes
    """
    config = load()
    removed = 0
    with store_for(config) as store:
        sub = _find(store, who)
        if erase and not yes:
            _confirm_erase(sub.email)
        if erase:
            store.subscribers.delete(sub.id, "erased by an admin")
            # Its mails waiting in the outbox folder (and shown on /outbox) go with it.
            removed = remove_mail_to(config.paths.outbox, sub.email)
            outcome = "erased"
        else:
            store.subscribers.change_status(
                sub.id,
                SubscriberStatus.UNSUBSCRIBED,
                only_from=(
                    SubscriberStatus.PENDING,
                    SubscriberStatus.ACTIVE,
                    SubscriberStatus.PAUSED,
                ),
            )
            store.ledger.cancel(sub.id, "unsubscribed by an admin")
            outcome = "unsubscribed"
    if as_json:
        typer.echo(
            json.dumps(
                {"id": sub.id, "email": sub.email, "outcome": outcome, "outbox_removed": removed}
            )
        )
    else:
        typer.echo(
            f"{sub.email}: {outcome}"
            + (f", {plural(removed, 'outbox mail')} removed" if removed else "")
        )


@subscribers_app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A .csv or .json file ('-' for stdin).")],
    fmt: FormatOption = None,
    no_opt_in: Annotated[
        bool,
        typer.Option(
            "--no-opt-in",
            help="Take each row's status as given (default active) without confirmation mails.",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row; store nothing.")] = (
        False
    ),
    as_json: JsonOption = False,
) -> None:
    """Import subscribers; every row is checked first and a single bad row imports nothing.

    Columns: email, status, topics, interests, authors, exclude, timezone, send_hour,
    frequency, weekly_day, max_papers, min_upvotes (lists separated by ';' in CSV). Pending
    rows get a confirmation mail. Exit 1 with one line per bad row.

    Example: paperboy subscribers import readers.csv --dry-run
    """
    config = load()
    kind = _format(fmt, path)
    text = _read_text(path)
    try:
        rows = read_rows(text, kind)
    except ValueError as e:
        fail(f"{path}: {e}; nothing imported", code=1)
    if not rows:
        fail(f"{path}: no subscriber rows in the file; nothing imported", code=1)
    if not no_opt_in:
        rows = [(line, {"status": "pending", **row}) for line, row in rows]
    else:
        rows = [(line, {**row, "status": row.get("status") or "active"}) for line, row in rows]
    with store_for(config) as store:
        emails = [str(row.get("email") or "") for _, row in rows]
        entries, errors = check_rows(
            rows,
            known_topics=_topic_slugs(config),
            opt_in_skipped=no_opt_in,
            existing=_taken(store, emails),
            consent=_consent(no_opt_in, f"cli import of {path.name}"),
        )
        if errors:
            for error in errors:
                typer.echo(f"{path}:{error.line}: {error.message}", err=True)
            if as_json:
                problems = [{"line": e.line, "message": e.message} for e in errors]
                typer.echo(json.dumps({"imported": 0, "errors": problems}, indent=2))
            typer.echo(
                f"paperboy: error: {plural(len({e.line for e in errors}), 'bad row')} in {path}; "
                "nothing imported",
                err=True,
            )
            raise typer.Exit(1)
        ids: list[int] = [] if dry_run else store.subscribers.add_many(entries)
        added = [s for i in ids if (s := store.subscribers.get(i))]
        _embed_profiles(config, store, added)
        pending = [s for s in added if s.status == "pending"]
        mailed = _confirm(pending, config, store) if pending else []
    summary = {
        "rows": len(entries),
        "imported": len(ids),
        "confirmations_sent": len(mailed),
        "dry_run": dry_run,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    elif dry_run:
        valid = "is" if len(entries) == 1 else "are"
        typer.echo(f"{plural(len(entries), 'row')} {valid} valid; dry run, nothing imported")
    else:
        typer.echo(
            f"imported {plural(len(ids), 'subscriber')}; "
            f"{plural(len(mailed), 'confirmation mail')} sent"
        )


@subscribers_app.command("export")
def export(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")
    ] = None,
    fmt: FormatOption = None,
    status: Annotated[
        list[SubscriberStatus] | None, typer.Option("--status", "-s", help="Only these statuses.")
    ] = None,
) -> None:
    """Export subscribers as CSV or JSON, in the columns that import reads back.

    Example: paperboy subscribers export --format csv --out readers.csv
    """
    kind = _format(fmt, out) if (fmt or out) else "csv"
    with store_for(load()) as store:
        rows = export_rows(store.subscribers.all(status or None))
    text = dump_rows(rows, kind)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{plural(len(rows), 'subscriber')} written to {out}", err=True)


# --- helpers -----------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    """The import file as text: exit 1 with what is wrong when it is empty or not text."""
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as e:
        fail(f"{path}: cannot read ({e.strerror or e}); nothing imported", code=1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = "\0"  # reported as binary below
    if "\0" in text:
        fail(
            f"{path}: not a text file (is it a spreadsheet? save it as CSV UTF-8); "
            "nothing imported",
            code=1,
        )
    if not text.strip():
        fail(f"{path}: the file is empty; nothing imported", code=1)
    return text


def _topic_slugs(config: Config) -> list[str]:
    return list(load_catalog(config.topics))


def _format(fmt: str | None, path: Path | None) -> Format:
    kind = (fmt or (path.suffix.lstrip(".") if path else "") or "").lower()
    if kind == "csv":
        return "csv"
    if kind == "json":
        return "json"
    fail(f"say --format csv or --format json (cannot tell from {str(path)!r})")


def _taken(store: Store, emails: list[str]) -> dict[str, str]:
    """The given addresses that exist or are suppressed (lowercased), and why each is taken."""
    taken = {}
    for raw in emails:
        try:
            email = normalize_email(raw)
        except AddressError:
            continue
        sub = store.subscribers.find(email)
        if sub is not None and sub.status != SubscriberStatus.SUPPRESSED:
            taken[email.lower()] = "is already a subscriber"
        elif sub is not None or store.subscribers.is_suppressed(email):
            taken[email.lower()] = (
                "was erased or refused by its server (`paperboy subscribers unsuppress` "
                "allows it again)"
            )
    return taken


def _consent(no_opt_in: bool, source: str) -> dict[str, Any]:
    return {
        "method": "admin entry without opt-in" if no_opt_in else "double opt-in",
        "source": source,
        "by": getpass.getuser(),
        "at": dt.datetime.now(dt.UTC).isoformat(),
    }


def _embed_profiles(config: Config, store: Store, subs: list[Subscriber]) -> None:
    """Give the new readers' topics and interests their vectors now, when meaning is on and
    the model loads; otherwise the service's next tick does."""
    if not subs:
        return
    from pipeline.embedding.backfill import ProfileVectors
    from pipeline.embedding.runtime import shared

    topics = load_catalog(config.topics).topics
    saved = ProfileVectors(store, shared(), config.meaning, topics, load=True)
    saved.many([s.profile for s in subs])


def _confirm(subs: list[Subscriber], config: Config, store: Store) -> list[Notice]:
    """Mail each pending subscriber a confirmation (within the resend limit); report failures."""
    # The mailer and the sign-up rules load the renderer (Jinja, MJML): only needed here.
    from subscribers.notices import send_all
    from subscribers.signup import SubscriberService

    service = SubscriberService(config, store, Links.for_config(config))
    every = dt.timedelta(hours=config.web.confirmation_resend_hours)
    notices = [
        service.confirm_notice(s) for s in subs if store.subscribers.claim_confirmation(s.id, every)
    ]
    results = asyncio.run(send_all(config, notices))
    sent = []
    for notice, error in zip(notices, results, strict=True):
        if error is None:
            sent.append(notice)
        else:
            service.release_confirmation(notice.subscriber_id)
            typer.echo(f"paperboy: error: confirmation to {notice.to} not sent: {error}", err=True)
    return sent


@subscribers_app.command("unsuppress")
def unsuppress(
    address: Annotated[str, typer.Argument(help="The email address to allow again.")],
    as_json: JsonOption = False,
) -> None:
    """Allow a suppressed address again: one that was erased, bounced or refused for good.

    Suppression keeps only a hash, so nothing of the old subscription comes back: the reader
    signs up again on the web form (double opt-in) or is added with `subscribers add`.

    Example: paperboy subscribers unsuppress reader@example.org
    """
    try:
        email = normalize_email(address)
    except AddressError as e:
        fail(f"{address!r}: {e}")
    with store_for(load()) as store:
        if not store.subscribers.unsuppress(email):
            fail(f"{email} is not suppressed", code=1)
    if as_json:
        typer.echo(json.dumps({"email": email, "outcome": "unsuppressed"}))
    else:
        typer.echo(f"{email}: no longer suppressed; they can sign up again")


def _find(store: Store, who: str) -> Subscriber:
    if who.isdigit():
        sub = store.subscribers.get(int(who))
    else:
        try:
            sub = store.subscribers.find(normalize_email(who))
        except AddressError as e:
            fail(f"{who!r}: {e}")
    if sub is None:
        fail(f"no subscriber {who!r} (see `paperboy subscribers list`)", code=1)
    return sub


def _confirm_erase(email: str) -> None:
    """Ask on a terminal; without one (a script, a pipe) refuse, as nobody can answer."""
    question = f"Erase {email} and their history for good?"
    if not sys.stdin.isatty():
        fail(f"{question} Nothing erased: add --yes to confirm", code=2)
    if not typer.confirm(question):
        fail("nothing erased", code=1)


def _schedule(sub: Subscriber) -> str:
    when = {"daily": "daily", "weekdays": "weekdays", "weekly": f"weekly/{sub.weekly_day}"}
    return f"{when[sub.frequency.value]} {sub.send_hour:02d}:00 {sub.timezone}"


def _report_subscriber(sub: Subscriber, as_json: bool, *, mailed: bool) -> None:
    if as_json:
        typer.echo(json.dumps({**export_rows([sub])[0], "confirmation_sent": mailed}, indent=2))
        return
    note = " (confirmation mail sent)" if mailed else ""
    typer.echo(f"added {sub.email} as {sub.status.value}, id {sub.id}{note}")
