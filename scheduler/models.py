"""The tables: courses, training sessions, seat pools, registrations, admin users and API tokens.

A *training session* (``TrainingSession``) is one scheduled offering of a course; it is never a
database session. Capacity lives on ``SeatPool`` with a ``confirmed`` counter that a CHECK
constraint keeps within capacity, so invariant 1 holds even if code above it were wrong.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from notifications.models import Base, utcnow

__all__ = [
    "AGENCY_TYPES",
    "ATTENDANCE",
    "MODES",
    "Account",
    "AccountAgency",
    "AdminUser",
    "Agency",
    "AgencyImport",
    "ApiToken",
    "Attendance",
    "Base",
    "Certificate",
    "Completion",
    "Course",
    "Hold",
    "Instructor",
    "LoginSession",
    "Meeting",
    "RateLimitWindow",
    "Registration",
    "RosterAudit",
    "SeatPool",
    "SessionInstructor",
    "SignInLink",
    "TrainingSession",
    "Venue",
]

MODES = ("in_person", "virtual", "hybrid")
ATTENDANCE = ("in_person", "virtual")
# How pages, feeds and invites name a session's mode and a seat's attendance (one wording each).
MODE_LABELS = {
    "in_person": "In person",
    "virtual": "Live virtual",
    "hybrid": "Hybrid (in person or live virtual)",
}
ATTENDANCE_LABELS = {"in_person": "In person", "virtual": "Live virtual"}
DELIVERY = ("in_person", "virtual", "online")
# A registration's status.
CONFIRMED = "confirmed"
WAITLISTED = "waitlisted"
CANCELLED = "cancelled"
# A session's or a meeting's status (CANCELLED serves both).
SCHEDULED = "scheduled"
MAX_MEETINGS = 60
AGENCY_TYPES = ("municipal", "sheriff", "state", "tribal", "campus", "federal", "other")
# A hold's status: ``active`` while it keeps seats, ``released`` once it gave its unnamed back.
HOLD_ACTIVE = "active"
HOLD_RELEASED = "released"
ROLES = ("admin", "coordinator", "instructor")
# How a course is completed: every meeting attended, or a share of the contact hours.
COMPLETION_RULES = ("all_meetings", "percent_hours")
# Where an attendance mark came from.
ATTENDANCE_SOURCES = ("manual", "checkin", "zoom", "teams")
CERTIFICATE_STATUSES = ("valid", "revoked")


def new_checkin_code() -> str:
    """A meeting's check-in code: 144 random bits, URL-safe (the QR code on sheet and screen)."""
    return secrets.token_urlsafe(18)


class Bookable(Protocol):
    """What the open-for-registration rule reads of a session (a row, a model or a view)."""

    @property
    def status(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def registration_closes_at(self) -> datetime | None: ...


def open_for_registration(session: Bookable, now: datetime) -> bool:
    """Whether a session takes registrations at ``now``: scheduled, before its close time (its
    start when none is set) and before its start. Booking refuses by it, the catalog shows it."""
    closes = session.registration_closes_at or session.starts_at
    return session.status == SCHEDULED and now < closes and now < session.starts_at


class Seat(Protocol):
    """What the join-URL rule reads of a registration (a row, a model or a booking outcome)."""

    @property
    def status(self) -> str: ...
    @property
    def attendance(self) -> str: ...


def sees_join_url(seat: Seat) -> bool:
    """Invariant 7: only a confirmed virtual registrant sees where to join.

    The one home of the rule: the API, the manage page, the "add to calendar" links, the invite
    and the emails all ask here (each may withhold the URL further, e.g. in a cancellation).
    """
    return seat.status == CONFIRMED and seat.attendance == "virtual"


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
    # Completion: every meeting, or ``completion_percent`` % of the session's contact hours.
    completion_rule: Mapped[str] = mapped_column(
        String(16), default="all_meetings", server_default="all_meetings"
    )
    completion_percent: Mapped[int | None] = mapped_column(Integer, default=None)
    # Printed on certificates; NULL means the session's contact hours.
    credit_hours: Mapped[Decimal | None] = mapped_column(Numeric(6, 2), default=None)
    course_number: Mapped[str | None] = mapped_column(String(40), default=None)
    # Percent of a virtual meeting's minutes a person needs to count as present.
    attendance_threshold: Mapped[int] = mapped_column(Integer, default=80, server_default="80")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "completion_rule IN ('all_meetings', 'percent_hours')", name="completion_rule"
        ),
        CheckConstraint(
            "completion_percent IS NULL OR (completion_percent >= 1 AND completion_percent <= 100)",
            name="completion_percent",
        ),
        CheckConstraint(
            "completion_rule != 'percent_hours' OR completion_percent IS NOT NULL",
            name="completion_percent_given",
        ),
        CheckConstraint(
            "attendance_threshold >= 1 AND attendance_threshold <= 100",
            name="attendance_threshold",
        ),
    )


