"""When each reminder is due, and moving or cancelling them with their session (invariant 6).

A reminder is an outbox message of kind ``reminder`` whose payload holds its offset in seconds,
so a reschedule can recompute its due time from the new start.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.models import Message, MessageStatus
from notifications.outbox import enqueue_many

REMINDER = "reminder"


def reminder_rows(
    *,
    recipient: str,
    registration_id: int | None,
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
    conn: AsyncConnection,
    session_id: int,
    new_start: datetime,
    now: datetime,
    *,
    offsets: tuple[timedelta, ...],
    confirmed: Sequence[tuple[int, str]],
) -> None:
    """Re-plan a rescheduled session's reminders from its new start (invariant 6).

    Pending reminders are cancelled and every confirmed registration in ``confirmed`` (pairs of
    registration id and email) gets one per offset still ahead of ``now``. Rebuilding rather
    than shifting matters when a session moves later: a reminder that was already sent, or
    skipped because it was past, is due again before the new start.
    """
    await conn.execute(
        update(Message)
        .where(
            and_(
                Message.session_id == session_id,
                Message.kind == REMINDER,
                Message.status == MessageStatus.PENDING,
            )
        )
        .values(status=MessageStatus.CANCELLED)
    )
    rows: list[dict[str, Any]] = []
    for registration_id, email in confirmed:
        rows.extend(
            reminder_rows(
                recipient=email,
                registration_id=registration_id,
                session_id=session_id,
                starts_at=new_start,
                offsets=offsets,
                now=now,
            )
        )
    if rows:
        await enqueue_many(conn, rows)


def still_due(
    *, starts_at: datetime, session_status: str, registration_status: str | None, now: datetime
) -> str | None:
    """Why a reminder must not go out now, or ``None`` when it may.

    Checked at dispatch time as well as when reminders are planned, because the world can change
    between the two: a service that was down past the start must not remind anyone afterwards.
    """
    if session_status != "scheduled":
        return "the session was cancelled"
    if registration_status != "confirmed":
        return "the registration is not confirmed"
    if now >= starts_at:
        return "the session has already started"
    return None
