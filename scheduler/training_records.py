"""Training records: an officer's completed courses, and the exports state boards ask for.

A record of a completer is what their valid certificate prints (the snapshot issued), so the
export and the paper always agree; someone who did not complete is listed from the roster with
the result "not completed". The export carries the columns states share (name, certification
number, state, agency, ORI, course, course number, provider, instructors, dates, hours,
result); the web layer writes it as CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from scheduler.certificates import VALID, format_date, hours_text, meeting_days
from scheduler.config import Settings
from scheduler.errors import Invalid
from scheduler.models import (
    Agency,
    Certificate,
    Completion,
    Course,
    Instructor,
    Registration,
    SessionInstructor,
    TrainingSession,
)

__all__ = [
    "COLUMNS",
    "CompletedCourse",
    "completed_courses",
    "own_certificate_pdf",
    "parse_range",
    "records",
]

# (JSON key, CSV heading)
COLUMNS = (
    ("name", "Name"),
    ("certification_number", "Certification number"),
    ("state", "State"),
    ("agency", "Agency"),
    ("ori", "ORI"),
    ("course", "Course"),
    ("course_number", "Course number"),
    ("provider", "Provider"),
    ("instructors", "Instructors"),
    ("dates", "Dates"),
    ("hours", "Hours"),
    ("result", "Result"),
    ("verification_code", "Verification code"),
    ("session_id", "Session"),
)


@dataclass(frozen=True)
class CompletedCourse:
    """One line of an officer's training record."""

    certificate_id: int
    registration_id: int
    course_title: str
    course_number: str
    provider: str
    meeting_dates: list[str]
    completed_on: str
    credit_hours: str
    code: str


async def completed_courses(conn: AsyncConnection, token: str) -> list[CompletedCourse] | None:
    """Every valid certificate of the person holding registration ``token`` (by email, in any
    letter case, across sessions), newest first; None when the token is unknown."""
    email_key = (
        await conn.execute(select(Registration.email_key).where(Registration.token == token))
    ).scalar_one_or_none()
    if email_key is None:
        return None
    rows = (
        await conn.execute(
            select(Certificate.id, Certificate.registration_id, Certificate.code, Certificate.facts)
            .join(Registration, Registration.id == Certificate.registration_id)
            .where(Registration.email_key == email_key, Certificate.status == VALID)
        )
    ).all()
    found = [
        CompletedCourse(
            certificate_id=row.id,
            registration_id=row.registration_id,
            course_title=row.facts["course_title"],
            course_number=row.facts["course_number"],
            provider=row.facts["provider"],
            meeting_dates=[format_date(d) for d in row.facts["meeting_dates"]],
            completed_on=row.facts["completed_on"],
            credit_hours=row.facts["credit_hours"],
            code=row.code,
        )
        for row in rows
    ]
    return sorted(found, key=lambda c: (c.completed_on, c.certificate_id), reverse=True)


async def own_certificate_pdf(
    conn: AsyncConnection, token: str, certificate_id: int | None = None
) -> tuple[str, bytes] | None:
    """``(code, pdf)`` of a valid certificate the holder of ``token`` may download: the
    registration's own (no id), or, by id, any of the same person's; None otherwise."""
    holder = (
        await conn.execute(
            select(Registration.id, Registration.email_key).where(Registration.token == token)
        )
    ).first()
    if holder is None:
        return None
    stmt = (
        select(Certificate.code, Certificate.pdf)
        .join(Registration, Registration.id == Certificate.registration_id)
        .where(Certificate.status == VALID)
    )
    if certificate_id is None:
        stmt = stmt.where(Certificate.registration_id == holder.id)
    else:
        stmt = stmt.where(
            Certificate.id == certificate_id, Registration.email_key == holder.email_key
        )
    row = (await conn.execute(stmt.order_by(Certificate.id.desc()).limit(1))).first()
    return None if row is None else (row.code, bytes(row.pdf))


FIRST_YEAR, LAST_YEAR = 2000, 2199