class TrainingSession(Base):
    __tablename__ = "training_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=SCHEDULED)
    venue_name: Mapped[str | None] = mapped_column(String(200), default=None)
    venue_address: Mapped[str | None] = mapped_column(String(300), default=None)
    venue_city: Mapped[str | None] = mapped_column(String(120), default=None)
    venue_state: Mapped[str | None] = mapped_column(String(40), default=None)
    venue_postal_code: Mapped[str | None] = mapped_column(String(20), default=None)
    platform: Mapped[str | None] = mapped_column(String(80), default=None)
    join_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    max_per_agency: Mapped[int | None] = mapped_column(Integer, default=None)
    registration_closes_at: Mapped[datetime | None] = mapped_column(default=None)
    # A venue from the directory (its fields are copied into venue_* when chosen); a free-typed
    # venue has none. Only a venue from the directory is checked for double-booking.
    venue_id: Mapped[int | None] = mapped_column(
        ForeignKey("venues.id", ondelete="SET NULL"), default=None
    )
    venue_room: Mapped[str | None] = mapped_column(String(120), default=None)
    # The room may be shared with another session on purpose (invariant 8).
    allow_overlap: Mapped[bool] = mapped_column(Boolean, default=False)
    # Rises whenever time or place changes: the iCalendar SEQUENCE of its events.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set when retention anonymised this session's registrants (SCHEDULER_PERSONAL_DATA_RETENTION).
    personal_data_removed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set when the roster was finalized (completions computed, certificates issued); a change
    # after that needs a reason and is kept in ``roster_audit``.
    finalized_at: Mapped[datetime | None] = mapped_column(default=None)
    finalized_by: Mapped[str | None] = mapped_column(String(320), default=None)

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
        Index("ix_training_sessions_venue", "venue_id"),
    )


class Meeting(Base):
    """One day (or half-day) of a session: a start and an end, stored in UTC.

    The session's ``starts_at``/``ends_at`` are its first start and last end among scheduled
    meetings, kept in step by ``catalog.commands``. A removed meeting stays as ``cancelled`` so
    calendars learn it is gone (same UID, ``STATUS:CANCELLED``).
    """

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=SCHEDULED)
    # Rises when this meeting moves: added to the session's sequence for its calendar events.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # The local part of its calendar UIDs; None means "session-{session_id}-meeting-{id}".
    # Meetings migrated from one-block sessions keep the session's old UID ("session-{id}").
    uid: Mapped[str | None] = mapped_column(String(120), default=None)
    # The unguessable code of its self check-in page (``/checkin/{code}``).
    checkin_code: Mapped[str] = mapped_column(String(40), default=new_checkin_code)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("status IN ('scheduled', 'cancelled')", name="status"),
        Index("ix_meetings_session_start", "session_id", "starts_at"),
        Index("ix_meetings_start", "starts_at"),
        Index("uq_meetings_checkin_code", "checkin_code", unique=True),
    )


