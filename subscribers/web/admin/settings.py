"""``/admin/config``: the effective config (secrets masked), its validation status, and the
keys an admin may change online, through the same checks as ``paperboy config set``.

Only keys that are safe to change while running are offered: match weights, the schedule,
the mail's texts and the web app's limits. Storage, paths, the delivery backend and secrets
stay with the operator's editor (a typo there can cut off the database or leak mail). The
file is written atomically with its comments kept; ``paperboy run`` takes it up at its next
config reload, except the keys in ``RESTART``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import tomlkit
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipeline.config import Config, load_config
from pipeline.config_edit import parse_value, set_key
from pipeline.config_view import masked, start_warnings
from pipeline.errors import ConfigEditRefused, ConfigError
from subscribers.web.admin.auth import Checked, Session, SessionDep
from subscribers.web.admin.common import field, render
from subscribers.web.admin.today import config_status
from subscribers.web.deps import Form, RuntimeDep
from subscribers.web.runtime import Runtime

router = APIRouter(prefix="/admin/config")

EDITABLE = (
    "match.trending_weight",
    "match.author_boost",
    "match.feedback_weight",
    "match.min_relevance",
    "match.relative_floor",
    "schedule.ingest_every_seconds",
    "schedule.deliver_every_seconds",
    "schedule.dump_stale_hours",
    "schedule.config_reload_seconds",
    "email.from_name",
    "email.reply_to",
    "email.postal_address",
    "web.signups_per_ip_per_hour",
    "web.confirmation_resend_hours",
    "web.confirm_token_days",
    "web.goodbye_mail",
)
# The reload job keeps its own interval until paperboy restarts.
RESTART = frozenset({"schedule.config_reload_seconds"})


@dataclass(frozen=True)
class Editable:
    key: str
    value: str
    restart: bool
    from_env: bool


def value_of(config: Config, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def as_toml(value: Any) -> str:
    """How the form shows a value: as it would be typed into the file (``"text"``, ``0.3``)."""
    return str(tomlkit.item(value).as_string())


def env_name(key: str) -> str:
    return "PAPERBOY_" + key.upper().replace(".", "__")


def file_config(path: Path | None, running: Config) -> Config:
    """What the file says now when it validates (it may be newer than the running config)."""
    if path is None:
        return running
    try:
        return load_config(path, env=os.environ)
    except ConfigError:
        return running


def config_page(
    request: Request,
    rt: Runtime,
    sess: Session,
    *,
    message: str = "",
    problems: tuple[str, ...] = (),
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    path: Path | None = request.app.state.config_path
    current = file_config(path, rt.config)
    rows = [
        Editable(
            key=key,
            value=(values or {}).get(key, as_toml(value_of(current, key))),
            restart=key in RESTART,
            from_env=env_name(key) in os.environ,
        )
        for key in EDITABLE
    ]
    return render(
        rt,
        sess,
        "config.html",
        "config",
        status,
        path=str(path) if path else "",
        effective=tomlkit.dumps(masked(rt.config)).rstrip(),
        config_status=config_status(path, start_warnings(rt.config)),
        rows=rows,
        message=message,
        problems=problems,
    )


@router.get("", response_class=HTMLResponse)
def show(request: Request, sess: SessionDep, rt: RuntimeDep, done: str = "") -> Response:
    message = ""
    if done in EDITABLE:
        when = (
            "after paperboy restarts"
            if done in RESTART
            else "at paperboy run's next config reload (schedule.config_reload_seconds)"
        )
        message = f"Saved {done} to the config file; it takes effect {when}."
    return config_page(request, rt, sess, message=message)


@router.post("", response_class=HTMLResponse)
def edit(request: Request, sess: Checked, fields: Form, rt: RuntimeDep) -> Response:
    key, raw = field(fields, "key"), field(fields, "value")
    path: Path | None = request.app.state.config_path
    if key not in EDITABLE:
        raise HTTPException(400, f"{key!r} cannot be changed online; edit the config file.")
    if path is None:
        raise HTTPException(409, "This web app was started without a config file to edit.")
    try:
        set_key(path, key, parse_value(raw), os.environ)
    except ConfigEditRefused as e:
        return config_page(
            request, rt, sess, problems=tuple(e.problems), values={key: raw}, status=400
        )
    except ConfigError as e:
        return config_page(request, rt, sess, problems=(str(e),), values={key: raw}, status=400)
    return RedirectResponse(f"/admin/config?{urlencode({'done': key})}", status_code=303)
