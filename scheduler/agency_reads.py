"""What the agency console reads: upcoming sessions with what the agency's cap still allows,
the agency's registrations with their outcomes, and its private calendar feed's counts.

Everything here takes the agency ids the caller may see and filters by them in SQL
(invariant 10); nothing returns another agency's people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from scheduler.agencies import agency_key
from scheduler.catalog import SessionView, load_sessions
from scheduler.models import (
    CANCELLED,
    CONFIRMED,
    HOLD_ACTIVE,
    WAITLISTED,
    Course,
    Hold,
    Registration,
    TrainingSession,
)


@dataclass(frozen=True)
class AgencySeats:
    """One agency's people in one session."""

    confirmed: int = 0
    waitlisted: int = 0
    held: int = 0

    @property
    def taken(self) -> int:
        return self.confirmed + self.held


async def seats_by_session(
    conn: AsyncConnection, agency_id: int, session_ids: Sequence[int] | None = None
) -> dict[int, AgencySeats]:
    """The agency's confirmed, waitlisted and held seats per session."""
    key = agency_key(agency_id)
    regs = select(Registration.session_id, Registration.status, func.count()).where(
        Registration.agency_key == key, Registration.status != CANCELLED
    )
    held = select(Hold.session_id, func.sum(Hold.remaining)).where(
        Hold.agency_key == key, Hold.status == HOLD_ACTIVE
    )
    if session_ids is not None:
        regs = regs.where(Registration.session_id.in_(list(session_ids)))
        held = held.where(Hold.session_id.in_(list(session_ids)))
    counts: dict[int, dict[str, int]] = {}
    for session_id, status, n in (
        await conn.execute(regs.group_by(Registration.session_id, Registration.status))
    ).all():
        counts.setdefault(session_id, {})[status] = int(n)
    for session_id, n in (await conn.execute(held.group_by(Hold.session_id))).all():
        counts.setdefault(session_id, {})["held"] = int(n or 0)
    return {
        sid: AgencySeats(c.get(CONFIRMED, 0), c.get(WAITLISTED, 0), c.get("held", 0))
        for sid, c in counts.items()
    }


def cap_left(session: SessionView, seats: AgencySeats | None) -> int | None:
    """Seats the session's per-agency cap still allows the agency; None without a cap."""
    if session.max_per_agency is None:
        return None
    return max(session.max_per_agency - (seats.taken if seats else 0), 0)


async def upcoming(
    conn: AsyncConnection, agency_id: int, now: datetime
) -> list[tuple[SessionView, AgencySeats | None, int | None]]:
    """Scheduled sessions that have not started, with the agency's seats and cap left."""
    sessions = [
        s
        for s in await load_sessions(conn, upcoming_after=now, include_cancelled=False)
        if s.starts_at > now
    ]
    seats = await seats_by_session(conn, agency_id, [s.id for s in sessions])
    return [(s, seats.get(s.id), cap_left(s, seats.get(s.id))) for s in sessions]


async def registrations(conn: AsyncConnection, agency_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every registration of the agencies, upcoming and past, newest session first."""
    keys = [agency_key(a) for a in agency_ids]
    rows = await conn.execute(
        select(
            Registration.id,
            Registration.session_id,
            Registration.name,
            Registration.email,
            Registration.rank,
            Registration.post_id,
            Registration.post_state,
            Registration.attendance,
            Registration.status,
            Registration.outcome,
            Registration.hold_id,
            Registration.agency,
            Registration.agency_id,
            TrainingSession.starts_at,
            TrainingSession.timezone,
            TrainingSession.status.label("session_status"),
            Course.title.label("course_title"),
            Course.slug.label("course"),
        )
        .join(TrainingSession, TrainingSession.id == Registration.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
        .where(Registration.agency_key.in_(keys))
        .order_by(TrainingSession.starts_at.desc(), Registration.status, Registration.id)
    )
    return [dict(r._mapping) for r in rows.all()]


async def feed_sessions(
    conn: AsyncConnection, agency_id: int
) -> list[tuple[SessionView, AgencySeats]]:
    """The sessions where the agency has officers or held seats, with the counts only."""
    seats = await seats_by_session(conn, agency_id)
    sessions = await load_sessions(conn, session_ids=list(seats))
    return [(s, seats[s.id]) for s in sessions]