class Venue(Base):
    """A place from the directory: chosen for a session instead of retyping its address."""

    __tablename__ = "venues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300), default=None)
    city: Mapped[str | None] = mapped_column(String(120), default=None)
    state: Mapped[str | None] = mapped_column(String(40), default=None)
    postal_code: Mapped[str | None] = mapped_column(String(20), default=None)
    room: Mapped[str | None] = mapped_column(String(120), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Instructor(Base):
    """Someone who teaches sessions; never booked into two overlapping meetings (invariant 8)."""

    __tablename__ = "instructors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    credentials: Mapped[str] = mapped_column(String(500), default="")
    # Whether public pages may show the name.
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    # The secret in the private feed's URL; replacing it revokes the old URL.
    feed_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SessionInstructor(Base):
    __tablename__ = "session_instructors"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("training_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructors.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_session_instructors_instructor", "instructor_id"),)


class SeatPool(Base):
    __tablename__ = "seat_pools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    attendance: Mapped[str] = mapped_column(String(16))
    capacity: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer, default=0)
    # Seats agencies hold before naming officers (the sum of the active holds' unnamed seats).
    held: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Monotonic ticket counter: waitlist order is the order tickets were drawn.
    waitlist_seq: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("session_id", "attendance", name="uq_seat_pools_session_attendance"),
        CheckConstraint("capacity >= 0", name="capacity_nonnegative"),
        CheckConstraint("confirmed >= 0 AND confirmed <= capacity", name="confirmed_within"),
        # Invariant 1 with holds: confirmed plus held seats never exceed the capacity.
        CheckConstraint("held >= 0 AND confirmed + held <= capacity", name="held_within"),
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
    # The directory's agency when known; ``agency_key`` is then ``id:<agency_id>``, so the
    # per-agency cap counts by agency, not by spelling.
    agency_id: Mapped[int | None] = mapped_column(
        ForeignKey("agencies.id", ondelete="SET NULL"), default=None
    )
    # The state certification number (POST/CJSTC/TCOLE id) and the state that issued it.
    post_id: Mapped[str | None] = mapped_column(String(40), default=None)
    post_state: Mapped[str | None] = mapped_column(String(2), default=None)
    # The hold this person was named into, if any.
    hold_id: Mapped[int | None] = mapped_column(
        ForeignKey("holds.id", ondelete="SET NULL"), default=None
    )
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
        # The feed fingerprint's latest change per session (feed_content).
        Index("ix_registrations_session_updated", "session_id", "updated_at"),
        # One person's history across sessions is one indexed query.
        Index("ix_registrations_email_key", "email_key"),
        Index("ix_registrations_agency", "agency_id", "status"),
    )


class Agency(Base):
    """A law-enforcement agency of the directory; a merged duplicate points at its survivor."""

    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(2))
    type: Mapped[str] = mapped_column(String(16))
    ori: Mapped[str | None] = mapped_column(String(9), unique=True, default=None)
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("agencies.id", ondelete="SET NULL"), default=None
    )
    # The secret of the agency's private calendar feed; replaced to revoke it.
    feed_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "type IN ('municipal', 'sheriff', 'state', 'tribal', 'campus', 'federal', 'other')",
            name="type",
        ),
        Index("ix_agencies_name_key", "name_key"),
    )


class AgencyImport(Base):
    """A CSV of agencies an admin uploaded: its checked rows, then the import's progress.

    ``preview`` until the admin confirms; ``importing`` while chunks of ``rows`` are written
    (``done`` of ``total`` so far, counted in the same transaction as each chunk); ``done``.
    """

    __tablename__ = "agency_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="preview")
    # The rows that passed the checks, as name/state/type/ori objects, and those that did not.
    rows: Mapped[dict[str, Any]] = mapped_column()
    problems: Mapped[dict[str, Any]] = mapped_column()
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("status IN ('preview', 'importing', 'done')", name="status"),
        CheckConstraint("done >= 0 AND done <= total", name="done_within"),
    )


class Hold(Base):
    """Seats an agency keeps in one pool before naming officers; ``remaining`` are unnamed."""

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("seat_pools.id", ondelete="CASCADE"))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    # The registrations' agency_key of the agency, so the cap counts held seats cheaply.
    agency_key: Mapped[str] = mapped_column(String(200))
    attendance: Mapped[str] = mapped_column(String(16))
    seats: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=HOLD_ACTIVE)
    release_at: Mapped[datetime]
    warned_at: Mapped[datetime | None] = mapped_column(default=None)
    released_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("seats > 0 AND remaining >= 0 AND remaining <= seats", name="seats"),
        CheckConstraint("status IN ('active', 'released')", name="status"),
        Index("ix_holds_session", "session_id", "status"),
        Index("ix_holds_due", "status", "release_at"),
        Index("ix_holds_agency", "agency_id"),
    )


