"""Register, cancel, promote from the waitlist: invariants 1-3 live here.

A capacity change is a catalog command (``catalog.commands``); it fills freed seats through
``fill_from_waitlist`` here.

Every function that changes seats runs inside one ``Database.write()`` transaction that first
locks the training session's row (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already holds the write lock). All seat work for one session is therefore serialised, which
makes first-come-first-served waitlist order and the per-agency cap exact. The seat itself is
taken by a conditional ``UPDATE ... WHERE confirmed < capacity``, and a CHECK constraint backs
it, so a bug above can fail a request but never oversell a pool.

Emails that a change causes are written to the outbox on the same connection (invariant 4).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox, reminders
from notifications.models import utcnow
from scheduler.db import Database
from scheduler.errors import (
    Conflict,
    DuplicateRegistration,
    Gone,
    Invalid,
    NotFound,
    SchedulerError,
)
from scheduler.models import (
    ATTENDANCE,
    CANCELLED,
    CONFIRMED,
    HOLD_ACTIVE,
    WAITLISTED,
    Hold,
    Registration,
    SeatPool,
    TrainingSession,
    open_for_registration,
    shown_status,
)
from scheduler.registration_sql import (
    LOCK_SESSION,
    AsyncpgTx,
    CoreTx,
    RegisterTx,
)
from scheduler.validation import Fields, state_code

_POST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,39}$")


@dataclass(frozen=True)
class RegistrationInput:
    name: str
    email: str
    agency: str
    attendance: str
    rank: str | None = None
    # The directory's agency; ``agencies.complete`` fills ``agency`` with its name.
    agency_id: int | None = None
    post_id: str | None = None
    post_state: str | None = None

    @classmethod
    def parse(cls, data: Any, *, attendance: str | None = None) -> RegistrationInput:
        """Validate a registration body; raises ``Invalid`` naming every bad field.

        ``agency`` (free text) may be left out when ``agency_id`` names the directory's
        agency; ``attendance`` given here (a batch's or a hold's) overrides the body's.
        """
        fields = Fields(data)
        name = fields.text("name", max_length=200)
        email = fields.email("email")
        agency_id = fields.integer("agency_id", minimum=1, maximum=2**31 - 1, required=False)
        agency = fields.text("agency", max_length=200, required=agency_id is None)
        if attendance is None:
            attendance = fields.choice("attendance", ATTENDANCE)
        rank = fields.text("rank", max_length=120, required=False)
        post_id = fields.text("post_id", max_length=40, required=False)
        if post_id is not None and not _POST_ID.match(post_id):
            fields.fail("post_id", "use letters, digits, spaces, dots, slashes and hyphens")
        post_state = state_code(fields, "post_state", required=False)
        fields.done()
        assert name and email and attendance and (agency or agency_id)
        return cls(
            name=name,
            email=email,
            agency=agency or "",
            attendance=attendance,
            rank=rank,
            agency_id=agency_id,
            post_id=post_id,
            post_state=post_state,
        )

    @property
    def agency_key(self) -> str:
        """What the per-agency cap counts by: the directory's agency, else the name's words."""
        if self.agency_id is not None:
            return f"id:{self.agency_id}"
        return " ".join(self.agency.lower().split())


@dataclass(frozen=True)
class RegistrationResult:
    """What a registration attempt or a lookup by token came to."""

    id: int
    session_id: int
    status: str
    attendance: str
    waitlist_position: int | None
    token: str
    # The session's row as this change saw it under its lock (register only), with the course's
    # slug and title: enough to describe the session without reading it again.
    session: Any = field(default=None, repr=False, compare=False)
    # Who got a seat because of this change (cancel only), in the order they were promoted.
    promoted: tuple[int, ...] = ()


async def lock_session(conn: AsyncConnection, session_id: int) -> Row[*tuple[Any, ...]]:
    """Lock and return a training session's row; raises ``NotFound``."""
    row = (await conn.execute(LOCK_SESSION, {"session_id": session_id})).first()
    if row is None:
        raise NotFound("session", session_id)
    return row


