"""The round trips of one registration, on SQLAlchemy Core or straight on asyncpg.

``booking.register`` holds the logic (invariants 1-3); it asks the database through one of the
two classes here, which issue the same statements:

- ``CoreTx`` runs them through SQLAlchemy on a ``Database.write()`` connection. SQLite uses it.
- ``AsyncpgTx`` runs them as plain SQL on the asyncpg connection under a
  ``Database.driver_write()`` transaction. Kept for the old benchmark floor and the tests that
  compare the two paths.
- ``REGISTER_SQL`` is what PostgreSQL runs: the same steps as one server-side PL/pgSQL function
  (``register_person``, created by migration 0008), called as one statement in its own
  implicit transaction. Profiling the registration burst (docs/performance.md) showed the
  session's row lock held across six network round trips, each waiting its turn in a busy
  event loop, so all registrations for one session queued behind those waits; inside the
  function the lock is held only while the server works, and a registration costs one round
  trip instead of eight (BEGIN and COMMIT included).

Both raise ``DuplicateRegistration`` when the partial unique index on (session, email) refuses
a second active registration, the backstop for invariant 2.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox
from notifications.models import from_utc_column, utc_column
from scheduler.errors import DuplicateRegistration
from scheduler.models import (
    CANCELLED,
    CONFIRMED,
    HOLD_ACTIVE,
    WAITLISTED,
    Course,
    Hold,
    Registration,
    SeatPool,
    TrainingSession,
)

EMAIL_INDEX = "uq_registrations_active_email"


class RegisterTx(Protocol):
    """What register asks of the database, one method per round trip."""

    async def lock_session(self, session_id: int) -> Any | None:
        """The session's row with ``course_slug`` and ``course_title``, locked; or None."""

    async def pool_state(
        self, session_id: int, attendance: str, email_key: str, agency_key: str
    ) -> Any | None:
        """The pool's id, capacity, confirmed, held, ``taken`` (an active registration of this
        email in the session, or None), ``waiting`` and ``agency_held``; or None."""

    async def take_seat(self, pool_id: int) -> bool:
        """Take a seat if one is free, by a conditional UPDATE."""

    async def draw_ticket(self, pool_id: int) -> int:
        """The pool's next waitlist ticket."""

    async def insert_registration(self, values: dict[str, Any]) -> int:
        """Insert a registration; raises ``DuplicateRegistration``."""

    async def enqueue(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write outbox messages (rows as ``outbox.enqueue_many`` takes them)."""


# -- SQLAlchemy Core ------------------------------------------------------------------------------
# Built once: building a statement costs about as much CPU as running it.

# The session with its course's slug and title, so a caller can describe the session without
# reading it again (catalog.session_view). Only the session's row is locked.
LOCK_SESSION = (
    select(TrainingSession, Course.slug.label("course_slug"), Course.title.label("course_title"))
    .join(Course, Course.id == TrainingSession.course_id)
    .where(TrainingSession.id == bindparam("session_id"))
    .with_for_update(of=TrainingSession)
)
_EMAIL_TAKEN = (
    select(Registration.id)
    .where(
        Registration.session_id == SeatPool.session_id,
        Registration.email_key == bindparam("email_key"),
        Registration.status != CANCELLED,
    )
    .limit(1)
    .scalar_subquery()
)
_WAITING = (
    select(func.count())
    .where(Registration.pool_id == SeatPool.id, Registration.status == WAITLISTED)
    .scalar_subquery()
)
# The agency's confirmed seats in the session plus the seats its holds keep unnamed: the
# per-agency cap counts both.
_AGENCY_HELD = (
    select(func.count())
    .where(
        Registration.session_id == SeatPool.session_id,
        Registration.agency_key == bindparam("agency_key"),
        Registration.status == CONFIRMED,
    )
    .scalar_subquery()
) + (
    select(func.coalesce(func.sum(Hold.remaining), 0))
    .where(
        Hold.session_id == SeatPool.session_id,
        Hold.agency_key == bindparam("agency_key"),
        Hold.status == HOLD_ACTIVE,
    )
    .scalar_subquery()
)
# Everything register must know about the chosen pool, in one round trip. It runs after the
# session row is locked, and every change to a session's seats and registrations takes that
# lock first, so these counts cannot move before the transaction ends.
_POOL_STATE = select(
    SeatPool.id,
    SeatPool.capacity,
    SeatPool.confirmed,
    SeatPool.held,
    _EMAIL_TAKEN.label("taken"),
    _WAITING.label("waiting"),
    _AGENCY_HELD.label("agency_held"),
).where(
    SeatPool.session_id == bindparam("session_id"),
    SeatPool.attendance == bindparam("attendance"),
)
_TAKE_SEAT = (
    update(SeatPool)
    .where(
        SeatPool.id == bindparam("pool_id"),
        SeatPool.confirmed + SeatPool.held < SeatPool.capacity,
    )
    .values(confirmed=SeatPool.confirmed + 1)
    .returning(SeatPool.confirmed)
)
_DRAW_TICKET = (
    update(SeatPool)
    .where(SeatPool.id == bindparam("pool_id"))
    .values(waitlist_seq=SeatPool.waitlist_seq + 1)
    .returning(SeatPool.waitlist_seq)
)
_INSERT_REGISTRATION = insert(Registration).returning(Registration.id)


class CoreTx:
    """Register's statements through SQLAlchemy, on a connection inside ``Database.write()``."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def lock_session(self, session_id: int) -> Any | None:
        return (await self.conn.execute(LOCK_SESSION, {"session_id": session_id})).first()

    async def pool_state(
        self, session_id: int, attendance: str, email_key: str, agency_key: str
    ) -> Any | None:
        params = {
            "session_id": session_id,
            "attendance": attendance,
            "email_key": email_key,
            "agency_key": agency_key,
        }
        return (await self.conn.execute(_POOL_STATE, params)).first()

    async def take_seat(self, pool_id: int) -> bool:
        return (await self.conn.execute(_TAKE_SEAT, {"pool_id": pool_id})).first() is not None

    async def draw_ticket(self, pool_id: int) -> int:
        return int((await self.conn.execute(_DRAW_TICKET, {"pool_id": pool_id})).scalar_one())

    async def insert_registration(self, values: dict[str, Any]) -> int:
        try:
            return int((await self.conn.execute(_INSERT_REGISTRATION, values)).scalar_one())
        except IntegrityError as exc:
            if EMAIL_INDEX in str(exc.orig) or "email_key" in str(exc.orig):
                raise DuplicateRegistration(values["email"]) from exc
            raise

    async def enqueue(self, rows: Sequence[dict[str, Any]]) -> None:
        await outbox.enqueue_many(self.conn, rows)


# -- asyncpg --------------------------------------------------------------------------------------
# The same statements as PostgreSQL text. Timestamps are naive UTC in the tables (UTCDateTime).

LOCK_SESSION_SQL = """
SELECT training_sessions.*, courses.slug AS course_slug, courses.title AS course_title
  FROM training_sessions JOIN courses ON courses.id = training_sessions.course_id
 WHERE training_sessions.id = $1 FOR UPDATE OF training_sessions
"""
POOL_STATE_SQL = """
SELECT p.id, p.capacity, p.confirmed, p.held,
       (SELECT r.id FROM registrations r WHERE r.session_id = p.session_id
           AND r.email_key = $3 AND r.status != 'cancelled' LIMIT 1) AS taken,
       (SELECT count(*) FROM registrations r
         WHERE r.pool_id = p.id AND r.status = 'waitlisted') AS waiting,
       (SELECT count(*) FROM registrations r WHERE r.session_id = p.session_id
           AND r.agency_key = $4 AND r.status = 'confirmed')
       + (SELECT coalesce(sum(h.remaining), 0) FROM holds h WHERE h.session_id = p.session_id
           AND h.agency_key = $4 AND h.status = 'active') AS agency_held
  FROM seat_pools p WHERE p.session_id = $1 AND p.attendance = $2
"""
TAKE_SEAT_SQL = (
    "UPDATE seat_pools SET confirmed = confirmed + 1 "
    "WHERE id = $1 AND confirmed + held < capacity RETURNING confirmed"
)
DRAW_TICKET_SQL = (
    "UPDATE seat_pools SET waitlist_seq = waitlist_seq + 1 WHERE id = $1 RETURNING waitlist_seq"
)
REGISTRATION_COLUMNS = (
    "session_id",
    "pool_id",
    "attendance",
    "name",
    "email",
    "email_key",
    "agency",
    "agency_key",
    "rank",
    "agency_id",
    "post_id",
    "post_state",
    "hold_id",
    "status",
    "waitlist_seq",
    "token",
    "created_at",
    "updated_at",
    "confirmed_at",
    "sequence",
)
_TIMES = frozenset({"created_at", "updated_at", "confirmed_at"})
INSERT_REGISTRATION_SQL = (
    f"INSERT INTO registrations ({', '.join(REGISTRATION_COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(REGISTRATION_COLUMNS) + 1))}) "
    "RETURNING id"
)
# AsyncpgTx.enqueue passes each message's values in this order (payload as JSON text).
MESSAGE_COLUMNS = (
    "kind",
    "recipient",
    "registration_id",
    "session_id",
    "payload",
    "due_at",
    "status",
    "attempts",
    "created_at",
)
INSERT_MESSAGES_SQL = (
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(MESSAGE_COLUMNS) + 1))})"
)


