"""What each outbox message says: the scheduler's context provider for the dispatcher.

``notifications`` never imports ``scheduler``, so the dispatcher asks this module, through a
callable passed to its constructor, for the template variables and the personal invite of a
batch of claimed messages. Everything is read fresh at send time, in one read transaction per
batch, and this is also where a message that has become moot is dropped: a reminder after the
start or for a seat no longer confirmed, a confirmation for a registration cancelled meanwhile.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Parameters
from icalendar.parser import Contentline
from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import reminders
from notifications.messages import Invite, MailContent, MailPlan, Skip
from notifications.models import utcnow
from notifications.outbox import OutboxMessage
from scheduler import calendar
from scheduler.catalog import CourseView, SessionView, list_courses, load_sessions
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.lookup import LOOKUP, active_registrations
from scheduler.models import CONFIRMED, WAITLISTED, Registration

# Kinds that carry an invite while the seat is confirmed, and the ones that withdraw it.
_REQUEST_KINDS = ("confirmation", "promoted", "session_changed")
_CANCEL_KINDS = ("registration_cancelled", "session_cancelled")


class MailContextProvider:
    """``await provider(messages)`` → one :class:`MailContent` or :class:`Skip` per message."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.invites = InviteCache(settings)

    async def __call__(self, messages: Sequence[OutboxMessage]) -> list[MailPlan]:
        """Plan each message from the current state of its registration and session.

        Raises only database errors; a message whose registration or session is gone, or that
        no longer applies, comes back as ``Skip`` with the reason.
        """
        now = utcnow()
        registration_ids = {m.registration_id for m in messages if m.registration_id}
        session_ids = {m.session_id for m in messages if m.session_id}
        async with self.db.read() as conn:
            registrations = {
                row.id: row
                for row in (
                    await conn.execute(
                        select(Registration).where(Registration.id.in_(registration_ids))
                    )
                ).all()
            }
            session_ids |= {row.session_id for row in registrations.values()}
            sessions = {s.id: s for s in await load_sessions(conn, session_ids=list(session_ids))}
            courses = {c.id: c for c in await list_courses(conn)}
            positions = await _positions(conn, registrations.values())
            lookups = {
                m.id: await self.lookup_plan(conn, m, now) for m in messages if m.kind == LOOKUP
            }
        plans: list[MailPlan] = []
        for message in messages:
            if message.id in lookups:
                plans.append(lookups[message.id])
                continue
            registration = registrations.get(message.registration_id or -1)
            if registration is None:
                plans.append(Skip("the registration no longer exists"))
                continue
            session = sessions.get(registration.session_id)
            course = courses.get(session.course_id) if session is not None else None
            if session is None or course is None:
                plans.append(Skip("the session no longer exists"))
                continue
            plans.append(
                self.plan(
                    message,
                    registration,
                    session,
                    course,
                    position=positions.get(registration.id),
                    now=now,
                )
            )
        return plans

    async def lookup_plan(
        self, conn: AsyncConnection, message: OutboxMessage, now: datetime
    ) -> MailPlan:
        """The "find my registrations" email: every registration still active at send time."""
        found = await active_registrations(conn, str(message.payload.get("email_key", "")), now)
        if not found:
            return Skip("no active registration is left for this address")
        base = self.settings.base_url
        listed = []
        for row in found:
            zone = ZoneInfo(row.timezone)
            listed.append(
                {
                    "course_title": row.course_title,
                    "starts": row.starts_at.astimezone(zone),
                    "ends": row.ends_at.astimezone(zone),
                    "attendance": row.attendance,
                    "status": row.status,
                    "manage_url": f"{base}/registrations/{row.token}",
                }
            )
        name = max(found, key=lambda row: row.created_at).name
        return MailContent(context={"name": name, "registrations": listed}, to_name=name)

    def plan(
        self,
        message: OutboxMessage,
        registration: Row[Any],
        session: SessionView,
        course: CourseView,
        *,
        position: int | None,
        now: datetime,
    ) -> MailPlan:
        """The content of one message, or why it must not go out."""
        kind = message.kind
        confirmed = registration.status == CONFIRMED
        session_live = session.status == "scheduled"
        if kind == reminders.REMINDER:
            why = reminders.still_due(
                starts_at=session.starts_at,
                session_status=session.status,
                registration_status=registration.status,
                now=now,
            )
            if why is not None:
                return Skip(why)
            offset = timedelta(seconds=int(message.payload.get("offset_seconds", 0)))
            # After downtime several reminders can be due at once; only the nearest one says
            # anything true ("starts in 1 hour", not also "in 7 days").
            if any(
                o < offset and now >= session.starts_at - o for o in self.settings.reminder_offsets
            ):
                return Skip("a later reminder supersedes it")
        elif kind in ("confirmation", "promoted"):
            if not confirmed or not session_live:
                return Skip(f"the seat is no longer confirmed ({registration.status})")
        elif kind == "waitlisted":
            if registration.status != WAITLISTED or not session_live:
                return Skip(f"no longer on the waitlist ({registration.status})")
        elif kind == "session_changed":
            if registration.status not in (CONFIRMED, WAITLISTED) or not session_live:
                return Skip("the registration or the session was cancelled since")
        elif kind not in _CANCEL_KINDS:
            return Skip(f"unknown message kind {kind!r}")

        invite: Invite | None = None
        if kind in _REQUEST_KINDS and confirmed:
            invite = Invite(self.invites(registration, session, course, cancel=False), "REQUEST")
        elif kind in _CANCEL_KINDS and _held_invite(message, registration):
            invite = Invite(self.invites(registration, session, course, cancel=True), "CANCEL")
        context = self.context(message, registration, session, course, position=position)
        context["invite"] = invite is not None
        return MailContent(context=context, to_name=registration.name, invite=invite)

    def context(
        self,
        message: OutboxMessage,
        registration: Row[Any],
        session: SessionView,
        course: CourseView,
        *,
        position: int | None,
    ) -> dict[str, Any]:
        """The template variables; every template sees the same keys."""
        zone = session.zone
        attendance = registration.attendance
        in_person = attendance == "in_person"
        # Invariant 7: the join URL only ever reaches a confirmed virtual seat, and never in a
        # message that withdraws the seat.
        show_join = (
            registration.status == CONFIRMED
            and attendance == "virtual"
            and message.kind not in _CANCEL_KINDS
        )
        payload = message.payload
        base = self.settings.base_url
        return {
            "name": registration.name,
            "agency": registration.agency,
            "course_title": course.title,
            "session_url": f"{base}/courses/{course.slug}",
            "manage_url": f"{base}/registrations/{registration.token}",
            "starts": session.starts_at.astimezone(zone),
            "ends": session.ends_at.astimezone(zone),
            "timezone": session.timezone,
            "attendance": attendance,
            "venue": _venue(session) if in_person else None,
            "platform": None if in_person else session.platform,
            "join_url": session.join_url if show_join else None,
            "status": registration.status,
            "position": position,
            "was": payload.get("was", registration.status),
            "reason": payload.get("reason") or "",
            # Who cancelled a registration: "admin" (the training team) or the registrant.
            "by": payload.get("by") or "registrant",
            "starts_in": _starts_in(int(payload.get("offset_seconds", 0))),
            "place": _place(session.mode, _venue(session), attendance),
            "old": _old(payload, session, attendance),
        }


