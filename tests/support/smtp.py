"""A real SMTP server (aiosmtpd) on a free port that keeps what it receives.

In a test, ``SmtpSink().start()`` runs it in a thread of the test process. The outbox benchmark
runs it in a process of its own, ``python -m tests.support.smtp``, which prints the port, drops
what it receives, and stops when its standard input closes.
"""

from __future__ import annotations

import email
import sys
import threading
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.ports import free_port


class SmtpSink:
    """The server and what it received: ``(mail_from, rcpt_tos, content)`` per message.

    ``refuse`` maps a recipient address to the reply its RCPT TO gets (e.g. ``"550 5.1.1 no
    such user"``); ``stop()`` and ``start()`` take the server away and bring it back on the
    same port. With ``keep=False`` it only counts. With ``smtputf8=True`` it offers SMTPUTF8
    (RFC 6531), so it takes addresses with non-ASCII characters before the @; ``options`` holds
    each message's MAIL FROM options.
    """

    def __init__(self, *, keep: bool = True, smtputf8: bool = False) -> None:
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.keep = keep
        self.smtputf8 = smtputf8
        self.options: list[list[str]] = []
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        self._count = 0
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self._count += 1
            if self.keep:
                self.received.append(
                    (envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
                )
                self.options.append(list(envelope.mail_options))
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        # aiosmtpd inspects every attribute of its handler on each connection (evaluating
        # properties such as ``messages``), so it gets a small handler of its own.
        self._controller = Controller(
            _SinkHandler(self),
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=self.smtputf8,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        """Every received message, parsed by the standard ``email`` package (an SMTPUTF8 one as
        the UTF-8 text it is, RFC 6532)."""
        with self._lock:
            raw = [content for _, _, content in self.received]
        return [parse_message(content) for content in raw]

    def count(self) -> int:
        with self._lock:
            return self._count


def parse_message(content: bytes) -> EmailMessage:
    """A received or written message as the ``email`` package reads it: raw UTF-8 headers
    (RFC 6532) are read as text, anything else as bytes."""
    if content.isascii():
        return email.message_from_bytes(content, policy=default)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return email.message_from_bytes(content, policy=default)
    return email.message_from_string(text, policy=default)


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.handle_RCPT = sink.handle_RCPT
        self.handle_DATA = sink.handle_DATA


def main() -> None:
    sink = SmtpSink(keep=False).start()
    print(sink.port, flush=True)
    try:
        sys.stdin.read()
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
