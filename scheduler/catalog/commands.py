"""Changes to courses and sessions: create, reschedule, change capacity, cancel.

Each command owns its transaction; everyone a change affects is told through the outbox in the
same transaction (invariant 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox, reminders
from notifications.models import utcnow
from scheduler import holds
from scheduler.booking import fill_from_waitlist, lock_session
from scheduler.catalog.parsing import POOLS_OF_MODE, parse_course, parse_session
from scheduler.catalog.schedule import (
    ScheduleChange,
    check_bookings,
    lock_instructors,
    resolve_venue,
    write_instructors,
    write_schedule,
)
from scheduler.catalog.views import CourseView, SessionView, get_course, get_session
from scheduler.db import Database
from scheduler.errors import AlreadyExists, CapacityBelowConfirmed, Conflict, Invalid
from scheduler.models import (
    CANCELLED,
    CONFIRMED,
    SCHEDULED,
    WAITLISTED,
    Course,
    Instructor,
    Registration,
    SeatPool,
    TrainingSession,
)


async def create_course(db: Database, data: Any) -> CourseView:
    """Create a course from a validated body. Raises ``Invalid`` or ``AlreadyExists``."""
    values = parse_course(data)
    now = utcnow()
    try:
        async with db.write() as conn:
            await conn.execute(insert(Course).values(**values, created_at=now, updated_at=now))
            return await get_course(conn, values["slug"])
    except IntegrityError as exc:
        raise AlreadyExists("course", values["slug"], "slug") from exc


async def update_course(db: Database, slug: str, data: Any) -> CourseView:
    """Change a course's text fields. Raises ``NotFound`` or ``Invalid``."""
    values = parse_course(data, partial=True)
    async with db.write() as conn:
        course = await get_course(conn, slug)
        if values:
            await conn.execute(
                update(Course).where(Course.id == course.id).values(**values, updated_at=utcnow())
            )
            # Feeds show the course title: touching the sessions refreshes their events.
            await conn.execute(
                update(TrainingSession)
                .where(TrainingSession.course_id == course.id)
                .values(updated_at=utcnow())
            )
        return await get_course(conn, slug)


