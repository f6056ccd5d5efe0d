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
import re
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


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: anything that could
# end a log line early or hide in it. A request's path is the caller's text, so a CR/LF in it
# would otherwise write a forged record of its own.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    """``text`` with every control character written as an escape (``\\r``  -> ``\\x0d``)."""
    return _CONTROL.sub(_escape, text)


# Path segments that are secrets: a registrant's token opens their registration.
_SECRET_SEGMENT = re.compile(r"^(/(?:api/)?registrations/)(?!lookup(?:/|$))[^/]+")
REDACTED = "<redacted>"


def loggable_path(scope: Any) -> str:
    """The request's path with its secret segments (tokens) replaced, fit for a log."""
    path = str(scope.get("path", ""))
    for name, value in (scope.get("path_params") or {}).items():
        if name.endswith("token") and isinstance(value, str) and value:
            path = path.replace(value, REDACTED)
    return _SECRET_SEGMENT.sub(lambda m: m.group(1) + REDACTED, path)


class TextFormatter(logging.Formatter):
    """The text format, one record per line: control characters in a record are escaped, and
    each line of a traceback is indented, so nothing a caller sends can start a line that
    looks like a record of its own."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_control(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return _indent(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indent(super().formatStack(stack_info))


def _indent(text: str) -> str:
    lines = text.replace("\r", "\\x0d").replace("\x00", "\\x00").split("\n")
    return "\n".join(line if line.startswith(" ") else "    " + line for line in lines)


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
        {"()": "scheduler.logs.JsonFormatter"}
        if log_format == "json"
        else {"()": "scheduler.logs.TextFormatter", "fmt": TEXT_FORMAT}
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
