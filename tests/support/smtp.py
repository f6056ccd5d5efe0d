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
    same port. With ``keep=False`` it only counts.
    """

    def __init__(self, *, keep: bool = True) -> None:
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.keep = keep
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
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        # aiosmtpd inspects every attribute of its handler on each connection (evaluating
        # properties such as ``messages``), so it gets a small handler of its own.
        self._controller = Controller(_SinkHandler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        """Every received message, parsed by the standard ``email`` package."""
        with self._lock:
            raw = [content for _, _, content in self.received]
        return [email.message_from_bytes(content, policy=default) for content in raw]

    def count(self) -> int:
        with self._lock:
            return self._count


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
