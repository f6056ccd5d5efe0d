"""Which sessions a subscription feed shows, and a cheap fingerprint of everything it shows.

A feed is rendered from the database only when its fingerprint changes. The fingerprint is one
aggregate query over the same rows the feed shows: how many sessions and which (count, sum of
ids), their latest change time and sequences, the seat counters of their pools (seat changes do
not touch a session's ``updated_at``, yet the feed prints seats left), and the courses' change
times. Every instance computes it from the database, so a change made through any instance is
seen by all of them on the next request. Between commits the query would only give the same
answer again, so :class:`FreshFingerprints` keeps it while ``Database.change_token()`` (SQLite's
``data_version``, PostgreSQL's change counter of this database) is unchanged.

Reads run in one snapshot (``REPEATABLE READ`` on PostgreSQL, a deferred transaction on SQLite
WAL), so the fingerprint and the rows rendered under it always belong together.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, case, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.models import UTCDateTime
from scheduler import catalog
from scheduler.calendar import RENDER_VERSION, render_feed
from scheduler.catalog import CourseView
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.errors import Invalid, NotFound
from scheduler.models import (
    CANCELLED,
    MODES,
    SCHEDULED,
    Course,
    Meeting,
    Registration,
    SeatPool,
    TrainingSession,
)
from scheduler.validation import STATES

# Scheduled sessions stay in a feed this long after they end, so coordinators keep some history;
# cancelled ones leave as soon as they are past.
KEEP_PAST = timedelta(days=180)
# The feeds' ?state= filter takes the same codes as an agency's state.
US_STATES = STATES


@dataclass(frozen=True)
class FeedFilter:
    """What one feed URL selects: a course (or all), delivery modes, a venue's US state."""

    course_slug: str | None = None
    modes: tuple[str, ...] = ()
    state: str | None = None
    # ``?deadlines=1``: add a "Registration closes" event for sessions with a close time.
    deadlines: bool = False

    @classmethod
    def parse(cls, params: Iterable[tuple[str, str]], course_slug: str | None = None) -> FeedFilter:
        """Read ``?mode=`` (repeatable or comma-separated) and ``?state=`` (a USPS code).

        Other parameters are ignored: calendar clients add their own. Raises ``Invalid``.
        """
        modes: list[str] = []
        states: list[str] = []
        errors: dict[str, str] = {}
        deadlines = False
        for key, value in params:
            if key == "deadlines":
                if value not in ("0", "1", "true", "false", ""):
                    errors["deadlines"] = "must be 1 or 0"
                deadlines = value in ("1", "true")
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if key == "mode":
                bad = [p for p in parts if p not in MODES]
                if bad or not parts:
                    errors["mode"] = f"must be one or more of {', '.join(MODES)}"
                modes += [p for p in parts if p in MODES and p not in modes]
            elif key == "state":
                upper = [p.upper() for p in parts]
                if len(upper) != 1 or upper[0] not in US_STATES:
                    errors["state"] = "must be one two-letter US state or territory code"
                else:
                    states.append(upper[0])
        if len(set(states)) > 1:
            errors["state"] = "give one state"
        if errors:
            raise Invalid(errors)
        return cls(
            course_slug=course_slug,
            modes=tuple(m for m in MODES if m in modes),
            state=states[0] if states else None,
            deadlines=deadlines,
        )

    def key(self) -> str:
        return self._key

    @cached_property
    def _key(self) -> str:
        # Kept on the instance: the feeds keep parsed filters, and look this up per request.
        key = f"{self.course_slug or '*'}|{','.join(self.modes)}|{self.state or ''}"
        return key + ("|deadlines" if self.deadlines else "")


def _conditions(course: bool, modes: tuple[str, ...], state: bool) -> list[ColumnElement[bool]]:
    """The WHERE of a feed, with its values as bind parameters (see :func:`_params`)."""
    conditions: list[ColumnElement[bool]] = [
        or_(
            and_(
                TrainingSession.status == SCHEDULED,
                TrainingSession.ends_at > bindparam("keep_after", type_=UTCDateTime()),
            ),
            and_(
                TrainingSession.status == CANCELLED,
                TrainingSession.ends_at > bindparam("now", type_=UTCDateTime()),
            ),
        )
    ]
    if course:
        course_id = select(Course.id).where(Course.slug == bindparam("slug")).scalar_subquery()
        conditions.append(TrainingSession.course_id == course_id)
    if modes:
        conditions.append(TrainingSession.mode.in_(modes))
    if state:
        conditions.append(func.upper(TrainingSession.venue_state) == bindparam("state"))
    return conditions