def _held_invite(message: OutboxMessage, registration: Row[Any]) -> bool:
    """Whether the person had a calendar entry to withdraw: only confirmed seats get invites."""
    if message.kind == "registration_cancelled":
        return bool(message.payload.get("was") == CONFIRMED)
    return bool(registration.status == CONFIRMED)


async def _positions(conn: AsyncConnection, registrations: Any) -> dict[int, int]:
    """1-based waitlist places, counted as ``booking.waitlist_position`` counts them, in one
    query for the whole batch instead of one per waitlisted registration."""
    waiting = [r for r in registrations if r.status == WAITLISTED]
    positions = {r.id: 0 for r in waiting if r.waitlist_seq is None}
    waiting = [r for r in waiting if r.waitlist_seq is not None]
    if not waiting:
        return positions
    queue: dict[int, list[int]] = {}
    found = await conn.execute(
        select(Registration.pool_id, Registration.waitlist_seq).where(
            Registration.pool_id.in_({r.pool_id for r in waiting}),
            Registration.status == WAITLISTED,
            Registration.waitlist_seq.is_not(None),
        )
    )
    for pool_id, seq in found.all():
        if seq is not None:
            queue.setdefault(pool_id, []).append(seq)
    for seqs in queue.values():
        seqs.sort()
    for r in waiting:
        positions[r.id] = bisect_right(queue.get(r.pool_id, []), r.waitlist_seq)
    return positions


