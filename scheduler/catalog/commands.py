"""Changes to courses and sessions: create, reschedule, change capacity, cancel.

Each command owns its transaction; everyone a change affects is told through the outbox in the
same transaction (invariant 4).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox, reminders
from notifications.models import utcnow
from scheduler.booking import fill_from_waitlist, lock_session
from scheduler.catalog.parsing import POOLS_OF_MODE, parse_course, parse_session
from scheduler.catalog.views import CourseView, SessionView, get_course, get_session
from scheduler.db import Database
from scheduler.errors import AlreadyExists, CapacityBelowConfirmed, Conflict
from scheduler.models import (
    CANCELLED,
    CONFIRMED,
    WAITLISTED,
    Course,
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


async def create_session(db: Database, slug: str, data: Any) -> SessionView:
    """Schedule a session of course ``slug``. Raises ``NotFound`` or ``Invalid``."""
    parsed = parse_session(data)
    now = utcnow()
    async with db.write() as conn:
        course = await get_course(conn, slug)
        session_id = (
            await conn.execute(
                insert(TrainingSession)
                .values(
                    course_id=course.id,
                    status="scheduled",
                    sequence=0,
                    created_at=now,
                    updated_at=now,
                    **parsed["values"],
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
                for attendance, capacity in parsed["capacities"].items()
            ],
        )
        return await get_session(conn, session_id)


_TIME_FIELDS = ("starts_at", "ends_at", "timezone")
_PLACE_FIELDS = (
    "venue_name",
    "venue_address",
    "venue_city",
    "venue_state",
    "venue_postal_code",
    "join_url",
    "mode",
)


async def update_session(
    db: Database,
    session_id: int,
    data: Any,
    *,
    reminder_offsets: tuple[timedelta, ...],
    now: datetime | None = None,
) -> SessionView:
    """Reschedule, move, or change capacities of a session; everyone affected is told.

    Raising a capacity promotes from the waitlist in the same transaction; lowering it below
    the confirmed count raises ``CapacityBelowConfirmed`` and bumps nobody. Also raises
    ``NotFound``, ``Invalid`` and ``Conflict`` (a cancelled session, or dropping a pool that
    still has registrations).
    """
    now = now or utcnow()
    async with db.write() as conn:
        row = await lock_session(conn, session_id)
        current = await get_session(conn, session_id)
        if current.status == CANCELLED:
            raise Conflict("a cancelled session cannot be changed", {"status": "cancelled"})
        parsed = parse_session(data, current=current)
        values: dict[str, Any] = {
            k: v for k, v in parsed["values"].items() if getattr(current, k) != v
        }
        new_mode = values.get("mode", current.mode)
        for pool in current.pools:
            if pool.attendance not in POOLS_OF_MODE[new_mode] and (
                pool.confirmed or pool.waitlisted
            ):
                raise Conflict(
                    f"the {pool.attendance} pool still has registrations",
                    {"mode": "move or cancel those registrations first"},
                )
        for attendance, capacity in parsed["capacities"].items():
            existing = current.pool(attendance)
            if existing is not None and capacity < existing.confirmed:
                raise CapacityBelowConfirmed(attendance, capacity, existing.confirmed)

        moved = any(k in values for k in _TIME_FIELDS + _PLACE_FIELDS)
        if values or parsed["capacities"]:
            if moved:
                values["sequence"] = current.sequence + 1
            await conn.execute(
                update(TrainingSession)
                .where(TrainingSession.id == session_id)
                .values(**values, updated_at=now)
            )
        for attendance, capacity in parsed["capacities"].items():
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
        if moved:
            await _tell_everyone(conn, current, "session_changed", _change_payload(current))
            if "starts_at" in values:
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
                    values["starts_at"],
                    now,
                    offsets=reminder_offsets,
                    confirmed=[(r.id, r.email) for r in confirmed],
                )
        fresh_row = await lock_session(conn, session_id)
        await fill_from_waitlist(conn, fresh_row, reminder_offsets=reminder_offsets, now=now)
        del row
        return await get_session(conn, session_id)


def _change_payload(before: SessionView) -> dict[str, Any]:
    return {
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
        return await get_session(conn, session_id)