def _shape(feed: FeedFilter) -> tuple[bool, tuple[str, ...], bool]:
    return (feed.course_slug is not None, tuple(feed.modes), feed.state is not None)


def _params(feed: FeedFilter, now: datetime) -> dict[str, Any]:
    params: dict[str, Any] = {"now": now, "keep_after": now - KEEP_PAST}
    if feed.course_slug is not None:
        params["slug"] = feed.course_slug
    if feed.state is not None:
        params["state"] = feed.state
    return params


@dataclass(frozen=True)
class Fingerprint:
    etag: str
    last_modified: datetime | None
    # The first instant at which a session leaves the feed with no write to the database.
    valid_until: datetime | None = None


def _latest(*stamps: Any) -> datetime | None:
    found = [s for s in stamps if isinstance(s, datetime)]
    return max(found) if found else None


@lru_cache(maxsize=64)
def _fingerprint_statement(course: bool, modes: tuple[str, ...], state: bool) -> Select[Any]:
    """The fingerprint query for one shape of feed, built once.

    Built per call it cost more to compile (a cache key over three subqueries) than to run;
    built once, SQLAlchemy reuses its compiled form and only the bind values change.
    """
    where = _conditions(course, modes, state)
    sessions = (
        select(
            func.count(TrainingSession.id).label("n"),
            func.max(TrainingSession.updated_at).label("changed"),
            func.coalesce(func.sum(TrainingSession.id), 0).label("ids"),
            func.coalesce(func.sum(TrainingSession.sequence), 0).label("seqs"),
            # When the first of these sessions leaves the feed by time alone (see _conditions).
            func.min(case((TrainingSession.status == CANCELLED, TrainingSession.ends_at))).label(
                "first_cancelled_end"
            ),
            func.min(case((TrainingSession.status == SCHEDULED, TrainingSession.ends_at))).label(
                "first_scheduled_end"
            ),
        )
        .where(*where)
        .subquery()
    )
    pools = (
        select(
            # Held seats change what is left as much as confirmed ones do.
            func.coalesce(func.sum(SeatPool.confirmed + SeatPool.held), 0).label("confirmed"),
            # Weighted by id so a seat taken in one pool and freed in another still shows.
            func.coalesce(func.sum((SeatPool.confirmed + SeatPool.held) * SeatPool.id), 0).label(
                "weighted"
            ),
            func.coalesce(func.sum(SeatPool.capacity), 0).label("capacity"),
            func.count(SeatPool.id).label("pools"),
        )
        .join(TrainingSession, TrainingSession.id == SeatPool.session_id)
        .where(*where)
        .subquery()
    )
    # The latest change of each session's registrations, one descent of
    # ix_registrations_session_updated per session: a join would read every registration of
    # the feed's sessions (tens of thousands with half a year of history kept).
    each_changed = (
        select(func.max(Registration.updated_at))
        .where(Registration.session_id == TrainingSession.id)
        .scalar_subquery()
    )
    seats_changed = select(func.max(each_changed)).where(*where).scalar_subquery()
    # Removed meetings stay in the feed until they would have ended: how many are still shown
    # and when the first one leaves, so the ETag changes when one drops out by time alone.
    removed = (
        select(
            func.count(Meeting.id).label("removed"),
            func.min(Meeting.ends_at).label("first_removed_end"),
        )
        .join(TrainingSession, TrainingSession.id == Meeting.session_id)
        .where(
            *where,
            Meeting.status == CANCELLED,
            Meeting.ends_at > bindparam("now", type_=UTCDateTime()),
        )
        .subquery()
    )
    courses = select(
        func.count(Course.id).label("courses"), func.max(Course.updated_at).label("changed")
    )
    if course:
        courses = courses.where(Course.slug == bindparam("slug"))
    course_sq = courses.subquery()
    return select(
        sessions.c.n,
        sessions.c.changed,
        sessions.c.ids,
        sessions.c.seqs,
        sessions.c.first_cancelled_end,
        sessions.c.first_scheduled_end,
        pools.c.confirmed,
        pools.c.weighted,
        pools.c.capacity,
        pools.c.pools,
        course_sq.c.courses,
        course_sq.c.changed.label("course_changed"),
        seats_changed.label("seats_changed"),
        removed.c.removed,
        removed.c.first_removed_end,
    ).select_from(sessions.join(pools, true()).join(course_sq, true()).join(removed, true()))