# Stand-ins for what is personal in an invite; nothing else in an invite looks like them.
_ID = 7_391_846_205_163
_NAME = "Qzx Standin Name"
_EMAIL = "Qzx.Standin@Standin.invalid"
_TOKEN = "QZXstandinTOKENqzx"
_INERT = re.compile(r"[A-Za-z0-9_-]+")
_INERT_EMAIL = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+")
_FOLD = b"\r\n "


@dataclass(frozen=True)
class _StandIn:
    """A registration whose personal fields are the stand-ins above."""

    id: int
    name: str
    email: str
    token: str
    status: str
    attendance: str
    sequence: int
    updated_at: datetime | None


class InviteCache:
    """``calendar.registration_invite``, rendered once per session and seat shape.

    The invites of one session's registrants differ only in the registrant's id, name, email
    and token; everything else (the VTIMEZONE, times, venue, description) is the same for all
    with the same status, seat and sequence, and building it is most of the cost of a message.
    So the invite is rendered once with stand-ins for those four, unfolded, and each registrant
    gets the stand-ins replaced and the lines folded again with icalendar's own folding.

    The shortcut is taken only where it is exact: the template must fold back to the bytes
    icalendar wrote and hold each stand-in only where it is expected, the token and email must
    be plain characters no escaping touches, and the name goes through icalendar's own
    parameter quoting. Anything else, including a change in ``calendar`` that the check does
    not recognise, renders the invite in full as before.
    """

    def __init__(self, settings: Settings, size: int = 256) -> None:
        self.settings = settings
        self.size = size
        self._templates: dict[tuple[Any, ...], list[tuple[bytes, bool]] | None] = {}
        self._cn = _cn(calendar.display_name(_NAME))
        # One pass over the template: a registrant's own text is never searched again, so a
        # name that happens to contain a stand-in stays as written.
        self._pattern = re.compile(
            b"|".join(re.escape(t) for t in (self._cn, _EMAIL.encode(), _TOKEN.encode()))
            + b"|"
            + str(_ID).encode()
        )

    def __call__(
        self, registration: Any, session: SessionView, course: CourseView, *, cancel: bool
    ) -> bytes:
        email, token, reg_id = registration.email, registration.token, registration.id
        if not (
            isinstance(reg_id, int)
            and isinstance(token, str)
            and _INERT.fullmatch(token)
            and isinstance(email, str)
            and _INERT_EMAIL.fullmatch(email)
        ):
            return self._full(registration, session, course, cancel)
        changed = getattr(registration, "updated_at", None)
        # DTSTAMP is written to the second: registrations changed within the same second
        # share a template.
        stamp = (
            changed.astimezone(UTC).replace(microsecond=0)
            if isinstance(changed, datetime) and changed > session.updated_at
            else None
        )
        stand_in = _StandIn(
            _ID,
            _NAME,
            _EMAIL,
            _TOKEN,
            registration.status,
            registration.attendance,
            registration.sequence,
            stamp,
        )
        key = (session, course, cancel, stand_in)
        if key not in self._templates:
            if len(self._templates) >= self.size:
                self._templates.clear()
            self._templates[key] = self._template(stand_in, session, course, cancel)
        template = self._templates[key]
        if template is None:
            return self._full(registration, session, course, cancel)
        values = {
            self._cn: _cn(calendar.display_name(registration.name)),
            _EMAIL.encode(): email.encode(),
            _TOKEN.encode(): token.encode(),
            str(_ID).encode(): str(reg_id).encode(),
        }
        return b"\r\n".join(
            _fold(self._pattern.sub(lambda m: values[m.group(0)], line)) if personal else line
            for line, personal in template
        )

    def _full(
        self, registration: Any, session: SessionView, course: CourseView, cancel: bool
    ) -> bytes:
        return calendar.registration_invite(
            registration, session, course, self.settings, cancel=cancel
        )

    def _template(
        self, stand_in: _StandIn, session: SessionView, course: CourseView, cancel: bool
    ) -> list[tuple[bytes, bool]] | None:
        """The invite of ``stand_in`` line by line: folded as written, or unfolded where a
        stand-in is to be replaced; None where the shortcut would not be exact."""
        try:
            folded = self._full(stand_in, session, course, cancel)
        except AttributeError:  # calendar reads something of the registration we do not copy
            return None
        text = folded.replace(_FOLD, b"")
        lines = text.split(b"\r\n")
        if (
            b"\r\n".join(_fold(line) for line in lines) != folded
            or text.count(self._cn) != 1
            or text.count(_NAME.encode()) != 1
            or _EMAIL.encode() not in text
        ):
            return None
        return [
            (line, True) if self._pattern.search(line) else (_fold(line), False) for line in lines
        ]


