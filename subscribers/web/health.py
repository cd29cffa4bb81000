"""``/healthz``: whether the app can reach its database, for a load balancer or a monitor."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pipeline.errors import PaperboyError
from subscribers.web.deps import RuntimeDep

log = logging.getLogger("paperboy.web")

router = APIRouter()


@router.get("/healthz")
def healthz(rt: RuntimeDep) -> JSONResponse:
    try:
        version = rt.store.schema_version()
    except PaperboyError as e:
        log.error("health check: %s", e)
        return JSONResponse({"status": "error", "db": "error"}, status_code=503)
    return JSONResponse({"status": "ok", "db": "ok", "schema_version": version})