async def fingerprint(
    conn: AsyncConnection, feed: FeedFilter, now: datetime, *, base_url: str
) -> Fingerprint:
    """A strong ETag and Last-Modified for the feed, from one aggregate query.

    Raises ``NotFound`` when the feed is a course's and there is no such course.
    """
    statement = _fingerprint_statement(*_shape(feed))
    row = (await conn.execute(statement, _params(feed, now))).one()
    if feed.course_slug is not None and int(row.courses) == 0:
        raise NotFound("course", feed.course_slug)
    # Links in the feed start with the base URL, so it is part of what the bytes depend on.
    parts = [str(value) for value in row] + [RENDER_VERSION, feed.key(), base_url]
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]
    last = _latest(row.changed, row.course_changed, row.seats_changed)
    leaves = [
        stamp
        for stamp in (
            _as_utc(row.first_cancelled_end),
            _as_utc(row.first_removed_end),
            _as_utc(row.first_scheduled_end, KEEP_PAST),
        )
        if stamp is not None
    ]
    return Fingerprint(
        etag=f'"{digest}"', last_modified=last, valid_until=min(leaves) if leaves else None
    )


def _as_utc(value: Any, later: timedelta = timedelta(0)) -> datetime | None:
    return value + later if isinstance(value, datetime) else None


async def render(
    conn: AsyncConnection, feed: FeedFilter, settings: Settings, now: datetime
) -> bytes:
    """The feed's bytes from the rows it shows. Raises ``NotFound`` for an unknown course."""
    course: CourseView | None = None
    if feed.course_slug is not None:
        course = await catalog.get_course(conn, feed.course_slug)
    ids = (
        (
            await conn.execute(
                select(TrainingSession.id).where(*_conditions(*_shape(feed))),
                _params(feed, now),
            )
        )
        .scalars()
        .all()
    )
    sessions = await catalog.load_sessions(conn, session_ids=list(ids)) if ids else []
    courses = {c.id: c for c in await catalog.list_courses(conn)}
    if course is not None:
        name = course.title
        description = f"Scheduled sessions of {course.title}"
        path = f"/courses/{course.slug}/calendar.ics"
    else:
        name = "Training sessions"
        description = "Scheduled sessions of every course"
        path = "/calendar.ics"
    if feed.modes or feed.state:
        picked = [*(m.replace("_", " ") for m in feed.modes), *([feed.state] if feed.state else [])]
        name = f"{name} ({', '.join(picked)})"
    query = "&".join(
        [*(f"mode={m}" for m in feed.modes), *([f"state={feed.state}"] if feed.state else [])]
    )
    if feed.deadlines:
        query = f"{query}&deadlines=1" if query else "deadlines=1"
    source = settings.base_url + path + (f"?{query}" if query else "")
    return render_feed(
        sessions,
        courses,
        settings,
        name=name,
        description=description,
        source=source,
        now=now,
        deadlines=feed.deadlines,
    )


@asynccontextmanager
async def snapshot(db: Database) -> AsyncIterator[AsyncConnection]:
    """A read-only transaction in which every statement sees the same database state."""
    async with db.engine.connect() as conn:
        if not db.is_sqlite:
            await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            yield conn


async def current_fingerprint(
    db: Database, feed: FeedFilter, now: datetime, *, base_url: str
) -> Fingerprint:
    """The feed's fingerprint in one statement, for the warm and 304 paths.

    On PostgreSQL it runs in autocommit: one round trip instead of BEGIN, query and COMMIT. A
    single statement already sees one consistent state. SQLite's in-process read costs too
    little to be worth a path of its own. Raises ``NotFound`` like :func:`fingerprint`.
    """
    if db.is_sqlite:
        async with db.read() as conn:
            return await fingerprint(conn, feed, now, base_url=base_url)
    async with db.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return await fingerprint(autocommit, feed, now, base_url=base_url)


class FreshFingerprints:
    """Fingerprints this process computed, reused while the database reports no commit since.

    The warm and 304 paths then cost a look at :meth:`Database.change_token` instead of the
    aggregate query. An entry is reused only when the token is unchanged, so a change committed
    through any instance is seen on the next request, and only until its ``valid_until``, when
    a session leaves the feed by time alone. Bounded: least recently used entries go first.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[Hashable, Fingerprint]] = OrderedDict()

    async def current(
        self, db: Database, feed: FeedFilter, now: datetime, *, base_url: str
    ) -> Fingerprint:
        """The feed's fingerprint, from this cache when nothing was committed since."""
        # The token is read before the query: a commit landing in between leaves a newer
        # fingerprint under an older token, which the next request's token will not match.
        token = await db.change_token()
        key = (feed.key(), base_url)
        known = self._entries.get(key)
        if (
            token is not None
            and known is not None
            and known[0] == token
            and (known[1].valid_until is None or now < known[1].valid_until)
        ):
            self._entries.move_to_end(key)
            return known[1]
        fp = await current_fingerprint(db, feed, now, base_url=base_url)
        if token is not None:
            self._entries[key] = (token, fp)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return fp
