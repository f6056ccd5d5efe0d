"""What a coordinator does for several officers: register a batch, substitute, move, cancel.

A batch runs in one transaction under the session's lock, each row in its own savepoint: a row
that fails (bad email, already registered) rolls back only itself, and the summary email to the
agency's coordinators is written with the rows it reports (invariant 4). Each officer gets the
email ``booking.register`` writes for them.

A substitution hands the seat (or the waitlist place, keeping its ticket) to another person in
one transaction: nothing frees, so nobody is promoted. A move cancels the seat in one session
(promoting its waitlist) and registers the person in another session of the same course by the
usual rules, with one email that explains it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox
from notifications.models import utcnow
from scheduler import agencies
from scheduler.booking import (
    RegistrationInput,
    RegistrationResult,
    _confirmed_rows,
    _register,
    cancel,
    check_open,
    fill_from_waitlist,
    lock_session,
    mark_cancelled,
    waitlist_position,
)
from scheduler.db import Database
from scheduler.errors import (
    Conflict,
    DuplicateRegistration,
    Gone,
    Invalid,
    NotFound,
    SchedulerError,
)
from scheduler.holds import coordinator_emails
from scheduler.models import ATTENDANCE, CANCELLED, CONFIRMED, Registration, SeatPool
from scheduler.registration_sql import CoreTx
from scheduler.validation import Fields

MAX_BATCH = 200
May = Callable[[int | None], bool]


def _everyone(agency_id: int | None) -> bool:
    return True


@dataclass(frozen=True)
class RowResult:
    index: int
    status: str  # confirmed, waitlisted or error
    outcome: RegistrationResult | None = None
    error: str | None = None
    fields: dict[str, str] | None = None
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class BatchInput:
    agency_id: int
    attendance: str
    people: list[Any]
    summary_to: str | None


def parse_batch(data: Any) -> BatchInput:
    """The batch's own fields; rows are checked one by one later. Raises ``Invalid``."""
    fields = Fields(data)
    agency_id = fields.integer("agency_id", minimum=1, maximum=2**31 - 1)
    attendance = fields.choice("attendance", ATTENDANCE)
    people = fields.data.get("people")
    if not isinstance(people, list) or not people:
        fields.fail("people", "must be a list of at least one person")
    elif len(people) > MAX_BATCH:
        fields.fail("people", f"at most {MAX_BATCH} people per batch")
    summary_to = fields.email("summary_to") if fields.has("summary_to") else None
    fields.done()
    assert agency_id is not None and attendance is not None and isinstance(people, list)
    return BatchInput(agency_id, attendance, people, summary_to)


def check_rows(batch: BatchInput) -> list[tuple[int, RegistrationInput | None, RowResult | None]]:
    """Each row parsed, or the row's error; a second row with the same email is an error."""
    seen: set[str] = set()
    checked: list[tuple[int, RegistrationInput | None, RowResult | None]] = []
    for index, row in enumerate(batch.people):
        body = {**row, "agency_id": batch.agency_id} if isinstance(row, dict) else row
        try:
            person = RegistrationInput.parse(body, attendance=batch.attendance)
        except Invalid as exc:
            checked.append((index, None, _error(index, exc, row)))
            continue
        key = person.email.lower()
        if key in seen:
            error = Invalid({"email": "appears twice in this batch"}, "duplicate row")
            checked.append((index, None, _error(index, error, row)))
            continue
        seen.add(key)
        checked.append((index, person, None))
    return checked


def _error(index: int, exc: SchedulerError, row: Any) -> RowResult:
    name = row.get("name") if isinstance(row, dict) else None
    email = row.get("email") if isinstance(row, dict) else None
    return RowResult(
        index,
        "error",
        error=exc.message,
        fields=exc.fields,
        name=name if isinstance(name, str) else None,
        email=email if isinstance(email, str) else None,
    )


