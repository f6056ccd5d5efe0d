"""Find my registrations: one email with the manage links of every active registration.

The request writes at most one outbox message (kind ``lookup``) addressed to the email as the
person registered it; which registrations it lists is read again when it is sent
(``scheduler.mail_content``), so a registration cancelled in between is not offered. Nothing is
written for an address with no active registration, and the caller answers the same either
way: the answer never tells whether an address is known.

"Active" is a confirmed or waitlisted seat in a scheduled session that has not ended.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox
from notifications.models import utcnow
from scheduler.db import Database
from scheduler.models import CANCELLED, Registration, TrainingSession
from scheduler.search import with_session
from scheduler.validation import Fields

LOOKUP = "lookup"


def parse_email(data: Any) -> str:
    """The address typed into the form, validated; raises ``Invalid`` naming ``email``."""
    fields = Fields(data)
    email = fields.email("email")
    fields.done()
    assert email is not None
    return email


def address_key(email: str) -> str:
    """A fixed-length key for counting lookups per address without storing the address."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _active(email_key: str, now: datetime) -> Any:
    return (
        with_session()
        .where(
            Registration.email_key == email_key,
            Registration.status != CANCELLED,
            TrainingSession.status != CANCELLED,
            TrainingSession.ends_at > now,
        )
        .order_by(TrainingSession.starts_at, Registration.id)
    )


async def active_registrations(conn: AsyncConnection, email_key: str, now: datetime) -> list[Any]:
    """The active registrations of one address (lower-cased), soonest session first."""
    return list((await conn.execute(_active(email_key, now))).all())


async def send_links(db: Database, email: str) -> bool:
    """Queue the lookup email for ``email`` if it has any active registration.

    Returns whether a message was queued; callers must not let that change their answer.
    """
    key = email.strip().lower()
    async with db.write() as conn:
        found = await active_registrations(conn, key, utcnow())
        if not found:
            return False
        newest = max(found, key=lambda row: row.created_at)
        await outbox.enqueue(conn, LOOKUP, newest.email, payload={"email_key": key})
    return True
