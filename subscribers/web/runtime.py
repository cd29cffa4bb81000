"""What the handlers share while the app runs, rebuilt whenever the config changes.

The app reads its config through a source (``paperboy run`` hands it the scheduler's live
config). Each request compares the source's config object with the one the current
``Runtime`` was built from; on a change a new runtime (links and tokens, sender, limits,
pages) replaces the old one in one assignment on the event loop, and the old sender is
closed once the mails already handed to it are sent. The store stays open for the app's
life, and uvicorn keeps its socket and proxy settings: a changed ``storage.url``,
``web.host``, ``web.port`` or ``web.trusted_proxies`` needs a restart (a warning says so).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import BackgroundTasks
from starlette.concurrency import run_in_threadpool

from pipeline.config import Config
from pipeline.embedding.backfill import ProfileVectors
from pipeline.embedding.runtime import SentenceModel, shared
from pipeline.errors import PaperboyError
from pipeline.links import Links
from pipeline.matching.topics import load_catalog
from pipeline.render import Renderer
from pipeline.send import Sender, sender_for
from pipeline.store import Store, open_store
from subscribers.forms import TopicChoice, topic_choices
from subscribers.notices import Mailer
from subscribers.signup import Notice, SubscriberService
from subscribers.web.pages import Pages
from subscribers.web.ratelimit import SignupLimiter

log = logging.getLogger("paperboy.web")

ConfigSource = Callable[[], Config]


@dataclass
class Runtime:
    """The store, the sender and the rules the handlers use, for one config."""

    config: Config
    store: Store
    service: SubscriberService
    limiter: SignupLimiter
    mailer: Mailer
    renderer: Renderer
    links: Links
    topics: tuple[TopicChoice, ...]
    sentences: SentenceModel
    pages: Pages
    # Mails queued on this runtime's sender and not yet sent; its sender closes when a
    # retired runtime has none left. Handlers queue from the thread pool, hence the lock.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _queued: int = 0
    _retired: bool = False
    _closed: bool = False

    @property
    def sender(self) -> Sender:
        return self.mailer.sender

    def hold(self) -> None:
        """One more mail is queued for this runtime's sender."""
        with self._lock:
            self._queued += 1

    def release(self) -> bool:
        """One queued mail is done; True when the sender should now be closed."""
        with self._lock:
            self._queued -= 1
            return self._close_now()

    def retire(self) -> bool:
        """A newer runtime took over; True when the sender should now be closed."""
        with self._lock:
            self._retired = True
            return self._close_now()

    def _close_now(self) -> bool:
        if self._retired and self._queued == 0 and not self._closed:
            self._closed = True
            return True
        return False

    async def close(self) -> None:
        """Close the sender at the app's end, whatever is still queued."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        await self.sender.close()


def build(config: Config, store: Store, sentences: SentenceModel) -> Runtime:
    """A runtime for ``config`` on the open ``store``."""
    catalog = load_catalog(config.topics)
    renderer = Renderer.from_config(config)
    links = Links.for_config(config)
    return Runtime(
        config=config,
        store=store,
        service=SubscriberService(
            config, store, links, ProfileVectors(store, sentences, config.meaning, catalog.topics)
        ),
        limiter=SignupLimiter(store, config.web.signups_per_ip_per_hour),
        mailer=Mailer(config, renderer, sender_for(config)),
        renderer=renderer,
        links=links,
        topics=topic_choices(catalog),
        sentences=sentences,
        pages=Pages(config),
    )


class LiveRuntime:
    """The runtime for the source's newest config; ``current`` is the one in force."""

    def __init__(
        self, source: ConfigSource, first: Config, store: Store, sentences: SentenceModel
    ) -> None:
        self.source = source
        self.store = store
        self.sentences = sentences
        self.current = build(first, store, sentences)
        self._rejected: Config | None = None
        self._retired: list[Runtime] = []

    async def get(self) -> Runtime:
        """The current runtime, first rebuilt if the config changed. Runs on the event loop,
        so the swap cannot interleave with another request's."""
        config = self.source()
        old = self.current
        if config is old.config or config is self._rejected:
            return old
        try:
            fresh = build(config, self.store, self.sentences)
        except PaperboyError as e:
            self._rejected = config
            log.error("the web app keeps its last config; the new one failed: %s", e)
            return old
        self.current = fresh
        log.info("the web app took up the reloaded config")
        fixed = ("storage.url", "web.host", "web.port", "web.trusted_proxies")
        for key in fixed:
            section, name = key.split(".")
            was, now = (getattr(getattr(c, section), name) for c in (old.config, config))
            if was != now:
                log.warning("%s changed: the web app takes it up after a restart", key)
        if old.retire():
            await old.sender.close()
        else:
            self._retired.append(old)
        return fresh

    async def close(self) -> None:
        for rt in (*self._retired, self.current):
            await rt.close()


@asynccontextmanager
async def opened(
    source: ConfigSource, sentences: SentenceModel | None = None
) -> AsyncIterator[LiveRuntime]:
    """The live runtime for ``source``: the store and the senders open until the app stops.
    ``sentences``: the sentence model (default the process's, shared with the scheduler)."""
    first = source()
    with open_store(first) as store:
        live = LiveRuntime(source, first, store, sentences or shared())
        try:
            yield live
        finally:
            await live.close()


def send_later(
    background: BackgroundTasks, rt: Runtime, notice: Notice | None, release: bool
) -> None:
    """Send ``notice`` (if any) after the response, so mail stays off the request's path."""
    if notice is not None:
        rt.hold()  # from now on a config reload waits for this mail before closing the sender
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
    finally:
        if rt.release():
            await rt.sender.close()
    log.info("sent the %s mail to subscriber %s: %s", notice.kind, notice.subscriber_id, reply)
