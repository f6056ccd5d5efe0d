"""A pure ASGI middleware that refuses request bodies over the limit with 413.

It checks ``Content-Length`` first and also counts the bytes of chunked bodies as they arrive,
so no handler ever holds more than the limit in memory.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.errors import PayloadTooLarge
from scheduler.web.errors import error_response


class BodyLimitMiddleware:
    """``max_bytes`` for every request, except the paths ``larger`` names (an upload form)."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length > limit or length < 0:
                    error = PayloadTooLarge(limit)
                    response = error_response(413, error.code, error.message, error.fields)
                    await response(scope, receive, send)
                    return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)