# -- one round trip: the server-side function ----------------------------------------------------
# register_person mirrors booking._register step by step (the SQLite path runs that Python);
# tests run every booking rule on both backends, so the two cannot drift unseen. Its text is
# in migration 0008 (scheduler/migrations/versions/); a change to it is a new migration with
# CREATE OR REPLACE FUNCTION. Its answer carries the session's row as the function read it
# under its lock, with the course's slug and title, so the caller can describe the session
# without reading it again. Each statement inside it sees every commit before it (READ
# COMMITTED takes a fresh snapshot per statement).
#
# Held seats (confirmed + held <= capacity) slot in as a column comparison on the pool row:
# ``confirmed + held < capacity`` in the seat UPDATE and its CHECK, and the agency count adds
# the agency's unnamed held seats.
REGISTER_SQL = "SELECT * FROM register_person($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"


def to_column(value: Any) -> Any:
    """A value as a table column holds it: aware datetimes become naive UTC (as UTCDateTime)."""
    return utc_column(value) if isinstance(value, datetime) else value


class Record:
    """An asyncpg row read like a SQLAlchemy one: by attribute, datetimes aware in UTC."""

    __slots__ = ("_values",)

    def __init__(self, row: asyncpg.Record | dict[str, Any]) -> None:
        self._values = {
            key: from_utc_column(value) if isinstance(value, datetime) else value
            for key, value in row.items()
        }

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None


