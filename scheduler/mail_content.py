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
from scheduler import calendar, urls
from scheduler.catalog import CourseView, SessionView, list_courses, load_sessions
from scheduler.catalog.directory import get_instructor
from scheduler.catalog.views import MeetingView
from scheduler.certificates import CERTIFICATE, certificate_mail
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.errors import NotFound
from scheduler.lookup import LOOKUP, active_registrations
from scheduler.models import CONFIRMED, SCHEDULED, WAITLISTED, Registration, sees_join_url

# Kinds that carry an invite while the seat is confirmed, and the ones that withdraw it.
_REQUEST_KINDS = ("confirmation", "promoted", "session_changed", "registration_moved")
# Mail about an agency or an account, not one registration: its content is in the payload.
AGENCY_KINDS = (
    "batch_summary",
    "hold_release_warning",
    "hold_released",
    "coordinator_invitation",
    "sign_in_link",
)
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
        # A move withdraws the invite of the registration it left.
        for m in messages:
            if m.kind == "registration_moved":
                registration_ids.add(int(m.payload.get("old_registration_id") or 0))
                session_ids.add(int(m.payload.get("old_session_id") or 0))
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
                if message.kind == CERTIFICATE:
                    plans.append(await certificate_mail(conn, message, self.settings.base_url))
                    continue
                if message.kind in AGENCY_KINDS:
                    plans.append(self.agency_plan(message, sessions, courses))
                    continue
                if message.kind.startswith("instructor_"):
                    session = sessions.get(message.session_id or -1)
                    course = courses.get(session.course_id) if session is not None else None
                    if session is None or course is None:
                        plans.append(Skip("the session no longer exists"))
                    else:
                        plans.append(await self.plan_instructor(conn, message, session, course))
                    continue
                plans.append(
                    self._plan_one(message, registrations, sessions, courses, positions, now)
                )
        return plans

    async def lookup_plan(
        self, conn: AsyncConnection, message: OutboxMessage, now: datetime
    ) -> MailPlan:
        """The "find my registrations" email: every registration still active at send time."""
        found = await active_registrations(conn, str(message.payload.get("email_key", "")), now)
        if not found:
            return Skip("no active registration is left for this address")
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
                    "manage_url": urls.manage(self.settings, row.token),
                }
            )
        name = max(found, key=lambda row: row.created_at).name
        return MailContent(context={"name": name, "registrations": listed}, to_name=name)

    def _plan_one(
        self,
        message: OutboxMessage,
        registrations: dict[int, Any],
        sessions: dict[int, SessionView],
        courses: dict[int, CourseView],
        positions: dict[int, int],
        now: datetime,
    ) -> MailPlan:
        registration = registrations.get(message.registration_id or -1)
        if registration is None:
            return Skip("the registration no longer exists")
        session = sessions.get(registration.session_id)
        course = courses.get(session.course_id) if session is not None else None
        if session is None or course is None:
            return Skip("the session no longer exists")
        plan = self.plan(
            message,
            registration,
            session,
            course,
            position=positions.get(registration.id),
            now=now,
        )
        if message.kind == "registration_moved" and isinstance(plan, MailContent):
            plan = self._with_old_cancel(plan, message, registrations, sessions, courses)
        return plan

    def _with_old_cancel(
        self,
        plan: MailContent,
        message: OutboxMessage,
        registrations: dict[int, Any],
        sessions: dict[int, SessionView],
        courses: dict[int, CourseView],
    ) -> MailContent:
        """A move's email also withdraws the calendar entry of the seat it left."""
        old = registrations.get(int(message.payload.get("old_registration_id") or 0))
        old_session = sessions.get(int(message.payload.get("old_session_id") or 0))
        context = dict(plan.context)
        if old_session is not None:
            zone = old_session.zone
            context["old"] = {
                **context["old"],
                "starts": old_session.starts_at.astimezone(zone),
                "ends": old_session.ends_at.astimezone(zone),
            }
        if old is None or old_session is None or message.payload.get("was") != CONFIRMED:
            return MailContent(context, plan.to_name, plan.invite, follow_ups=plan.follow_ups)
        course = courses.get(old_session.course_id)
        if course is None:
            return MailContent(context, plan.to_name, plan.invite, follow_ups=plan.follow_ups)
        cancel = Invite(self.invites(old, old_session, course, cancel=True), "CANCEL")
        return MailContent(
            context, plan.to_name, plan.invite, follow_ups=plan.follow_ups, attachments=(cancel,)
        )

    def agency_plan(
        self,
        message: OutboxMessage,
        sessions: dict[int, SessionView],
        courses: dict[int, CourseView],
    ) -> MailPlan:
        """Mail to a coordinator: the payload says it all, the session (if any) adds when."""
        payload = message.payload
        base = self.settings.base_url
        context: dict[str, Any] = {
            "name": payload.get("name") or "",
            "payload": payload,
            "link": f"{base}{payload['path']}" if payload.get("path") else base,
            "console_url": f"{base}/agency",
            "course_title": "",
            "starts": None,
            "timezone": "",
        }
        if message.session_id:
            session = sessions.get(message.session_id)
            course = courses.get(session.course_id) if session is not None else None
            if session is None or course is None:
                return Skip("the session no longer exists")
            zone = session.zone
            context.update(
                course_title=course.title,
                starts=session.starts_at.astimezone(zone),
                timezone=session.timezone,
                session_url=urls.session(self.settings, course.slug, session.id),
            )
            if payload.get("release_at"):
                context["release_at"] = datetime.fromisoformat(payload["release_at"]).astimezone(
                    zone
                )
        return MailContent(context=context, to_name=payload.get("name") or None)

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
        session_live = session.status == SCHEDULED
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
        elif kind in ("session_changed", "registration_moved"):
            if registration.status not in (CONFIRMED, WAITLISTED) or not session_live:
                return Skip("the registration or the session was cancelled since")
        elif kind not in _CANCEL_KINDS:
            return Skip(f"unknown message kind {kind!r}")

        invites: list[Invite] = []
        if kind in _REQUEST_KINDS and confirmed:
            for meeting, cancel in _affected(message, session):
                data = self.invites(registration, session, course, cancel=cancel, meeting=meeting)
                invites.append(Invite(data, "CANCEL" if cancel else "REQUEST"))
        elif kind in _CANCEL_KINDS and _held_invite(message, registration):
            for meeting in _invited_meetings(session):
                data = self.invites(registration, session, course, cancel=True, meeting=meeting)
                invites.append(Invite(data, "CANCEL"))
        context = self.context(message, registration, session, course, position=position)
        context["invite"] = bool(invites)
        return MailContent(
            context=context,
            to_name=registration.name,
            invite=invites[0] if invites else None,
            follow_ups=tuple(invites[1:]),
        )

    async def plan_instructor(
        self,
        conn: AsyncConnection,
        message: OutboxMessage,
        session: SessionView,
        course: CourseView,
    ) -> MailPlan:
        """An instructor's email: assigned (every meeting's invite), changed (the days that
        changed), unassigned or cancelled (a CANCEL for every meeting)."""
        try:
            person = await get_instructor(conn, int(message.payload.get("instructor_id", 0)))
        except NotFound:
            return Skip("the instructor no longer exists")
        kind = message.kind
        if kind == "instructor_unassigned":
            pairs = [(m, True) for m in _invited_meetings(session)]
        elif session.status != SCHEDULED:
            return Skip("the session was cancelled since")
        elif kind == "instructor_assigned":
            pairs = [(m, False) for m in session.schedule if m.id]
        else:
            pairs = _affected(message, session)
        invites = [
            Invite(
                calendar.instructor_invite(
                    person, session, course, self.settings, meeting, cancel=cancel
                ),
                "CANCEL" if cancel else "REQUEST",
            )
            for meeting, cancel in pairs
        ]
        zone = session.zone
        context: dict[str, Any] = {
            "name": person.name,
            "course_title": course.title,
            "meetings": _meetings(session),
            "changes": _changes(message.payload, session),
            "timezone": session.timezone,
            "venue": _venue(session),
            "room": session.venue_room,
            "join_url": session.join_url if session.mode != "in_person" else None,
            "starts": session.starts_at.astimezone(zone),
            "ends": session.ends_at.astimezone(zone),
            "feed_url": urls.instructor_feed(self.settings, person.feed_token),
            "invite": bool(invites),
        }
        return MailContent(
            context=context,
            to_name=person.name,
            invite=invites[0] if invites else None,
            follow_ups=tuple(invites[1:]),
        )

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
        show_join = sees_join_url(registration) and message.kind not in _CANCEL_KINDS
        payload = message.payload
        return {
            "name": registration.name,
            "agency": registration.agency,
            "course_title": course.title,
            "session_url": urls.session(self.settings, course.slug, session.id),
            "manage_url": urls.manage(self.settings, registration.token),
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
            "meetings": _meetings(session),
            "changes": _changes(payload, session),
        }


