"""``/healthz``: whether the app can reach its database, and whether matching by meaning is on,
for a load balancer or a monitor."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pipeline.errors import PaperboyError
from subscribers.web.deps import RuntimeDep

log = logging.getLogger("paperboy.web")

router = APIRouter()


@router.get("/healthz")
def healthz(rt: RuntimeDep) -> JSONResponse:
    # Meaning off or unavailable is not an error: matching is lexical and mail still goes out.
    meaning = rt.config.meaning
    embedder = rt.sentences.get(meaning)  # loaded once per process; the first check may wait
    try:
        version = rt.store.schema_version()
        counts = rt.store.vectors.counts(embedder.name) if embedder is not None else None
    except PaperboyError as e:
        log.error("health check: %s", e)
        return JSONResponse({"status": "error", "db": "error"}, status_code=503)
    body: dict[str, Any] = {
        "status": "ok",
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
