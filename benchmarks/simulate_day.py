"""A simulated day: 10,000 readers across 40 time zones, the real delivery step every 15 min.

    python -m benchmarks simulate_day                      (SQLite, the outbox)
    python -m benchmarks.simulate_day [--readers N] [--postgres URL] [--sender null]

A fresh instance in a temporary folder (or a throw-away schema on ``--postgres``) gets the
bundled sample dumps, dated the day before, and N active daily readers, each with a time
zone out of 40 (half- and quarter-hour offsets included), a send hour and one to three
topics. The readers' previous editions are recorded done, as on any ordinary morning (one
``skipped`` ledger row each, dated the local day of their last send moment before the day,
which the checks leave out; without them the first step would owe everyone the edition of
their local today, and record ``missed`` those more than the late cutoff behind). Then
a simulated clock steps through 24 hours, every 15 minutes calling ``run.deliver_due`` — the
step ``paperboy run`` schedules — with the outbox writing one ``.eml`` per message (or, with
``--sender null``, a sender that only answers 250, to see the cost of the writes).

Checked afterwards: every reader has exactly one ledger row for each send moment inside the
day, none for any other; each such row is sent (or skipped: nothing new matched), never
missed, failed or left queued, and no later than the step after its moment; the outbox holds
exactly one message per sent row and per reader. Printed: editions per hour, timings, then
the Today view (``paperboy status``) and the ``/metrics`` scrape as of the day's end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.policy
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text

from pipeline import gauges, metrics
from pipeline.commands.status import as_lines
from pipeline.config import Config, load_config
from pipeline.ingest import read_dump
from pipeline.models import DeliveryStatus, Frequency, Profile, SubscriberStatus
from pipeline.resources import sample_inbox
from pipeline.run import deliver_due, embed_step
from pipeline.send import OutboxSender, Sender
from pipeline.store import Store, open_store
from pipeline.today import today

SEED = 20260715
START = dt.datetime(2026, 7, 15, tzinfo=dt.UTC)  # a Wednesday; no zone changes its offset
STEP = dt.timedelta(minutes=15)
STEPS = 96
# 40 zones: whole, half- and quarter-hour offsets from -10:00 to +14:00, both hemispheres.
ZONES = (
    "Pacific/Honolulu", "Pacific/Marquesas", "America/Anchorage", "America/Los_Angeles",
    "America/Denver", "America/Chicago", "America/New_York", "America/Caracas",
    "America/Halifax", "America/St_Johns", "America/Sao_Paulo", "America/Argentina/Buenos_Aires",
    "Atlantic/South_Georgia", "Atlantic/Azores", "UTC", "Europe/London", "Africa/Lagos",
    "Europe/Paris", "Europe/Berlin", "Africa/Johannesburg", "Europe/Helsinki", "Europe/Moscow",
    "Africa/Nairobi", "Asia/Tehran", "Asia/Dubai", "Asia/Kabul", "Asia/Karachi",
    "Asia/Kolkata", "Asia/Kathmandu", "Asia/Dhaka", "Asia/Yangon", "Asia/Bangkok",
    "Asia/Shanghai", "Australia/Eucla", "Asia/Tokyo", "Australia/Adelaide", "Australia/Sydney",
    "Pacific/Auckland", "Pacific/Chatham", "Pacific/Kiritimati",
)  # fmt: skip
# Topics the bundled sample dumps have papers for, so most editions have something to send.
TOPICS = (
    "llm-inference", "model-compression", "spiking-neural-networks", "diffusion-models",
    "video-generation", "reasoning", "multimodal", "agents", "rag", "code-generation",
    "efficient-attention", "robotics", "reinforcement-learning", "datasets-benchmarks",
)  # fmt: skip
WARM_UP = "the edition before the simulated day (recorded done to start from an ordinary day)"


class NullSender:
    """Answers 250 to everything and keeps nothing: the delivery path without the disk."""

    async def send(self, message: EmailMessage) -> str:
        return "250 accepted by the null sender"

    async def close(self) -> None:
        return None


@contextmanager
def instance(folder: Path, postgres: str | None) -> Iterator[Config]:
    """A fresh paperboy in ``folder``: SQLite there, or a new schema on ``postgres``."""
    schema = None
    url = f"sqlite:///{folder / 'var' / 'paperboy.db'}"
    if postgres:
        schema = "pb_simday_" + uuid.uuid4().hex[:10]
        with create_engine(postgres).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in postgres else "?"
        url = f"{postgres}{sep}options={quote(f'-csearch_path={schema}')}"
    path = folder / "config.toml"
    path.write_text(
        f'[storage]\nurl = "{url}"\n[web]\nsecret_key = "{"s" * 40}"\n', encoding="utf-8"
    )
    try:
        yield load_config(path, env={})
    finally:
        if schema is not None:
            admin = create_engine(postgres or "")
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def moment(day: dt.date, hour: int, zone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


def moments_in(start: dt.datetime, end: dt.datetime, hour: int, zone: str) -> list[dt.date]:
    """The local dates whose send moment falls in [start, end)."""
    first = start.astimezone(ZoneInfo(zone)).date() - dt.timedelta(days=1)
    days = [first + dt.timedelta(days=i) for i in range(4)]
    return [d for d in days if start <= moment(d, hour, zone) < end]


def last_before(start: dt.datetime, hour: int, zone: str) -> dt.date:
    """The local date of the last send moment before ``start``."""
    day = start.astimezone(ZoneInfo(zone)).date() + dt.timedelta(days=1)
    while moment(day, hour, zone) >= start:
        day -= dt.timedelta(days=1)
    return day


def seed(store: Store, config: Config, readers: int, start: dt.datetime) -> None:
    """The sample dumps, dated the day before and ingested an hour before the day; vectors
    for them; ``readers`` active daily readers whose previous edition is recorded done."""
    for path in sorted(sample_inbox().iterdir()):
        dump = read_dump(
            path, max_bytes=config.ingest.max_file_bytes, date=(start - dt.timedelta(days=1)).date()
        )
        metrics.ingested(store.papers.ingest(dump, now=start - dt.timedelta(hours=1)))
    rng = random.Random(SEED)
    entries = []
    for i in range(readers):
        entries.append(
            {
                "email": f"reader{i:05d}@example.org",
                "status": SubscriberStatus.ACTIVE,
                "timezone": ZONES[i % len(ZONES)],
                "send_hour": rng.randrange(24),
                "frequency": Frequency.DAILY,
                "profile": Profile(topics=tuple(rng.sample(TOPICS, rng.randint(1, 3)))),
            }
        )
    for i in range(0, readers, 1000):
        store.subscribers.add_many(entries[i : i + 1000], now=start - dt.timedelta(days=30))
    for sub in store.subscribers.all([SubscriberStatus.ACTIVE]):
        day = last_before(start, sub.send_hour, sub.timezone)
        store.ledger.record_skipped(sub.id, day, WARM_UP, start - dt.timedelta(hours=1))
    embed_step(config, store)  # the papers' and topics' vectors, as the service's embed job


def simulate(config: Config, store: Store, sender: str, start: dt.datetime) -> list[str]:
    """Step the clock through the day; one line per hour with what was sent."""
    lines = []
    sent: Counter[int] = Counter()
    skipped: Counter[int] = Counter()
    seconds: list[float] = []
    for k in range(STEPS):
        now = start + k * STEP
        chosen: Sender = NullSender() if sender == "null" else OutboxSender(config.paths.outbox)
        began = time.perf_counter()
        tally = deliver_due(config, now, store=store, sender=chosen)
        seconds.append(time.perf_counter() - began)
        if tally.aborted or tally.paused or tally.failed or tally.deferred or tally.missed:
            lines.append(f"  step {now:%H:%M}: {tally.as_dict()}")
        sent[k // 4] += tally.sent
        skipped[k // 4] += tally.skipped
    lines.append("editions per hour (UTC, simulated): sent, skipped (nothing new matched)")
    for hour in range(24):
        at = start + dt.timedelta(hours=hour)
        lines.append(f"  {at:%H}:00  {sent[hour]:6d} {skipped[hour]:6d}")
    lines.append(f"  total  {sum(sent.values()):6d} {sum(skipped.values()):6d}")
    lines.append(
        f"delivery step: {len(seconds)} runs, median {statistics.median(seconds):.2f} s, "
        f"max {max(seconds):.2f} s, total {sum(seconds):.1f} s"
    )
    return lines


def check(config: Config, store: Store, start: dt.datetime, sender: str) -> dict[str, int]:
    """The ledger and the outbox against what the day should hold; AssertionError if not."""
    end = start + STEPS * STEP
    subs = {s.id: s for s in store.subscribers.all([SubscriberStatus.ACTIVE])}
    expected = {
        (sid, day)
        for sid, s in subs.items()
        for day in moments_in(start, end, s.send_hour, s.timezone)
    }
    rows = [d for d in store.ledger.all() if d.last_error != WARM_UP]
    keys = Counter((d.subscriber_id, d.edition_date) for d in rows)
    doubled = [k for k, n in keys.items() if n > 1]
    missing = expected - set(keys)
    extra = set(keys) - expected
    status = Counter(d.status.value for d in rows)
    late = []
    for d in rows:
        s = subs[d.subscriber_id]
        due = moment(d.edition_date, s.send_hour, s.timezone)
        at = d.first_attempt_at
        if d.status == DeliveryStatus.SENT and (at is None or not due <= at < due + STEP):
            late.append((d.subscriber_id, d.edition_date, at))
    sent = [d for d in rows if d.status == DeliveryStatus.SENT]
    figures = {
        "readers": len(subs),
        "editions_expected": len(expected),
        "ledger_rows": len(rows),
        "doubled_rows": len(doubled),
        "missing_rows": len(missing),
        "extra_rows": len(extra),
        "late_sends": len(late),
        **{f"status_{k}": v for k, v in sorted(status.items())},
    }
    if sender != "null":
        parser = BytesHeaderParser(policy=email.policy.default)
        files = sorted(config.paths.outbox.glob("*.eml"))
        per_reader: Counter[str] = Counter()
        for path in files:
            with path.open("rb") as f:
                per_reader[str(parser.parse(f)["To"]).lower()] += 1
        sent_to = Counter(subs[d.subscriber_id].email.lower() for d in sent)
        figures["eml_files"] = len(files)
        figures["readers_with_two_or_more_mails"] = sum(1 for n in per_reader.values() if n > 1)
        figures["eml_mismatches"] = sum(
            1 for a in sent_to | per_reader if sent_to[a] != per_reader[a]
        )
    problems = [
        f"{name} = {figures[name]}"
        for name in ("doubled_rows", "missing_rows", "extra_rows", "late_sends", "eml_mismatches")
        if figures.get(name)
    ]
    problems += [f"{k} = {v}" for k, v in status.items() if k not in ("sent", "skipped")]
    if problems:
        raise AssertionError("the simulated day went wrong: " + "; ".join(problems))
    return figures


def day(readers: int, postgres: str | None, sender: str, out: list[str]) -> dict[str, object]:
    """The whole run; the report's lines go to ``out`` as they come."""

    def say(line: str) -> None:
        out.append(line)
        print(line, flush=True)

    with (
        tempfile.TemporaryDirectory(prefix="paperboy-day-") as tmp,
        instance(Path(tmp), postgres) as config,
        open_store(config) as store,
    ):
        backend = "PostgreSQL" if postgres else "SQLite"
        say(
            f"== a simulated day: {readers} readers, {len(ZONES)} zones, {backend}, sender {sender}"
        )
        began = time.perf_counter()
        seed(store, config, readers, START)
        seeded = time.perf_counter() - began
        say(f"seeded in {seeded:.1f} s ({store.papers.count()} papers)")
        for line in simulate(config, store, sender, START):
            say(line)
        figures: dict[str, object] = dict(check(config, store, START, sender))
        for name, value in figures.items():
            say(f"  {name}: {value}")
        end = START + STEPS * STEP - dt.timedelta(minutes=1)  # the day's last minute
        say(f"== the Today view (paperboy status) at {end:%Y-%m-%d %H:%M} UTC")
        for line in as_lines(today(store, config, end)):
            say(line)
        say(f"== /metrics at {end:%Y-%m-%d %H:%M} UTC")
        for line in gauges.exposition(store, config, end).splitlines():
            say(line)
        figures["seed_seconds"] = round(seeded, 1)
        figures["wall_seconds_total"] = round(time.perf_counter() - began, 1)
        say(f"total {figures['wall_seconds_total']} s")
        return figures


def run(quick: bool) -> dict[str, object]:
    """For ``python -m benchmarks``: SQLite and the outbox; 1,000 readers when quick."""
    return day(1000 if quick else 10_000, None, "outbox", [])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate_day", description=__doc__)
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server to use instead")
    parser.add_argument("--sender", choices=("outbox", "null"), default="outbox")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    lines: list[str] = []
    try:
        day(args.readers, args.postgres, args.sender, lines)
    finally:
        if args.output:
            args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
