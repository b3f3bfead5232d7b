"""What the server writes to stderr (docs/deployment.md, "Logs"): `[logging] format = "text"`
lines, or `"json"`, one object per line, gunicorn's own messages included.

Every line written while a call is served carries its request id: the gateway names it in
`request_id` (a context variable, so each of gunicorn's threads has its own) when the call
begins and clears it when its response is closed. A line never holds a secret: the package
logs key names and ids, never keys, bodies or upstream headers.

Importing this module imports nothing else of the package but the configuration's types:
gunicorn's master formats its own lines with it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

from .config import Logging

request_id: ContextVar[str | None] = ContextVar("switchboard_request_id", default=None)

TEXT_FORMAT = "[switchboard] %(levelname)s %(name)s %(message)s"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# Attributes every LogRecord has; anything else was passed in `extra` and becomes a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request_id
    (during a call), process, the `extra` fields, and an exception's traceback as text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            entry["request_id"] = current
        entry["process"] = record.process
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in entry and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def formatter(settings: Logging) -> logging.Formatter:
    return JsonFormatter() if settings.format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(settings: Logging) -> None:
    """Send every logger's records (the package's, the libraries') from `level` up to stderr,
    in the configured format. gunicorn's loggers keep their own handlers (see
    `gunicorn_conf.SwitchboardLogger`), so nothing is written twice."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level = LEVELS[settings.level]
    root.setLevel(level)
    package = logging.getLogger("switchboard")
    for old in list(package.handlers):
        package.removeHandler(old)
    package.setLevel(level)
    package.propagate = True
