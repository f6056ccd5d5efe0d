"""A session's schedule and who and where it books: meetings, instructors, the venue's room.

Invariant 8 lives here: no instructor, and no room unless overlap is allowed on purpose, is in
two scheduled sessions whose meetings overlap (with ``SCHEDULER_TRAVEL_BUFFER`` between them).
The check runs inside the caller's write transaction after locking what it books: the
instructors' rows and the venue's row with ``FOR UPDATE`` on PostgreSQL, so two transactions
booking the same instructor queue on that row and the second one's check (a new statement at
READ COMMITTED) sees the first one's meetings; on SQLite the write transaction already holds
the database's write lock from ``BEGIN IMMEDIATE``, which serialises every booking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from scheduler.catalog.parsing import MeetingInput
from scheduler.catalog.views import MeetingView
from scheduler.errors import Conflict, Invalid
from scheduler.models import (
    CANCELLED,
    SCHEDULED,
    Course,
    Instructor,
    Meeting,
    SessionInstructor,
    TrainingSession,
    Venue,
)


@dataclass(frozen=True)
class ScheduleChange:
    """What writing a new schedule did, by meeting id: moved, added, removed."""

    moved: tuple[int, ...] = ()
    added: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.moved or self.added or self.removed)


async def resolve_venue(conn: AsyncConnection, columns: dict[str, Any]) -> None:
    """Copy a directory venue's fields into ``columns`` when it names one; raises ``Invalid``."""
    venue_id = columns.get("venue_id")
    if venue_id is None:
        return
    venue = (
        await conn.execute(select(Venue).where(Venue.id == venue_id).with_for_update())
    ).first()
    if venue is None:
        raise Invalid({"venue_id": f"no venue with id {venue_id}"})
    for key in ("name", "address", "city", "state", "postal_code", "room"):
        columns[f"venue_{key}"] = getattr(venue, key)


