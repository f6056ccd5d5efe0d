"""Courses and training sessions: create, read, reschedule, change capacity, cancel.

Reads return plain dataclasses (``CourseView``, ``SessionView``) that the API, the pages and the
calendar feeds all render from, so seat counts are computed in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox, reminders
from notifications.models import utcnow
from scheduler.booking import fill_from_waitlist, lock_session
from scheduler.db import Database
from scheduler.errors import AlreadyExists, CapacityBelowConfirmed, Conflict, Invalid, NotFound
from scheduler.models import (
    CANCELLED,
    CONFIRMED,
    DELIVERY,
    MODES,
    WAITLISTED,
    Course,
    Registration,
    SeatPool,
    TrainingSession,
)
from scheduler.validation import Fields

POOLS_OF_MODE = {
    "in_person": ("in_person",),
    "virtual": ("virtual",),
    "hybrid": ("in_person", "virtual"),
}
VENUE_FIELDS = ("name", "address", "city", "state", "postal_code")
VENUE_LIMITS = {"name": 200, "address": 300, "city": 120, "state": 40, "postal_code": 20}


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

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def pool(self, attendance: str) -> PoolView | None:
        return next((p for p in self.pools if p.attendance == attendance), None)

    def is_open(self, now: datetime) -> bool:
        closes = self.registration_closes_at or self.starts_at
        return self.status == "scheduled" and now < closes and now < self.starts_at


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
    )


def parse_course(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validate a course body; raises ``Invalid``. With ``partial`` only given fields count."""
    fields = Fields(data)
    values: dict[str, Any] = {}

    def want(name: str) -> bool:
        return not partial or name in fields.data

    if want("slug") and not partial:
        values["slug"] = fields.slug("slug")
    if want("title"):
        values["title"] = fields.text("title", max_length=200)
    if want("description"):
        values["description"] = fields.text(
            "description", max_length=10_000, required=False, multiline=True, default=""
        )
    if want("audience"):
        values["audience"] = fields.text("audience", max_length=300, required=False, default="")
    if want("provider"):
        values["provider"] = fields.text("provider", max_length=200, required=False, default="")
    if want("delivery"):
        raw = fields.data.get("delivery", ["in_person", "virtual"])
        if isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(raw, list) or not raw or any(d not in DELIVERY for d in raw):
            fields.fail("delivery", f"must be a list drawn from {', '.join(DELIVERY)}")
        else:
            values["delivery"] = ",".join(d for d in DELIVERY if d in raw)
    if want("online_url"):
        values["online_url"] = fields.url("online_url")
    fields.done()
    if values.get("delivery") == "online" and not values.get("online_url") and not partial:
        raise Invalid({"online_url": "a self-paced online course needs its link"})
    return values


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


async def list_courses(conn: AsyncConnection) -> list[CourseView]:
    rows = (await conn.execute(select(Course).order_by(Course.title))).all()
    return [_course_view(row) for row in rows]


async def get_course(conn: AsyncConnection, slug: str) -> CourseView:
    """The course with ``slug``; raises ``NotFound``."""
    row = (await conn.execute(select(Course).where(Course.slug == slug))).first()
    if row is None:
        raise NotFound("course", slug)
    return _course_view(row)


# -- sessions ------------------------------------------------------------------------------


