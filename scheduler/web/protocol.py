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


# A timer may fire this early (the loop's clock has millisecond steps) and still count.
_SLACK = 0.001


class CappedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a per-request head cap and a deadline for each request's head.

    uvicorn times out only an idle keep-alive connection after a response. A connection that
    never sends a request, or sends its head a byte at a time, is held for ever, and enough of
    them exhaust ``limit_concurrency`` for everyone. So a connection gets ``HEAD_TIMEOUT``
    seconds, from being opened or from the last response, to deliver a whole request head, and
    then ``BODY_TIMEOUT`` seconds for its body.

    Those deadlines and uvicorn's keep-alive timeout share one timer per connection. Each
    request moves a deadline three or four times; cancelling and making a timer each time was
    most of this protocol's cost on a keep-alive connection. Now a move only writes the new
    instant, and the timer, when it fires, acts on the deadlines as they stand then or sleeps
    until the next one, so it is remade about once per keep-alive timeout, not per request.
    """

    HEAD_TIMEOUT = 10.0
    BODY_TIMEOUT = 30.0
    _body_pending = False
    _head_pending = False
    _head_bytes = 0
    _began_in_read = False
    _timer: asyncio.TimerHandle | None = None
    _timer_at = 0.0
    # The head's or the body's deadline, whichever is pending (a loop time), and the idle
    # connection's after a response (uvicorn's ``timeout_keep_alive``).
    _deadline: float | None = None
    _idle_deadline: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._set_deadline(self.HEAD_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = self._idle_deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def _set_deadline(self, timeout: float) -> None:
        self._deadline = when = self.loop.time() + timeout
        self._wake_by(when)

    def _wake_by(self, when: float) -> None:
        """Have the timer fire no later than ``when``; a later timer is brought forward."""
        if self._timer is None or when < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(when, self._on_timer)
            self._timer_at = when

    def _on_timer(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time() + _SLACK
        idle, deadline = self._idle_deadline, self._deadline
        if idle is not None and now >= idle:
            self.transport.close()  # uvicorn's keep-alive timeout: no data since the response
            return
        if deadline is not None and now >= deadline:
            self._deadline = deadline = None
            stalled = self._head_pending or self._body_pending or self.cycle is None
            if stalled:
                self.transport.close()
                return
        pending = [d for d in (idle, deadline) if d is not None]
        if pending:
            self._wake_by(min(pending))

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn calls this when data arrives: the connection is no longer idle.
        self._idle_deadline = None
        super()._unset_keepalive_if_required()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_pending = True
        self._head_bytes = 0
        self._began_in_read = True

    def on_headers_complete(self) -> None:
        self._head_pending = False
        self._body_pending = True
        self._set_deadline(self.BODY_TIMEOUT)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_pending = False
        self._deadline = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # uvicorn's own, with its keep-alive timer replaced by the deadline above.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle_deadline = when = self.loop.time() + self.timeout_keep_alive
            self._wake_by(when)
        self._set_deadline(self.HEAD_TIMEOUT)  # the next request's head has the same deadline

    def data_received(self, data: bytes) -> None:
        continuing = self._head_pending
        self._began_in_read = False
        super().data_received(data)
        if not self._head_pending:
            return
        if self._began_in_read:
            # A head begun in this read holds what was parsed of it so far (uvicorn keeps the
            # URL and the headers as they arrive), so pipelined requests sharing a read count
            # only their own bytes; its unparsed rest is less than one read.
            self._head_bytes = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        elif continuing:
            # The whole read belongs to a head begun in an earlier read.
            self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.logger.warning("Request head over %d bytes refused.", MAX_HEAD_BYTES)
            self.transport.write(_REFUSAL)
            self.transport.close()
