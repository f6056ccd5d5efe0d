"""Render an outbox message into an ``EmailMessage`` from ``templates/email/``, and send it.

This package never imports ``scheduler``: what a message says about a registration and its
session arrives as a :class:`MailContent` from a *context provider* that the scheduler passes
in. The :class:`Mailer` turns that into a standard ``email`` message (plain text and HTML with
the same content, the invite as a ``text/calendar; method=...`` alternative plus an ``.ics``
attachment) and hands it to its transport.

Headers are built with the ``email`` package's header registry, and every piece of user text
that reaches a header is flattened to one line first, so a name or course title carrying
CR/LF, quotes or non-ASCII text can neither add a header nor break one.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy, Policy
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from notifications.models import utcnow
from notifications.outbox import OutboxMessage
from notifications.transports import PermanentError, Transport


@dataclass(frozen=True)
class Invite:
    """A personal iCalendar invite: the bytes and their iTIP method (REQUEST or CANCEL)."""

    data: bytes
    method: str


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message, e.g. a certificate's PDF."""

    data: bytes
    filename: str
    maintype: str = "application"
    subtype: str = "octet-stream"


@dataclass(frozen=True)
class MailContent:
    """What a message says: the template variables, the addressee's name, the invite if any."""

    context: dict[str, Any]
    to_name: str | None = None
    invite: Invite | None = None
    # Further iTIP messages, one per meeting (one UID each, RFC 5546): each goes out as its
    # own short email after this one, since a mail client acts on one text/calendar part.
    follow_ups: tuple[Invite, ...] = ()
    # Further invites attached as files, e.g. the CANCEL of the session a person moved from.
    attachments: tuple[Invite, ...] = ()
    # Other files, attached as they are.
    files: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Skip:
    """The message is no longer worth sending (e.g. a reminder after the start); says why."""

    reason: str


MailPlan = MailContent | Skip
ContextProvider = Callable[[Sequence[OutboxMessage]], Awaitable[Sequence[MailPlan]]]


_CONTROL = re.compile(r"\s+")


class SharedHeaders(HeaderRegistry):
    """The standard header registry, minus the work it repeats for every message.

    The stdlib makes a new class for every header it parses, and parses the same
    ``Content-Type``, ``From`` and ``Subject`` text again for each message of a batch: together
    most of the cost of a render, and the classes most of a message's memory. Parsed headers
    are immutable, so one object per (name, text) can serve every message; the parse is the
    stdlib's own, so what is written is unchanged. ``size`` bounds the parsed headers kept.
    """

    def __init__(self, size: int = 1024) -> None:
        super().__init__()
        self.size = size
        self._classes: dict[str, type[BaseHeader]] = {}
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if type(value) is not str:  # e.g. an Address: parsed each time, as before
            return super().__call__(name, value)
        key = (name, value)
        header = self._parsed.get(key)
        if header is None:
            header = super().__call__(name, value)
            if len(self._parsed) >= self.size:
                # Per-message values (To, Date, Message-ID) churn; the shared ones come back at
                # once, so dropping the oldest half is enough.
                for old in list(self._parsed)[: self.size // 2]:
                    del self._parsed[old]
            self._parsed[key] = header
        return header


class FoldedHeader(str):
    """A header value that the ``email`` package writes exactly as :func:`fold_header` folds it.

    Python's own folder (3.11) can leave the header name alone on its first line, which reads
    back with a leading space, and can drop or double the space next to an encoded word, so a
    long or non-ASCII subject did not parse back as written. The email package writes any value
    that has a ``name`` and a ``fold`` method as it is, so this one folds itself.
    """

    name: str

    def __new__(cls, name: str, value: str) -> FoldedHeader:
        header = super().__new__(cls, value)
        header.name = name
        return header

    @property
    def defects(self) -> tuple[()]:
        return ()

    def fold(self, *, policy: Policy) -> str:
        return fold_header(self.name, str(self), policy.linesep)


# UTF-8 bytes per encoded word: 56 base64 characters, 68 with the =?utf-8?b?...?= around them,
# so even the first line ("Subject: " and one word) stays within 78 characters.
_WORD_BYTES = 42


def fold_header(name: str, value: str, linesep: str = "\r\n", width: int = 78) -> str:
    """``Name: value`` folded at spaces into lines of at most ``width`` where words allow.

    ASCII text is folded only at its spaces, so unfolding gives back exactly the text. Other
    text becomes a run of RFC 2047 encoded words, split between characters; readers join
    adjacent encoded words without the folding whitespace between them (RFC 2047, 6.2).
    ``value`` must be one line (see :func:`header_text`).
    """
    if value.isascii():
        words = value.split(" ")
    else:
        chunks = [""]
        for ch in value:
            if len((chunks[-1] + ch).encode("utf-8")) > _WORD_BYTES:
                chunks.append("")
            chunks[-1] += ch
        words = [
            "=?utf-8?b?" + base64.b64encode(chunk.encode("utf-8")).decode("ascii") + "?="
            for chunk in chunks
        ]
    lines = [f"{name}: {words[0]}"]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(" " + word)
    return linesep.join(lines) + linesep


def header_text(value: str, limit: int = 200) -> str:
    """One line of printable text, safe to put in a header: controls become spaces.

    ``=?`` is broken up too: left alone, text shaped like an RFC 2047 encoded word would be
    decoded by the reader into something other than what the person typed.
    """
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in value
    )
    return _CONTROL.sub(" ", cleaned).replace("=?", "= ?").strip()[:limit]


