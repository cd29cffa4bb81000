"""``/admin``: the Today page, how the day went, with a 14-day chart of editions by status."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.config import load_config
from pipeline.config_view import start_warnings
from pipeline.errors import ConfigError
from pipeline.today import EDITION_STATUSES, today
from subscribers.web.admin.auth import SessionDep
from subscribers.web.admin.common import render
from subscribers.web.deps import RuntimeDep

router = APIRouter(prefix="/admin")

CHART_DAYS = 14
# The chart's drawing box (SVG user units); the page scales it to its width.
CHART_WIDTH, BAR_HEIGHT, LABEL_WIDTH, TOTAL_WIDTH = 1000, 16, 110, 60


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    x: float
    width: float


@dataclass(frozen=True)
class Bar:
    day: dt.date
    total: int
    y: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class ConfigStatus:
    """Whether the config file validates now (it may have been edited since it was loaded)."""

    source: str
    problems: tuple[str, ...]
    warnings: tuple[str, ...]


def chart(counts: dict[dt.date, dict[str, int]], last: dt.date, days: int) -> list[Bar]:
    """One stacked bar per edition date, oldest first, scaled to the busiest day."""
    dates = [last - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]
    most = max((sum(counts.get(d, {}).values()) for d in dates), default=0) or 1
    span = CHART_WIDTH - LABEL_WIDTH - TOTAL_WIDTH
    bars = []
    for row, day in enumerate(dates):
        by_status = counts.get(day, {})
        order = [s for s in EDITION_STATUSES if by_status.get(s)]
        order += sorted(s for s in by_status if s not in order)
        x = float(LABEL_WIDTH)
        segments = []
        for status in order:
            width = span * by_status[status] / most
            segments.append(Segment(status, by_status[status], x, width))
            x += width
        bars.append(Bar(day, sum(by_status.values()), row * (BAR_HEIGHT + 4), tuple(segments)))
    return bars


def config_status(path: Path | None, running_warnings: list[str]) -> ConfigStatus:
    """The file's validation status, read now; the running config's when there is no file."""
    if path is None:
        return ConfigStatus("the running config (no file)", (), tuple(running_warnings))
    try:
        config = load_config(path, env=os.environ)
    except ConfigError as e:
        return ConfigStatus(str(path), tuple(e.problems), ())
    return ConfigStatus(str(path), (), tuple(start_warnings(config)))


@router.get("", response_class=HTMLResponse)
def today_page(request: Request, sess: SessionDep, rt: RuntimeDep) -> Response:
    now = dt.datetime.now(dt.UTC)
    report = today(rt.store, rt.config, now)
    last = now.date()
    counts = rt.store.reports.editions_by_day(last - dt.timedelta(days=CHART_DAYS - 1), last)
    bars = chart(counts, last, CHART_DAYS)
    return render(
        rt,
        sess,
        "today.html",
        "today",
        report=report,
        bars=bars,
        chart_width=CHART_WIDTH,
        chart_height=len(bars) * (BAR_HEIGHT + 4),
        bar_height=BAR_HEIGHT,
        statuses=EDITION_STATUSES,
        config_status=config_status(request.app.state.config_path, start_warnings(rt.config)),
    )