class AsyncpgTx:
    """Register's statements as plain SQL on asyncpg, inside ``Database.driver_write()``."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock_session(self, session_id: int) -> Any | None:
        row = await self.conn.fetchrow(LOCK_SESSION_SQL, session_id)
        return None if row is None else Record(row)

    async def pool_state(
        self, session_id: int, attendance: str, email_key: str, agency_key: str
    ) -> Any | None:
        row = await self.conn.fetchrow(
            POOL_STATE_SQL, session_id, attendance, email_key, agency_key
        )
        return None if row is None else Record(row)

    async def take_seat(self, pool_id: int) -> bool:
        return await self.conn.fetchval(TAKE_SEAT_SQL, pool_id) is not None

    async def draw_ticket(self, pool_id: int) -> int:
        return int(await self.conn.fetchval(DRAW_TICKET_SQL, pool_id))

    async def insert_registration(self, values: dict[str, Any]) -> int:
        try:
            return int(
                await self.conn.fetchval(
                    INSERT_REGISTRATION_SQL,
                    *(
                        to_column(values[column]) if column in _TIMES else values.get(column)
                        for column in REGISTRATION_COLUMNS
                    ),
                )
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == EMAIL_INDEX:
                raise DuplicateRegistration(values["email"]) from exc
            raise

    async def enqueue(self, rows: Sequence[dict[str, Any]]) -> None:
        messages = outbox.message_values(rows)
        if not messages:
            return
        await self.conn.executemany(
            INSERT_MESSAGES_SQL,
            [
                tuple(
                    json.dumps(m[column]) if column == "payload" else to_column(m[column])
                    for column in MESSAGE_COLUMNS
                )
                for m in messages
            ],
        )


async def register_on_server(
    conn: asyncpg.Connection, values: dict[str, Any], reminder_offsets: Sequence[int]
) -> tuple[str, int | None, int | None, Record | None]:
    """Run ``register_person``; returns (result, registration id, waitlist position, session).

    ``result`` is ``confirmed``, ``waitlisted`` or why not (``not_found``, ``cancelled``,
    ``closed``, ``no_pool``, ``duplicate``); the session is the row with ``course_slug`` and
    ``course_title``, or None when there is no such session. Raises ``DuplicateRegistration``
    when the unique index refuses the row.
    """
    try:
        row = await conn.fetchrow(
            REGISTER_SQL,
            values["session_id"],
            values["attendance"],
            values["name"],
            values["email"],
            values["email_key"],
            values["agency"],
            values["agency_key"],
            values["rank"],
            values["token"],
            to_column(values["now"]),
            list(reminder_offsets),
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == EMAIL_INDEX:
            raise DuplicateRegistration(values["email"]) from exc
        raise
    assert row is not None
    found = row["session_row"]
    session = None
    if found is not None and found["id"] is not None:
        session = Record(
            {**found, "course_slug": row["course_slug"], "course_title": row["course_title"]}
        )
    return row["result"], row["registration_id"], row["waitlist_position"], session