def check_open(session: Any, now: datetime) -> None:
    """Raise ``Gone`` when a session takes no more registrations."""
    if session.status == CANCELLED:
        raise Gone("this session was cancelled")
    if not open_for_registration(session, now):
        raise Gone("registration for this session has closed")


async def register(
    db: Database,
    session_id: int,
    person: RegistrationInput,
    *,
    reminder_offsets: tuple[timedelta, ...],
    now: datetime | None = None,
) -> RegistrationResult:
    """Give ``person`` a seat in the pool they chose, or a place on its waitlist.

    Raises ``NotFound`` (no such session), ``Gone`` (cancelled or closed), ``Invalid`` (the
    session has no pool for that attendance) and ``DuplicateRegistration``.
    """
    now = now or utcnow()
    if db.is_sqlite:
        async with db.write() as conn:
            return await _register(CoreTx(conn), session_id, person, reminder_offsets, now)
    # PostgreSQL: the same steps straight on asyncpg, the write as one statement
    # (scheduler/registration_sql.py).
    async with db.driver_write() as tx:
        return await _register(AsyncpgTx(tx), session_id, person, reminder_offsets, now)


def agency_key_of(agency: str) -> str:
    """The agency's name as the per-agency cap compares it: lower case, spaces collapsed."""
    return " ".join(agency.lower().split())


def _offered_only(session: Any) -> str:
    offered = "in person" if session.mode == "in_person" else "virtually"
    return f"this session is offered only {offered}"


async def _register(
    tx: RegisterTx,
    session_id: int,
    person: RegistrationInput,
    reminder_offsets: tuple[timedelta, ...],
    now: datetime,
) -> RegistrationResult:
    email_key = person.email.lower()
    agency_key = person.agency_key
    session = await tx.lock_session(session_id)
    if session is None:
        raise NotFound("session", session_id)
    check_open(session, now)
    pool = await tx.pool_state(session_id, person.attendance, email_key, agency_key)
    if pool is None:
        raise Invalid({"attendance": _offered_only(session)})
    if pool.taken is not None:
        raise DuplicateRegistration(person.email)

    agency_full = session.max_per_agency is not None and pool.agency_held >= session.max_per_agency
    # Held seats are not free. The write is still the conditional UPDATE, so the seat count is
    # guarded where it changes; if it refuses, the person is waitlisted instead.
    free = pool.confirmed + pool.held < pool.capacity
    token = secrets.token_urlsafe(24)
    values = {
        "session_id": session_id,
        "attendance": person.attendance,
        "name": person.name,
        "email": person.email,
        "email_key": email_key,
        "agency": person.agency,
        "agency_key": agency_key,
        "rank": person.rank,
        "agency_id": person.agency_id,
        "post_id": person.post_id,
        "post_state": person.post_state,
        "hold_id": None,
        "token": token,
        "created_at": now,
        "updated_at": now,
        "sequence": 0,
    }
    booked = None
    if not agency_full and free:
        status, position = CONFIRMED, None
        rows = _confirmed_rows("confirmation", None, person.email, session, reminder_offsets, now)
        booked = await tx.book(
            pool.id, True, {**values, "status": status, "confirmed_at": now}, rows
        )
    if booked is None:
        # Every ticket already drawn is lower than this one, so the place is simply one behind
        # everyone waiting (the same count waitlist_position makes).
        status, position = WAITLISTED, int(pool.waiting) + 1
        rows = [
            {
                "kind": "waitlisted",
                "recipient": person.email,
                "session_id": session_id,
                "payload": {"position": position},
            }
        ]
        booked = await tx.book(
            pool.id, False, {**values, "status": status, "confirmed_at": None}, rows
        )
        assert booked is not None  # a ticket is always there to draw
    registration_id = booked[0]
    return RegistrationResult(
        registration_id, session_id, status, person.attendance, position, token, session
    )


