"""An instance with the admin app on, served over real HTTP, and a day's worth of ledger rows.

``AdminServed`` runs ``create_app`` under uvicorn on a free port with an admin token and the
config file to edit; ``seed`` fills the store with readers and today's editions in several
states (sent, deferred with an SMTP reply, failed, queued) and writes two outbox mails.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pipeline.config import Config, load_config
from pipeline.mime import message_bytes
from pipeline.models import Delivery, DeliveryStatus, Dump, Paper, Pick, Profile, SubscriberStatus
from pipeline.papers import dump_id
from pipeline.store import Store
from subscribers.web import create_app
from tests.conftest import write_config
from tests.db_clock import claim_of
from tests.served import AppServer, free_port

TOKEN = "admin-token-for-tests-0123456789"
SECRET = "admin-test-secret-0123456789abcdef"
CONFIG = """
# The match weights: tuned by hand.
[match]
trending_weight = 0.35

[meaning]
enabled = false

[topics.spiking-nets]
title = "Spiking neural networks"
description = "Event-driven networks of spiking neurons"
keywords = ["spiking", "snn"]
"""
PAPER = Paper(
    id="2607.01011",
    arxiv_id="2607.01011",
    title="Spiking Transformers for Event Cameras",
    abstract="We make spiking networks attend to events, at a fraction of the energy.",
    authors=("Ada Lovelace",),
    keywords=("spiking neural networks",),
    source_format="hf_api",
    upvotes=42,
    url="https://huggingface.co/papers/2607.01011",
)
READERS = ("ada@example.org", "bob@example.org", "cy@example.org", "dee@example.org")


class AdminServed:
    """The app with the admin token ``token`` ("" leaves the admin app off); ``public_url``
    is ``web.base_url`` when the app is meant to be reached through a proxy."""

    def __init__(self, folder: Path, token: str = TOKEN, public_url: str = "") -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        base_url = public_url or self.base
        self.path = write_config(
            folder,
            "sqlite:///var/paperboy.db",
            f'{CONFIG}\n[web]\nbase_url = "{base_url}"\nsecret_key = "{SECRET}"\n',
        )
        self.config: Config = load_config(self.path, env={})
        app = create_app(self.config, admin_token=token, config_path=self.path)
        self.running = AppServer(app, port)

    def __enter__(self) -> AdminServed:
        self.running.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running.__exit__(*exc)


def later_today(now: dt.datetime) -> dict[str, Any]:
    """A send hour still ahead of ``now`` on ``now``'s UTC date, so a reader's next edition is
    today's (the one seeded) whatever the hour the tests run: 23:00 in UTC, or in UTC-1
    during the day's last hour. With the default 07:00, a preview after 07:00 UTC showed
    tomorrow's edition, empty since today's had taken the paper."""
    return {"send_hour": 23, "timezone": "UTC" if now.hour < 23 else "Etc/GMT+1"}


def seed(store: Store, config: Config, now: dt.datetime) -> dict[str, int]:
    """Four active readers and today's editions: ada sent, bob deferred, cy failed, dee
    queued; plus two mails in the outbox folder. Returns the readers' ids by address."""
    day = now.date()
    store.papers.ingest(
        Dump(
            id=dump_id(b"admin"), name="today.json", format="hf_api", dump_date=day, papers=(PAPER,)
        ),
        now,
    )
    profile = Profile(topics=("spiking-nets",), interests="event cameras")
    ids = {
        address: store.subscribers.add(
            address,
            profile=profile,
            status=SubscriberStatus.ACTIVE,
            now=now - dt.timedelta(days=3),
            **later_today(now),
        ).id
        for address in READERS
    }
    pick = Pick(paper_id=PAPER.id, score=0.9, reasons=("trending: 42 upvotes",))
    store.ledger.queue_many(
        [
            Delivery(
                subscriber_id=sid,
                edition_date=day,
                status=DeliveryStatus.QUEUED,
                message_id=f"<{sid}@admin.test>",
                paper_ids=(PAPER.id,),
                picks=(pick,),
            )
            for sid in ids.values()
        ],
        now,
    )
    stale = dt.timedelta(minutes=10)
    held = store.ledger.claim(ids["ada@example.org"], day, now, stale)
    store.ledger.mark_sent(ids["ada@example.org"], day, "250 ok", now, claim_id=claim_of(held))
    held = store.ledger.claim(ids["bob@example.org"], day, now, stale)
    store.ledger.mark_deferred(
        ids["bob@example.org"],
        day,
        "451 4.7.1 greylisted, try again later",
        now + dt.timedelta(hours=2),
        now,
        claim_id=claim_of(held),
    )
    held = store.ledger.claim(ids["cy@example.org"], day, now, stale)
    store.ledger.mark_failed(
        ids["cy@example.org"], day, "554 5.7.1 message refused", now=now, claim_id=claim_of(held)
    )
    write_mail(config.paths.outbox, "welcome.eml", "ada@example.org", "Welcome to paperboy")
    write_mail(config.paths.outbox, "digest.eml", "bob@example.org", "Your papers for today")
    return ids


def write_mail(folder: Path, name: str, to: str, subject: str) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "paperboy <paperboy@example.org>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Mon, 30 Nov 2026 07:00:00 +0000"
    message.set_content(f"Hello {to}, this is the text part.\n")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(message_bytes(message))


def history(store: Store, ids: dict[str, int], now: dt.datetime, days: int = 13) -> None:
    """Editions for the ``days`` before today, so the Today chart has a fortnight to show:
    most sent, and now and then one failed, missed or skipped."""
    stale = dt.timedelta(minutes=10)
    readers = sorted(ids.values())
    for back in range(days, 0, -1):
        day = now.date() - dt.timedelta(days=back)
        at = dt.datetime.combine(day, dt.time(7), tzinfo=dt.UTC)
        for n, sid in enumerate(readers):
            fate = (back + n) % 9
            if fate == 0:
                store.ledger.record_missed(sid, day, "not sent by the send hour + cutoff", at)
                continue
            if fate == 1:
                store.ledger.record_skipped(sid, day, "no new papers", at)
                continue
            store.ledger.queue(sid, day, f"<{sid}.{day}@admin.test>", [PAPER.id], at)
            held = store.ledger.claim(sid, day, at, stale)
            if fate == 2:
                store.ledger.mark_failed(
                    sid, day, "550 5.1.1 no such user", now=at, claim_id=claim_of(held)
                )
            else:
                store.ledger.mark_sent(sid, day, "250 ok", at, claim_id=claim_of(held))
