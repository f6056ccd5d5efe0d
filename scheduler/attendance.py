"""Attendance per meeting: marks by hand, self check-in, imported reports, the roster's lock.

Every change goes through ``_write_marks`` inside one transaction that locks the session's row:
only confirmed registrants of the session are marked, for a scheduled meeting of that session.
Once the session is finalized (``scheduler.completion``) a change needs a reason; it is written
to ``roster_audit`` with its before and after, the completions are computed again and the
certificates follow (``scheduler.certificates.sync_session``), all in the same transaction.

Errors: ``NotFound`` (session, meeting, check-in code), ``Invalid`` (marks, a missing reason),
``Gone`` (a cancelled session).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.models import utcnow
from scheduler import attendance_reports, completion
from scheduler.attendance_reports import ReportPerson, name_key
from scheduler.certificates import Issuer
from scheduler.db import Database
from scheduler.errors import Gone, Invalid, NotFound
from scheduler.models import (
    CANCELLED,
    CONFIRMED,
    SCHEDULED,
    Attendance,
    Course,
    Meeting,
    Registration,
    RosterAudit,
    TrainingSession,
)
from scheduler.validation import Fields

CHECKIN_BEFORE = timedelta(minutes=30)
CHECKIN_AFTER = timedelta(minutes=30)
MAX_MARKS = 2000


@dataclass(frozen=True)
class Mark:
    registration_id: int
    present: bool
    minutes: int | None = None


@dataclass(frozen=True)
class MarkRequest:
    meeting_id: int
    marks: tuple[Mark, ...]
    reason: str | None


@dataclass(frozen=True)
class MeetingFacts:
    id: int
    session_id: int
    starts_at: datetime
    ends_at: datetime
    checkin_code: str

    @property
    def minutes(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds() // 60)


def parse_marks(data: Any) -> MarkRequest:
    """A ``PUT .../attendance`` body; raises ``Invalid`` naming ``marks.N.field`` paths."""
    fields = Fields(data)
    meeting_id = fields.integer("meeting_id", minimum=1, maximum=2**31 - 1)
    reason = fields.text("reason", max_length=2000, required=False, multiline=True)
    raw = fields.data.get("marks")
    marks: list[Mark] = []
    if not isinstance(raw, list) or not raw:
        fields.fail("marks", "must be a non-empty list of {registration_id, present, minutes}")
    elif len(raw) > MAX_MARKS:
        fields.fail("marks", f"at most {MAX_MARKS} marks at once")
    else:
        seen: set[int] = set()
        for index, item in enumerate(raw):
            path = f"marks.{index}"
            if not isinstance(item, dict):
                fields.fail(path, "must be an object")
                continue
            inner = Fields(item)
            registration_id = inner.integer("registration_id", minimum=1, maximum=2**31 - 1)
            present = item.get("present")
            if not isinstance(present, bool):
                inner.fail("present", "must be true or false")
            minutes = inner.integer("minutes", minimum=0, maximum=24 * 60, required=False)
            for name, why in inner.errors.items():
                fields.fail(f"{path}.{name}", why)
            if registration_id is not None and registration_id in seen:
                fields.fail(f"{path}.registration_id", "is marked twice")
            if not inner.errors and registration_id is not None and isinstance(present, bool):
                seen.add(registration_id)
                marks.append(Mark(registration_id, present, minutes))
    fields.done()
    assert meeting_id is not None
    return MarkRequest(meeting_id, tuple(marks), reason or None)


async def _lock_session(conn: AsyncConnection, session_id: int) -> Any:
    row = (
        await conn.execute(
            select(TrainingSession, Course.attendance_threshold)
            .join(Course, Course.id == TrainingSession.course_id)
            .where(TrainingSession.id == session_id)
            .with_for_update(of=TrainingSession)
        )
    ).first()
    if row is None:
        raise NotFound("session", session_id)
    if row.status == CANCELLED:
        raise Gone("the session is cancelled: its roster cannot be marked")
    return row


async def meeting_of(conn: AsyncConnection, session_id: int, meeting_id: int) -> MeetingFacts:
    """A scheduled meeting of this session; raises ``Invalid`` (``meeting_id``) otherwise."""
    row = (
        await conn.execute(
            select(Meeting).where(
                Meeting.id == meeting_id,
                Meeting.session_id == session_id,
                Meeting.status == SCHEDULED,
            )
        )
    ).first()
    if row is None:
        raise Invalid({"meeting_id": "is not a meeting of this session"})
    return MeetingFacts(row.id, row.session_id, row.starts_at, row.ends_at, row.checkin_code)


async def confirmed_people(conn: AsyncConnection, session_id: int) -> list[Any]:
    return list(
        (
            await conn.execute(
                select(
                    Registration.id,
                    Registration.name,
                    Registration.email,
                    Registration.email_key,
                    Registration.attendance,
                    Registration.agency,
                    Registration.post_id,
                    Registration.post_state,
                )
                .where(Registration.session_id == session_id, Registration.status == CONFIRMED)
                .order_by(Registration.name, Registration.id)
            )
        ).all()
    )


async def record(
    db: Database,
    session_id: int,
    request: MarkRequest,
    *,
    actor: str,
    source: str = "manual",
    now: datetime | None = None,
    issuer: Issuer | None = None,
) -> dict[str, Any]:
    """Write marks for one meeting; returns ``{meeting_id, marked, audited}``.

    Raises ``NotFound`` (session), ``Gone`` (cancelled), ``Invalid`` (a meeting of another
    session, a registrant who is not confirmed here, a finalized roster without a reason).
    """
    now = now or utcnow()
    async with db.write() as conn:
        return await _write_marks(
            conn, session_id, request, actor=actor, source=source, now=now, issuer=issuer
        )


async def _write_marks(
    conn: AsyncConnection,
    session_id: int,
    request: MarkRequest,
    *,
    actor: str,
    source: str,
    now: datetime,
    issuer: Issuer | None = None,
) -> dict[str, Any]:
    session = await _lock_session(conn, session_id)
    meeting = await meeting_of(conn, session_id, request.meeting_id)
    finalized = session.finalized_at is not None
    if finalized and not request.reason:
        raise Invalid(
            {"reason": "is required: the roster is finalized, so a change needs a reason"}
        )
    confirmed = {p.id for p in await confirmed_people(conn, session_id)}
    wrong = {
        f"marks.{i}.registration_id": "is not a confirmed registrant of this session"
        for i, mark in enumerate(request.marks)
        if mark.registration_id not in confirmed
    }
    if wrong:
        raise Invalid(wrong)
    ids = [mark.registration_id for mark in request.marks]
    before = {
        row.registration_id: row
        for row in (
            await conn.execute(
                select(Attendance).where(
                    Attendance.meeting_id == meeting.id, Attendance.registration_id.in_(ids)
                )
            )
        ).all()
    }
    await conn.execute(
        delete(Attendance).where(
            Attendance.meeting_id == meeting.id, Attendance.registration_id.in_(ids)
        )
    )
    await conn.execute(
        insert(Attendance),
        [
            {
                "registration_id": mark.registration_id,
                "meeting_id": meeting.id,
                "session_id": session_id,
                "present": mark.present,
                "minutes": mark.minutes,
                "source": source,
                "marked_at": now,
                "marked_by": actor,
            }
            for mark in request.marks
        ],
    )
    audited = 0
    if finalized:
        for mark in request.marks:
            old = before.get(mark.registration_id)
            old_state = None if old is None else {"present": old.present, "minutes": old.minutes}
            new_state = {"present": mark.present, "minutes": mark.minutes}
            if old_state == new_state:
                continue
            await audit(
                conn,
                session_id,
                actor=actor,
                action="attendance",
                registration_id=mark.registration_id,
                meeting_id=meeting.id,
                before=old_state,
                after=new_state,
                reason=request.reason,
                now=now,
            )
            audited += 1
        if audited:
            await completion.recompute_and_sync(
                conn, session_id, actor=actor, reason=request.reason, now=now, issuer=issuer
            )
    return {"meeting_id": meeting.id, "marked": len(request.marks), "audited": audited}


async def audit(
    conn: AsyncConnection,
    session_id: int,
    *,
    actor: str,
    action: str,
    now: datetime,
    registration_id: int | None = None,
    meeting_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    await conn.execute(
        insert(RosterAudit).values(
            session_id=session_id,
            at=now,
            actor=actor,
            action=action,
            registration_id=registration_id,
            meeting_id=meeting_id,
            before=before,
            after=after,
            reason=reason,
        )
    )


async def grid(conn: AsyncConnection, session_id: int) -> dict[tuple[int, int], Any]:
    """Every mark of a session by ``(registration_id, meeting_id)``."""
    rows = (await conn.execute(select(Attendance).where(Attendance.session_id == session_id))).all()
    return {(row.registration_id, row.meeting_id): row for row in rows}


# -- self check-in ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckIn:
    """What the check-in page says: ``status`` is ``marked``, ``already``, ``too_early``,
    ``too_late``, ``unknown`` (no confirmed registrant with that email) or ``finalized``."""

    status: str
    name: str | None = None


async def checkin_meeting(conn: AsyncConnection, code: str) -> Any:
    """The meeting (with its session and course) of a check-in code; ``NotFound`` otherwise."""
    if not code or len(code) > 40:
        raise NotFound("check-in code", "given")
    row = (
        await conn.execute(
            select(
                Meeting.id,
                Meeting.session_id,
                Meeting.starts_at,
                Meeting.ends_at,
                Meeting.status,
                TrainingSession.status.label("session_status"),
                TrainingSession.timezone,
                TrainingSession.finalized_at,
                Course.title.label("course_title"),
            )
            .join(TrainingSession, TrainingSession.id == Meeting.session_id)
            .join(Course, Course.id == TrainingSession.course_id)
            .where(Meeting.checkin_code == code)
        )
    ).first()
    if row is None or row.status != SCHEDULED or row.session_status == CANCELLED:
        raise NotFound("check-in code", "given")
    return row


def window(starts_at: datetime) -> tuple[datetime, datetime]:
    """When check-in is open: from 30 minutes before a meeting's start to 30 minutes after."""
    return starts_at - CHECKIN_BEFORE, starts_at + CHECKIN_AFTER


