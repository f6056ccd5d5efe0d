"""The outbox table and the metadata every table of the service shares.

``scheduler.models`` builds its tables on :data:`metadata`, so one Alembic history and one
``create_all`` cover both packages, while this package never imports ``scheduler``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, MetaData, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def utc_column(value: datetime) -> datetime:
    """An aware datetime as a UTC column stores it: naive, in UTC. A naive one is refused."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None)


def from_utc_column(value: datetime) -> datetime:
    """A UTC column's naive value as the aware datetime it stands for."""
    return value.replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in Python, naive UTC in the database (the same on SQLite and PostgreSQL)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc_column(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_utc_column(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class MessageStatus:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Message(Base):
    """One email: waiting in the outbox, in flight under a lease, sent, failed or cancelled."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(320))
    # Loose references: the outbox knows ids, not the scheduler's tables.
    registration_id: Mapped[int | None] = mapped_column(Integer, default=None)
    session_id: Mapped[int | None] = mapped_column(Integer, default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # Written when the message is rendered for sending: what the outbox page shows of it.
    subject: Mapped[str | None] = mapped_column(String(250), default=None)
    # The headers a reader sees and the plain-text body, exactly as they went out.
    sent_copy: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        Index("ix_messages_due", "status", "due_at"),
        Index("ix_messages_registration", "registration_id"),
        Index("ix_messages_session", "session_id"),
        # The outbox page pages one status newest first; retention deletes sent ones by age.
        Index("ix_messages_status_id", "status", "id"),
        Index("ix_messages_status_sent", "status", "sent_at"),
    )
