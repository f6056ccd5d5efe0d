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
    """One whole response on a keep-alive connection: head, then Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-response: {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    assert len(body) == length  # nothing of a next response may have come yet
    return head


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