def parse_session(data: Any, *, current: SessionView | None = None) -> dict[str, Any]:
    """Validate a session body into column values and pool capacities; raises ``Invalid``.

    With ``current`` the body is a PATCH: absent fields keep their value, and times given
    without a time zone are read in the session's current zone.
    """
    fields = Fields(data)
    given = fields.data
    values: dict[str, Any] = {}
    if current is None or "timezone" in given:
        tz = fields.timezone("timezone")
        if tz is not None:
            values["timezone"] = tz.key
    else:
        tz = current.zone
    for name in ("starts_at", "ends_at"):
        if current is None or name in given:
            values[name] = fields.local_datetime(name, tz)
    if current is not None and "timezone" in given and tz is not None:
        # A new zone with unchanged wall-clock times moves the instants.
        for name in ("starts_at", "ends_at"):
            if name not in given:
                wall = getattr(current, name).astimezone(current.zone).replace(tzinfo=None)
                values[name] = wall.replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))
    if current is None or "registration_closes_at" in given:
        values["registration_closes_at"] = fields.local_datetime(
            "registration_closes_at", tz, required=False
        )
    if current is None or "mode" in given:
        values["mode"] = fields.choice("mode", MODES)
    mode = values.get("mode") or (current.mode if current else None)
    if current is None or "max_per_agency" in given:
        values["max_per_agency"] = fields.integer(
            "max_per_agency", minimum=1, maximum=10_000, required=False
        )
    if "venue" in given and given["venue"] is not None:
        venue = given["venue"]
        if not isinstance(venue, dict):
            fields.fail("venue", "must be an object with name, address, city, state, postal_code")
        else:
            venue_fields = Fields(venue)
            for key in VENUE_FIELDS:
                if current is None or key in venue:
                    values[f"venue_{key}"] = venue_fields.text(
                        key, max_length=VENUE_LIMITS[key], required=False
                    )
            for key, why in venue_fields.errors.items():
                fields.fail(f"venue.{key}", why)
    if current is None or "join_url" in given:
        values["join_url"] = fields.url("join_url")
    if current is None or "platform" in given:
        values["platform"] = fields.text("platform", max_length=80, required=False)

    capacities: dict[str, int] = {}
    if mode in POOLS_OF_MODE:
        offered = POOLS_OF_MODE[mode]
        for attendance in ("in_person", "virtual"):
            name = f"{attendance}_capacity"
            if attendance in offered:
                needed = current is None or current.pool(attendance) is None
                if needed or name in given:
                    capacity = fields.integer(name, minimum=0, maximum=100_000)
                    if capacity is not None:
                        capacities[attendance] = capacity
            elif given.get(name) not in (None, 0):
                fields.fail(name, f"a {mode} session has no {attendance.replace('_', '-')} seats")
    fields.done()

    starts = values.get("starts_at") or (current.starts_at if current else None)
    ends = values.get("ends_at") or (current.ends_at if current else None)
    if starts and ends and ends <= starts:
        raise Invalid({"ends_at": "must be after starts_at"})
    if starts and ends and ends - starts > timedelta(days=14):
        raise Invalid({"ends_at": "a session lasts at most 14 days"})
    closes = values.get("registration_closes_at")
    if closes and starts and closes > starts:
        raise Invalid({"registration_closes_at": "must not be after starts_at"})
    venue_name = values.get("venue_name") or (current.venue_name if current else None)
    if mode in ("in_person", "hybrid") and not venue_name:
        raise Invalid({"venue.name": "an in-person or hybrid session needs a venue"})
    join_url = (
        values.get("join_url") if "join_url" in values else (current.join_url if current else None)
    )
    if mode in ("virtual", "hybrid") and not join_url:
        raise Invalid({"join_url": "a virtual or hybrid session needs its join URL"})
    return {"values": values, "capacities": capacities}


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
                pool.confirmed or pool.waitlisted or pool.held
            ):
                raise Conflict(
                    f"the {pool.attendance} pool still has registrations",
                    {"mode": "move or cancel those registrations first"},
                )
        for attendance, capacity in parsed["capacities"].items():
            existing = current.pool(attendance)
            if existing is not None and capacity < existing.confirmed + existing.held:
                raise CapacityBelowConfirmed(
                    attendance, capacity, existing.confirmed, held=existing.held
                )

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
    include_cancelled: bool = True,
) -> list[SessionView]:
    """Sessions with their pools and live seat counts, in start order."""
    stmt = (
        select(
            TrainingSession, Course.slug.label("course_slug"), Course.title.label("course_title")
        )
        .join(Course, Course.id == TrainingSession.course_id)
        .order_by(TrainingSession.starts_at, TrainingSession.id)
    )
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
    return [session_view(row, pools.get(row.id, ())) for row in rows]


def session_view(row: Any, pools: Sequence[PoolView] = ()) -> SessionView:
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
    """Every registration of a session, confirmed first, then each waitlist in order."""
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
        if row.status == WAITLISTED:
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