async def register_batch(
    db: Database,
    session_id: int,
    data: Any,
    *,
    reminder_offsets: tuple[timedelta, ...],
    sender: str | None = None,
    now: datetime | None = None,
) -> list[RowResult]:
    """Register every row that can be; one summary to the agency's coordinators.

    Raises for the whole batch only when the batch itself is wrong: ``Invalid`` (its fields,
    an unknown agency), ``NotFound`` (session), ``Gone`` (cancelled or closed).
    """
    now = now or utcnow()
    batch = parse_batch(data)
    checked = check_rows(batch)
    results: list[RowResult] = []
    async with db.write() as conn:
        agency = await agencies.resolve(conn, batch.agency_id)
        session = await lock_session(conn, session_id)
        check_open(session, now)
        tx = CoreTx(conn)
        for index, person, failed in checked:
            if failed is not None or person is None:
                results.append(failed or RowResult(index, "error", error="invalid row"))
                continue
            person = replace(
                person,
                agency_id=agency.id,
                agency=agency.name,
                post_state=person.post_state or (agency.state if person.post_id else None),
            )
            try:
                async with conn.begin_nested():
                    outcome = await _register(tx, session_id, person, reminder_offsets, now)
            except (DuplicateRegistration, Invalid, Gone) as exc:
                results.append(_error(index, exc, {"name": person.name, "email": person.email}))
                continue
            results.append(
                RowResult(index, outcome.status, outcome, name=person.name, email=person.email)
            )
        recipients = {e.lower(): e for e in await coordinator_emails(conn, agency.id)}
        for extra in (sender, batch.summary_to):
            if extra:
                recipients.setdefault(extra.lower(), extra)
        await outbox.enqueue_many(
            conn,
            [
                {
                    "kind": "batch_summary",
                    "recipient": address,
                    "session_id": session_id,
                    "payload": {
                        "agency": agency.name,
                        "rows": [
                            {
                                "index": r.index + 1,
                                "name": r.name or "",
                                "email": r.email or "",
                                "status": r.status,
                                "position": r.outcome.waitlist_position if r.outcome else None,
                                "error": r.error or "",
                            }
                            for r in results
                        ],
                    },
                }
                for address in recipients.values()
            ],
        )
    return results


async def _registration(conn: AsyncConnection, registration_id: int, may: May) -> Any:
    row = (
        await conn.execute(select(Registration).where(Registration.id == registration_id))
    ).first()
    if row is None or not may(row.agency_id):
        raise NotFound("registration", registration_id)
    return row


async def transfer(
    db: Database,
    registration_id: int,
    data: Any,
    *,
    reminder_offsets: tuple[timedelta, ...],
    may: May = _everyone,
    now: datetime | None = None,
) -> RegistrationResult:
    """Pass a seat or a waitlist place to another person.

    The first person is cancelled (their calendar entry withdrawn); the second takes the same
    status, pool, ticket and hold. Raises ``NotFound``, ``Invalid``, ``Gone`` (started),
    ``Conflict`` (already cancelled) and ``DuplicateRegistration``.
    """
    now = now or utcnow()
    async with db.write() as conn:
        found = await _registration(conn, registration_id, may)
        session = await lock_session(conn, found.session_id)
        old = await _registration(conn, registration_id, may)
        if old.status == CANCELLED:
            raise Conflict(
                "a cancelled registration has no seat to pass on", {"status": "cancelled"}
            )
        if now >= session.starts_at:
            raise Gone("this session has already started")
        body = dict(data) if isinstance(data, dict) else data
        if isinstance(body, dict):
            if old.agency_id is not None:
                body["agency_id"] = old.agency_id
            else:
                body.setdefault("agency", old.agency)
        person = await agencies.complete(
            conn, RegistrationInput.parse(body, attendance=old.attendance)
        )
        await _withdraw(conn, old, now, payload={"was": old.status, "transferred": True})
        token = secrets.token_urlsafe(24)
        new_id = await CoreTx(conn).insert_registration(
            {
                "session_id": old.session_id,
                "pool_id": old.pool_id,
                "attendance": old.attendance,
                "name": person.name,
                "email": person.email,
                "email_key": person.email.lower(),
                "agency": person.agency,
                "agency_key": old.agency_key,
                "agency_id": old.agency_id,
                "rank": person.rank,
                "post_id": person.post_id,
                "post_state": person.post_state,
                "hold_id": old.hold_id,
                "status": old.status,
                "waitlist_seq": old.waitlist_seq,
                "token": token,
                "created_at": now,
                "updated_at": now,
                "confirmed_at": now if old.status == CONFIRMED else None,
                "sequence": 0,
            }
        )
        position = None
        if old.status == CONFIRMED:
            rows = _confirmed_rows(
                "confirmation", new_id, person.email, session, reminder_offsets, now
            )
        else:
            position = await waitlist_position(conn, old.pool_id, old.waitlist_seq)
            rows = [
                {
                    "kind": "waitlisted",
                    "recipient": person.email,
                    "registration_id": new_id,
                    "session_id": old.session_id,
                    "payload": {"position": position},
                }
            ]
        await outbox.enqueue_many(conn, rows)
        return RegistrationResult(
            new_id, old.session_id, old.status, old.attendance, position, token
        )


