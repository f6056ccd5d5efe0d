"""The outbox: enqueue inside the caller's transaction; claim with a lease; settle.

The caller of :func:`enqueue` passes the open connection of the change it is making, so the email
and the change commit or roll back together (invariant 4). Workers then :func:`claim_due` rows
under a lease and :func:`finish` them; a lease that runs out (the worker died) makes its rows
claimable again, so every message goes out at least once (invariant 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.models import Message, MessageStatus, utcnow


async def enqueue(
    conn: AsyncConnection,
    kind: str,
    recipient: str,
    *,
    registration_id: int | None = None,
    session_id: int | None = None,
    due_at: datetime | None = None,
    payload: dict[str, Any] | None = None,
) -> int:
    """Write one message to the outbox on ``conn``; it goes out once the transaction commits."""
    result = await conn.execute(
        insert(Message)
        .values(
            kind=kind,
            recipient=recipient,
            registration_id=registration_id,
            session_id=session_id,
            due_at=due_at or utcnow(),
            payload=payload or {},
            status=MessageStatus.PENDING,
            attempts=0,
            created_at=utcnow(),
        )
        .returning(Message.id)
    )
    return int(result.scalar_one())


async def enqueue_many(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Write several messages at once; each row has the keyword arguments of :func:`enqueue`."""
    if rows:
        await conn.execute(insert(Message), message_values(rows))


