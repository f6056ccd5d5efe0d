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
    _head_pending = False
    _head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_pending = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_pending = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_pending:
            # Every read that leaves a head unfinished counts whole. Only a pipelined request
            # sharing a read with the tail of the one before could be over-counted.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self.logger.warning("Request head over %d bytes refused.", MAX_HEAD_BYTES)
                self.transport.write(_REFUSAL)
                self.transport.close()