async def _withdraw(
    conn: AsyncConnection, old: Any, now: datetime, *, payload: dict[str, Any] | None
) -> None:
    """Mark a registration cancelled without touching seat counters; tell them unless
    ``payload`` is None."""
    await mark_cancelled(conn, old.id, now)
    if payload is not None:
        await outbox.enqueue(
            conn,
            "registration_cancelled",
            old.email,
            registration_id=old.id,
            session_id=old.session_id,
            payload=payload,
        )


class _Quiet(CoreTx):
    """Register's statements with the emails kept back, for a move to rewrite them."""

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self.rows: list[dict[str, Any]] = []

    async def enqueue(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows.extend(rows)


async def move(
    db: Database,
    registration_id: int,
    data: Any,
    *,
    reminder_offsets: tuple[timedelta, ...],
    may: May = _everyone,
    now: datetime | None = None,
) -> RegistrationResult:
    """Move a registration to another session of the same course.

    There it is confirmed or waitlisted by the usual rules; its seat here frees and the
    waitlist is promoted. One email (``registration_moved``) tells the person, withdrawing
    the old calendar entry and sending the new one. Raises ``NotFound``, ``Invalid`` (another
    course, the same session), ``Gone`` (target closed) and ``DuplicateRegistration``.
    """
    now = now or utcnow()
    fields = Fields(data)
    target_id = fields.integer("session_id", minimum=1, maximum=2**31 - 1)
    attendance = fields.choice("attendance", ATTENDANCE, required=False)
    fields.done()
    assert target_id is not None
    async with db.write() as conn:
        found = await _registration(conn, registration_id, may)
        if target_id == found.session_id:
            raise Invalid({"session_id": "is the session the registration is already in"})
        first, second = sorted((found.session_id, target_id))
        locked = {first: await lock_session(conn, first), second: await lock_session(conn, second)}
        source, target = locked[found.session_id], locked[target_id]
        old = await _registration(conn, registration_id, may)
        if old.status == CANCELLED:
            raise Conflict("a cancelled registration cannot be moved", {"status": "cancelled"})
        if source.course_id != target.course_id:
            raise Invalid({"session_id": "must be a session of the same course"})
        check_open(target, now)
        person = RegistrationInput(
            name=old.name,
            email=old.email,
            agency=old.agency,
            attendance=attendance or old.attendance,
            rank=old.rank,
            agency_id=old.agency_id,
            post_id=old.post_id,
            post_state=old.post_state,
        )
        await _withdraw(conn, old, now, payload=None)
        if old.status == CONFIRMED:
            await conn.execute(
                update(SeatPool)
                .where(SeatPool.id == old.pool_id)
                .values(confirmed=SeatPool.confirmed - 1)
            )
        quiet = _Quiet(conn)
        outcome = await _register(quiet, target_id, person, reminder_offsets, now)
        rows = quiet.rows
        rows[0] = {
            **rows[0],
            "kind": "registration_moved",
            "payload": {
                **(rows[0].get("payload") or {}),
                "old_registration_id": old.id,
                "old_session_id": old.session_id,
                "was": old.status,
            },
        }
        await outbox.enqueue_many(conn, rows)
        if old.status == CONFIRMED:
            await fill_from_waitlist(conn, source, reminder_offsets=reminder_offsets, now=now)
        return outcome


async def cancel_for(
    db: Database,
    registration_id: int,
    *,
    reminder_offsets: tuple[timedelta, ...],
    may: May = _everyone,
    by_admin: bool = False,
) -> RegistrationResult:
    """Cancel a registration by id for its agency's coordinator (or an admin)."""
    async with db.read() as conn:
        row = await _registration(conn, registration_id, may)
    return await cancel(db, row.token, reminder_offsets=reminder_offsets, by_admin=by_admin)
