"""Retention: old sent mail deleted, registrants' personal data anonymised after a while.

- Outbox: sent messages (and cancelled ones, which will never be sent) older than
  ``SCHEDULER_OUTBOX_RETENTION`` (default 90 days) are deleted. Failed messages stay until
  someone resolves them (resend or cancel); pending ones are work still to do.
- Personal data: when ``SCHEDULER_PERSONAL_DATA_RETENTION`` is set, the registrants of
  sessions that ended longer ago lose their name, email and rank, and the session's outbox
  rows lose their recipient. Statuses, seat counts, attendance outcomes, tokens (certificate
  and training-record links) and agencies stay, so counts, completions and certificate
  verification keep working. Each session is marked (``personal_data_removed_at``) once done.

Everything runs in small batches, each its own short transaction, so neither job holds locks
that a registration arriving meanwhile would wait on for long; a registration only ever
touches upcoming sessions, which retention never selects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, String, and_, cast, delete, func, literal, or_, select, update

from notifications.models import Message, MessageStatus, utcnow
from scheduler.db import Database
from scheduler.models import Registration, TrainingSession

OUTBOX_BATCH = 500
SESSION_BATCH = 20
REMOVED_NAME = "(removed)"


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed, or with ``dry_run`` what it would remove."""

    messages: int
    sessions: int
    registrations: int
    dry_run: bool = False

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        anonymise = "would anonymise" if self.dry_run else "anonymised"
        return [
            f"outbox: {verb} {self.messages} sent or cancelled messages",
            f"personal data: {anonymise} {self.registrations} registrations"
            f" of {self.sessions} sessions",
        ]


def _removed_address() -> ColumnElement[str]:
    # Unique per row (the active-email index), never deliverable (RFC 2606 .invalid).
    return (
        literal("removed-", String)
        .concat(cast(Registration.id, String))
        .concat(literal("@anonymised.invalid", String))
    )


def _old_messages(cutoff: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Message.status == MessageStatus.SENT, Message.sent_at < cutoff),
        and_(Message.status == MessageStatus.CANCELLED, Message.created_at < cutoff),
    )


def _ended_sessions(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        TrainingSession.ends_at < cutoff, TrainingSession.personal_data_removed_at.is_(None)
    )


async def purge_outbox(
    db: Database, retention: timedelta, *, now: datetime | None = None, batch: int = OUTBOX_BATCH
) -> int:
    """Delete sent and cancelled messages older than ``retention``, ``batch`` rows a
    transaction; returns how many went."""
    cutoff = (now or utcnow()) - retention
    deleted = 0
    while True:
        async with db.write() as conn:
            ids = (
                (await conn.execute(select(Message.id).where(_old_messages(cutoff)).limit(batch)))
                .scalars()
                .all()
            )
            if ids:
                await conn.execute(delete(Message).where(Message.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < batch:
            return deleted


async def anonymise_registrants(
    db: Database,
    retention: timedelta,
    *,
    now: datetime | None = None,
    batch: int = SESSION_BATCH,
) -> tuple[int, int]:
    """Remove personal data of sessions that ended more than ``retention`` ago, ``batch``
    sessions a transaction; returns (sessions, registrations) anonymised."""
    now = now or utcnow()
    cutoff = now - retention
    sessions = registrations = 0
    while True:
        async with db.write() as conn:
            ids = (
                (
                    await conn.execute(
                        select(TrainingSession.id)
                        .where(_ended_sessions(cutoff))
                        .order_by(TrainingSession.id)
                        .limit(batch)
                    )
                )
                .scalars()
                .all()
            )
            if ids:
                changed = await conn.execute(
                    update(Registration)
                    .where(Registration.session_id.in_(ids))
                    .values(
                        name=REMOVED_NAME,
                        email=_removed_address(),
                        email_key=_removed_address(),
                        rank=None,
                        updated_at=now,
                    )
                )
                registrations += changed.rowcount or 0
                await conn.execute(
                    update(Message)
                    .where(Message.session_id.in_(ids))
                    .values(recipient="removed@anonymised.invalid")
                )
                await conn.execute(
                    update(TrainingSession)
                    .where(TrainingSession.id.in_(ids))
                    .values(personal_data_removed_at=now)
                )
        sessions += len(ids)
        if len(ids) < batch:
            return sessions, registrations


async def plan(
    db: Database,
    outbox_retention: timedelta,
    personal_data_retention: timedelta | None,
    *,
    now: datetime | None = None,
) -> PurgeReport:
    """What :func:`purge` would remove now, counted without changing anything."""
    now = now or utcnow()
    async with db.read() as conn:
        messages = (
            await conn.execute(select(func.count()).where(_old_messages(now - outbox_retention)))
        ).scalar_one()
        sessions = registrations = 0
        if personal_data_retention is not None:
            ended = _ended_sessions(now - personal_data_retention)
            sessions = (
                await conn.execute(select(func.count()).select_from(TrainingSession).where(ended))
            ).scalar_one()
            registrations = (
                await conn.execute(
                    select(func.count())
                    .select_from(Registration)
                    .join(TrainingSession, TrainingSession.id == Registration.session_id)
                    .where(ended)
                )
            ).scalar_one()
    return PurgeReport(int(messages), int(sessions), int(registrations), dry_run=True)


async def purge(
    db: Database,
    outbox_retention: timedelta,
    personal_data_retention: timedelta | None,
    *,
    now: datetime | None = None,
) -> PurgeReport:
    """Run both retention rules once; the background jobs call this every hour."""
    messages = await purge_outbox(db, outbox_retention, now=now)
    sessions = registrations = 0
    if personal_data_retention is not None:
        sessions, registrations = await anonymise_registrants(db, personal_data_retention, now=now)
    return PurgeReport(messages, sessions, registrations)
