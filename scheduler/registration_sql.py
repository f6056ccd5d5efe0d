"""The round trips of one registration, on SQLAlchemy Core or straight on asyncpg.

``booking._register`` holds the logic (invariants 1-3); it asks the database through one of the
two classes here:

- ``CoreTx`` runs SQLAlchemy statements on a ``Database.write()`` connection. SQLite uses it,
  and so do the batch, move and hold paths, which run inside a larger transaction.
- ``AsyncpgTx`` runs plain SQL on the asyncpg connection under a ``Database.driver_write()``
  transaction. PostgreSQL's registration uses it: BEGIN, the session's row lock, the pool's
  state, one statement that writes the decision (``BOOK_SEAT_SQL`` / ``BOOK_TICKET_SQL``),
  COMMIT. The lock is held across three round trips, not five.

Both raise ``DuplicateRegistration`` when the partial unique index on (session, email) refuses
a second active registration, the backstop for invariant 2.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox
from notifications.models import Message, from_utc_column, utc_column
from scheduler.db import DriverTransaction
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

    async def book(
        self,
        pool_id: int,
        seat: bool,
        values: dict[str, Any],
        rows: Sequence[dict[str, Any]],
    ) -> tuple[int, int | None] | None:
        """Take a seat (``seat``) or draw the pool's next waitlist ticket, insert the
        registration (``values``, its ``waitlist_seq`` the ticket) and write its outbox rows
        (as ``outbox.enqueue_many`` takes them, ``registration_id`` filled in here).

        Returns (registration id, ticket or None); None, with nothing written, when the seat
        was not free after all. Raises ``DuplicateRegistration``.
        """


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

    async def book(
        self,
        pool_id: int,
        seat: bool,
        values: dict[str, Any],
        rows: Sequence[dict[str, Any]],
    ) -> tuple[int, int | None] | None:
        if seat and not await self.take_seat(pool_id):
            return None
        ticket = None if seat else await self.draw_ticket(pool_id)
        registration_id = await self.insert_registration(
            {**values, "pool_id": pool_id, "waitlist_seq": ticket}
        )
        await self.enqueue([{**row, "registration_id": registration_id} for row in rows])
        return registration_id, ticket


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
_TIMES = frozenset({"created_at", "updated_at", "confirmed_at", "due_at"})
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


# -- one round trip: seat or ticket, registration, outbox rows ----------------------------------
# Profiling the registration burst (docs/performance.md) showed the session's row lock held
# across five network round trips, each waiting its turn in a busy event loop, so every
# registration for one session queued behind those waits. ``AsyncpgTx.book`` writes what
# ``booking._register`` decided as one data-modifying CTE: the pool's conditional UPDATE
# (the seat, or the next waitlist ticket), the registration INSERT ... SELECT from it (so no
# seat, no row), and the outbox rows from arrays. The decision stays in Python, made on the
# state read under the lock; this statement only writes it.
_SEAT = (
    "UPDATE seat_pools SET confirmed = confirmed + 1"
    " WHERE id = $1 AND confirmed + held < capacity RETURNING id, NULL::integer AS ticket"
)
_TICKET = (
    "UPDATE seat_pools SET waitlist_seq = waitlist_seq + 1"
    " WHERE id = $1 RETURNING id, waitlist_seq AS ticket"
)
# Parameters after the pool id: these registration columns, then one array per message column.
BOOKED_COLUMNS = tuple(c for c in REGISTRATION_COLUMNS if c not in ("pool_id", "waitlist_seq"))
MESSAGE_ARRAYS = tuple(c for c in MESSAGE_COLUMNS if c != "registration_id")


_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def _sql_type(column: Any) -> str:
    # The column's type without a length: a cast to varchar(n) would cut a value short, where
    # the column itself refuses it.
    return re.sub(r"\(\d+\)", "", str(column.type.compile(dialect=_PG)))


def _book_sql(pool_update: str) -> str:
    numbers = itertools.count(2)
    registration = Registration.__table__.c
    message = Message.__table__.c
    picks = ", ".join(f"${next(numbers)}::{_sql_type(registration[c])}" for c in BOOKED_COLUMNS)
    arrays = ", ".join(f"${next(numbers)}::{_sql_type(message[c])}[]" for c in MESSAGE_ARRAYS)
    return (
        f"WITH pool AS ({pool_update}),"
        f" registration AS (INSERT INTO registrations (pool_id, waitlist_seq,"
        f" {', '.join(BOOKED_COLUMNS)}) SELECT pool.id, pool.ticket, {picks} FROM pool"
        " RETURNING id),"
        f" messages AS (INSERT INTO messages (registration_id, {', '.join(MESSAGE_ARRAYS)})"
        f" SELECT registration.id, m.* FROM registration, unnest({arrays})"
        f" AS m({', '.join(MESSAGE_ARRAYS)}))"
        " SELECT registration.id, pool.ticket FROM registration, pool"
    )


BOOK_SEAT_SQL = _book_sql(_SEAT)
BOOK_TICKET_SQL = _book_sql(_TICKET)


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
    """Register's statements as plain SQL on asyncpg, inside ``Database.driver_write()``.

    A booking that wrote outbox rows marks the transaction (``wrote_outbox``), so its commit
    wakes the dispatcher as a commit through SQLAlchemy does.
    """

    def __init__(self, tx: DriverTransaction) -> None:
        self.tx = tx
        self.conn = tx.conn

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

    async def book(
        self,
        pool_id: int,
        seat: bool,
        values: dict[str, Any],
        rows: Sequence[dict[str, Any]],
    ) -> tuple[int, int | None] | None:
        messages = outbox.message_values(rows)
        try:
            found = await self.conn.fetchrow(
                BOOK_SEAT_SQL if seat else BOOK_TICKET_SQL,
                pool_id,
                *(to_column(values[c]) if c in _TIMES else values.get(c) for c in BOOKED_COLUMNS),
                *(
                    [
                        json.dumps(m[c])
                        if c == "payload"
                        else to_column(m[c])
                        if c in _TIMES
                        else m[c]
                        for m in messages
                    ]
                    for c in MESSAGE_ARRAYS
                ),
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == EMAIL_INDEX:
                raise DuplicateRegistration(values["email"]) from exc
            raise
        if found is None:
            return None
        if messages:
            self.tx.wrote_outbox = True
        return int(found["id"]), found["ticket"]