async def lock_instructors(conn: AsyncConnection, ids: Sequence[int]) -> None:
    """Lock the instructors' rows in id order (no deadlocks); raises ``Invalid`` for unknown ids."""
    if not ids:
        return
    found = set(
        (
            await conn.execute(
                select(Instructor.id)
                .where(Instructor.id.in_(list(ids)))
                .order_by(Instructor.id)
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    errors = {
        f"instructors[{index}]": f"no instructor with id {value}"
        for index, value in enumerate(ids)
        if value not in found
    }
    if errors:
        raise Invalid(errors)


def _clash(
    mine: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime, buffer: timedelta
) -> tuple[datetime, datetime] | None:
    for own_start, own_end in mine:
        if start < own_end + buffer and own_start < end + buffer:
            return own_start, own_end
    return None


async def check_bookings(
    conn: AsyncConnection,
    *,
    session_id: int | None,
    meetings: Sequence[tuple[datetime, datetime]],
    instructors: Sequence[int],
    venue_id: int | None,
    allow_overlap: bool,
    buffer: timedelta,
) -> None:
    """Raise ``Conflict`` when an instructor or the room is booked elsewhere at these times.

    Call after :func:`lock_instructors` and :func:`resolve_venue` (which lock the rows). The
    error's fields name the other session and its clashing meeting: ``instructors`` or
    ``venue_id``.
    """
    if not meetings or (not instructors and venue_id is None):
        return
    low = min(s for s, _ in meetings) - buffer
    high = max(e for _, e in meetings) + buffer
    base = (
        select(
            Meeting.id.label("meeting_id"),
            Meeting.starts_at,
            Meeting.ends_at,
            TrainingSession.id.label("session_id"),
            TrainingSession.timezone,
            Course.title,
        )
        .join(TrainingSession, TrainingSession.id == Meeting.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
        .where(
            TrainingSession.status == SCHEDULED,
            Meeting.status == SCHEDULED,
            Meeting.starts_at < high,
            Meeting.ends_at > low,
        )
        .order_by(Meeting.starts_at, Meeting.id)
    )
    if session_id is not None:
        base = base.where(TrainingSession.id != session_id)
    errors: dict[str, str] = {}
    if instructors:
        rows = await conn.execute(
            base.add_columns(Instructor.name.label("who"))
            .join(SessionInstructor, SessionInstructor.session_id == TrainingSession.id)
            .join(Instructor, Instructor.id == SessionInstructor.instructor_id)
            .where(SessionInstructor.instructor_id.in_(list(instructors)))
        )
        for row in rows.all():
            if _clash(meetings, row.starts_at, row.ends_at, buffer):
                errors["instructors"] = (
                    f"{row.who} already teaches session {row.session_id} ({row.title}),"
                    f" meeting {row.meeting_id} at {_when(row)}"
                )
                break
    if venue_id is not None and not allow_overlap:
        rows = await conn.execute(
            base.where(
                TrainingSession.venue_id == venue_id,
                TrainingSession.allow_overlap.is_(False),
            )
        )
        for row in rows.all():
            if _clash(meetings, row.starts_at, row.ends_at, buffer):
                errors["venue_id"] = (
                    f"the room is booked for session {row.session_id} ({row.title}),"
                    f" meeting {row.meeting_id} at {_when(row)}"
                )
                break
    if errors:
        raise Conflict("a meeting clashes with another session's booking", errors)


def _when(row: Any) -> str:
    zone = ZoneInfo(row.timezone)
    start = row.starts_at.astimezone(zone)
    end = row.ends_at.astimezone(zone)
    return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} {row.timezone}"


async def write_schedule(
    conn: AsyncConnection,
    session_id: int,
    before: Sequence[MeetingView],
    after: Sequence[MeetingInput],
    now: datetime,
) -> ScheduleChange:
    """Make the session's meetings ``after``: kept ids move in place (sequence + 1), new ones
    are inserted, scheduled ones left out become ``cancelled`` (sequence + 1). Also sets the
    session's ``starts_at``/``ends_at`` to the first start and the last end."""
    known = {m.id: m for m in before if m.scheduled and m.id}
    moved: list[int] = []
    added: list[int] = []
    kept: set[int] = set()
    for index, meeting in enumerate(after):
        old = known.get(meeting.id) if meeting.id is not None else None
        if old is None:
            # A new session's first meeting takes the UID a one-block session always had, so
            # a session that never gains a second day looks in calendars as it did before.
            uid = f"session-{session_id}" if not before and index == 0 else None
            new_id = (
                await conn.execute(
                    insert(Meeting)
                    .values(
                        session_id=session_id,
                        starts_at=meeting.starts_at,
                        ends_at=meeting.ends_at,
                        status=SCHEDULED,
                        sequence=0,
                        uid=uid,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(Meeting.id)
                )
            ).scalar_one()
            added.append(new_id)
            continue
        kept.add(old.id)
        if (old.starts_at, old.ends_at) != (meeting.starts_at, meeting.ends_at):
            await conn.execute(
                update(Meeting)
                .where(Meeting.id == old.id)
                .values(
                    starts_at=meeting.starts_at,
                    ends_at=meeting.ends_at,
                    sequence=Meeting.sequence + 1,
                    updated_at=now,
                )
            )
            moved.append(old.id)
    removed = [mid for mid in known if mid not in kept]
    if removed:
        await conn.execute(
            update(Meeting)
            .where(Meeting.id.in_(removed))
            .values(
                status=CANCELLED,
                sequence=Meeting.sequence + 1,
                cancelled_at=now,
                updated_at=now,
            )
        )
    await conn.execute(
        update(TrainingSession)
        .where(TrainingSession.id == session_id)
        .values(
            starts_at=min(m.starts_at for m in after),
            ends_at=max(m.ends_at for m in after),
            updated_at=now,
        )
    )
    return ScheduleChange(tuple(moved), tuple(added), tuple(removed))


async def write_instructors(
    conn: AsyncConnection,
    session_id: int,
    before: Sequence[int],
    after: Sequence[int],
    now: datetime,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Make ``after`` the session's instructors; returns ``(assigned, unassigned)`` ids."""
    assigned = tuple(i for i in after if i not in before)
    unassigned = tuple(i for i in before if i not in after)
    if unassigned:
        await conn.execute(
            delete(SessionInstructor).where(
                SessionInstructor.session_id == session_id,
                SessionInstructor.instructor_id.in_(list(unassigned)),
            )
        )
    if assigned:
        await conn.execute(
            insert(SessionInstructor),
            [{"session_id": session_id, "instructor_id": i, "created_at": now} for i in assigned],
        )
    return assigned, unassigned