async def waitlist_position(conn: AsyncConnection, pool_id: int, waitlist_seq: int | None) -> int:
    """1-based place on a pool's waitlist; always gapless because it is counted, not stored."""
    if waitlist_seq is None:
        return 0
    ahead = (
        await conn.execute(
            select(func.count()).where(
                Registration.pool_id == pool_id,
                Registration.status == WAITLISTED,
                Registration.waitlist_seq <= waitlist_seq,
            )
        )
    ).scalar_one()
    return int(ahead)


def _confirmed_rows(
    kind: str,
    registration_id: int | None,
    email: str,
    session: Any,
    reminder_offsets: tuple[timedelta, ...],
    now: datetime,
) -> list[dict[str, Any]]:
    """The news of a seat and its reminders, written in one statement."""
    return [
        {
            "kind": kind,
            "recipient": email,
            "registration_id": registration_id,
            "session_id": session.id,
        },
        *reminders.reminder_rows(
            recipient=email,
            registration_id=registration_id,
            session_id=session.id,
            starts_at=session.starts_at,
            offsets=reminder_offsets,
            now=now,
        ),
    ]


async def fill_from_waitlist(
    conn: AsyncConnection,
    session: Row[Any],
    *,
    reminder_offsets: tuple[timedelta, ...],
    now: datetime,
) -> list[int]:
    """Promote, in ticket order, every waitlisted person a free seat can take (invariant 3).

    Runs inside the caller's transaction with the session row locked. A person whose agency is
    at its cap is passed over, not skipped for good: they keep their place for the next seat.
    Returns the promoted registration ids.
    """
    if session.status == CANCELLED:
        return []
    promoted: list[int] = []
    pools = (
        await conn.execute(
            select(SeatPool.id, SeatPool.capacity, SeatPool.confirmed, SeatPool.held)
            .where(SeatPool.session_id == session.id)
            .order_by(SeatPool.id)
        )
    ).all()
    agency_counts: dict[str, int] | None = None
    for pool in pools:
        free = pool.capacity - pool.confirmed - pool.held
        if free <= 0:
            continue
        waiting = (
            await conn.execute(
                select(Registration.id, Registration.email, Registration.agency_key)
                .where(Registration.pool_id == pool.id, Registration.status == WAITLISTED)
                .order_by(Registration.waitlist_seq)
            )
        ).all()
        if session.max_per_agency is not None and agency_counts is None:
            agency_counts = await _confirmed_by_agency(conn, session.id)
        for person in waiting:
            if free <= 0:
                break
            if agency_counts is not None:
                if agency_counts.get(person.agency_key, 0) >= session.max_per_agency:
                    continue
                agency_counts[person.agency_key] = agency_counts.get(person.agency_key, 0) + 1
            await _promote(conn, pool.id, person.id)
            await outbox.enqueue_many(
                conn,
                _confirmed_rows(
                    "promoted", person.id, person.email, session, reminder_offsets, now
                ),
            )
            promoted.append(person.id)
            free -= 1
    return promoted


async def _confirmed_by_agency(conn: AsyncConnection, session_id: int) -> dict[str, int]:
    """Seats each agency has in the session: confirmed plus held unnamed (the cap counts both)."""
    rows = await conn.execute(
        select(Registration.agency_key, func.count())
        .where(Registration.session_id == session_id, Registration.status == CONFIRMED)
        .group_by(Registration.agency_key)
    )
    counts = {agency: int(count) for agency, count in rows.all()}
    held = await conn.execute(
        select(Hold.agency_key, func.sum(Hold.remaining))
        .where(Hold.session_id == session_id, Hold.status == HOLD_ACTIVE)
        .group_by(Hold.agency_key)
    )
    for agency, seats in held.all():
        counts[agency] = counts.get(agency, 0) + int(seats or 0)
    return counts