def format_when(instant: datetime) -> str:
    """``Tuesday, January 12, 2027, 9:00 AM CST`` in the zone ``instant`` carries."""
    hour = instant.hour % 12 or 12
    return (
        f"{instant:%A}, {instant:%B} {instant.day}, {instant.year}, "
        f"{hour}:{instant:%M} {instant:%p} {instant:%Z}"
    )


def format_time(instant: datetime) -> str:
    """``12:00 PM CST``."""
    hour = instant.hour % 12 or 12
    return f"{hour}:{instant:%M} {instant:%p} {instant:%Z}"


# What people call the zones sessions are usually held in; others are named by their city.
ZONE_NAMES = {
    "America/New_York": "Eastern Time",
    "America/Detroit": "Eastern Time",
    "America/Chicago": "Central Time",
    "America/Denver": "Mountain Time",
    "America/Boise": "Mountain Time",
    "America/Phoenix": "Arizona time (Mountain Standard Time all year)",
    "America/Los_Angeles": "Pacific Time",
    "America/Anchorage": "Alaska Time",
    "Pacific/Honolulu": "Hawaii Time",
    "America/Puerto_Rico": "Atlantic Standard Time (Puerto Rico)",
    "Pacific/Guam": "Chamorro Time (Guam)",
    "UTC": "Coordinated Universal Time",
}


def format_zone(instant: datetime) -> str:
    """The zone of ``instant`` in plain words: ``Central Time (America/Chicago), CST, UTC-06:00``."""
    key = str(getattr(instant.tzinfo, "key", "") or instant.tzname() or "UTC")
    plain = ZONE_NAMES.get(key) or f"{key.rsplit('/', 1)[-1].replace('_', ' ')} time"
    offset = instant.strftime("%z") or "+0000"
    sign = "+" if offset[0] == "+" else "−"
    return f"{plain} ({key}), {instant:%Z}, UTC{sign}{offset[1:3]}:{offset[3:5]}"


def format_utc(instant: datetime) -> str:
    """``Tuesday, January 12, 2027, 3:00 PM UTC``: the same instant in UTC."""
    return format_when(instant.astimezone(UTC))


