"""When each reminder is due, and moving or cancelling them with their session (invariant 6).

A reminder is an outbox message of kind ``reminder`` whose payload holds its offset in seconds,
so a reschedule can recompute its due time from the new start.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.models import Message, MessageStatus

REMINDER = "reminder"


def reminder_rows(
    *,
    recipient: str,
    registration_id: int,
    session_id: int,
    starts_at: datetime,
    offsets: tuple[timedelta, ...],
    now: datetime,
) -> list[dict[str, Any]]:
    """Outbox rows for the reminders still ahead of ``now``; ones already past are skipped."""
    rows = []
    for offset in offsets:
        due = starts_at - offset
        if due <= now:
            continue
        rows.append(
            {
                "kind": REMINDER,
                "recipient": recipient,
                "registration_id": registration_id,
                "session_id": session_id,
                "due_at": due,
                "payload": {"offset_seconds": int(offset.total_seconds())},
            }
        )
    return rows


async def move_reminders(
    conn: AsyncConnection, session_id: int, new_start: datetime, now: datetime
) -> None:
    """Recompute pending reminders of a session from its new start; drop ones now past."""
    rows = (
        await conn.execute(
            select(Message.id, Message.payload).where(
                and_(
                    Message.session_id == session_id,
                    Message.kind == REMINDER,
                    Message.status == MessageStatus.PENDING,
                )
            )
        )
    ).all()
    for message_id, payload in rows:
        due = new_start - timedelta(seconds=int(payload.get("offset_seconds", 0)))
        values: dict[str, Any] = {"due_at": due}
        if due <= now:
            values["status"] = MessageStatus.CANCELLED
        await conn.execute(update(Message).where(Message.id == message_id).values(**values))
