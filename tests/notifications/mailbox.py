"""Reading back what the SMTP server received: parts, invites, and the dispatcher set-up."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from icalendar import Calendar

from notifications.dispatcher import Dispatcher
from notifications.transports import SmtpTransport
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.jobs import make_dispatcher


def smtp_dispatcher(db: Database, settings: Settings, smtp_url: str, **kwargs: Any) -> Dispatcher:
    return make_dispatcher(db, settings, SmtpTransport(smtp_url, timeout=5, **kwargs))


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "no text/plain part"
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "no text/html part"
    return str(part.get_content())


def calendar_part(message: EmailMessage) -> EmailMessage | None:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return part  # type: ignore[return-value]
    return None


def ics_attachment(message: EmailMessage) -> EmailMessage | None:
    for part in message.iter_attachments():
        if part.get_filename("").endswith(".ics"):
            return part  # type: ignore[return-value]
    return None


def invite_of(message: EmailMessage) -> Calendar | None:
    """The invite, after checking its inline part and its attachment say the same thing."""
    inline = calendar_part(message)
    attached = ics_attachment(message)
    assert (inline is None) == (attached is None), "invite part and .ics must come together"
    if inline is None or attached is None:
        return None
    method = inline.get_param("method")
    cal = Calendar.from_ical(inline.get_content())
    assert str(cal["METHOD"]) == method
    assert Calendar.from_ical(attached.get_content()).to_ical() == cal.to_ical()
    return cal


def event_of(cal: Calendar) -> Any:
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    return events[0]


def by_recipient(messages: list[EmailMessage]) -> dict[str, list[EmailMessage]]:
    found: dict[str, list[EmailMessage]] = {}
    for message in messages:
        found.setdefault(message["To"].addresses[0].addr_spec, []).append(message)
    return found


def kinds(messages: list[EmailMessage]) -> list[str]:
    return [str(m["X-Outbox-Kind"]) for m in messages]
