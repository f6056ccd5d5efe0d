"""The HTTP protocol ``scheduler serve`` runs: httptools, with a cap on a request's head.

Raw sockets against a real server, since what is tested happens before the app sees a request.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from scheduler.web.protocol import MAX_HEAD_BYTES


def connect(server: Any) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes or goes quiet for a moment."""
    sock.settimeout(2)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        pass
    return b"".join(chunks)


def read_one(sock: socket.socket) -> bytes:
    """One whole response's head, where the next request is only sent after it arrived."""
    (head,) = read_heads(sock, 1)
    return head


def read_heads(sock: socket.socket, count: int) -> list[bytes]:
    """The heads of ``count`` whole responses on a keep-alive connection, in order.

    Pipelined responses may arrive several to one read (the more so on a busy machine), so the
    bytes are split by each head's Content-Length, never by where a read happened to end.
    """
    data, heads = b"", []
    while len(heads) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed mid-response after {len(heads)}: {data[:200]!r}"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(data) < length:
            chunk = sock.recv(65536)
            assert chunk, "closed mid-body"
            data += chunk
        heads.append(head)
        data = data[length:]
    assert data == b""  # no more responses than requests
    return heads


def test_a_head_that_trickles_in_past_the_cap_is_refused(sqlite_url: str, live_server_factory):
    server = live_server_factory(sqlite_url)
    sock = connect(server)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for n in range(2 * MAX_HEAD_BYTES // 1024):
            try:
                sock.sendall(f"X-Pad-{n}: ".encode() + b"a" * 1024 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.005)  # separate reads, as a slow client's would be
        answer = read_response(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    # The server goes on serving everyone else.
    sock = connect(server)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
    finally:
        sock.close()


def test_a_large_body_is_not_counted_as_head_and_keep_alive_resets_the_count(
    sqlite_url: str, live_server_factory
):
    server = live_server_factory(sqlite_url)
    body = json.dumps({"name": "x" * 60_000, "email": "a@example.org"}).encode()
    request = (
        b"POST /api/sessions/1/registrations HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    # Headers of 12 KiB: under the cap alone, over it if the count carried across requests.
    padded = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 12_000 + b"\r\n\r\n"
    sock = connect(server)
    try:
        sock.sendall(request)
        first = read_one(sock)
        assert first.startswith(b"HTTP/1.1 422 "), first[:200]  # the app judged it
        for _ in range(3):
            sock.sendall(padded)
            answer = read_one(sock)
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    finally:
        sock.close()


def test_pipelined_requests_count_their_own_heads(sqlite_url: str, live_server_factory):
    """Issue 9: 201 pipelined 1 KiB requests in one write got a 431, as if one head."""
    server = live_server_factory(sqlite_url)
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 1000 + b"\r\n\r\n"
    sock = connect(server)
    try:
        sock.sendall(one * 201)
        heads = read_heads(sock, 201)
    finally:
        sock.close()
    assert all(head.startswith(b"HTTP/1.1 200 ") for head in heads)


def _quick_server(port: int, keep_alive: float = 5) -> Any:
    import threading

    import uvicorn

    from scheduler.web.protocol import CappedHttpToolsProtocol

    class Quick(CappedHttpToolsProtocol):
        HEAD_TIMEOUT = 0.5
        BODY_TIMEOUT = 0.5

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=Quick,
        log_level="warning",
        timeout_keep_alive=keep_alive,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread


def test_silent_and_stalled_connections_are_closed():
    """Issue 9: idle or stalled sockets were held for ever, until /healthz answered 503."""
    from tests.support.ports import free_port

    port = free_port()
    server, thread = _quick_server(port)
    try:
        for opening in (
            b"",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        ):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                if opening:
                    sock.sendall(opening)
                # The server closes it: recv returns b"" well before the 10 s socket timeout.
                assert sock.recv(100) == b""
            finally:
                sock.close()
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
        finally:
            sock.close()
    finally:
        server.should_exit = True
        thread.join(10)


def test_one_timer_keeps_a_busy_connection_and_closes_a_stalled_or_idle_one():
    """Issue 16: the head, body and keep-alive deadlines share one timer per connection, which
    fires early and sleeps again while requests keep coming. A connection in use stays open
    past many deadlines; a head stalled after them, or an idle connection, is still closed."""
    from tests.support.ports import free_port

    port = free_port()
    server, thread = _quick_server(port, keep_alive=0.8)
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        for then in (b"GET / HTTP/1.1\r\nHost: x\r\n", b""):  # a stalled head, then idle
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                started = time.monotonic()
                while time.monotonic() - started < 2.0:  # 4 head and 2 keep-alive timeouts
                    sock.sendall(request)
                    assert read_one(sock).startswith(b"HTTP/1.1 200 ")
                    time.sleep(0.2)
                if then:
                    sock.sendall(then)
                # Closed by its own deadline (0.5 s, or 0.8 s idle): recv returns b"" well
                # before the socket's timeout, which would raise instead.
                sock.settimeout(4)
                assert sock.recv(100) == b""
            finally:
                sock.close()
    finally:
        server.should_exit = True
        thread.join(10)
