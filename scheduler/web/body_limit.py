"""A pure ASGI middleware that refuses request bodies over the limit with 413.

It checks ``Content-Length`` first and also counts the bytes of chunked bodies as they arrive,
so no handler ever holds more than the limit in memory. Upload forms (a path that one of
``uploads``' patterns matches in full) get their own, larger limit.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.errors import PayloadTooLarge
from scheduler.web.errors import error_response

# Attendance reports exported by Zoom or Teams are uploaded whole, and one meeting's marks may
# name up to ``attendance.MAX_MARKS`` people: they get a larger limit.
ATTENDANCE_UPLOADS = re.compile(r"/.*/attendance(/import)?")
ATTENDANCE_MAX_BYTES = 4 * 1024 * 1024


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_bytes: int, uploads: tuple[tuple[re.Pattern[str], int], ...] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = uploads

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.uploads:
            if pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
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