class Account(Base):
    """A person who signs in: an admin (password in ``admin_users``), a coordinator of one or
    more agencies, or an instructor. Coordinators and instructors sign in by emailed link."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Lower-cased: one account per address, whatever its case.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    # ``pending``: asked for access and waits for an admin; ``disabled``: may not sign in.
    status: Mapped[str] = mapped_column(String(16), default="active")
    admin_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("admin_users.id", ondelete="CASCADE"), unique=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        CheckConstraint("role IN ('admin', 'coordinator', 'instructor')", name="role"),
        CheckConstraint("status IN ('active', 'pending', 'disabled')", name="status"),
    )


class AccountAgency(Base):
    """A coordinator's agencies (invariant 10: they see only these)."""

    __tablename__ = "account_agencies"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    agency_id: Mapped[int] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_account_agencies_agency", "agency_id"),)


class SignInLink(Base):
    """An emailed one-time sign-in link: only its hash is kept; 15 minutes, single use."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_sign_in_links_account", "account_id", "created_at"),)


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
    """One sign-in of one account, whoever it is: an admin with a password, a coordinator or an
    instructor by emailed link. The signed cookie names it; the server decides if it holds.

    The cookie carries a random id; only its SHA-256 is stored. Every signed-in request checks
    the row and the account, so signing out, changing the password, disabling or removing the
    account ends the sign-in on every instance at once (``scheduler.logins``). ``kind`` says how
    it began: ``admin`` (password, the admin pages) or ``link`` (an emailed link).
    """

    __tablename__ = "login_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20), default="admin")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_login_sessions_account", "account_id"),)


class Attendance(Base):
    """Whether one registrant was present at one meeting (and for how long, if virtual)."""

    __tablename__ = "attendance"

    registration_id: Mapped[int] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), primary_key=True
    )
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    present: Mapped[bool] = mapped_column(Boolean)
    minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)
    marked_by: Mapped[str] = mapped_column(String(320))

    __table_args__ = (
        CheckConstraint("source IN ('manual', 'checkin', 'zoom', 'teams')", name="source"),
        CheckConstraint("minutes IS NULL OR minutes >= 0", name="minutes"),
        Index("ix_attendance_session", "session_id"),
        Index("ix_attendance_meeting", "meeting_id"),
    )


class Completion(Base):
    """The outcome of a finalized session for one registrant, by the course's rule."""

    __tablename__ = "completions"

    registration_id: Mapped[int] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), primary_key=True
    )
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    completed: Mapped[bool] = mapped_column(Boolean)
    attended_minutes: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_completions_session", "session_id"),)


class RosterAudit(Base):
    """One change to a finalized roster: who, when, what it was, what it became, and why."""

    __tablename__ = "roster_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40))
    registration_id: Mapped[int | None] = mapped_column(Integer, default=None)
    meeting_id: Mapped[int | None] = mapped_column(Integer, default=None)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (Index("ix_roster_audit_session", "session_id", "at"),)


class Certificate(Base):
    """The proof of one completion: the facts printed and the exact PDF issued (invariant 9)."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id", ondelete="CASCADE"))
    # The verification code (``/verify/{code}``), at least 80 random bits.
    code: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="valid")
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(Text, default=None)
    replaces_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificates.id", ondelete="SET NULL"), default=None
    )
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        CheckConstraint("status IN ('valid', 'revoked')", name="status"),
        Index("ix_certificates_registration", "registration_id"),
        Index("ix_certificates_session", "session_id"),
    )


def shown_status(registration_status: str, session_status: str) -> str:
    """A registration's status as every surface shows it (API, pages, roster, feeds, invites).

    A cancelled session cancels every registration in it, whatever the row still says: its
    people are shown cancelled, hold no seat and never see the join URL again.
    """
    return CANCELLED if session_status == CANCELLED else registration_status
