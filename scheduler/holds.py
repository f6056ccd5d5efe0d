"""Held seats: an agency keeps N seats of a pool before it knows who will come.

A pool's ``held`` counter is the sum of its active holds' unnamed seats, and invariant 1 reads
``confirmed + held <= capacity`` (a CHECK constraint backs it). Every change here runs as seat
work does in ``booking``: one write transaction that first locks the training session's row,
then changes the counters by conditional UPDATEs:

- creating a hold:  ``held = held + n   WHERE confirmed + held + n <= capacity`` (whole or 409);
- naming into it:   ``held = held - 1, confirmed = confirmed + 1  WHERE held >= 1``;
- releasing it:     ``held = held - remaining``, then the waitlist is promoted in ticket order
  in the same transaction (invariant 3).

Unnamed seats go back automatically at the hold's ``release_at`` (default seven days before the
session starts); coordinators are warned by email two days before (``release_due``/``warn_due``,
woken by the background jobs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox
from notifications.models import utcnow
from scheduler import agencies
from scheduler.booking import (
    RegistrationInput,
    RegistrationResult,
    _confirmed_by_agency,
    _confirmed_rows,
    check_open,
    fill_from_waitlist,
    lock_session,
)
from scheduler.db import Database
from scheduler.errors import Conflict, DuplicateRegistration, Invalid, NotFound
from scheduler.models import (
    ATTENDANCE,
    CANCELLED,
    CONFIRMED,
    HOLD_ACTIVE,
    HOLD_RELEASED,
    Account,
    AccountAgency,
    Agency,
    Hold,
    Registration,
    SeatPool,
)
from scheduler.registration_sql import CoreTx
from scheduler.validation import Fields, parse_local_datetime

DEFAULT_RELEASE_BEFORE = timedelta(days=7)
WARN_BEFORE = timedelta(days=2)
MAX_HOLD = 1000

May = Callable[[int | None], bool]


def _everyone(agency_id: int | None) -> bool:
    return True


@dataclass(frozen=True)
class HoldView:
    id: int
    session_id: int
    agency_id: int
    attendance: str
    seats: int
    remaining: int
    named: int
    status: str
    release_at: datetime
    warned_at: datetime | None
    released_at: datetime | None
    timezone: str


class NotEnoughSeats(Conflict):
    code = "not_enough_seats"

    def __init__(self, wanted: int, free: int) -> None:
        super().__init__(
            f"the pool has {free} free seat{'s' if free != 1 else ''}; "
            f"a hold of {wanted} does not fit",
            {"seats": f"at most {free}"},
        )


class AgencyCapReached(Conflict):
    code = "agency_cap"

    def __init__(self, cap: int, has: int) -> None:
        super().__init__(
            f"the session allows {cap} seats per agency and the agency has {has}",
            {"seats": f"at most {max(cap - has, 0)}"},
        )


async def get_hold(conn: AsyncConnection, hold_id: int) -> HoldView:
    """A hold with how many were named into it; raises ``NotFound``."""
    from scheduler.models import TrainingSession

    named = (
        select(func.count())
        .where(Registration.hold_id == Hold.id, Registration.status != CANCELLED)
        .scalar_subquery()
    )
    row = (
        await conn.execute(
            select(Hold, named.label("named"), TrainingSession.timezone)
            .join(TrainingSession, TrainingSession.id == Hold.session_id)
            .where(Hold.id == hold_id)
        )
    ).first()
    if row is None:
        raise NotFound("hold", hold_id)
    return HoldView(
        row.id,
        row.session_id,
        row.agency_id,
        row.attendance,
        row.seats,
        row.remaining,
        int(row.named),
        row.status,
        row.release_at,
        row.warned_at,
        row.released_at,
        row.timezone,
    )


async def agency_holds(conn: AsyncConnection, agency_ids: list[int]) -> list[HoldView]:
    ids = (
        await conn.scalars(
            select(Hold.id).where(Hold.agency_id.in_(agency_ids)).order_by(Hold.release_at)
        )
    ).all()
    return [await get_hold(conn, i) for i in ids]


async def create_hold(
    db: Database, session_id: int, data: Any, *, may: May = _everyone, now: datetime | None = None
) -> HoldView:
    """Hold ``seats`` of a pool for an agency, whole or not at all.

    Raises ``Invalid`` (bad body, unknown agency, release after the start or in the past),
    ``NotFound`` (session; an agency the caller may not act for), ``Gone`` (cancelled or
    closed), ``NotEnoughSeats`` and ``AgencyCapReached`` (409).
    """
    now = now or utcnow()
    fields = Fields(data)
    agency_id = fields.integer("agency_id", minimum=1, maximum=2**31 - 1)
    attendance = fields.choice("attendance", ATTENDANCE)
    seats = fields.integer("seats", minimum=1, maximum=MAX_HOLD)
    raw_release = fields.text("release_at", max_length=40, required=False)
    fields.done()
    assert agency_id is not None and attendance is not None and seats is not None
    if not may(agency_id):
        raise NotFound("agency", agency_id)
    async with db.write() as conn:
        session = await lock_session(conn, session_id)
        agency = await agencies.resolve(conn, agency_id)
        if not may(agency.id):
            raise NotFound("agency", agency_id)
        check_open(session, now)
        release_at = _release_at(raw_release, session, now)
        pool = (
            await conn.execute(
                select(SeatPool).where(
                    SeatPool.session_id == session_id, SeatPool.attendance == attendance
                )
            )
        ).first()
        if pool is None:
            raise Invalid({"attendance": f"this session has no {attendance} seats"})
        key = agencies.agency_key(agency.id)
        if session.max_per_agency is not None:
            has = (await _confirmed_by_agency(conn, session_id)).get(key, 0)
            if has + seats > session.max_per_agency:
                raise AgencyCapReached(session.max_per_agency, has)
        taken = await conn.execute(
            update(SeatPool)
            .where(
                SeatPool.id == pool.id,
                SeatPool.confirmed + SeatPool.held + seats <= SeatPool.capacity,
            )
            .values(held=SeatPool.held + seats)
            .returning(SeatPool.held)
        )
        if taken.first() is None:
            raise NotEnoughSeats(seats, max(pool.capacity - pool.confirmed - pool.held, 0))
        hold_id = (
            await conn.execute(
                insert(Hold)
                .values(
                    session_id=session_id,
                    pool_id=pool.id,
                    agency_id=agency.id,
                    agency_key=key,
                    attendance=attendance,
                    seats=seats,
                    remaining=seats,
                    status=HOLD_ACTIVE,
                    release_at=release_at,
                    created_at=now,
                    updated_at=now,
                )
                .returning(Hold.id)
            )
        ).scalar_one()
        return await get_hold(conn, int(hold_id))


def _release_at(raw: str | None, session: Any, now: datetime) -> datetime:
    """When unnamed seats go back: as given (wall-clock in the session's zone or with an
    offset), else seven days before the start, or halfway to a start nearer than that."""
    if raw is None:
        starts: datetime = session.starts_at
        default = starts - DEFAULT_RELEASE_BEFORE
        return default if default > now else now + (starts - now) / 2
    from zoneinfo import ZoneInfo

    fields = Fields({})
    release_at = parse_local_datetime(raw, ZoneInfo(session.timezone), fields, "release_at")
    fields.done()
    assert release_at is not None
    if release_at > session.starts_at:
        raise Invalid({"release_at": "must not be after the session starts"})
    if release_at <= now:
        raise Invalid({"release_at": "must be in the future"})
    return release_at


async def release(
    db: Database,
    hold_id: int,
    *,
    reminder_offsets: tuple[timedelta, ...],
    may: May = _everyone,
    now: datetime | None = None,
) -> HoldView:
    """Give a hold's unnamed seats back and promote the waitlist in the same transaction.

    Releasing twice is harmless. Raises ``NotFound`` (also for a hold of an agency the caller
    may not act for).
    """
    now = now or utcnow()
    async with db.write() as conn:
        hold = await get_hold(conn, hold_id)
        if not may(hold.agency_id):
            raise NotFound("hold", hold_id)
        session = await lock_session(conn, hold.session_id)
        await _release_locked(conn, hold_id, session, reminder_offsets, now)
        return await get_hold(conn, hold_id)


async def _release_locked(
    conn: AsyncConnection,
    hold_id: int,
    session: Any,
    reminder_offsets: tuple[timedelta, ...],
    now: datetime,
    *,
    due_only: bool = False,
) -> bool:
    """With the session locked: release the hold if it is still active (and due)."""
    hold = (await conn.execute(select(Hold).where(Hold.id == hold_id))).first()
    if hold is None or hold.status != HOLD_ACTIVE or (due_only and hold.release_at > now):
        return False
    if hold.remaining:
        await conn.execute(
            update(SeatPool)
            .where(SeatPool.id == hold.pool_id)
            .values(held=SeatPool.held - hold.remaining)
        )
    await conn.execute(
        update(Hold)
        .where(Hold.id == hold_id)
        .values(status=HOLD_RELEASED, remaining=0, released_at=now, updated_at=now)
    )
    if hold.remaining:
        await fill_from_waitlist(conn, session, reminder_offsets=reminder_offsets, now=now)
    return True


async def name_into(
    db: Database,
    hold_id: int,
    data: Any,
    *,
    reminder_offsets: tuple[timedelta, ...],
    may: May = _everyone,
    now: datetime | None = None,
) -> RegistrationResult:
    """Name a person into one of the hold's unnamed seats: confirmed at once.

    Raises ``Invalid``, ``NotFound``, ``Gone``, ``DuplicateRegistration`` and ``Conflict``
    (the hold has no unnamed seat left, or was released).
    """
    now = now or utcnow()
    async with db.write() as conn:
        hold = await get_hold(conn, hold_id)
        if not may(hold.agency_id):
            raise NotFound("hold", hold_id)
        body = {**data, "agency_id": hold.agency_id} if isinstance(data, dict) else data
        person = await agencies.complete(
            conn, RegistrationInput.parse(body, attendance=hold.attendance)
        )
        session = await lock_session(conn, hold.session_id)
        check_open(session, now)
        return await _name_locked(conn, hold_id, person, session, reminder_offsets, now)


async def _name_locked(
    conn: AsyncConnection,
    hold_id: int,
    person: RegistrationInput,
    session: Any,
    reminder_offsets: tuple[timedelta, ...],
    now: datetime,
) -> RegistrationResult:
    import secrets

    hold = (await conn.execute(select(Hold).where(Hold.id == hold_id))).one()
    if hold.status != HOLD_ACTIVE or hold.remaining < 1:
        raise Conflict("this hold has no unnamed seat left", {"hold": "no unnamed seat"})
    email_key = person.email.lower()
    taken = (
        await conn.execute(
            select(Registration.id).where(
                Registration.session_id == hold.session_id,
                Registration.email_key == email_key,
                Registration.status != CANCELLED,
            )
        )
    ).first()
    if taken is not None:
        raise DuplicateRegistration(person.email)
    moved = await conn.execute(
        update(SeatPool)
        .where(SeatPool.id == hold.pool_id, SeatPool.held >= 1)
        .values(held=SeatPool.held - 1, confirmed=SeatPool.confirmed + 1)
        .returning(SeatPool.id)
    )
    if moved.first() is None:  # pragma: no cover - the counters agree under the lock
        raise Conflict("this hold has no unnamed seat left", {"hold": "no unnamed seat"})
    await conn.execute(
        update(Hold).where(Hold.id == hold_id).values(remaining=Hold.remaining - 1, updated_at=now)
    )
    token = secrets.token_urlsafe(24)
    registration_id = await CoreTx(conn).insert_registration(
        {
            "session_id": hold.session_id,
            "pool_id": hold.pool_id,
            "attendance": hold.attendance,
            "name": person.name,
            "email": person.email,
            "email_key": email_key,
            "agency": person.agency,
            "agency_key": hold.agency_key,
            "agency_id": hold.agency_id,
            "rank": person.rank,
            "post_id": person.post_id,
            "post_state": person.post_state,
            "hold_id": hold_id,
            "status": CONFIRMED,
            "waitlist_seq": None,
            "token": token,
            "created_at": now,
            "updated_at": now,
            "confirmed_at": now,
            "sequence": 0,
        }
    )
    await outbox.enqueue_many(
        conn,
        _confirmed_rows(
            "confirmation", registration_id, person.email, session, reminder_offsets, now
        ),
    )
    return RegistrationResult(
        registration_id, hold.session_id, CONFIRMED, hold.attendance, None, token
    )


async def release_for_cancelled_session(
    conn: AsyncConnection, session_id: int, now: datetime, *, reason: str = ""
) -> list[int]:
    """With a session locked while it is being cancelled: end its active holds, giving their
    unnamed seats back, and tell each agency's coordinators. Nobody is promoted (the session
    takes no one any more). Returns the released holds' ids."""
    active = (
        await conn.execute(
            select(Hold.id, Hold.pool_id, Hold.agency_id, Hold.remaining)
            .where(Hold.session_id == session_id, Hold.status == HOLD_ACTIVE)
            .order_by(Hold.id)
        )
    ).all()
    for hold in active:
        if hold.remaining:
            await conn.execute(
                update(SeatPool)
                .where(SeatPool.id == hold.pool_id)
                .values(held=SeatPool.held - hold.remaining)
            )
        await conn.execute(
            update(Hold)
            .where(Hold.id == hold.id)
            .values(status=HOLD_RELEASED, remaining=0, released_at=now, updated_at=now)
        )
        await _tell_coordinators(conn, hold, "hold_released", session_id, reason=reason)
    return [hold.id for hold in active]


