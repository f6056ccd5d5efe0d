"""The one place where errors become HTTP responses in the contract's shape.

``{"error": {"code": ..., "message": ..., "fields": {...}}}`` for the API and feeds; the HTML
pages render their own error template for the same errors.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scheduler.errors import SchedulerError
from scheduler.logs import loggable_path

log = logging.getLogger("scheduler.web")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "fields": fields or {}}},
        status_code=status,
        headers=headers,
    )


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SchedulerError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(exc.status_code, exc.code, exc.message, exc.fields, headers or None)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    headers = dict(exc.headers or {})
    return error_response(exc.status_code, code, str(exc.detail), None, headers or None)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    path = loggable_path(request.scope)
    log.exception("unhandled error on %s %s", request.method, path, exc_info=exc)
    return error_response(500, "internal", "something went wrong on our side")


EXCEPTION_HANDLERS = {
    SchedulerError: on_domain_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
