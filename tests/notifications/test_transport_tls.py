"""SMTP over STARTTLS with login, and over implicit TLS, against real aiosmtpd servers.

Certificates come from trustme (a throwaway CA), handed to the transport as its TLS context.
"""

from __future__ import annotations

import asyncio
import gc
import ssl
import warnings
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from notifications.transports import SmtpTransport, TransientError
from tests.support.ports import free_port

USER, PASSWORD = "relay-user", "relay-pass-0123"


class Recorder:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            {
                # STARTTLS swaps in a TLS protocol; implicit TLS wraps the transport itself.
                "tls": server._tls_protocol is not None
                or server.transport.get_extra_info("ssl_object") is not None,
                "login": getattr(session.auth_data, "login", None),
                "content": envelope.content,
                "to": list(envelope.rcpt_tos),
            }
        )
        return "250 OK"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def starttls_server(ca: trustme.CA) -> Iterator[tuple[int, Recorder]]:
    recorder, port = Recorder(), free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        server_hostname="relay.test",
        tls_context=server_context(ca),
        require_starttls=True,
        auth_required=True,
        authenticator=authenticate,
    )
    controller.start()
    yield port, recorder
    controller.stop()


@pytest.fixture
def implicit_tls_server(ca: trustme.CA) -> Iterator[tuple[int, Recorder]]:
    recorder, port = Recorder(), free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        server_hostname="relay.test",
        ssl_context=server_context(ca),
    )
    controller.start()
    yield port, recorder
    controller.stop()


async def open_sockets_to(port: int) -> list[int]:
    """File descriptors of this process's client sockets to ``port`` still open after one pass
    of the event loop: what a connection closed in time has given back."""
    await asyncio.sleep(0)
    found = set()
    for thing in gc.get_objects():
        if isinstance(thing, asyncio.BaseTransport):
            try:
                sock = thing.get_extra_info("socket")
                peer = thing.get_extra_info("peername")
            except AttributeError:
                # A TLS layer already unhooked from its socket; the socket's own transport
                # is in the heap too and is the one looked at.
                continue
            if sock is None or sock.fileno() == -1:
                continue
            if peer is not None and peer[1] == port:
                found.add(sock.fileno())
    return sorted(found)


def message(n: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Training Scheduler <no-reply@training.example.org>"
    mail["To"] = f"officer{n}@example.org"
    mail["Subject"] = f"Test {n}"
    mail.set_content(f"body {n}")
    return mail


async def test_starttls_with_login_delivers_over_tls_and_reuses_the_connection(
    starttls_server, client_context
):
    port, recorder = starttls_server
    url = f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}?starttls=true"
    transport = SmtpTransport(url, max_connections=1, timeout=10, tls_context=client_context)
    try:
        for n in range(3):
            await transport.send(message(n))
    finally:
        await transport.close()
    # QUIT ends the session; the socket goes with it, not after a TLS goodbye left unfinished.
    assert await open_sockets_to(port) == []
    assert [r["to"] for r in recorder.received] == [[f"officer{n}@example.org"] for n in range(3)]
    assert [(r["tls"], r["login"]) for r in recorder.received] == [(True, USER.encode())] * 3
    assert all(r["login"] == USER.encode() for r in recorder.received)


async def test_wrong_password_is_a_transient_failure_the_operator_fixes(
    starttls_server, client_context
):
    port, recorder = starttls_server
    url = f"smtp://{USER}:wrong-password@127.0.0.1:{port}?starttls=true"
    transport = SmtpTransport(url, timeout=10, tls_context=client_context)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TransientError, match="login failed"):
            await transport.send(message(1))
        # Gone at once: a TLS close that waits for the server's answer outlived a loop that
        # stopped first, and the socket was reported unclosed after the test (seen under load).
        assert await open_sockets_to(port) == []
        await transport.close()
        gc.collect()
    assert recorder.received == []
    # The refused connection was closed, not left for the garbage collector.
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_implicit_tls_delivers(implicit_tls_server, client_context):
    port, recorder = implicit_tls_server
    transport = SmtpTransport(f"smtps://127.0.0.1:{port}", timeout=10, tls_context=client_context)
    try:
        await transport.send(message(7))
    finally:
        await transport.close()
    assert len(recorder.received) == 1 and recorder.received[0]["tls"]


async def test_an_untrusted_certificate_is_refused(implicit_tls_server):
    port, recorder = implicit_tls_server
    transport = SmtpTransport(f"smtps://127.0.0.1:{port}", timeout=10)
    with pytest.raises(TransientError):
        await transport.send(message(8))
    assert await open_sockets_to(port) == []
    await transport.close()
    assert recorder.received == []
