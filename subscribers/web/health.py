"""``/healthz``: whether the app can reach its database, paperboy's health record (``ok``, or
``degraded`` with reasons), and whether matching by meaning is on, for a load balancer or a
monitor."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pipeline import health
from pipeline.errors import PaperboyError
from pipeline.health import MATCHING, matching_reason
from pipeline.models import HealthReason
from subscribers.web.deps import RuntimeDep

log = logging.getLogger("paperboy.web")

router = APIRouter()


@router.api_route("/healthz", methods=["GET", "HEAD"])
def healthz(rt: RuntimeDep) -> JSONResponse:
    """200 while the database answers, ``degraded`` included (the web app still serves; mail
    may be held back); 503 when it does not. HEAD answers the same status without a body, for
    monitors that only look at it."""
    meaning = rt.config.meaning
    embedder = rt.sentences.get(meaning)  # loaded once per process; the first check may wait
    now = dt.datetime.now(dt.UTC)
    try:
        version = rt.store.schema_version()
        counts = rt.store.vectors.counts(embedder.name) if embedder is not None else None
        reasons = list(health.report(rt.store, rt.config, now).reasons)
    except PaperboyError as e:
        log.error("health check: %s", e)
        return JSONResponse({"status": "error", "db": "error"}, status_code=503)
    # This process's own matching counts as well as what the delivery processes noted.
    fallback = matching_reason(rt.sentences, meaning)
    if fallback is not None and all(r.name != MATCHING for r in reasons):
        reasons.append(HealthReason(name=MATCHING, reason=fallback, since=now))
    body: dict[str, Any] = {
        "status": "degraded" if reasons else "ok",
        "reasons": [
            {"name": r.name, "reason": r.reason, "since": r.since.isoformat()} for r in reasons
        ],
        "db": "ok",
        "schema_version": version,
        "meaning": rt.sentences.status(meaning),
        "vectors": None,
    }
    if counts is not None:
        body["vectors"] = {
            "model": counts.model,
            "papers_with": counts.papers_with,
            "papers_without": counts.papers_without,
            "texts": counts.texts,
        }
    return JSONResponse(body)