async def check_in(db: Database, code: str, email: str, *, now: datetime | None = None) -> CheckIn:
    """Mark the confirmed registrant with ``email`` present at the code's meeting.

    Outside the window, for an address with no confirmed registration in this session, or on a
    finalized roster nothing is written and the answer says why. Raises ``NotFound`` (code).
    """
    now = now or utcnow()
    key = email.strip().lower()[:320]
    async with db.write() as conn:
        meeting = await checkin_meeting(conn, code)
        opens, closes = window(meeting.starts_at)
        if now < opens:
            return CheckIn("too_early")
        if now > closes:
            return CheckIn("too_late")
        if meeting.finalized_at is not None:
            return CheckIn("finalized")
        person = (
            await conn.execute(
                select(Registration.id, Registration.name).where(
                    Registration.session_id == meeting.session_id,
                    Registration.email_key == key,
                    Registration.status == CONFIRMED,
                )
            )
        ).first()
        if person is None:
            return CheckIn("unknown")
        existing = (
            await conn.execute(
                select(Attendance.present).where(
                    Attendance.registration_id == person.id, Attendance.meeting_id == meeting.id
                )
            )
        ).first()
        if existing is not None and existing.present:
            return CheckIn("already", person.name)
        request = MarkRequest(meeting.id, (Mark(person.id, True),), None)
        await _write_marks(conn, meeting.session_id, request, actor=key, source="checkin", now=now)
        return CheckIn("marked", person.name)


