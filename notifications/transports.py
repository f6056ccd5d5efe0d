"""Mail transports: SMTP through aiosmtplib, ``.eml`` files, and memory.

The errors a transport raises::

    DeliveryError          base: the message did not go out
    ├── TransientError     worth retrying later: refused connection, timeout, 4xx answer
    └── PermanentError     never worth retrying: 5xx answer, bad address

The dispatcher decides what to do with each: back off and retry, or mark the message failed with
the server's answer. Every transport is passed in through a constructor (``Mailer(transport=...)``),
as ``httpx.Client(transport=...)`` takes its transports.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib


class DeliveryError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TransientError(DeliveryError):
    pass


class PermanentError(DeliveryError):
    pass


class Transport(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message``; raises ``TransientError`` or ``PermanentError``."""

    async def close(self) -> None: ...


class MemoryTransport:
    """Keeps every message in a list; for tests and dry runs."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)

    async def close(self) -> None:
        return None


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._@-]+")


class FileTransport:
    """The embedded default: each message becomes ``<Message-ID>.eml`` in a folder.

    The file is named after the Message-ID, which is stable per outbox row, so a message sent
    again after a crash overwrites its own file instead of making a second one.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = _UNSAFE_FILENAME.sub("_", str(message["Message-ID"] or "message").strip("<>"))
            final = self.folder / f"{name}.eml"
            partial = self.folder / f".{name}.{os.getpid()}.tmp"
            # An address with non-ASCII characters before the @ has no RFC 2047 form: such a
            # message is written as an SMTPUTF8 relay would receive it (RFC 6532, raw UTF-8).
            policy = SMTPUTF8 if needs_smtputf8(message) else SMTP
            partial.write_bytes(message.as_bytes(policy=policy))
            # Readers never see half a file: rename is atomic within one folder.
            partial.replace(final)
        except OSError as exc:
            raise TransientError(f"cannot write to {self.folder}: {exc}") from exc

    async def close(self) -> None:
        return None


class SmtpTransport:
    """SMTP through aiosmtplib: ``smtp://`` (optionally ``?starttls=true``) or ``smtps://``.

    Connections are kept open and reused; at most ``max_connections`` are open at once, so that
    many messages are in flight in parallel. Every send runs under ``timeout`` seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 4,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("an SMTP URL starts smtp:// or smtps://")
        query = parse_qs(parts.query)
        self.hostname = parts.hostname or "localhost"
        self.implicit_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self.tls_context = tls_context
        self.max_connections = max_connections
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[aiosmtplib.SMTP] = []

    async def send(self, message: EmailMessage) -> None:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                async with asyncio.timeout(self.timeout):
                    if client is None or not client.is_connected:
                        client = await self._connect()
                    await client.send_message(message)
            except BaseException as exc:
                # A connection that failed mid-conversation is in an unknown state: drop it.
                if client is not None:
                    _drop(client)
                mapped = _classify(exc)
                if mapped is exc:
                    raise
                raise mapped from exc
            self._idle.append(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            use_tls=self.implicit_tls,
            start_tls=self.starttls if not self.implicit_tls else False,
            timeout=self.timeout,
            tls_context=self.tls_context,
        )
        try:
            await client.connect()
            if self.username is not None:
                await client.login(self.username, self.password or "")
        except BaseException:
            # Not yet handed to send(), so nothing else would close it: a refused login
            # would leak its (TLS) connection every retry.
            _drop(client)
            raise
        return client

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            transport = client.transport
            try:
                async with asyncio.timeout(5):
                    await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                pass
            finally:
                # After QUIT the session is over: the socket goes now, not after a TLS
                # close_notify exchange that a loop about to stop would never finish.
                _abort(transport)
                client.close()


def _drop(client: aiosmtplib.SMTP) -> None:
    """Close a connection that failed, at once.

    aiosmtplib's ``close()`` closes a TLS connection gracefully: it sends close_notify and keeps
    the socket until the server answers, up to ``ssl_shutdown_timeout`` (30 s). A server that
    just failed us may never answer, and a loop that stops meanwhile (a shutdown, a test's end)
    leaves that socket open. ``abort()`` frees the socket on the loop's next pass; ``close()``
    then resets aiosmtplib's own state.
    """
    _abort(client.transport)
    client.close()


def _abort(transport: asyncio.BaseTransport | None) -> None:
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    elif transport is not None:
        transport.close()


def needs_smtputf8(message: EmailMessage) -> bool:
    """Whether an address of ``message`` has non-ASCII characters (only SMTPUTF8 carries it)."""
    for name in ("From", "To", "Cc", "Bcc"):
        header = message[name]
        if header is None:
            continue
        for address in getattr(header, "addresses", ()):
            if not address.addr_spec.isascii():
                return True
    return False


def _classify(exc: BaseException) -> BaseException:
    """Map what aiosmtplib raised onto retry-or-not; anything unexpected passes through."""
    if isinstance(exc, aiosmtplib.SMTPNotSupported) and "SMTPUTF8" in str(exc):
        # The relay will never take this address; retrying would only repeat the refusal.
        return PermanentError(
            "the mail relay does not offer SMTPUTF8, which an address with non-ASCII "
            "characters before the @ needs"
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        answers = exc.recipients
        text = "; ".join(f"{r.code} {r.message} ({r.recipient})" for r in answers)
        if answers and all(r.code >= 500 for r in answers):
            return PermanentError(text)
        return TransientError(text)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # Bad credentials are the operator's to fix; the messages themselves are fine.
        return TransientError(f"login failed: {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(
        exc, aiosmtplib.SMTPServerDisconnected
    ):
        text = f"{exc.code} {exc.message}"
        return PermanentError(text) if exc.code >= 500 else TransientError(text)
    if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
        return TransientError(f"{type(exc).__name__}: {exc}".rstrip(": "))
    return exc