async def _promote(conn: AsyncConnection, pool_id: int, registration_id: int) -> None:
    seat = await conn.execute(
        update(SeatPool)
        .where(SeatPool.id == pool_id, SeatPool.confirmed + SeatPool.held < SeatPool.capacity)
        .values(confirmed=SeatPool.confirmed + 1)
        .returning(SeatPool.id)
    )
    if seat.first() is None:  # pragma: no cover - the session lock makes this unreachable
        raise SchedulerError("no free seat to promote into")
    now = utcnow()
    await conn.execute(
        update(Registration)
        .where(Registration.id == registration_id)
        .values(
            status=CONFIRMED,
            confirmed_at=now,
            updated_at=now,
            sequence=Registration.sequence + 1,
        )
    )


async def find_by_token(conn: AsyncConnection, token: str) -> Row[Any]:
    """The registration with this secret token; raises ``NotFound``."""
    if not token or len(token) > 64:
        raise NotFound("registration", "token")
    row = (await conn.execute(select(Registration).where(Registration.token == token))).first()
    if row is None:
        raise NotFound("registration", "token")
    return row


async def describe(conn: AsyncConnection, registration: Row[Any]) -> RegistrationResult:
    """The registration as its holder sees it: cancelled with its session (``shown_status``)."""
    session_status = (
        await conn.execute(
            select(TrainingSession.status).where(TrainingSession.id == registration.session_id)
        )
    ).scalar_one()
    status = shown_status(registration.status, session_status)
    position = None
    if status == WAITLISTED:
        position = await waitlist_position(conn, registration.pool_id, registration.waitlist_seq)
    return RegistrationResult(
        registration.id,
        registration.session_id,
        status,
        registration.attendance,
        position,
        registration.token,
    )


async def mark_cancelled(conn: AsyncConnection, registration_id: int, now: datetime) -> None:
    """Mark a registration cancelled and drop its mail still pending (its reminders).

    Its sequence moves on, so the calendar CANCEL that follows supersedes its invite. The seat
    counters and the email saying so are the caller's: a cancellation frees the seat, a
    transfer hands it on.
    """
    await conn.execute(
        update(Registration)
        .where(Registration.id == registration_id)
        .values(
            status=CANCELLED,
            cancelled_at=now,
            updated_at=now,
            sequence=Registration.sequence + 1,
        )
    )
    await outbox.cancel_pending(conn, registration_id=registration_id)


async def cancel(
    db: Database,
    token: str,
    *,
    reminder_offsets: tuple[timedelta, ...],
    now: datetime | None = None,
    by_admin: bool = False,
    reason: str | None = None,
) -> RegistrationResult:
    """Cancel the registration holding ``token`` and give its seat to the next in line.

    ``by_admin`` means the training team did it: their email says so, with ``reason`` if
    given. The outcome names who was promoted into the freed seat. Cancelling twice is
    harmless and returns the cancelled registration. Raises ``NotFound`` for an unknown token
    and ``Gone`` once the session has started (registrants only).
    """
    now = now or utcnow()
    async with db.write() as conn:
        found = await find_by_token(conn, token)
        session = await lock_session(conn, found.session_id)
        registration = await find_by_token(conn, token)  # re-read under the lock
        if registration.status == CANCELLED:
            return await describe(conn, registration)
        if not by_admin and now >= session.starts_at:
            raise Gone("this session has already started")
        await mark_cancelled(conn, registration.id, now)
        if registration.status == CONFIRMED:
            await conn.execute(
                update(SeatPool)
                .where(SeatPool.id == registration.pool_id)
                .values(confirmed=SeatPool.confirmed - 1)
            )
        if session.status != CANCELLED:
            await outbox.enqueue(
                conn,
                "registration_cancelled",
                registration.email,
                registration_id=registration.id,
                session_id=session.id,
                payload={
                    "was": registration.status,
                    "by": "admin" if by_admin else "registrant",
                    "reason": (reason or "").strip()[:500],
                },
            )
        promoted: list[int] = []
        if registration.status == CONFIRMED:
            promoted = await fill_from_waitlist(
                conn, session, reminder_offsets=reminder_offsets, now=now
            )
        return RegistrationResult(
            registration.id,
            registration.session_id,
            CANCELLED,
            registration.attendance,
            None,
            registration.token,
            promoted=tuple(promoted),
        )