# -- imported reports -------------------------------------------------------------------------


@dataclass(frozen=True)
class Matched:
    registration_id: int
    name: str
    report_name: str
    email: str | None
    minutes: int
    rows: int
    present: bool
    matched_by: str


@dataclass(frozen=True)
class ImportResult:
    meeting_id: int
    meeting_minutes: int
    threshold: int
    matched: tuple[Matched, ...]
    unmatched: tuple[ReportPerson, ...]


def is_present(minutes: int, meeting_minutes: int, threshold: int) -> bool:
    """Present when the minutes reach ``threshold`` % of the meeting's length."""
    return minutes * 100 >= threshold * meeting_minutes


def match(
    people: Sequence[ReportPerson], registrants: Sequence[Any]
) -> tuple[list[tuple[ReportPerson, Any, str]], list[ReportPerson]]:
    """Pair report people with registrants: by email first, then by a name only one has."""
    by_email = {r.email_key: r for r in registrants}
    by_name: dict[str, list[Any]] = {}
    for registrant in registrants:
        by_name.setdefault(name_key(registrant.name), []).append(registrant)
    pairs: list[tuple[ReportPerson, Any, str]] = []
    unmatched: list[ReportPerson] = []
    taken: set[int] = set()
    for person in people:
        found = by_email.get(person.email or "")
        how = "email"
        if found is None:
            candidates = by_name.get(name_key(person.name), [])
            found = candidates[0] if len(candidates) == 1 else None
            how = "name"
        if found is None or found.id in taken:
            unmatched.append(person)
            continue
        taken.add(found.id)
        pairs.append((person, found, how))
    return pairs, unmatched