def message_values(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The column values of new pending messages, for writers that insert them themselves."""
    now = utcnow()
    return [
        {
            "kind": row["kind"],
            "recipient": row["recipient"],
            "registration_id": row.get("registration_id"),
            "session_id": row.get("session_id"),
            "due_at": row.get("due_at") or now,
            "payload": row.get("payload") or {},
            "status": MessageStatus.PENDING,
            "attempts": 0,
            "created_at": now,
        }
        for row in rows
    ]


async def cancel_pending(
    conn: AsyncConnection,
    *,
    registration_id: int | None = None,
    session_id: int | None = None,
    kinds: Sequence[str] | None = None,
) -> int:
    """Cancel pending messages of a registration or a session (e.g. its reminders)."""
    stmt = update(Message).where(Message.status == MessageStatus.PENDING)
    if registration_id is not None:
        stmt = stmt.where(Message.registration_id == registration_id)
    if session_id is not None:
        stmt = stmt.where(Message.session_id == session_id)
    if kinds is not None:
        stmt = stmt.where(Message.kind.in_(list(kinds)))
    result = await conn.execute(stmt.values(status=MessageStatus.CANCELLED))
    return int(result.rowcount)


# -- the dispatcher's side: claim with a lease, then mark sent, retry, failed or cancelled ----


@dataclass(frozen=True)
class OutboxMessage:
    """A claimed outbox row, detached from the database."""

    id: int
    kind: str
    recipient: str
    registration_id: int | None
    session_id: int | None
    payload: dict[str, Any]
    due_at: datetime
    attempts: int
    created_at: datetime
    lease_until: datetime | None


_COLUMNS = (
    Message.id,
    Message.kind,
    Message.recipient,
    Message.registration_id,
    Message.session_id,
    Message.payload,
    Message.due_at,
    Message.attempts,
    Message.created_at,
    Message.lease_until,
)


def _claimable(now: datetime) -> ColumnElement[bool]:
    # A row left "sending" by a worker that died is claimable again once its lease runs out:
    # that is what makes delivery at-least-once across crashes (invariant 5).
    return or_(
        and_(Message.status == MessageStatus.PENDING, Message.due_at <= now),
        and_(Message.status == MessageStatus.SENDING, Message.lease_until < now),
    )


async def claim_due(
    conn: AsyncConnection, *, now: datetime, lease: timedelta, limit: int
) -> list[OutboxMessage]:
    """Claim up to ``limit`` due messages for this worker until ``now + lease``.

    On PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED``, so workers in other
    processes claim disjoint rows without waiting on each other. SQLite has no row locks; the
    caller's ``BEGIN IMMEDIATE`` transaction makes this the only writer instead. The lease's end
    doubles as the claim's token: :func:`finish` only touches rows still holding it.
    """
    lease_until = now + lease
    picked = (
        select(Message.id)
        .where(_claimable(now))
        .order_by(Message.due_at, Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [row_id for (row_id,) in (await conn.execute(picked)).all()]
    if not ids:
        return []
    rows = (
        await conn.execute(
            update(Message)
            .where(Message.id.in_(ids), _claimable(now))
            .values(
                status=MessageStatus.SENDING,
                lease_until=lease_until,
                attempts=Message.attempts + 1,
            )
            .returning(*_COLUMNS)
            .execution_options(synchronize_session=False)
        )
    ).all()
    claimed = [OutboxMessage(*row) for row in rows]
    claimed.sort(key=lambda m: (m.due_at, m.id))
    return claimed


async def finish(
    conn: AsyncConnection,
    ids: Sequence[int],
    lease_until: datetime,
    *,
    status: str,
    due_at: datetime | None = None,
    error: str | None = None,
    now: datetime | None = None,
    unclaimed: bool = False,
) -> int:
    """Settle claimed messages: ``sent``, ``failed``, ``cancelled``, or ``pending`` to retry
    (``unclaimed`` for ones handed back without being tried).

    Only rows still under the claim that ``lease_until`` identifies change; a row whose lease
    ran out and that another worker reclaimed is left to that worker. Returns rows changed.
    """
    if not ids:
        return 0
    values: dict[str, Any] = {"status": status, "lease_until": None}
    if status == MessageStatus.SENT:
        values["sent_at"] = now or utcnow()
        values["last_error"] = None
    if due_at is not None:
        values["due_at"] = due_at
    if error is not None:
        values["last_error"] = error[:2000]
    if unclaimed:  # handed back untried: the claim did not cost it an attempt
        values["attempts"] = Message.attempts - 1
    result = await conn.execute(
        update(Message)
        .where(
            Message.id.in_(list(ids)),
            Message.status == MessageStatus.SENDING,
            Message.lease_until == lease_until,
        )
        .values(**values)
    )
    return int(result.rowcount)


async def record_copies(conn: AsyncConnection, copies: dict[int, tuple[str, str]]) -> None:
    """Keep each message's subject and sent copy (``messages.sent_copy``), in one statement."""
    if copies:
        await conn.execute(
            update(Message)
            .where(Message.id == bindparam("message_id"))
            .values(subject=bindparam("new_subject"), sent_copy=bindparam("new_copy"))
            .execution_options(synchronize_session=False),
            [
                {"message_id": i, "new_subject": subject[:250], "new_copy": copy}
                for i, (subject, copy) in copies.items()
            ],
        )


async def list_messages(
    conn: AsyncConnection, statuses: Sequence[str], *, limit: int = 100
) -> list[Row[Any]]:
    """Message rows in the given statuses, oldest due first (for ``scheduler outbox``)."""
    rows = await conn.execute(
        select(Message)
        .where(Message.status.in_(list(statuses)))
        .order_by(Message.due_at, Message.id)
        .limit(limit)
    )
    return list(rows.all())


# Statuses an admin may put back in line by hand: a sent message once more, a failed one again.
RESENDABLE = (MessageStatus.SENT, MessageStatus.FAILED)


async def count_by_status(
    conn: AsyncConnection, statuses: Sequence[str] | None = None, *, cap: int | None = None
) -> dict[str, int]:
    """Messages per status: every status present, or the given ones (zero when none).

    Name the statuses on a big outbox: ``status IN (...)`` reads the (status, id) index, where
    every status at once reads every row kept. With ``cap`` each count stops at ``cap + 1``
    index entries ("1,000+" is all a tab needs), and they all come in one statement.
    """
    if statuses is None:
        rows = await conn.execute(select(Message.status, func.count()).group_by(Message.status))
        return {status: int(count) for status, count in rows.all()}
    wanted = list(statuses)
    if not wanted:
        return {}
    if cap is None:
        rows = await conn.execute(
            select(Message.status, func.count())
            .where(Message.status.in_(wanted))
            .group_by(Message.status)
        )
        return {status: 0 for status in wanted} | {s: int(n) for s, n in rows.all()}
    capped = [
        select(func.count())
        .select_from(select(Message.id).where(Message.status == status).limit(cap + 1).subquery())
        .scalar_subquery()
        .label(f"n{i}")
        for i, status in enumerate(wanted)
    ]
    row = (await conn.execute(select(*capped))).one()
    return {status: int(n) for status, n in zip(wanted, row, strict=True)}


async def count_sent_since(conn: AsyncConnection, since: datetime) -> int:
    """Messages sent after ``since``, on the (status, sent_at) index whatever the years kept."""
    result = await conn.execute(
        select(func.count()).where(Message.status == MessageStatus.SENT, Message.sent_at > since)
    )
    return int(result.scalar_one())


async def count_retrying(conn: AsyncConnection) -> int:
    """Pending messages whose last attempt failed: they will be tried again."""
    result = await conn.execute(
        select(func.count()).where(
            Message.status == MessageStatus.PENDING, Message.last_error.is_not(None)
        )
    )
    return int(result.scalar_one())


async def lag(conn: AsyncConnection, now: datetime) -> tuple[int, float]:
    """``(messages due and not yet sent, age in seconds of the oldest of them)``.

    Lag is how far the dispatcher is behind: 0 when nothing is overdue.
    """
    row = (
        await conn.execute(
            select(func.count(), func.min(Message.due_at)).where(
                Message.status.in_([MessageStatus.PENDING, MessageStatus.SENDING]),
                Message.due_at <= now,
            )
        )
    ).one()
    due, oldest = int(row[0]), row[1]
    if oldest is None:
        return due, 0.0
    if oldest.tzinfo is None:  # min() skips the column's type decorator on some backends
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return due, max(0.0, (now - oldest).total_seconds())


async def retry(
    conn: AsyncConnection,
    message_id: int | None = None,
    *,
    now: datetime | None = None,
    statuses: Sequence[str] = (MessageStatus.FAILED,),
) -> int:
    """Put a failed message (or, with no id, every failed one) back in line, due now.

    Attempts start again from zero so it gets the full round of retries. ``statuses`` widens
    what may go back (the admin's "resend" also takes a sent one, see :data:`RESENDABLE`).
    Returns how many.
    """
    stmt = update(Message).where(Message.status.in_(list(statuses)))
    if message_id is not None:
        stmt = stmt.where(Message.id == message_id)
    result = await conn.execute(
        stmt.values(
            status=MessageStatus.PENDING, due_at=now or utcnow(), attempts=0, lease_until=None
        )
    )
    return int(result.rowcount)