def _cn(name: str) -> bytes:
    """The ``CN=...`` parameter as icalendar writes it."""
    return bytes(Parameters({"CN": name}).to_ical())


def _fold(line: bytes) -> bytes:
    """One content line folded as icalendar folds it when it writes a calendar."""
    content = Contentline(line.decode("utf-8"))  # type: ignore[no-untyped-call]
    return bytes(content.to_ical())  # type: ignore[no-untyped-call]


def _venue(session: SessionView) -> dict[str, str | None] | None:
    if session.mode == "virtual" or not session.venue_name:
        return None
    return {
        "name": session.venue_name,
        "address": session.venue_address,
        "city": session.venue_city,
        "state": session.venue_state,
        "postal_code": session.venue_postal_code,
    }


def _place(mode: str, venue: dict[str, str | None] | None, attendance: str) -> str:
    if attendance == "virtual" or mode == "virtual" or venue is None:
        return "online"
    parts = [venue.get(k) for k in ("name", "address", "city", "state")]
    return ", ".join(p for p in parts if p)


def _old(payload: dict[str, Any], session: SessionView, attendance: str) -> dict[str, Any]:
    """The session as it was before a change, for "before / now" side by side."""
    zone = ZoneInfo(payload.get("old_timezone") or session.timezone)

    def instant(key: str, fallback: datetime) -> datetime:
        raw = payload.get(key)
        value = datetime.fromisoformat(raw) if raw else fallback
        return value.astimezone(zone)

    venue = {
        "name": payload.get("old_venue_name"),
        "address": payload.get("old_venue_address"),
        "city": payload.get("old_venue_city"),
        "state": payload.get("old_venue_state"),
    }
    starts = instant("old_starts_at", session.starts_at)
    ends = instant("old_ends_at", session.ends_at)
    place = _place(
        payload.get("old_mode") or session.mode, venue if venue["name"] else None, attendance
    )
    now_zone = session.zone
    return {
        "starts": starts,
        "ends": ends,
        "place": place,
        # Only what changed is marked as changed; the zone counts, as the wall clock moves.
        "time_changed": (
            starts != session.starts_at or ends != session.ends_at or str(zone) != str(now_zone)
        ),
        "place_changed": place != _place(session.mode, _venue(session), attendance),
    }


def _starts_in(seconds: int) -> str:
    offset = timedelta(seconds=seconds)
    if offset >= timedelta(days=1) and offset.seconds == 0:
        days = offset.days
        return "tomorrow" if days == 1 else f"in {days} days"
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = seconds // 3600
        return "in 1 hour" if hours == 1 else f"in {hours} hours"
    minutes = max(seconds // 60, 1)
    return "in 1 minute" if minutes == 1 else f"in {minutes} minutes"
