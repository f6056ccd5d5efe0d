"""The tables: courses, training sessions, seat pools, registrations, admin users and API tokens.

A *training session* (``TrainingSession``) is one scheduled offering of a course; it is never a
database session. Capacity lives on ``SeatPool`` with a ``confirmed`` counter that a CHECK
constraint keeps within capacity, so invariant 1 holds even if code above it were wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from notifications.models import Base, utcnow

__all__ = [
    "ATTENDANCE",
    "MODES",
    "AdminUser",
    "ApiToken",
    "Base",
    "Course",
    "LoginSession",
    "RateLimitWindow",
    "Registration",
    "SeatPool",
    "TrainingSession",
]

MODES = ("in_person", "virtual", "hybrid")
ATTENDANCE = ("in_person", "virtual")
DELIVERY = ("in_person", "virtual", "online")
# A registration's status.
CONFIRMED = "confirmed"
WAITLISTED = "waitlisted"
CANCELLED = "cancelled"


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[str] = mapped_column(String(300), default="")
    provider: Mapped[str] = mapped_column(String(200), default="")
    # Comma-separated subset of DELIVERY, e.g. "in_person,virtual".
    delivery: Mapped[str] = mapped_column(String(40), default="in_person,virtual")
    online_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingSession(Base):
    __tablename__ = "training_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    venue_name: Mapped[str | None] = mapped_column(String(200), default=None)
    venue_address: Mapped[str | None] = mapped_column(String(300), default=None)
    venue_city: Mapped[str | None] = mapped_column(String(120), default=None)
    venue_state: Mapped[str | None] = mapped_column(String(40), default=None)
    venue_postal_code: Mapped[str | None] = mapped_column(String(20), default=None)
    platform: Mapped[str | None] = mapped_column(String(80), default=None)
    join_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    max_per_agency: Mapped[int | None] = mapped_column(Integer, default=None)
    registration_closes_at: Mapped[datetime | None] = mapped_column(default=None)
    # Rises whenever time or place changes: the iCalendar SEQUENCE of its events.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set when retention anonymised this session's registrants (SCHEDULER_PERSONAL_DATA_RETENTION).
    personal_data_removed_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("mode IN ('in_person', 'virtual', 'hybrid')", name="mode"),
        CheckConstraint("status IN ('scheduled', 'cancelled')", name="status"),
        CheckConstraint("max_per_agency IS NULL OR max_per_agency > 0", name="max_per_agency"),
        Index("ix_training_sessions_course_start", "course_id", "starts_at"),
        Index("ix_training_sessions_updated", "updated_at"),
        # History pages list upcoming first and page the past (admin dashboard, course page).
        Index("ix_training_sessions_start", "starts_at"),
        Index("ix_training_sessions_end", "ends_at"),
    )


class SeatPool(Base):
    __tablename__ = "seat_pools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    attendance: Mapped[str] = mapped_column(String(16))
    capacity: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer, default=0)
    # Monotonic ticket counter: waitlist order is the order tickets were drawn.
    waitlist_seq: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("session_id", "attendance", name="uq_seat_pools_session_attendance"),
        CheckConstraint("capacity >= 0", name="capacity_nonnegative"),
        CheckConstraint("confirmed >= 0 AND confirmed <= capacity", name="confirmed_within"),
        CheckConstraint("attendance IN ('in_person', 'virtual')", name="attendance"),
    )


class Registration(Base):
    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("seat_pools.id", ondelete="CASCADE"))
    attendance: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320))
    agency: Mapped[str] = mapped_column(String(200))
    agency_key: Mapped[str] = mapped_column(String(200))
    rank: Mapped[str | None] = mapped_column(String(120), default=None)
    status: Mapped[str] = mapped_column(String(16))
    waitlist_seq: Mapped[int | None] = mapped_column(Integer, default=None)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    # Rises with every change to this person's seat: the SEQUENCE of their personal invite.
    sequence: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        CheckConstraint("status IN ('confirmed', 'waitlisted', 'cancelled')", name="status"),
        CheckConstraint("outcome IS NULL OR outcome IN ('attended', 'no_show')", name="outcome"),
        # Invariant 2: one active registration per person (email, any case) per session.
        Index(
            "uq_registrations_active_email",
            "session_id",
            "email_key",
            unique=True,
            sqlite_where=text("status != 'cancelled'"),
            postgresql_where=text("status != 'cancelled'"),
        ),
        Index("ix_registrations_pool_waitlist", "pool_id", "status", "waitlist_seq"),
        Index("ix_registrations_session_agency", "session_id", "agency_key", "status"),
    )


class AdminUser(Base):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # sha256 of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class RateLimitWindow(Base):
    """Attempts one client made in one minute at one rate-limited door (``scheduler.web.ratelimit``).

    Kept in the database so the limit is exact across every instance and worker.
    """

    __tablename__ = "rate_limit_windows"

    bucket: Mapped[str] = mapped_column(String(40), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Unix time of the window's first second, a multiple of 60.
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_rate_limit_windows_start", "window_start"),)


class LoginSession(Base):
    """One sign-in to the web pages: the signed cookie names it, the server decides if it holds.

    The cookie carries a random id; only its SHA-256 is stored. Every signed-in request checks
    the row, so signing out, changing the password or removing the user ends the sign-in on
    every instance at once (``scheduler.logins``). ``kind`` says whose id ``user_id`` is
    (``admin`` today), so other kinds of account can sign in the same way.
    """

    __tablename__ = "login_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="admin")
    user_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_login_sessions_user", "kind", "user_id"),)


def shown_status(registration_status: str, session_status: str) -> str:
    """A registration's status as every surface shows it (API, pages, roster, feeds, invites).

    A cancelled session cancels every registration in it, whatever the row still says: its
    people are shown cancelled, hold no seat and never see the join URL again.
    """
    return CANCELLED if session_status == CANCELLED else registration_status


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)
