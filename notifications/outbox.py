"""Enqueue messages inside the caller's transaction.

The caller passes the open connection of the change it is making, so the email and the change
commit or roll back together (invariant 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
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
    if not rows:
        return
    now = utcnow()
    await conn.execute(
        insert(Message),
        [
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
        ],
    )


async def cancel_pending(
    conn: AsyncConnection,
    *,
    registration_id: int | None = None,
    session_id: int | None = None,
    kinds: Sequence[str] | None = None,
    kind_prefix: str | None = None,
) -> int:
    """Cancel pending messages of a registration or a session (e.g. its reminders)."""
    stmt = update(Message).where(Message.status == MessageStatus.PENDING)
    if registration_id is not None:
        stmt = stmt.where(Message.registration_id == registration_id)
    if session_id is not None:
        stmt = stmt.where(Message.session_id == session_id)
    if kinds is not None:
        stmt = stmt.where(Message.kind.in_(list(kinds)))
    if kind_prefix is not None:
        stmt = stmt.where(Message.kind.startswith(kind_prefix))
    result = await conn.execute(stmt.values(status=MessageStatus.CANCELLED))
    return int(result.rowcount)
