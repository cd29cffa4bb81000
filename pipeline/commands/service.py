"""``paperboy run``: the scheduler and the subscriber web app, until stopped."""

from __future__ import annotations

import datetime as dt
import logging
import select
import signal
import socket
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline import logs
from pipeline.commands.common import fail, load, state
from pipeline.config import Config, default_config_path
from pipeline.config_view import start_warnings
from pipeline.models import IngestOutcome
from pipeline.schedule import LiveConfig, build_scheduler

if TYPE_CHECKING:  # the delivery engine, for the annotation only
    from pipeline.deliver import Tally


# The service's own lines ("paperboy: stopped"); the steps log under paperboy.<step>.
log = logging.getLogger("paperboy")


def print_outcome(outcome: IngestOutcome) -> None:
    """One line per inbox file, as the daemon processes it. A quarantined file is not
    repeated here: the ingest step logged it, with its reason, when it moved it."""
    if outcome.error:
        return
    if outcome.already_ingested:
        log.info("%s: already ingested, archived", outcome.name)
    else:
        log.info(
            "%s (%s): %d new, %d merged, %d skipped",
            outcome.name,
            outcome.format,
            outcome.new,
            outcome.merged,
            outcome.skipped,
        )
    for warning in outcome.warnings:
        log.warning("%s: %s", outcome.name, warning)


def print_tally(tally: Tally) -> None:
    """One line per delivery run that did something, then one per reason it deferred or
    failed editions; quiet runs stay quiet."""
    if tally.aborted:
        log.error("delivery aborted: %s", tally.aborted)
    if tally.paused:
        log.error("delivery paused: %s", tally.paused)
    if tally.sent or tally.deferred or tally.failed:
        log.info(
            "delivered: sent %d, deferred %d, failed %d", tally.sent, tally.deferred, tally.failed
        )
    for status, reason, n in tally.grouped():
        log.warning("%s %d: %s", status, n, reason)
    if tally.ambiguous:
        log.warning(
            "sent_ambiguous %d: the connection was lost after the message and before the "
            "reply; perhaps delivered, not resent",
            tally.ambiguous,
        )


def run(
    web: Annotated[bool, typer.Option(help="Serve the subscriber web app too.")] = True,
    deliver: Annotated[bool, typer.Option(help="Deliver digests when they are due.")] = True,
) -> None:
    """Run the service: scan the inbox, deliver due digests, serve the web app, until Ctrl-C.

    A bad edit of the config file is reported and the last good config stays in force.

    Example: paperboy --config /etc/paperboy/config.toml run
    """
    from pipeline import run as steps  # SQLAlchemy, the matcher, the renderer: only needed here
    from pipeline.health import note_service

    config = load()  # exit 2 with the problems before starting anything
    if web:
        _check_port(config.web.host, config.web.port)
    logs.setup(logging.INFO, as_json=state.log_json)
    # APScheduler logs every job run at INFO; the steps report what they did themselves.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    live = LiveConfig(state.config_path or default_config_path())
    log.info("inbox %s, store %s", config.paths.inbox, config.storage.url)
    for warning in start_warnings(config):
        log.warning("%s", warning)

    def ingest(cfg: object) -> None:
        steps.ingest_inbox(live.config, on_file=print_outcome)

    def embed_step(cfg: Config) -> None:
        steps.embed_step(cfg)  # logs what it computed; quiet when there was nothing to do

    def bounces_step(cfg: Config) -> None:
        from pipeline.bounce_scan import scan_configured

        scan_configured(cfg)  # logs what it read; nothing when bounces.maildir is unset

    def prune_step(cfg: Config) -> None:
        from pipeline.prune import prune_step

        prune_step(cfg, dt.datetime.now(dt.UTC))  # logs what went; quiet when nothing did

    with ExitStack() as stack:
        deliver_step, elect = None, None
        if deliver:
            # One planner among the services on this database; the others stand by and help
            # send. A third of the lease's life between elections keeps it renewed.
            planner = stack.enter_context(steps.standby(config))
            every = config.delivery.sending_stale_minutes * 60 / 3
            elect = (planner.take, every)

            def deliver_step(cfg: Config, now: dt.datetime) -> None:
                print_tally(steps.deliver_due(cfg, now, planner=planner))

        scheduler = build_scheduler(
            live, ingest, deliver_step, embed_step, bounces_step, elect, prune_step
        )
        scheduler.add_job(
            lambda: note_service(live.config, live.last_error),
            "interval",
            seconds=config.schedule.config_reload_seconds,
            id="health",
            name="health",
            next_run_time=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
        )
        # SIGTERM stops like Ctrl-C: the web app drains, the scheduler finishes its running
        # job. (uvicorn re-raises the signal it caught once it has shut down; this handler
        # takes it.)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        scheduler.start()
        try:
            if web:
                _serve_web(live)
            else:
                _until_signalled()
        except KeyboardInterrupt:
            pass
        finally:
            scheduler.shutdown(wait=True)  # before the planner role is given up
            log.info("stopped")


def _until_signalled() -> None:
    """Block the main thread until a signal's handler raises (SIGTERM, Ctrl-C).

    The kernel hands a signal sent to the process to whichever of its threads takes it
    first, often a busy scheduler thread on a loaded host; Python runs the handler only
    in the main thread, and only once that thread wakes. A plain wait on a lock or event
    is never woken by a signal another thread took, so the service would ignore SIGTERM.
    Whichever thread takes the signal writes a byte to the wakeup socket: the main
    thread wakes in ``select`` and runs the handler."""
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        while True:
            select.select([reader], [], [])
            reader.recv(64)  # a signal whose handler did not raise: wait on
    finally:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()


def _check_port(host: str, port: int) -> None:
    """Exit with one line, before anything starts, when the web app could not listen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            fail(
                f"cannot listen on {host}:{port} ({e.strerror}); is another paperboy running? "
                "Set web.port, or use --no-web"
            )


def _serve_web(live: LiveConfig) -> None:
    # The web stack (uvicorn, FastAPI): only `paperboy run` serves it, so only it imports it.
    import uvicorn

    from subscribers.web import create_app
    from subscribers.web.peers import proxy_options

    web = live.config.web
    log.info("web app on http://%s:%s (base URL %s)", web.host, web.port, web.base_url)
    # The app follows config reloads through this source; only the listening socket and the
    # trusted proxies (uvicorn's) are fixed until a restart.
    uvicorn.run(
        create_app(lambda: live.config, config_path=live.path),
        host=web.host,
        port=web.port,
        log_level="warning",
        log_config=None,  # uvicorn's records go through paperboy's one-line (or JSON) logging
        **proxy_options(web),
    )
