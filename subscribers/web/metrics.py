"""``/metrics``: Prometheus' scrape of this process's counters and the store's gauges.

Readable by a scraper on this machine, straight to us (``peers.from_this_machine``: a
loopback peer that is not a declared proxy, no forwarding header, a local ``Host``), or by
anyone sending ``Authorization: Bearer`` with the value of ``PAPERBOY_ADMIN_TOKEN``. Without
that variable only local scrapers read it, and everyone else gets a plain 404; with it, a
request that is neither gets 401.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from pipeline import gauges
from pipeline.config import Config
from pipeline.store import Store
from subscribers.web.deps import RuntimeDep
from subscribers.web.peers import from_this_machine
from subscribers.web.runtime import LiveRuntime

router = APIRouter()


@dataclass(frozen=True)
class Scrape:
    """One app's metrics: its own registry, and the token that opens them from afar."""

    registry: CollectorRegistry
    token: str | None


def install(app: FastAPI, token: str | None) -> None:
    """Give ``app`` a registry of its own over the runtime in force. ``token``: the admin
    token remote scrapers must send (None: only this machine may scrape)."""

    def source() -> tuple[Store, Config]:
        live: LiveRuntime = app.state.live
        return live.current.store, live.current.config

    app.state.scrape = Scrape(gauges.registry(source), token or None)


def bearer_ok(request: Request, token: str | None) -> bool:
    """``Authorization: Bearer <token>`` with the right token, compared in constant time."""
    if not token:
        return False
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@router.get("/metrics")
def scrape(request: Request, rt: RuntimeDep) -> Response:
    state: Scrape = request.app.state.scrape
    if not (bearer_ok(request, state.token) or from_this_machine(request, rt.config.web)):
        if state.token is None:
            return PlainTextResponse("Not Found", status_code=404)
        return PlainTextResponse(
            "Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
    return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)