async def import_report(
    db: Database,
    session_id: int,
    meeting_id: int,
    platform: str,
    data: bytes,
    *,
    actor: str,
    reason: str | None = None,
    now: datetime | None = None,
    issuer: Issuer | None = None,
) -> ImportResult:
    """Read a Zoom or Teams report and mark the people it matches (summed over rejoins).

    Raises ``Invalid`` (``platform``, ``file``, ``meeting_id``, ``reason``), ``NotFound``,
    ``Gone``; on any error nothing is written.
    """
    people = attendance_reports.read_report(platform, data)
    now = now or utcnow()
    async with db.write() as conn:
        session = await _lock_session(conn, session_id)
        meeting = await meeting_of(conn, session_id, meeting_id)
        pairs, unmatched = match(people, await confirmed_people(conn, session_id))
        threshold = int(session.attendance_threshold)
        matched = tuple(
            Matched(
                registration_id=registrant.id,
                name=registrant.name,
                report_name=person.name,
                email=person.email,
                minutes=person.minutes,
                rows=person.rows,
                present=is_present(person.minutes, meeting.minutes, threshold),
                matched_by=how,
            )
            for person, registrant, how in pairs
        )
        if matched:
            request = MarkRequest(
                meeting.id,
                tuple(Mark(m.registration_id, m.present, m.minutes) for m in matched),
                reason,
            )
            await _write_marks(
                conn, session_id, request, actor=actor, source=platform, now=now, issuer=issuer
            )
        return ImportResult(meeting.id, meeting.minutes, threshold, matched, tuple(unmatched))


def import_json(result: ImportResult) -> dict[str, Any]:
    return {
        "meeting_id": result.meeting_id,
        "meeting_minutes": result.meeting_minutes,
        "threshold_percent": result.threshold,
        "matched": [
            {
                "registration_id": m.registration_id,
                "name": m.name,
                "report_name": m.report_name,
                "email": m.email,
                "minutes": m.minutes,
                "rows": m.rows,
                "present": m.present,
                "matched_by": m.matched_by,
            }
            for m in result.matched
        ],
        "unmatched": [
            {"name": p.name, "email": p.email, "minutes": p.minutes, "rows": p.rows}
            for p in result.unmatched
        ],
    }


async def threshold_of(conn: AsyncConnection, session_id: int) -> int:
    """The course's percent of a virtual meeting needed to be present."""
    value = (
        await conn.execute(
            select(Course.attendance_threshold)
            .join(TrainingSession, TrainingSession.course_id == Course.id)
            .where(TrainingSession.id == session_id)
        )
    ).scalar_one()
    return int(value)


async def provider_of(conn: AsyncConnection, session_id: int) -> str:
    value = (
        await conn.execute(
            select(Course.provider)
            .join(TrainingSession, TrainingSession.course_id == Course.id)
            .where(TrainingSession.id == session_id)
        )
    ).scalar_one()
    return str(value or "")