@dataclass
class Mailer:
    """Renders outbox messages and sends them through ``transport``."""

    transport: Transport
    # The folder of the email templates: the application that ships them passes it in.
    templates: Path
    mail_from: str = "Training Scheduler <no-reply@training.invalid>"
    reply_to: str | None = None
    _env: Environment = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._env = Environment(
            loader=FileSystemLoader(str(self.templates)),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Templates ship with the code: no stat() of every file for every message.
            auto_reload=False,
        )
        self._env.filters["when"] = format_when
        self._env.filters["time"] = format_time
        self._env.filters["zone"] = format_zone
        self._env.filters["utc"] = format_utc
        self._from = _address(self.mail_from)
        # Replies reach a person only when one is named; no-reply mail carries no Reply-To.
        self._reply_to = _address(self.reply_to) if self.reply_to else None
        self._host = self._from.domain or "localhost"
        self._policy: EmailPolicy[EmailMessage] = SMTP.clone(header_factory=SharedHeaders())
        # The headers every message shares, parsed once; a header object stored as it is.
        self._from_header = self._policy.header_factory("From", self._from)
        self._reply_to_header = (
            self._policy.header_factory("Reply-To", self._reply_to) if self._reply_to else None
        )

    def message_id(self, message: OutboxMessage) -> str:
        """Stable per outbox row, so a resend after a crash is recognisably the same mail."""
        return f"<outbox-{message.id}.{int(message.created_at.timestamp())}@{self._host}>"

    def render(
        self, message: OutboxMessage, content: MailContent, *, now: datetime | None = None
    ) -> EmailMessage:
        """Build the email for ``message``; raises ``PermanentError`` for an unusable address."""
        context = {
            **content.context,
            "kind": message.kind,
            "contact": str(self._reply_to.addr_spec) if self._reply_to else None,
        }
        text_template = self._env.get_template(f"{message.kind}.txt")
        subject = "".join(text_template.blocks["subject"](text_template.new_context(context)))
        text = text_template.render(context)
        html = self._env.get_template(f"{message.kind}.html").render(context)

        email = EmailMessage(policy=self._policy)
        email["Subject"] = FoldedHeader("Subject", header_text(subject, 250))
        email["From"] = self._from_header
        if self._reply_to_header is not None:
            email["Reply-To"] = self._reply_to_header
        email["To"] = _recipient(message.recipient, content.to_name)
        email["Date"] = format_datetime(now or utcnow())
        email["Message-ID"] = self.message_id(message)
        email["Auto-Submitted"] = "auto-generated"
        # Lets support staff and tests tell the kinds apart without parsing subjects.
        email["X-Outbox-Kind"] = message.kind
        email.set_content(text)
        email.add_alternative(html, subtype="html")
        if content.invite is not None:
            _attach(email, content.invite)
        for extra in content.attachments:
            email.add_attachment(
                extra.data,
                maintype="application",
                subtype="ics",
                filename="cancel.ics" if extra.method == "CANCEL" else "invite.ics",
            )
        for file in content.files:
            email.add_attachment(
                file.data, maintype=file.maintype, subtype=file.subtype, filename=file.filename
            )
        return email

    def render_follow_ups(
        self, message: OutboxMessage, content: MailContent, *, now: datetime | None = None
    ) -> list[EmailMessage]:
        """One short email per further invite of ``message`` (see ``MailContent.follow_ups``)."""
        emails: list[EmailMessage] = []
        total = len(content.follow_ups) + 1
        title = content.context.get("course_title", "")
        for n, invite in enumerate(content.follow_ups, start=2):
            what = "Cancelled" if invite.method == "CANCEL" else "Calendar"
            email = EmailMessage(policy=self._policy)
            email["Subject"] = header_text(f"{what}: {title} ({n} of {total})", 250)
            email["From"] = self._from_header
            email["Reply-To"] = self._reply_to_header
            email["To"] = _recipient(message.recipient, content.to_name)
            email["Date"] = format_datetime(now or utcnow())
            email["Message-ID"] = self.message_id(message).replace("@", f".{n}@", 1)
            email["Auto-Submitted"] = "auto-generated"
            email["X-Outbox-Kind"] = f"{message.kind}+invite"
            email.set_content(
                f"This message carries calendar entry {n} of {total} for {title}.\n"
                "The details are in the message sent just before it.\n"
            )
            _attach(email, invite)
            emails.append(email)
        return emails

    async def send(self, email: EmailMessage) -> None:
        """Hand ``email`` to the transport; raises ``TransientError`` or ``PermanentError``."""
        await self.transport.send(email)

    async def close(self) -> None:
        await self.transport.close()


# The headers a reader sees, in the order mail programs show them.
_SHOWN_HEADERS = ("Date", "From", "Reply-To", "To", "Subject")


def sent_copy(email: EmailMessage) -> tuple[str, str]:
    """``(subject, copy)`` of a rendered email for the outbox page: the headers a reader sees,
    the plain-text body and the names of its attachments, as they go out."""
    lines = [f"{name}: {email[name]}" for name in _SHOWN_HEADERS if email[name] is not None]
    body = email.get_body(preferencelist=("plain",))
    text = str(body.get_content()) if body is not None else ""
    files = [part.get_filename() or "(unnamed)" for part in email.iter_attachments()]
    copy = "\n".join(lines) + "\n\n" + text
    if files:
        copy += "\n[attached: " + ", ".join(files) + "]\n"
    return str(email["Subject"] or ""), copy


def _attach(email: EmailMessage, invite: Invite) -> None:
    email.add_alternative(
        invite.data.decode("utf-8"), subtype="calendar", params={"method": invite.method}
    )
    email.add_attachment(
        invite.data,
        maintype="application",
        subtype="ics",
        filename="cancel.ics" if invite.method == "CANCEL" else "invite.ics",
    )


def _address(text: str) -> Address:
    name, addr = parseaddr(text)
    local, _, domain = addr.rpartition("@")
    return Address(display_name=header_text(name), username=local or addr, domain=domain)


def _recipient(email: str, name: str | None) -> Address:
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or header_text(email) != email:
        raise PermanentError(f"bad recipient address {email!r}")
    if not domain.isascii():
        # Stored before domains were kept in their ASCII form: every relay takes that one.
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise PermanentError(f"bad recipient address {email!r}: {exc}") from exc
    try:
        return Address(display_name=header_text(name or ""), username=local, domain=domain)
    except (ValueError, HeaderParseError) as exc:
        raise PermanentError(f"bad recipient address {email!r}: {exc}") from exc
