"""uvicorn's httptools protocol with a cap on the size of a request's head.

httptools parses HTTP in C, a tenth of a registration's CPU less than h11 in pure Python
(``bench/bench_registration.py``), but unlike h11 it buffers a request line and headers of any
size: a client could make a worker hold megabytes per connection before the app ever sees the
request. This protocol counts what arrives while a head is incomplete and answers
``431 Request Header Fields Too Large`` and closes once it passes ``MAX_HEAD_BYTES``, so a
connection holds at most the cap plus one read.

``scheduler serve`` selects it with ``http="scheduler.web.protocol:CappedHttpToolsProtocol"``.
The app's own ``RequestMiddleware`` still refuses headers over its cap in the error shape.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The request line and headers together; the app's own cap (middleware.MAX_HEADER_BYTES)
# counts header names and values only, so this one sits a little above it.
MAX_HEAD_BYTES = 20 * 1024
_MESSAGE = b"the request line and headers are too large"
_REFUSAL = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
        _MESSAGE,
    ]
)


class CappedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a per-request head cap and a deadline for each request's head.

    uvicorn times out only an idle keep-alive connection after a response. A connection that
    never sends a request, or sends its head a byte at a time, is held for ever, and enough of
    them exhaust ``limit_concurrency`` for everyone. So a connection gets ``HEAD_TIMEOUT``
    seconds, from being opened or from the last response, to deliver a whole request head, and
    then ``BODY_TIMEOUT`` seconds for its body.
    """

    HEAD_TIMEOUT = 10.0
    BODY_TIMEOUT = 30.0
    _body_pending = False
    _head_pending = False
    _head_bytes = 0
    _began_in_read = False
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self, timeout: float | None = None) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(timeout or self.HEAD_TIMEOUT, self._head_too_slow)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        stalled = self._head_pending or self._body_pending or self.cycle is None
        if stalled and not self.transport.is_closing():
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_pending = True
        self._head_bytes = 0
        self._began_in_read = True

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if self._began_in_read:
            self._head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        if self._began_in_read:
            self._head_bytes += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self._head_pending = False
        self._body_pending = True
        self._arm_head_timer(self.BODY_TIMEOUT)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_pending = False
        self._disarm_head_timer()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next request's head has the same deadline

    def data_received(self, data: bytes) -> None:
        continuing = self._head_pending
        self._began_in_read = False
        super().data_received(data)
        if not self._head_pending:
            return
        if continuing and not self._began_in_read:
            # The whole read belongs to a head begun in an earlier read. A head that began in
            # this read was counted by on_url/on_header, so pipelined requests sharing a read
            # count only their own bytes; its unparsed rest is less than one read.
            self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.logger.warning("Request head over %d bytes refused.", MAX_HEAD_BYTES)
            self.transport.write(_REFUSAL)
            self.transport.close()