async def follow_reschedule(
    conn: AsyncConnection,
    session_id: int,
    old_start: datetime,
    new_start: datetime,
    now: datetime | None = None,
) -> list[int]:
    """With a session locked while its start moves: each active hold's release time moves by
    as much, so the agency keeps the same lead time, never after the new start; one that would
    fall in the past goes halfway to the new start instead (as a new hold's default does). A
    hold whose release moved later may be warned again. Returns the holds changed."""
    now = now or utcnow()
    delta = new_start - old_start
    active = (
        await conn.execute(
            select(Hold.id, Hold.release_at, Hold.warned_at).where(
                Hold.session_id == session_id, Hold.status == HOLD_ACTIVE
            )
        )
    ).all()
    for hold in active:
        release_at = min(hold.release_at + delta, new_start)
        if release_at <= now < new_start:
            release_at = now + (new_start - now) / 2
        values: dict[str, Any] = {"release_at": release_at}
        if release_at > hold.release_at:
            values["warned_at"] = None
        await conn.execute(update(Hold).where(Hold.id == hold.id).values(**values))
    return [hold.id for hold in active]


@dataclass(frozen=True)
class HoldRow:
    """A hold as the admin's list shows it: with its agency, course and session start."""

    hold: HoldView
    agency: str
    course_title: str
    starts_at: datetime


