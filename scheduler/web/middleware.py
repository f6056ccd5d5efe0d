"""The outermost middleware: request id, timing and metrics, and database outages as 503.

It is pure ASGI (no ``BaseHTTPMiddleware``) so it adds no task or buffering per request. It
sits outside Starlette's exception middleware, so any error that no handler answered passes
through it: a database that cannot be reached becomes ``503`` with ``Retry-After`` in the
contract's error shape, logged as one line without a traceback, because an outage is an
operating condition and not a bug. Every other error is passed on to the 500 handler.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.db import is_database_outage
from scheduler.errors import Unavailable
from scheduler.logs import loggable_path, request_id_var
from scheduler.validation import SMTPUTF8_ADDRESSES
from scheduler.web.errors import error_response
from scheduler.web.metrics import Metrics, registration_outcome

access_log = logging.getLogger("scheduler.access")
log = logging.getLogger("scheduler.web")

REQUEST_ID_HEADER = "x-request-id"
# A caller's id is kept only when it is short and plain, so it cannot forge log lines.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "<unmatched>"
_NOT_A_PATH = re.compile(r"[\x00-\x1f\x7f]")
# The server's protocol (web/protocol.py, httptools) caps a request's head at 20 KiB as it
# reads; the app holds the headers it was given to this tighter total, whatever server runs it.
MAX_HEADER_BYTES = 16 * 1024


def request_id_from(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is safe to log, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if _SAFE_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/sessions/{session_id}``), never the raw path,
    so metrics labels stay few however many ids and tokens are requested."""
    route = scope.get("route")
    path: object = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _is_registration(method: str, route: str, noted: str | None) -> bool:
    return noted is not None or (
        method == "POST" and route.endswith(("/registrations", "/register"))
    )


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, retry_after: int = 5) -> None:
        self.app = app
        self.metrics = metrics
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if sum(len(name) + len(value) for name, value in scope.get("headers", ())) > (
            MAX_HEADER_BYTES
        ):
            response = error_response(
                431,
                "headers_too_large",
                f"the request headers are over {MAX_HEADER_BYTES} bytes",
                {"headers": "too large"},
            )
            await response(scope, receive, send)
            return
        # Each request gets its own copy of the lifespan state, as uvicorn does, so what a
        # handler notes there (its registration outcome) cannot leak into the next request.
        scope["state"] = dict(scope.get("state") or {})
        request_id = request_id_from(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            if _NOT_A_PATH.search(scope.get("path", "")):
                # No route has a control character in it (PostgreSQL refuses NUL in text).
                await error_response(404, "not_found", "no such page")(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if response_started or not is_database_outage(exc):
                raise
            log.warning(
                "database unavailable: %s: %s",
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
            )
            error = Unavailable(retry_after=self.retry_after)
            response = error_response(
                error.status_code,
                error.code,
                error.message,
                error.fields,
                {"Retry-After": str(self.retry_after)},
            )
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = str(scope.get("method", ""))
            route = route_template(scope)
            self.metrics.observe(method, route, status, elapsed)
            noted = scope.get("state", {}).get("registration_outcome")
            if _is_registration(method, route, noted):
                self.metrics.registration(registration_outcome(status, noted))
            path = loggable_path(scope)
            access_log.info(
                "%s %s %s %.1fms",
                method,
                path,
                status,
                elapsed * 1000,
                extra={
                    "method": method,
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


class AddressPolicyMiddleware:
    """Tells the input parsers whether the relay takes non-ASCII local parts (SMTPUTF8).

    The parsers read ``validation.SMTPUTF8_ADDRESSES``; it is set for the request's own
    context only, from the settings the app was built with.
    """

    def __init__(self, app: ASGIApp, *, smtputf8: bool) -> None:
        self.app = app
        self.smtputf8 = smtputf8

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = SMTPUTF8_ADDRESSES.set(self.smtputf8)
        try:
            await self.app(scope, receive, send)
        finally:
            SMTPUTF8_ADDRESSES.reset(token)


class AllowedMethodsMiddleware:
    """A 405 lists every method its path takes in ``Allow`` (RFC 9110, 15.5.6).

    Each method of a path is a route of its own, and Starlette's router answers 405 with the
    methods of the first route whose path matched; this puts the others back.
    """

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = [route for route in routes if isinstance(route, Route)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods: set[str] = set()
                for route in self.routes:
                    if route.methods and route.matches(scope)[0] is not Match.NONE:
                        methods |= route.methods
                if methods:
                    MutableHeaders(scope=message)["allow"] = ", ".join(sorted(methods))
            await send(message)

        await self.app(scope, receive, send_with_allow)