async def create_session(
    db: Database,
    slug: str,
    data: Any,
    *,
    travel_buffer: timedelta = timedelta(0),
    now: datetime | None = None,
) -> SessionView:
    """Schedule a session of course ``slug`` with its meetings, instructors and venue.

    Raises ``NotFound``, ``Invalid`` (also for an unknown instructor or venue id) or
    ``Conflict`` when an instructor or the venue's room is booked at an overlapping time.
    """
    now = now or utcnow()
    parsed = parse_session(data, now=None if record_past(data) else now)
    closes = parsed.columns.get("registration_closes_at")
    if closes is not None and closes <= now and not record_past(data):
        raise Invalid(
            {
                "registration_closes_at": "is in the past, so registration would never open; "
                "leave it empty or choose later"
            }
        )
    assert parsed.meetings is not None  # a new session's body always has its schedule
    check_not_past(data, parsed.meetings[0].starts_at, now)
    columns = dict(parsed.columns)
    instructors = parsed.instructors or ()
    async with db.write() as conn:
        course = await get_course(conn, slug)
        await lock_instructors(conn, instructors)
        await resolve_venue(conn, columns)
        await check_bookings(
            conn,
            session_id=None,
            meetings=[(m.starts_at, m.ends_at) for m in parsed.meetings],
            instructors=instructors,
            venue_id=columns.get("venue_id"),
            allow_overlap=bool(columns.get("allow_overlap")),
            buffer=travel_buffer,
        )
        session_id = (
            await conn.execute(
                insert(TrainingSession)
                .values(
                    course_id=course.id,
                    status=SCHEDULED,
                    sequence=0,
                    created_at=now,
                    updated_at=now,
                    starts_at=parsed.meetings[0].starts_at,
                    ends_at=parsed.meetings[-1].ends_at,
                    **columns,
                )
                .returning(TrainingSession.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(SeatPool),
            [
                {
                    "session_id": session_id,
                    "attendance": attendance,
                    "capacity": capacity,
                    "confirmed": 0,
                    "waitlist_seq": 0,
                }
                for attendance, capacity in parsed.capacities.items()
            ],
        )
        await write_schedule(conn, session_id, (), parsed.meetings, now)
        await write_instructors(conn, session_id, (), instructors, now)
        session = await get_session(conn, session_id)
        await tell_instructors(conn, session, instructors, "instructor_assigned", {})
        return session


# Changes that move every meeting or the place: they raise the session's own sequence, which
# every one of its calendar events adds to its meeting's.
_SESSION_FIELDS = (
    "timezone",
    "venue_name",
    "venue_address",
    "venue_city",
    "venue_state",
    "venue_postal_code",
    "venue_room",
    "join_url",
    "mode",
)


async def update_session(
    db: Database,
    session_id: int,
    data: Any,
    *,
    reminder_offsets: tuple[timedelta, ...],
    travel_buffer: timedelta = timedelta(0),
    now: datetime | None = None,
) -> SessionView:
    """Reschedule, move, or change capacities, instructors or venue of a session; everyone
    affected is told.

    ``meetings`` replaces the schedule (see :func:`schedule.write_schedule`). Raising a
    capacity promotes from the waitlist in the same transaction; lowering it below the
    confirmed count raises ``CapacityBelowConfirmed`` and bumps nobody. Also raises
    ``NotFound``, ``Invalid`` and ``Conflict`` (a cancelled session, dropping a pool that still
    has registrations, or a double-booked instructor or room).
    """
    now = now or utcnow()
    async with db.write() as conn:
        row = await lock_session(conn, session_id)
        current = await get_session(conn, session_id)
        if current.status == CANCELLED:
            raise Conflict("a cancelled session cannot be changed", {"status": CANCELLED})
        parsed = parse_session(data, current=current, now=None if record_past(data) else now)
        if parsed.meetings and parsed.meetings[0].starts_at != current.starts_at:
            check_not_past(data, parsed.meetings[0].starts_at, now)
        columns = dict(parsed.columns)
        await resolve_venue(conn, columns)
        values: dict[str, Any] = {k: v for k, v in columns.items() if getattr(current, k) != v}
        new_mode = values.get("mode", current.mode)
        for pool in current.pools:
            if pool.attendance not in POOLS_OF_MODE[new_mode] and (
                pool.confirmed or pool.waitlisted or pool.held
            ):
                raise Conflict(
                    f"the {pool.attendance} pool still has registrations",
                    {"mode": "move or cancel those registrations first"},
                )
        for attendance, capacity in parsed.capacities.items():
            existing = current.pool(attendance)
            if existing is not None and capacity < existing.confirmed + existing.held:
                raise CapacityBelowConfirmed(
                    attendance, capacity, existing.confirmed, held=existing.held
                )

        before_ids = [i.id for i in current.instructors]
        instructors = parsed.instructors if parsed.instructors is not None else tuple(before_ids)
        schedule = parsed.meetings if parsed.meetings is not None else current.schedule
        rebooks = (
            parsed.meetings is not None
            or parsed.instructors is not None
            or "venue_id" in values
            or "allow_overlap" in values
        )
        await lock_instructors(conn, instructors)
        if rebooks:
            await check_bookings(
                conn,
                session_id=session_id,
                meetings=[(m.starts_at, m.ends_at) for m in schedule],
                instructors=instructors,
                venue_id=values.get("venue_id", current.venue_id),
                allow_overlap=bool(values.get("allow_overlap", current.allow_overlap)),
                buffer=travel_buffer,
            )

        moved = any(k in values for k in _SESSION_FIELDS)
        if values or parsed.capacities:
            if moved:
                values["sequence"] = current.sequence + 1
            await conn.execute(
                update(TrainingSession)
                .where(TrainingSession.id == session_id)
                .values(**values, updated_at=now)
            )
        change = ScheduleChange()
        if parsed.meetings is not None:
            change = await write_schedule(conn, session_id, current.meetings, parsed.meetings, now)
        assigned, unassigned = await write_instructors(
            conn, session_id, before_ids, instructors, now
        )
        for attendance, capacity in parsed.capacities.items():
            if current.pool(attendance) is None:
                await conn.execute(
                    insert(SeatPool).values(
                        session_id=session_id,
                        attendance=attendance,
                        capacity=capacity,
                        confirmed=0,
                        waitlist_seq=0,
                    )
                )
            else:
                await conn.execute(
                    update(SeatPool)
                    .where(SeatPool.session_id == session_id, SeatPool.attendance == attendance)
                    .values(capacity=capacity)
                )
        for pool in current.pools:
            if pool.attendance not in POOLS_OF_MODE[new_mode]:
                await conn.execute(
                    delete(SeatPool).where(
                        SeatPool.session_id == session_id, SeatPool.attendance == pool.attendance
                    )
                )
        fresh = await get_session(conn, session_id)
        if moved or change.any:
            payload = _change_payload(current, change)
            # Time zone, place or mode: every day's calendar entry changes, not only some.
            payload["all_days"] = moved
            await _tell_everyone(conn, current, "session_changed", payload)
            staying = [i for i in instructors if i not in assigned]
            await tell_instructors(conn, fresh, staying, "instructor_changed", payload)
            if fresh.starts_at != current.starts_at:
                # Held seats keep their lead time before the new start (release, warning).
                await holds.follow_reschedule(conn, session_id, current.starts_at, fresh.starts_at)
                confirmed = (
                    await conn.execute(
                        select(Registration.id, Registration.email).where(
                            Registration.session_id == session_id,
                            Registration.status == CONFIRMED,
                        )
                    )
                ).all()
                await reminders.move_reminders(
                    conn,
                    session_id,
                    fresh.starts_at,
                    now,
                    offsets=reminder_offsets,
                    confirmed=[(r.id, r.email) for r in confirmed],
                )
        await tell_instructors(conn, fresh, assigned, "instructor_assigned", {})
        await tell_instructors(conn, fresh, unassigned, "instructor_unassigned", {})
        fresh_row = await lock_session(conn, session_id)
        await fill_from_waitlist(conn, fresh_row, reminder_offsets=reminder_offsets, now=now)
        del row
        return await get_session(conn, session_id)


def _change_payload(before: SessionView, change: ScheduleChange) -> dict[str, Any]:
    return {
        # Which days moved, were added or removed, and the schedule before, for the email.
        "moved_meetings": list(change.moved),
        "added_meetings": list(change.added),
        "removed_meetings": list(change.removed),
        "old_meetings": [
            {"id": m.id, "starts_at": m.starts_at.isoformat(), "ends_at": m.ends_at.isoformat()}
            for m in before.schedule
        ],
        "old_starts_at": before.starts_at.isoformat(),
        "old_ends_at": before.ends_at.isoformat(),
        "old_timezone": before.timezone,
        "old_venue_name": before.venue_name,
        "old_venue_address": before.venue_address,
        "old_venue_city": before.venue_city,
        "old_venue_state": before.venue_state,
        "old_mode": before.mode,
    }


async def _tell_everyone(
    conn: AsyncConnection, session: SessionView, kind: str, payload: dict[str, Any]
) -> None:
    people = (
        await conn.execute(
            select(Registration.id, Registration.email).where(
                Registration.session_id == session.id,
                Registration.status.in_([CONFIRMED, WAITLISTED]),
            )
        )
    ).all()
    await outbox.enqueue_many(
        conn,
        [
            {
                "kind": kind,
                "recipient": person.email,
                "registration_id": person.id,
                "session_id": session.id,
                "payload": payload,
            }
            for person in people
        ],
    )


_MOOT_ON_SESSION_CANCEL = (
    "hold_release_warning",
    "confirmation",
    "waitlisted",
    "promoted",
    "session_changed",
    reminders.REMINDER,
)


async def cancel_session(
    db: Database, session_id: int, *, reason: str | None = None
) -> SessionView:
    """Cancel a session: everyone registered is told and its reminders are cancelled.

    Cancelling twice is harmless. Raises ``NotFound``.
    """
    now = utcnow()
    async with db.write() as conn:
        await lock_session(conn, session_id)
        current = await get_session(conn, session_id)
        if current.status == CANCELLED:
            return current
        await conn.execute(
            update(TrainingSession)
            .where(TrainingSession.id == session_id)
            .values(
                status=CANCELLED,
                cancelled_at=now,
                updated_at=now,
                sequence=TrainingSession.sequence + 1,
            )
        )
        # Everything still pending about this session is moot, except telling people who
        # cancelled their own seat that it is cancelled (invariant 4).
        await outbox.cancel_pending(conn, session_id=session_id, kinds=_MOOT_ON_SESSION_CANCEL)
        await _tell_everyone(conn, current, "session_cancelled", {"reason": reason or ""})
        # Held seats end with the session; their agencies' coordinators are told.
        await holds.release_for_cancelled_session(conn, session_id, now, reason=reason or "")
        cancelled = await get_session(conn, session_id)
        await tell_instructors(
            conn, cancelled, [i.id for i in current.instructors], "instructor_unassigned", {}
        )
        return cancelled


async def tell_instructors(
    conn: AsyncConnection,
    session: SessionView,
    instructor_ids: Sequence[int],
    kind: str,
    payload: dict[str, Any],
) -> None:
    """Write an email to each of these instructors of ``session`` (their invite rides along)."""
    if not instructor_ids:
        return
    people = (
        await conn.execute(
            select(Instructor.id, Instructor.email).where(Instructor.id.in_(list(instructor_ids)))
        )
    ).all()
    await outbox.enqueue_many(
        conn,
        [
            {
                "kind": kind,
                "recipient": person.email,
                "registration_id": None,
                "session_id": session.id,
                "payload": {**payload, "instructor_id": person.id},
            }
            for person in people
        ],
    )


def record_past(data: Any) -> bool:
    """Whether the body says on purpose that it records a session already past.

    Such a session would vanish from every list the moment it is saved, so a start already
    past takes an explicit ``record_past: true`` (the form's "record a past session" box).
    """
    return isinstance(data, dict) and data.get("record_past") in (True, "true", "1", "on")


def check_not_past(data: Any, starts_at: datetime, now: datetime) -> None:
    """Refuse a one-meeting body (``starts_at``/``ends_at``) that starts in the past.

    A ``meetings`` body is checked meeting by meeting in ``catalog.parsing``; this covers the
    plain form. Such a session would vanish from every list the moment it is saved, so it takes
    ``record_past``. Raises ``Invalid`` naming ``starts_at``.
    """
    if record_past(data) or not isinstance(data, dict) or "meetings" in data:
        return
    if "starts_at" in data and starts_at <= now:
        raise Invalid(
            {"starts_at": "is in the past; to record a session that already took place, say so"}
        )