async def listing(
    conn: AsyncConnection,
    *,
    session_id: int | None = None,
    agency_id: int | None = None,
    active_only: bool = False,
    limit: int = 200,
) -> list[HoldRow]:
    """Holds of one session and/or one agency (all when neither is given), soonest session
    first."""
    from scheduler.models import Course, TrainingSession

    stmt = (
        select(Hold.id, Agency.name, Course.title, TrainingSession.starts_at)
        .join(Agency, Agency.id == Hold.agency_id)
        .join(TrainingSession, TrainingSession.id == Hold.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
    )
    if session_id is not None:
        stmt = stmt.where(Hold.session_id == session_id)
    if agency_id is not None:
        stmt = stmt.where(Hold.agency_id == agency_id)
    if active_only:
        stmt = stmt.where(Hold.status == HOLD_ACTIVE)
    rows = (
        await conn.execute(stmt.order_by(TrainingSession.starts_at, Hold.id).limit(limit))
    ).all()
    return [HoldRow(await get_hold(conn, r.id), r.name, r.title, r.starts_at) for r in rows]


# -- the background jobs' side ---------------------------------------------------------------


async def release_due(
    db: Database, *, reminder_offsets: tuple[timedelta, ...], now: datetime | None = None
) -> list[int]:
    """Release every active hold whose ``release_at`` has come; returns their ids.

    Each hold is released in its own transaction under its session's lock; a second process
    doing the same finds it released and leaves it.
    """
    now = now or utcnow()
    async with db.read() as conn:
        due = (
            await conn.execute(
                select(Hold.id, Hold.session_id)
                .where(Hold.status == HOLD_ACTIVE, Hold.release_at <= now)
                .order_by(Hold.release_at, Hold.id)
                .limit(200)
            )
        ).all()
    released: list[int] = []
    for hold_id, session_id in due:
        async with db.write() as conn:
            session = await lock_session(conn, session_id)
            if await _release_locked(conn, hold_id, session, reminder_offsets, now, due_only=True):
                released.append(hold_id)
    return released


async def warn_due(db: Database, *, now: datetime | None = None) -> list[int]:
    """Email the agency's coordinators once, two days before a hold with unnamed seats is
    released; returns the holds warned about. The conditional UPDATE of ``warned_at`` makes
    the warning go out once however many processes run this."""
    now = now or utcnow()
    warned: list[int] = []
    async with db.write() as conn:
        due = (
            await conn.execute(
                update(Hold)
                .where(
                    Hold.status == HOLD_ACTIVE,
                    Hold.warned_at.is_(None),
                    Hold.remaining > 0,
                    Hold.release_at <= now + WARN_BEFORE,
                    Hold.release_at > now,
                )
                .values(warned_at=now)
                .returning(
                    Hold.id, Hold.session_id, Hold.agency_id, Hold.remaining, Hold.release_at
                )
            )
        ).all()
        for hold in due:
            await _tell_coordinators(
                conn,
                hold,
                "hold_release_warning",
                hold.session_id,
                release_at=hold.release_at.isoformat(),
            )
            warned.append(hold.id)
    return warned


async def _tell_coordinators(
    conn: AsyncConnection, hold: Any, kind: str, session_id: int, **payload: Any
) -> None:
    """Email ``kind`` about ``hold`` (its id, agency name and unnamed seats, and ``payload``)
    to each active coordinator of its agency."""
    name = (await conn.execute(select(Agency.name).where(Agency.id == hold.agency_id))).scalar_one()
    await outbox.enqueue_many(
        conn,
        [
            {
                "kind": kind,
                "recipient": email,
                "session_id": session_id,
                "payload": {
                    "hold_id": hold.id,
                    "agency": name,
                    "seats": hold.remaining,
                    **payload,
                },
            }
            for email in await coordinator_emails(conn, hold.agency_id)
        ],
    )


async def coordinator_emails(conn: AsyncConnection, agency_id: int) -> list[str]:
    """The addresses of an agency's active coordinators."""
    rows = await conn.scalars(
        select(Account.email)
        .join(AccountAgency, AccountAgency.account_id == Account.id)
        .where(
            AccountAgency.agency_id == agency_id,
            Account.status == "active",
            Account.role == "coordinator",
        )
        .order_by(Account.email)
    )
    return list(rows.all())


def hold_json(hold: HoldView) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(hold.timezone)
    return {
        "id": hold.id,
        "session_id": hold.session_id,
        "agency_id": hold.agency_id,
        "attendance": hold.attendance,
        "seats": hold.seats,
        "remaining": hold.remaining,
        "named": hold.named,
        "status": hold.status,
        "release_at": hold.release_at.astimezone(zone).isoformat(),
        "released_at": hold.released_at.astimezone(zone).isoformat() if hold.released_at else None,
        "timezone": hold.timezone,
    }
