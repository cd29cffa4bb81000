"""Log output: one line per event, as text or as JSON lines (``--log-json``), never wrapped.

Text lines are ``<time> <LEVEL> <logger>: <message>``; a message or traceback that spans
lines has its line breaks written as ``\\n``, so a log collector sees one event per line.
JSON lines carry ``time``, ``level``, ``logger``, ``message`` and, with an exception, ``exc``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "").replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False)


def setup(level: int, *, as_json: bool) -> None:
    """Send every log record at ``level`` and above to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
