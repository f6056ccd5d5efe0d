"""Reads of courses and sessions: the views the API, the pages and the calendar feeds render from.

Reads return plain dataclasses (``CourseView``, ``SessionView``), so seat counts are computed in
one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from scheduler.errors import NotFound
from scheduler.models import (
    CANCELLED,
    CONFIRMED,
    SCHEDULED,
    WAITLISTED,
    Course,
    Instructor,
    Meeting,
    Registration,
    SeatPool,
    SessionInstructor,
    TrainingSession,
    open_for_registration,
    shown_status,
)


@dataclass(frozen=True)
class PoolView:
    attendance: str
    capacity: int
    confirmed: int
    waitlisted: int
    held: int = 0

    @property
    def available(self) -> int:
        return max(self.capacity - self.confirmed - self.held, 0)


@dataclass(frozen=True)
class MeetingView:
    """One meeting of a session. ``status`` is ``cancelled`` for a day removed from the schedule
    (kept so calendars learn it is gone); ``uid`` is the local part of its calendar UIDs."""

    id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    sequence: int
    uid: str

    @property
    def scheduled(self) -> bool:
        return self.status == SCHEDULED


@dataclass(frozen=True)
class InstructorView:
    id: int
    name: str
    email: str
    credentials: str
    public: bool


@dataclass(frozen=True)
class CourseView:
    id: int
    slug: str
    title: str
    description: str
    audience: str
    provider: str
    delivery: tuple[str, ...]
    online_url: str | None
    updated_at: datetime
    # Completion (issue #14): every meeting, or ``completion_percent`` % of the contact hours.
    completion_rule: str = "all_meetings"
    completion_percent: int | None = None
    # None: the session's contact hours.
    credit_hours: Decimal | None = None
    course_number: str | None = None
    attendance_threshold: int = 80


@dataclass(frozen=True)
class SessionView:
    id: int
    course_id: int
    course_slug: str
    course_title: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    mode: str
    status: str
    venue_name: str | None
    venue_address: str | None
    venue_city: str | None
    venue_state: str | None
    venue_postal_code: str | None
    platform: str | None
    join_url: str | None
    max_per_agency: int | None
    registration_closes_at: datetime | None
    sequence: int
    created_at: datetime
    updated_at: datetime
    pools: tuple[PoolView, ...] = field(default=())
    venue_id: int | None = None
    venue_room: str | None = None
    allow_overlap: bool = False
    # Every meeting, removed ones included, in start order; empty when read without them
    # (the registration hot path), where ``schedule`` falls back to the session's own times.
    meetings: tuple[MeetingView, ...] = field(default=())
    instructors: tuple[InstructorView, ...] = field(default=())

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def schedule(self) -> tuple[MeetingView, ...]:
        """The meetings that take place, in order (the removed ones left out)."""
        if not self.meetings:
            return (
                MeetingView(0, self.starts_at, self.ends_at, SCHEDULED, 0, f"session-{self.id}"),
            )
        return tuple(m for m in self.meetings if m.scheduled)

    @property
    def contact_hours(self) -> float:
        seconds = sum((m.ends_at - m.starts_at).total_seconds() for m in self.schedule)
        return round(seconds / 3600, 2)

    def day_of(self, meeting: MeetingView) -> tuple[int, int] | None:
        """``(n, total)`` for "Day n of total", or None for a removed meeting."""
        schedule = self.schedule
        for index, candidate in enumerate(schedule, start=1):
            if candidate.id == meeting.id:
                return index, len(schedule)
        return None

    def pool(self, attendance: str) -> PoolView | None:
        return next((p for p in self.pools if p.attendance == attendance), None)

    def is_open(self, now: datetime) -> bool:
        return open_for_registration(self, now)


# -- courses -------------------------------------------------------------------------------


def _course_view(row: Any) -> CourseView:
    return CourseView(
        id=row.id,
        slug=row.slug,
        title=row.title,
        description=row.description,
        audience=row.audience,
        provider=row.provider,
        delivery=tuple(d for d in row.delivery.split(",") if d),
        online_url=row.online_url,
        updated_at=row.updated_at,
        completion_rule=row.completion_rule,
        completion_percent=row.completion_percent,
        credit_hours=row.credit_hours,
        course_number=row.course_number,
        attendance_threshold=row.attendance_threshold,
    )


async def list_courses(conn: AsyncConnection) -> list[CourseView]:
    rows = (await conn.execute(select(Course).order_by(Course.title))).all()
    return [_course_view(row) for row in rows]


async def get_course(conn: AsyncConnection, slug: str) -> CourseView:
    """The course with ``slug``; raises ``NotFound``."""
    row = (await conn.execute(select(Course).where(Course.slug == slug))).first()
    if row is None:
        raise NotFound("course", slug)
    return _course_view(row)


async def get_session(conn: AsyncConnection, session_id: int) -> SessionView:
    """One session with its seat counts; raises ``NotFound``."""
    found = await load_sessions(conn, session_ids=[session_id])
    if not found:
        raise NotFound("session", session_id)
    return found[0]


async def load_sessions(
    conn: AsyncConnection,
    *,
    session_ids: Sequence[int] | None = None,
    course_id: int | None = None,
    upcoming_after: datetime | None = None,
    ended_by: datetime | None = None,
    include_cancelled: bool = True,
    newest_first: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[SessionView]:
    """Sessions with their pools and live seat counts, in start order (``newest_first``: the
    latest start first, for pages of past sessions, with ``limit`` and ``offset``)."""
    order = (
        (TrainingSession.starts_at.desc(), TrainingSession.id.desc())
        if newest_first
        else (TrainingSession.starts_at, TrainingSession.id)
    )
    stmt = (
        select(
            TrainingSession, Course.slug.label("course_slug"), Course.title.label("course_title")
        )
        .join(Course, Course.id == TrainingSession.course_id)
        .order_by(*order)
    )
    if ended_by is not None:
        stmt = stmt.where(TrainingSession.ends_at <= ended_by)
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    if session_ids is not None:
        stmt = stmt.where(TrainingSession.id.in_(list(session_ids)))
    if course_id is not None:
        stmt = stmt.where(TrainingSession.course_id == course_id)
    if upcoming_after is not None:
        stmt = stmt.where(TrainingSession.ends_at > upcoming_after)
    if not include_cancelled:
        stmt = stmt.where(TrainingSession.status != CANCELLED)
    rows = (await conn.execute(stmt)).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    pools: dict[int, list[PoolView]] = {}
    waitlisted = (
        select(
            Registration.pool_id,
            func.sum(case((Registration.status == WAITLISTED, 1), else_=0)).label("waiting"),
        )
        .where(Registration.session_id.in_(ids))
        .group_by(Registration.pool_id)
        .subquery()
    )
    pool_rows = await conn.execute(
        select(
            SeatPool.session_id,
            SeatPool.attendance,
            SeatPool.capacity,
            SeatPool.confirmed,
            func.coalesce(waitlisted.c.waiting, 0),
            SeatPool.held,
        )
        .outerjoin(waitlisted, waitlisted.c.pool_id == SeatPool.id)
        .where(SeatPool.session_id.in_(ids))
        .order_by(SeatPool.attendance)
    )
    for session_id, attendance, capacity, confirmed, waiting, held in pool_rows.all():
        pools.setdefault(session_id, []).append(
            PoolView(attendance, int(capacity), int(confirmed), int(waiting), int(held))
        )
    meetings = await load_meetings(conn, ids)
    teaching: dict[int, list[InstructorView]] = {}
    for row in (
        await conn.execute(
            select(
                SessionInstructor.session_id,
                Instructor.id,
                Instructor.name,
                Instructor.email,
                Instructor.credentials,
                Instructor.public,
            )
            .join(Instructor, Instructor.id == SessionInstructor.instructor_id)
            .where(SessionInstructor.session_id.in_(ids))
            .order_by(Instructor.name, Instructor.id)
        )
    ).all():
        teaching.setdefault(row.session_id, []).append(
            InstructorView(row.id, row.name, row.email, row.credentials, bool(row.public))
        )
    return [
        session_view(
            row,
            pools.get(row.id, ()),
            meetings=meetings.get(row.id, ()),
            instructors=teaching.get(row.id, ()),
        )
        for row in rows
    ]


async def load_meetings(
    conn: AsyncConnection, session_ids: Sequence[int]
) -> dict[int, list[MeetingView]]:
    """Every meeting of these sessions (removed ones too), in start order, by session id."""
    found: dict[int, list[MeetingView]] = {}
    rows = await conn.execute(
        select(Meeting)
        .where(Meeting.session_id.in_(list(session_ids)))
        .order_by(Meeting.session_id, Meeting.starts_at, Meeting.id)
    )
    for row in rows.all():
        found.setdefault(row.session_id, []).append(meeting_view(row))
    return found


def meeting_view(row: Any) -> MeetingView:
    return MeetingView(
        id=row.id,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=row.status,
        sequence=row.sequence,
        uid=row.uid or f"session-{row.session_id}-meeting-{row.id}",
    )


def session_view(
    row: Any,
    pools: Sequence[PoolView] = (),
    *,
    meetings: Sequence[MeetingView] = (),
    instructors: Sequence[InstructorView] = (),
) -> SessionView:
    """The view of a session row read with its course's ``course_slug`` and ``course_title``,
    as ``load_sessions`` and ``booking.lock_session`` read it; no pools unless given."""
    return SessionView(
        id=row.id,
        course_id=row.course_id,
        course_slug=row.course_slug,
        course_title=row.course_title,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        timezone=row.timezone,
        mode=row.mode,
        status=row.status,
        venue_name=row.venue_name,
        venue_address=row.venue_address,
        venue_city=row.venue_city,
        venue_state=row.venue_state,
        venue_postal_code=row.venue_postal_code,
        platform=row.platform,
        join_url=row.join_url,
        max_per_agency=row.max_per_agency,
        registration_closes_at=row.registration_closes_at,
        sequence=row.sequence,
        created_at=row.created_at,
        updated_at=row.updated_at,
        pools=tuple(pools),
        venue_id=row.venue_id,
        venue_room=row.venue_room,
        allow_overlap=bool(row.allow_overlap),
        meetings=tuple(meetings),
        instructors=tuple(instructors),
    )


async def upcoming_counts(conn: AsyncConnection, now: datetime) -> dict[int, int]:
    """How many scheduled sessions each course has that have not ended, by course id."""
    rows = await conn.execute(
        select(TrainingSession.course_id, func.count())
        .where(TrainingSession.ends_at > now, TrainingSession.status != CANCELLED)
        .group_by(TrainingSession.course_id)
    )
    return {course_id: int(count) for course_id, count in rows.all()}


async def roster(conn: AsyncConnection, session_id: int) -> list[dict[str, Any]]:
    """Every registration of a session, confirmed first, then each waitlist in order.

    In a cancelled session everyone shows as cancelled (``shown_status``); what they held
    until then stays in ``held``.
    """
    session_status = (
        await conn.execute(select(TrainingSession.status).where(TrainingSession.id == session_id))
    ).scalar_one_or_none()
    rows = (
        await conn.execute(
            select(Registration)
            .where(Registration.session_id == session_id)
            .order_by(
                Registration.attendance,
                Registration.status,
                Registration.waitlist_seq,
                Registration.id,
            )
        )
    ).all()
    result: list[dict[str, Any]] = []
    positions: dict[str, int] = {}
    for row in rows:
        entry = dict(row._mapping)
        entry["held"] = row.status
        entry["status"] = shown_status(row.status, session_status or SCHEDULED)
        if entry["status"] == WAITLISTED:
            positions[row.attendance] = positions.get(row.attendance, 0) + 1
            entry["waitlist_position"] = positions[row.attendance]
        else:
            entry["waitlist_position"] = None
        result.append(entry)
    order = {CONFIRMED: 0, WAITLISTED: 1, CANCELLED: 2}
    result.sort(
        key=lambda e: (e["attendance"], order[e["status"]], e["waitlist_position"] or 0, e["id"])
    )
    return result