def _invited_meetings(session: SessionView) -> list[MeetingView]:
    """The meetings a calendar holds an entry for: every scheduled one (removed ones were
    cancelled in the calendar when they were removed)."""
    return [m for m in session.schedule]


def _affected(message: OutboxMessage, session: SessionView) -> list[tuple[MeetingView, bool]]:
    """``(meeting, cancel)`` for each invite a message carries: every meeting for a new seat
    or a change to the whole session; for a change of some days, only those days (a removed
    day gets its CANCEL)."""
    payload = message.payload
    if message.kind not in ("session_changed", "instructor_changed") or payload.get(
        "all_days", True
    ):
        return [(m, False) for m in session.schedule]
    changed = set(payload.get("moved_meetings", [])) | set(payload.get("added_meetings", []))
    removed = set(payload.get("removed_meetings", []))
    return [(m, False) for m in session.meetings if m.scheduled and m.id in changed] + [
        (m, True) for m in session.meetings if m.id in removed
    ]


def _meetings(session: SessionView) -> list[dict[str, Any]]:
    zone = session.zone
    return [
        {"n": n, "starts": m.starts_at.astimezone(zone), "ends": m.ends_at.astimezone(zone)}
        for n, m in enumerate(session.schedule, start=1)
    ]


def _changes(payload: dict[str, Any], session: SessionView) -> list[str]:
    """One line per day that moved, was added or removed, in the session's zone."""
    zone = session.zone
    old = {
        int(m["id"]): (datetime.fromisoformat(m["starts_at"]), datetime.fromisoformat(m["ends_at"]))
        for m in payload.get("old_meetings", [])
    }
    moved = set(payload.get("moved_meetings", []))
    added = set(payload.get("added_meetings", []))
    removed = set(payload.get("removed_meetings", []))

    def span(start: datetime, end: datetime) -> str:
        start, end = start.astimezone(zone), end.astimezone(zone)
        return f"{start:%a %d %b %Y, %H:%M}-{end:%H:%M} {start.tzname()}"

    lines: list[str] = []
    for n, meeting in enumerate(session.schedule, start=1):
        if meeting.id in moved and meeting.id in old:
            lines.append(
                f"Day {n} moved to {span(meeting.starts_at, meeting.ends_at)}"
                f" (was {span(*old[meeting.id])})"
            )
        elif meeting.id in added:
            lines.append(f"Day {n} added: {span(meeting.starts_at, meeting.ends_at)}")
    for meeting_id in sorted(removed):
        if meeting_id in old:
            lines.append(f"Removed: the day of {span(*old[meeting_id])}")
    return lines


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
        self,
        registration: Any,
        session: SessionView,
        course: CourseView,
        *,
        cancel: bool,
        meeting: MeetingView | None = None,
    ) -> bytes:
        email, token, reg_id = registration.email, registration.token, registration.id
        if not (
            isinstance(reg_id, int)
            and isinstance(token, str)
            and _INERT.fullmatch(token)
            and isinstance(email, str)
            and _INERT_EMAIL.fullmatch(email)
        ):
            return self._full(registration, session, course, cancel, meeting)
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
        key = (session, course, cancel, stand_in, meeting)
        if key not in self._templates:
            if len(self._templates) >= self.size:
                self._templates.clear()
            self._templates[key] = self._template(stand_in, session, course, cancel, meeting)
        template = self._templates[key]
        if template is None:
            return self._full(registration, session, course, cancel, meeting)
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
        self,
        registration: Any,
        session: SessionView,
        course: CourseView,
        cancel: bool,
        meeting: MeetingView | None = None,
    ) -> bytes:
        return calendar.registration_invite(
            registration, session, course, self.settings, cancel=cancel, meeting=meeting
        )

    def _template(
        self,
        stand_in: _StandIn,
        session: SessionView,
        course: CourseView,
        cancel: bool,
        meeting: MeetingView | None = None,
    ) -> list[tuple[bytes, bool]] | None:
        """The invite of ``stand_in`` line by line: folded as written, or unfolded where a
        stand-in is to be replaced; None where the shortcut would not be exact."""
        try:
            folded = self._full(stand_in, session, course, cancel, meeting)
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