async def set_outcome(
    db: Database, registration_id: int, outcome: str | None, *, now: datetime | None = None
) -> None:
    """Mark a confirmed registration attended or no-show (or clear it).

    Attendance exists only once the session has started, and never for a cancelled one.
    Raises ``NotFound``, ``Invalid`` and ``Conflict`` (not started yet, or cancelled).
    """
    if outcome not in (None, "attended", "no_show"):
        raise Invalid({"outcome": "must be attended or no_show"})
    now = now or utcnow()
    async with db.write() as conn:
        session = (
            await conn.execute(
                select(TrainingSession.status, TrainingSession.starts_at)
                .join(Registration, Registration.session_id == TrainingSession.id)
                .where(Registration.id == registration_id)
            )
        ).first()
        if session is None:
            raise NotFound("registration", registration_id)
        if session.status == CANCELLED:
            raise Conflict("the session is cancelled", {"status": "cancelled"})
        if now < session.starts_at:
            raise Conflict(
                "attendance can be marked once the session has started",
                {"outcome": "the session has not started yet"},
            )
        result = await conn.execute(
            update(Registration)
            .where(and_(Registration.id == registration_id, Registration.status == CONFIRMED))
            .values(outcome=outcome, updated_at=utcnow())
        )
        if result.rowcount == 0:
            raise NotFound("confirmed registration", registration_id)


async def promote_by_hand(
    db: Database,
    registration_id: int,
    *,
    reminder_offsets: tuple[timedelta, ...],
    now: datetime | None = None,
) -> RegistrationResult:
    """An admin gives a waitlisted person a free seat in their pool, out of turn if need be.

    Automatic promotion already fills every free seat it may, so a seat is free next to a
    waitlist only when the per-agency cap holds people back; promoting by hand is the admin's
    decision to go past that cap. Raises ``NotFound``, and ``Conflict`` when the registration
    is not waitlisted, the session is cancelled, or the pool has no free seat (raise its
    capacity instead).
    """
    now = now or utcnow()
    async with db.write() as conn:
        found = (
            await conn.execute(select(Registration).where(Registration.id == registration_id))
        ).first()
        if found is None:
            raise NotFound("registration", registration_id)
        session = await lock_session(conn, found.session_id)
        registration = (
            await conn.execute(select(Registration).where(Registration.id == registration_id))
        ).one()
        if registration.status != WAITLISTED:
            raise Conflict(
                "only a waitlisted registration can be promoted",
                {"status": f"is {registration.status}"},
            )
        if session.status == CANCELLED:
            raise Conflict("the session is cancelled", {"status": "cancelled"})
        pool = (
            await conn.execute(
                select(SeatPool.capacity, SeatPool.confirmed, SeatPool.held).where(
                    SeatPool.id == registration.pool_id
                )
            )
        ).one()
        if pool.confirmed + pool.held >= pool.capacity:
            label = registration.attendance.replace("_", "-")
            raise Conflict(
                f"the {label} pool is full: raise its capacity to make room",
                {f"{registration.attendance}_capacity": "no free seat; raise the capacity"},
            )
        await _promote(conn, registration.pool_id, registration.id)
        await outbox.enqueue_many(
            conn,
            _confirmed_rows(
                "promoted", registration.id, registration.email, session, reminder_offsets, now
            ),
        )
        return RegistrationResult(
            registration.id,
            registration.session_id,
            CONFIRMED,
            registration.attendance,
            None,
            registration.token,
        )
