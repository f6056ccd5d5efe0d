"""The one middleware of the stack: everything done for every request, in one pure ASGI layer.

``RequestMiddleware`` gives each request its id, times it for the metrics and the access log,
refuses oversized headers (431) and bodies (413), adds the security headers (CSP and the rest)
and a 405's full ``Allow``, tells the input parsers the relay's address policy, and turns
database outages into 503. These were six middleware once; each layer was a coroutine and a
``send`` wrapper more per request, which a warm feed request, otherwise a dictionary look-up,
felt in full (``bench/callgrind_feeds.py`` counts the instructions).

It is pure ASGI (no ``BaseHTTPMiddleware``) so it adds no task or buffering per request. It
sits outside Starlette's exception middleware, so any error that no handler answered passes
through it: a database that cannot be reached becomes ``503`` with ``Retry-After`` in the
contract's error shape, logged as one line without a traceback, because an outage is an
operating condition and not a bug. Every other error is passed on to the 500 handler.

Request bodies over the limit are refused with 413: ``Content-Length`` is checked first, and
the bytes of chunked bodies are counted as they arrive, so no handler ever holds more than the
limit in memory. Upload forms (a path that one of ``uploads``' patterns matches in full) get
their own, larger limit. The parsers read ``validation.SMTPUTF8_ADDRESSES`` (whether the relay
takes non-ASCII local parts), set here for the request's own context only.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.db import is_database_outage
from scheduler.errors import PayloadTooLarge, Unavailable
from scheduler.logs import loggable_path, request_id_var
from scheduler.validation import SMTPUTF8_ADDRESSES
from scheduler.web.errors import error_response
from scheduler.web.metrics import Metrics, registration_outcome
from scheduler.web.pages import SECURITY_HEADERS

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
_SECURITY_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)
_ALLOW = b"allow"
_ID = b"x-request-id"


def request_id_from(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is safe to log, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == _ID:
            return _request_id(value)
    return _request_id(None)


def _request_id(given: bytes | None) -> str:
    if given is not None:
        candidate = bytes(given).decode("latin-1")
        if _SAFE_ID.match(candidate):
            return candidate
    return os.urandom(16).hex()  # 32 hex digits, as uuid4().hex, without building a UUID


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
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        retry_after: int = 5,
        *,
        max_body_bytes: int,
        uploads: tuple[tuple[re.Pattern[str], int], ...] = (),
        routes: Sequence[BaseRoute] = (),
        smtputf8: bool = False,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.retry_after = retry_after
        self.max_body_bytes = max_body_bytes
        self.uploads = uploads
        self.routes = [route for route in routes if isinstance(route, Route)]
        self.smtputf8 = smtputf8

    def limit_for(self, path: str) -> int:
        """The most body bytes a request to ``path`` may send."""
        for pattern, limit in self.uploads:
            if pattern.fullmatch(path):
                return limit
        return self.max_body_bytes

    def allowed_methods(self, scope: Scope) -> set[str]:
        """Every method the path takes: each is a route of its own, and Starlette's router
        answers 405 with the methods of the first route whose path matched (RFC 9110, 15.5.6)."""
        methods: set[str] = set()
        for route in self.routes:
            if route.methods and route.matches(scope)[0] is not Match.NONE:
                methods |= route.methods
        return methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One pass over the headers: their size, the caller's id and the body's length.
        size = 0
        given_id: bytes | None = None
        length: bytes | None = None
        for name, value in scope.get("headers", ()):
            size += len(name) + len(value)
            if name == _ID:
                if given_id is None:
                    given_id = value
            elif name == b"content-length" and length is None:
                length = value
        if size > MAX_HEADER_BYTES:
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
        request_id = _request_id(given_id)
        encoded_id = request_id.encode("latin-1")
        token = request_id_var.set(request_id)
        policy = SMTPUTF8_ADDRESSES.set(self.smtputf8)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = message.get("headers") or []
                # ASGI: response header names are lowercase (Starlette's responses make them so).
                present = {name for name, _ in headers}
                # A new list: a response may hand over a header block it keeps for reuse.
                headers = [h for h in headers if h[0] != _ID] if _ID in present else [*headers]
                if not present >= _SECURITY_NAMES:
                    headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                if status == 405:
                    methods = self.allowed_methods(scope)
                    if methods:
                        headers = [h for h in headers if h[0] != _ALLOW]
                        headers.append((_ALLOW, ", ".join(sorted(methods)).encode("latin-1")))
                headers.append((_ID, encoded_id))
                message["headers"] = headers
            await send(message)

        try:
            if _NOT_A_PATH.search(scope.get("path", "")):
                # No route has a control character in it (PostgreSQL refuses NUL in text).
                await error_response(404, "not_found", "no such page")(
                    scope, receive, send_with_headers
                )
            elif (refused := self._refused_length(scope, length)) is not None:
                await refused(scope, receive, send_with_headers)
            else:
                await self.app(scope, self._counting(scope, receive), send_with_headers)
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
            await response(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            method = str(scope.get("method", ""))
            route = route_template(scope)
            self.metrics.observe(method, route, status, elapsed)
            noted = scope["state"].get("registration_outcome")
            if _is_registration(method, route, noted):
                self.metrics.registration(registration_outcome(status, noted))
            if access_log.isEnabledFor(logging.INFO):
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
            SMTPUTF8_ADDRESSES.reset(policy)
            request_id_var.reset(token)

    def _refused_length(self, scope: Scope, length: bytes | None) -> ASGIApp | None:
        """A 413 for a ``Content-Length`` over the path's limit (or not a length at all)."""
        if length is None:
            return None
        try:
            declared = int(length)
        except ValueError:
            declared = -1
        limit = self.limit_for(scope.get("path", ""))
        if declared > limit or declared < 0:
            error = PayloadTooLarge(limit)
            return error_response(413, error.code, error.message, error.fields)
        return None

    def _counting(self, scope: Scope, receive: Receive) -> Receive:
        """``receive``, refusing a body once its bytes pass the path's limit."""
        seen = 0
        limit: int | None = None

        async def counting_receive() -> Message:
            nonlocal seen, limit
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                if body:
                    seen += len(body)
                    if limit is None:
                        limit = self.limit_for(scope.get("path", ""))
                    if seen > limit:
                        raise PayloadTooLarge(limit)
            return message

        return counting_receive
