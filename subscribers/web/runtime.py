"""What the handlers share while the app runs: opened in the lifespan, kept on ``app.state``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import BackgroundTasks
from starlette.concurrency import run_in_threadpool

from pipeline.config import Config
from pipeline.embedding.backfill import ProfileVectors
from pipeline.embedding.runtime import SentenceModel, shared
from pipeline.errors import PaperboyError
from pipeline.links import Links
from pipeline.matching.topics import load_catalog
from pipeline.render import Renderer
from pipeline.send import sender_for
from pipeline.store import Store, open_store
from subscribers.forms import TopicChoice, topic_choices
from subscribers.notices import Mailer
from subscribers.signup import Notice, SubscriberService
from subscribers.web.ratelimit import SignupLimiter

log = logging.getLogger("paperboy.web")


@dataclass
class Runtime:
    """The store, the sender and the rules the handlers use, for one running app."""

    config: Config
    store: Store
    service: SubscriberService
    limiter: SignupLimiter
    mailer: Mailer
    renderer: Renderer
    links: Links
    topics: tuple[TopicChoice, ...]
    sentences: SentenceModel


@asynccontextmanager
async def opened(config: Config, sentences: SentenceModel | None = None) -> AsyncIterator[Runtime]:
    """The runtime for ``config``: the store and the sender open until the app stops.
    ``sentences``: the sentence model (default the process's, shared with the scheduler)."""
    sentences = sentences or shared()
    catalog = load_catalog(config.topics)
    topics = topic_choices(catalog)
    renderer = Renderer.from_config(config)
    links = Links.for_config(config)
    sender = sender_for(config)
    with open_store(config) as store:
        try:
            yield Runtime(
                config=config,
                store=store,
                service=SubscriberService(
                    config,
                    store,
                    links,
                    ProfileVectors(store, sentences, config.meaning, catalog.topics),
                ),
                limiter=SignupLimiter(store, config.web.signups_per_ip_per_hour),
                mailer=Mailer(config, renderer, sender),
                renderer=renderer,
                links=links,
                topics=topics,
                sentences=sentences,
            )
        finally:
            await sender.close()


def send_later(
    background: BackgroundTasks, rt: Runtime, notice: Notice | None, release: bool
) -> None:
    """Send ``notice`` (if any) after the response, so mail stays off the request's path."""
    if notice is not None:
        background.add_task(deliver_notice, rt, notice, release)


async def deliver_notice(rt: Runtime, notice: Notice, release: bool) -> None:
    """Send one notice after the response; a failure is logged, and for a sign-up the resend
    limit is released so the reader can simply post the form again."""
    try:
        reply = await rt.mailer.send(notice)
    except PaperboyError as e:
        log.error(
            "could not send the %s mail to subscriber %s: %s", notice.kind, notice.subscriber_id, e
        )
        if release:
            await run_in_threadpool(rt.service.release_confirmation, notice.subscriber_id)
        return
    log.info("sent the %s mail to subscriber %s: %s", notice.kind, notice.subscriber_id, reply)
