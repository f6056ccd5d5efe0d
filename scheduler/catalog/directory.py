"""The directories sessions draw on: instructors and venues.

An instructor's ``feed_token`` is the secret in their private calendar feed's URL; replacing it
(``PATCH`` with ``"rotate_feed_token": true``) revokes the old URL at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.models import utcnow
from scheduler.catalog.parsing import VENUE_LIMITS
from scheduler.db import Database
from scheduler.errors import NotFound
from scheduler.models import Instructor, SessionInstructor, TrainingSession, Venue
from scheduler.validation import Fields


@dataclass(frozen=True)
class Person:
    """An instructor as the admin sees them (with the private feed's token)."""

    id: int
    name: str
    email: str
    credentials: str
    public: bool
    feed_token: str
    updated_at: datetime


@dataclass(frozen=True)
class Place:
    id: int
    name: str
    address: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    room: str | None


def _flag(fields: Fields, name: str, default: bool) -> bool:
    value = fields.data.get(name, default)
    if isinstance(value, str) and value.lower() in ("true", "on", "1", "false", "0", ""):
        value = value.lower() in ("true", "on", "1")
    if not isinstance(value, bool):
        fields.fail(name, "must be true or false")
        return default
    return value


def parse_instructor(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validate an instructor body; raises ``Invalid``. With ``partial`` only given fields."""
    fields = Fields(data)
    values: dict[str, Any] = {}
    given = fields.data
    if not partial or "name" in given:
        values["name"] = fields.text("name", max_length=200)
    if not partial or "email" in given:
        values["email"] = fields.email("email")
    if not partial or "credentials" in given:
        values["credentials"] = fields.text(
            "credentials", max_length=500, required=False, default=""
        )
    if not partial or "public" in given:
        values["public"] = _flag(fields, "public", False)
    fields.done()
    return values


def _person(row: Any) -> Person:
    return Person(
        row.id,
        row.name,
        row.email,
        row.credentials,
        bool(row.public),
        row.feed_token,
        row.updated_at,
    )


async def create_instructor(db: Database, data: Any) -> Person:
    """Add an instructor to the directory. Raises ``Invalid``."""
    values = parse_instructor(data)
    now = utcnow()
    async with db.write() as conn:
        new_id = (
            await conn.execute(
                insert(Instructor)
                .values(
                    **values, feed_token=secrets.token_urlsafe(24), created_at=now, updated_at=now
                )
                .returning(Instructor.id)
            )
        ).scalar_one()
        return await get_instructor(conn, new_id)


async def update_instructor(db: Database, instructor_id: int, data: Any) -> Person:
    """Change an instructor; ``rotate_feed_token: true`` revokes the private feed's old URL.

    A change of name or visibility touches their sessions, so feeds show it. Raises
    ``NotFound`` or ``Invalid``.
    """
    values = parse_instructor(data, partial=True)
    fields = Fields(data)
    rotate = _flag(fields, "rotate_feed_token", False)
    fields.done()
    now = utcnow()
    async with db.write() as conn:
        await get_instructor(conn, instructor_id)
        if rotate:
            values["feed_token"] = secrets.token_urlsafe(24)
        if values:
            await conn.execute(
                update(Instructor)
                .where(Instructor.id == instructor_id)
                .values(**values, updated_at=now)
            )
            await conn.execute(
                update(TrainingSession)
                .where(
                    TrainingSession.id.in_(
                        select(SessionInstructor.session_id).where(
                            SessionInstructor.instructor_id == instructor_id
                        )
                    )
                )
                .values(updated_at=now)
            )
        return await get_instructor(conn, instructor_id)


async def get_instructor(conn: AsyncConnection, instructor_id: int) -> Person:
    row = (await conn.execute(select(Instructor).where(Instructor.id == instructor_id))).first()
    if row is None:
        raise NotFound("instructor", instructor_id)
    return _person(row)


async def instructor_by_feed_token(conn: AsyncConnection, token: str) -> Person:
    """The instructor whose private feed URL carries ``token``; raises ``NotFound``."""
    row = (await conn.execute(select(Instructor).where(Instructor.feed_token == token))).first()
    if row is None:
        raise NotFound("calendar", "this link")
    return _person(row)


async def list_instructors(conn: AsyncConnection) -> list[Person]:
    rows = await conn.execute(select(Instructor).order_by(Instructor.name, Instructor.id))
    return [_person(row) for row in rows.all()]


async def sessions_taught(conn: AsyncConnection, instructor_id: int, since: datetime) -> list[int]:
    """Ids of the sessions an instructor teaches that end after ``since``."""
    rows = await conn.execute(
        select(SessionInstructor.session_id)
        .join(TrainingSession, TrainingSession.id == SessionInstructor.session_id)
        .where(SessionInstructor.instructor_id == instructor_id, TrainingSession.ends_at > since)
    )
    return list(rows.scalars().all())


async def instructor_ids_for(conn: AsyncConnection, email: str) -> list[int]:
    """The directory entries of a signed-in instructor: linked by their (any-case) email."""
    rows = await conn.execute(
        select(Instructor.id).where(func.lower(Instructor.email) == email.strip().lower())
    )
    return list(rows.scalars().all())


async def teaches(conn: AsyncConnection, email: str, session_id: int) -> bool:
    """Whether the instructor signed in as ``email`` teaches this session (invariant 10): the
    one rule every instructor page and action asks."""
    found = (
        await conn.execute(
            select(SessionInstructor.session_id)
            .join(Instructor, Instructor.id == SessionInstructor.instructor_id)
            .where(
                SessionInstructor.session_id == session_id,
                func.lower(Instructor.email) == email.strip().lower(),
            )
            .limit(1)
        )
    ).first()
    return found is not None


async def sessions_of(conn: AsyncConnection, email: str) -> list[int]:
    """Every session (past and upcoming) the instructor signed in as ``email`` teaches."""
    rows = await conn.execute(
        select(SessionInstructor.session_id)
        .join(Instructor, Instructor.id == SessionInstructor.instructor_id)
        .join(TrainingSession, TrainingSession.id == SessionInstructor.session_id)
        .where(func.lower(Instructor.email) == email.strip().lower())
        .order_by(TrainingSession.starts_at.desc())
    )
    # Two directory entries with one address may both teach a session: list it once.
    return list(dict.fromkeys(rows.scalars().all()))


def parse_venue(data: Any) -> dict[str, Any]:
    """Validate a venue body; raises ``Invalid``."""
    fields = Fields(data)
    values: dict[str, Any] = {"name": fields.text("name", max_length=VENUE_LIMITS["name"])}
    for key in ("address", "city", "state", "postal_code"):
        values[key] = fields.text(key, max_length=VENUE_LIMITS[key], required=False)
    values["room"] = fields.text("room", max_length=120, required=False)
    fields.done()
    return values


def _place(row: Any) -> Place:
    return Place(row.id, row.name, row.address, row.city, row.state, row.postal_code, row.room)


async def create_venue(db: Database, data: Any) -> Place:
    """Add a venue (one room of a building) to the directory. Raises ``Invalid``."""
    values = parse_venue(data)
    now = utcnow()
    async with db.write() as conn:
        new_id = (
            await conn.execute(
                insert(Venue).values(**values, created_at=now, updated_at=now).returning(Venue.id)
            )
        ).scalar_one()
        row = (await conn.execute(select(Venue).where(Venue.id == new_id))).one()
        return _place(row)


async def get_venue(conn: AsyncConnection, venue_id: int) -> Place:
    row = (await conn.execute(select(Venue).where(Venue.id == venue_id))).first()
    if row is None:
        raise NotFound("venue", venue_id)
    return _place(row)


async def update_venue(db: Database, venue_id: int, data: Any) -> Place:
    """Change a directory venue; raises ``NotFound`` or ``Invalid``.

    Sessions copy a venue's fields when it is chosen, and their registrants were told that
    address: an edit here is for the sessions scheduled from now on. Moving an existing session
    is an edit of that session, which tells its registrants.
    """
    values = parse_venue(data)
    async with db.write() as conn:
        await get_venue(conn, venue_id)
        await conn.execute(
            update(Venue).where(Venue.id == venue_id).values(**values, updated_at=utcnow())
        )
        return await get_venue(conn, venue_id)


async def list_venues(conn: AsyncConnection) -> list[Place]:
    rows = await conn.execute(select(Venue).order_by(Venue.name, Venue.room, Venue.id))
    return [_place(row) for row in rows.all()]


__all__ = [
    "Person",
    "Place",
    "create_instructor",
    "create_venue",
    "get_instructor",
    "get_venue",
    "instructor_by_feed_token",
    "list_instructors",
    "list_venues",
    "sessions_of",
    "teaches",
    "update_instructor",
    "update_venue",
]
