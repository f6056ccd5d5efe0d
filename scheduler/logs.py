"""Logging: plain text for people, JSON lines for log shippers, with the request id in both.

``SCHEDULER_LOG_FORMAT=json`` makes every record one JSON object per line (time, level,
logger, message, request id, and any ``extra=`` fields), which is what Loki, CloudWatch or
journald-to-Elasticsearch pipelines expect. The request id rides in a context variable that the
request middleware sets, so every line a request causes - ours, SQLAlchemy's, uvicorn's - can
be found by it.
"""

from __future__ import annotations

import json
import logging
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# A context variable, not a global: each request (each asyncio task) sees its own value.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is kept.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request id (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; tracebacks go into ``exc_info`` as a string, never raw."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exc_info"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def log_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict for the service and uvicorn alike.

    uvicorn applies it in every worker process, so ``--workers N`` logs the same way as one.
    """
    formatter: dict[str, Any] = (
        {"()": "scheduler.logs.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "main",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "scheduler.logs.RequestIdFilter"}},
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": level},
        "loggers": {
            # Our own access line (scheduler.access) carries the request id and timing, so
            # uvicorn's would only say the same thing twice.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "uvicorn": {"handlers": ["main"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
        },
    }
