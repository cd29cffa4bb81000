"""Queueing editions hands the engine each message with its row; nothing waits in shared state."""

from __future__ import annotations

import asyncio
import datetime as dt
from email.message import EmailMessage

import pytest

from pipeline.config import Config
from pipeline.deliver import Engine, Job, Tally
from pipeline.editions import Composer, EditionPlan, queue_editions
from pipeline.links import Links
from pipeline.models import Delivery, DeliveryStatus, Subscriber
from pipeline.render import Renderer
from pipeline.send import OutboxSender
from pipeline.store import Store
from tests.delivery_world import NOW, add_readers, seed_papers, stub_select


def plan(config: Config, *, dry_run: bool = False) -> EditionPlan:
    return EditionPlan(
        now=NOW,
        clock=lambda: NOW,
        select=stub_select,
        email=config.email,
        batch_size=2,
        dry_run=dry_run,
    )


def composer(config: Config, store: Store) -> Composer:
    renderer = Renderer.from_config(config)
    return Composer(config.email, store, renderer, Links.for_config(config))


def test_each_queued_job_carries_its_own_rendered_message(instance: Config, store: Store) -> None:
    """Batches of ``batch_size``; each job's message is the one its ledger row names."""
    seed_papers(store)
    add_readers(store, 3)
    tally = Tally()
    batches = list(queue_editions(plan(instance), store, composer(instance, store), tally))
    assert [len(batch) for batch in batches] == [2, 1]
    for job in (job for batch in batches for job in batch):
        assert job.message is not None
        assert job.message["Message-ID"] == job.row.message_id
        assert job.row.status == DeliveryStatus.QUEUED and job.row.paper_ids
    assert tally.queued == 3
    assert {d.status for d in store.ledger.all()} == {DeliveryStatus.QUEUED}


def test_a_dry_run_counts_without_queueing_anything(instance: Config, store: Store) -> None:
    """``dry_run``: the tally counts the editions, the ledger stays empty, nothing is yielded."""
    seed_papers(store)
    add_readers(store, 3)
    tally = Tally()
    dry = plan(instance, dry_run=True)
    assert list(queue_editions(dry, store, composer(instance, store), tally)) == []
    assert tally.queued == 3 and store.ledger.all() == []


def test_the_engine_sends_a_jobs_message_without_composing_it(
    instance: Config, store: Store
) -> None:
    """A job with a message goes out as it is; ``compose`` is only for rows of earlier runs."""
    seed_papers(store)
    add_readers(store, 1)
    [[job]] = list(queue_editions(plan(instance), store, composer(instance, store), Tally()))

    def compose(row: Delivery, subscriber: Subscriber, now: dt.datetime) -> EmailMessage:
        pytest.fail("the engine recomposed a message it was given")

    tally = Tally()
    engine = Engine(
        instance.delivery, store, OutboxSender(instance.paths.outbox), compose, lambda: NOW,
        tally=tally,
    )  # fmt: skip
    asyncio.run(engine.run([Job(job.row, job.message)]))
    assert engine.tally is tally and tally.sent == 1
    [written] = instance.paths.outbox.iterdir()
    assert written.name.startswith("digest.")