def parse_range(raw_from: str | None, raw_to: str | None) -> tuple[date | None, date | None]:
    """``?from=&to=`` as dates (inclusive); raises ``Invalid`` naming the field."""
    errors: dict[str, str] = {}
    parsed: dict[str, date | None] = {}
    for name, raw in (("from", raw_from), ("to", raw_to)):
        if raw in (None, ""):
            parsed[name] = None
            continue
        try:
            parsed[name] = date.fromisoformat(str(raw))
        except ValueError:
            errors[name] = "use a date like 2026-11-04"
            continue
        day = parsed[name]
        if day is not None and not FIRST_YEAR <= day.year <= LAST_YEAR:
            # Far dates overflow when turned into instants in a session's zone.
            errors[name] = f"must be in the years {FIRST_YEAR}-{LAST_YEAR}"
    if errors:
        raise Invalid(errors)
    start, end = parsed["from"], parsed["to"]
    if start and end and end < start:
        raise Invalid({"to": "must not be before from"})
    return start, end


async def records(
    conn: AsyncConnection,
    settings: Settings,
    *,
    session_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
) -> list[dict[str, Any]]:
    """The training records of finalized sessions: one session, or those whose last meeting
    falls between ``start`` and ``end`` (local dates, inclusive), in session then name order."""
    stmt = select(
        TrainingSession.id,
        TrainingSession.timezone,
        Course.title,
        Course.course_number,
        Course.provider,
        Course.credit_hours,
    ).join(Course, Course.id == TrainingSession.course_id)
    stmt = stmt.where(TrainingSession.finalized_at.is_not(None))
    if session_id is not None:
        stmt = stmt.where(TrainingSession.id == session_id)
    # A day of slack each side for time zones; the exact local date is checked below.
    if start is not None:
        stmt = stmt.where(TrainingSession.ends_at >= _utc_day(start - timedelta(days=1)))
    if end is not None:
        stmt = stmt.where(TrainingSession.starts_at < _utc_day(end + timedelta(days=2)))
    sessions = (await conn.execute(stmt.order_by(TrainingSession.id))).all()
    out: list[dict[str, Any]] = []
    for session in sessions:
        days, minutes = await meeting_days(conn, session.id, session.timezone)
        last = date.fromisoformat(days[-1]) if days else None
        if last is None or (start and last < start) or (end and last > end):
            continue
        instructors = "; ".join(
            (
                await conn.execute(
                    select(Instructor.name)
                    .join(SessionInstructor, SessionInstructor.instructor_id == Instructor.id)
                    .where(SessionInstructor.session_id == session.id)
                    .order_by(SessionInstructor.created_at, Instructor.id)
                )
            ).scalars()
        )
        credit = session.credit_hours if session.credit_hours is not None else Decimal(minutes) / 60
        live = {
            "course": session.title,
            "course_number": session.course_number or "",
            "provider": session.provider or settings.provider_name,
            "instructors": instructors,
            "dates": "; ".join(days),
            "session_id": session.id,
        }
        people = (
            await conn.execute(
                select(
                    Registration.name,
                    Registration.post_id,
                    Registration.post_state,
                    Registration.agency,
                    Agency.ori,
                    Completion.completed,
                    Certificate.code,
                    Certificate.facts,
                )
                .join(Completion, Completion.registration_id == Registration.id)
                .outerjoin(Agency, Agency.id == Registration.agency_id)
                .outerjoin(
                    Certificate,
                    and_(
                        Certificate.registration_id == Registration.id,
                        Certificate.status == VALID,
                    ),
                )
                .where(Completion.session_id == session.id)
                .order_by(func.lower(Registration.name), Registration.id)
            )
        ).all()
        for person in people:
            if person.completed and person.facts is not None:
                facts = person.facts
                out.append(
                    {
                        "name": facts["name"],
                        "certification_number": facts["post_id"],
                        "state": facts["post_state"],
                        "agency": facts["agency"],
                        "ori": facts.get("agency_ori", ""),
                        "course": facts["course_title"],
                        "course_number": facts["course_number"],
                        "provider": facts["provider"],
                        "instructors": "; ".join(facts["instructors"]),
                        "dates": "; ".join(facts["meeting_dates"]),
                        "hours": facts["credit_hours"],
                        "result": "completed",
                        "verification_code": person.code,
                        "session_id": session.id,
                    }
                )
                continue
            out.append(
                {
                    **live,
                    "name": person.name,
                    "certification_number": person.post_id or "",
                    "state": person.post_state or "",
                    "agency": person.agency,
                    "ori": person.ori or "",
                    "hours": hours_text(credit) if person.completed else "0",
                    "result": "completed" if person.completed else "not completed",
                    "verification_code": "",
                }
            )
    return out


def _utc_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
