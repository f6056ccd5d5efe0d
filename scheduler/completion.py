"""Who completed a session, by its course's rule, and finalizing the roster.

- ``all_meetings``: present at every scheduled meeting.
- ``percent_hours``: the minutes attended reach ``completion_percent`` % of the contact hours.
  A present mark counts the meeting's length, or the minutes it carries (a virtual meeting's
  report), never more than the meeting's length; an absent or missing mark counts nothing.

Finalizing writes ``completions`` for every confirmed registrant, sets ``finalized_at``/``by``
(the roster is locked from then on: ``scheduler.attendance`` asks for a reason) and lets
``scheduler.certificates.sync_session`` issue the certificates, in one transaction.

Errors: ``NotFound`` (session), ``Gone`` (cancelled), ``Conflict`` (already finalized, or the
last meeting has not started yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.models import utcnow
from scheduler import certificates
from scheduler.db import Database
from scheduler.errors import Conflict, Gone, NotFound
from scheduler.models import (
    CANCELLED,
    CONFIRMED,
    SCHEDULED,
    Attendance,
    Completion,
    Course,
    Meeting,
    Registration,
    RosterAudit,
    TrainingSession,
)


@dataclass(frozen=True)
class Outcome:
    registration_id: int
    name: str
    completed: bool
    attended_minutes: int
    meetings_present: int


async def compute(conn: AsyncConnection, session_id: int) -> tuple[int, list[Outcome]]:
    """``(contact minutes, one outcome per confirmed registrant)`` from the marks as they are."""
    course = (
        await conn.execute(
            select(Course.completion_rule, Course.completion_percent)
            .join(TrainingSession, TrainingSession.course_id == Course.id)
            .where(TrainingSession.id == session_id)
        )
    ).one()
    meetings = (
        await conn.execute(
            select(Meeting.id, Meeting.starts_at, Meeting.ends_at).where(
                Meeting.session_id == session_id, Meeting.status == SCHEDULED
            )
        )
    ).all()
    length = {m.id: int((m.ends_at - m.starts_at).total_seconds() // 60) for m in meetings}
    contact = sum(length.values())
    people = (
        await conn.execute(
            select(Registration.id, Registration.name).where(
                Registration.session_id == session_id, Registration.status == CONFIRMED
            )
        )
    ).all()
    marks: dict[int, dict[int, Any]] = {}
    for row in (
        await conn.execute(select(Attendance).where(Attendance.session_id == session_id))
    ).all():
        marks.setdefault(row.registration_id, {})[row.meeting_id] = row
    outcomes = []
    for person in people:
        own = marks.get(person.id, {})
        minutes = 0
        present = 0
        for meeting_id, meeting_minutes in length.items():
            mark = own.get(meeting_id)
            if mark is None or not mark.present:
                continue
            present += 1
            counted = meeting_minutes if mark.minutes is None else mark.minutes
            minutes += min(counted, meeting_minutes)
        if course.completion_rule == "percent_hours":
            percent = course.completion_percent or 100
            completed = bool(length) and minutes * 100 >= percent * contact
        else:
            completed = bool(length) and present == len(length)
        outcomes.append(Outcome(person.id, person.name, completed, minutes, present))
    return contact, outcomes


async def write_completions(conn: AsyncConnection, session_id: int, now: datetime) -> list[Outcome]:
    _, outcomes = await compute(conn, session_id)
    await conn.execute(delete(Completion).where(Completion.session_id == session_id))
    if outcomes:
        await conn.execute(
            insert(Completion),
            [
                {
                    "registration_id": o.registration_id,
                    "session_id": session_id,
                    "completed": o.completed,
                    "attended_minutes": o.attended_minutes,
                    "computed_at": now,
                }
                for o in outcomes
            ],
        )
    return outcomes


async def recompute_and_sync(
    conn: AsyncConnection,
    session_id: int,
    *,
    actor: str,
    reason: str | None,
    now: datetime,
    issuer: certificates.Issuer | None = None,
) -> Any:
    """After a change to a finalized roster: completions again, then the certificates."""
    await write_completions(conn, session_id, now)
    return await certificates.sync_session(
        conn, session_id, actor=actor, reason=reason, now=now, issuer=issuer
    )


async def finalize(
    db: Database,
    session_id: int,
    *,
    actor: str,
    now: datetime | None = None,
    issuer: certificates.Issuer | None = None,
) -> dict[str, Any]:
    """Compute completions, lock the roster and issue certificates; returns the summary.

    Raises ``NotFound``, ``Gone`` (cancelled), ``Conflict`` (finalized already, not started).
    """
    now = now or utcnow()
    async with db.write() as conn:
        session = (
            await conn.execute(
                select(TrainingSession).where(TrainingSession.id == session_id).with_for_update()
            )
        ).first()
        if session is None:
            raise NotFound("session", session_id)
        if session.status == CANCELLED:
            raise Gone("the session is cancelled: there is nothing to finalize")
        if session.finalized_at is not None:
            raise Conflict("the session is finalized already", {"session": "finalized"})
        last_start = (
            await conn.execute(
                select(Meeting.starts_at)
                .where(Meeting.session_id == session_id, Meeting.status == SCHEDULED)
                .order_by(Meeting.starts_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if last_start is None or last_start > now:
            raise Conflict(
                "the session's last meeting has not started yet", {"session": "not held yet"}
            )
        outcomes = await write_completions(conn, session_id, now)
        await conn.execute(
            update(TrainingSession)
            .where(TrainingSession.id == session_id)
            .values(finalized_at=now, finalized_by=actor, updated_at=now)
        )
        await conn.execute(
            insert(RosterAudit).values(
                session_id=session_id,
                at=now,
                actor=actor,
                action="finalize",
                after={"completed": sum(o.completed for o in outcomes), "people": len(outcomes)},
            )
        )
        synced = await certificates.sync_session(
            conn, session_id, actor=actor, reason=None, now=now, issuer=issuer
        )
    return {
        "session_id": session_id,
        "finalized_at": now,
        "finalized_by": actor,
        "completions": [outcome_json(o) for o in outcomes],
        "certificates": _sync_json(synced),
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "registration_id": outcome.registration_id,
        "name": outcome.name,
        "completed": outcome.completed,
        "attended_minutes": outcome.attended_minutes,
        "meetings_present": outcome.meetings_present,
    }


def _sync_json(synced: Any) -> dict[str, Any]:
    """The counts ``sync_session`` returns, whatever dataclass shape it has."""
    if synced is None:
        return {}
    if isinstance(synced, dict):
        return dict(synced)
    names = ("issued", "revoked", "reissued")
    return {name: getattr(synced, name) for name in names if hasattr(synced, name)}


async def completions(conn: AsyncConnection, session_id: int) -> dict[str, Any]:
    """The stored completions of a session (empty before it is finalized)."""
    session = (
        await conn.execute(
            select(TrainingSession.finalized_at, TrainingSession.finalized_by).where(
                TrainingSession.id == session_id
            )
        )
    ).first()
    if session is None:
        raise NotFound("session", session_id)
    contact, live = await compute(conn, session_id)
    by_id = {o.registration_id: o for o in live}
    stored = (
        await conn.execute(
            select(Completion, Registration.name)
            .join(Registration, Registration.id == Completion.registration_id)
            .where(Completion.session_id == session_id)
            .order_by(Registration.name, Registration.id)
        )
    ).all()
    return {
        "session_id": session_id,
        "finalized_at": session.finalized_at,
        "finalized_by": session.finalized_by,
        "contact_minutes": contact,
        "completions": [
            {
                "registration_id": row.registration_id,
                "name": row.name,
                "completed": row.completed,
                "attended_minutes": row.attended_minutes,
                "meetings_present": by_id[row.registration_id].meetings_present
                if row.registration_id in by_id
                else 0,
                "computed_at": row.computed_at,
            }
            for row in stored
        ],
    }


async def audit_trail(conn: AsyncConnection, session_id: int) -> list[Any]:
    return list(
        (
            await conn.execute(
                select(RosterAudit)
                .where(RosterAudit.session_id == session_id)
                .order_by(RosterAudit.id)
            )
        ).all()
    )
