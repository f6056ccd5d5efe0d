"""The session finder: upcoming sessions across every course, filtered, in date order, paged.

A page is cut by keyset, not by offset: the cursor names the last session shown by its start
and id, the order's own key, so a session booked, added or cancelled between two pages never
makes another appear twice or not at all. The cursor is opaque to clients (URL-safe base64 of
that key) and checked like any other input.

Dates in ``from``/``to`` are calendar days where the session happens: a session at 8 PM in
Los Angeles on 31 January is a January session even though it starts on 1 February in UTC.
The database narrows by UTC with a day's margin each side; the exact local-day test runs here.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from scheduler.catalog import POOLS_OF_MODE, SessionView, get_course, load_sessions
from scheduler.errors import Invalid, NotFound
from scheduler.feed_content import US_STATES
from scheduler.models import CANCELLED, MODES, SeatPool, TrainingSession

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
# Local days run from UTC-12 to UTC+14: widen the UTC window by that much each side.
_DAY_MARGIN = timedelta(hours=14)
FILTERS = ("course", "mode", "state", "from", "to", "available", "cursor", "limit")


@dataclass(frozen=True)
class FinderQuery:
    """What the reader asked for; every field optional."""

    course: str | None = None
    modes: tuple[str, ...] = ()
    state: str | None = None
    first_day: date | None = None
    last_day: date | None = None
    available: bool = False
    after: tuple[datetime, int] | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, params: Iterable[tuple[str, str]]) -> FinderQuery:
        """Read the finder's query parameters; raises ``Invalid`` naming every bad one.

        Empty values count as not given, so a plain HTML form with blank fields works.
        Unknown parameters are refused rather than ignored: a typo in a filter would
        otherwise show every session as if it had matched.
        """
        errors: dict[str, str] = {}
        seen: dict[str, str] = {}
        for key, value in params:
            if key not in FILTERS:
                errors[key] = "is not a filter of the finder"
            elif key in seen and key != "mode":
                errors[key] = "give it once"
            else:
                seen[key] = f"{seen[key]},{value}" if key in seen else value
        values = {k: v.strip() for k, v in seen.items() if v.strip()}

        modes: list[str] = []
        if "mode" in values:
            parts = [p.strip() for p in values["mode"].split(",") if p.strip()]
            if any(p not in MODES for p in parts):
                errors["mode"] = f"must be one or more of {', '.join(MODES)}"
            modes = [m for m in MODES if m in parts]
        state = values.get("state", "").upper() or None
        if state is not None and state not in US_STATES:
            errors["state"] = "must be a two-letter US state or territory code"
        first_day = _day(values, "from", errors)
        last_day = _day(values, "to", errors)
        if first_day and last_day and last_day < first_day:
            errors["to"] = "must not be before from"
        available = False
        if "available" in values:
            flag = values["available"].lower()
            if flag not in ("1", "0", "true", "false", "yes", "no", "on"):
                errors["available"] = "must be 1 or 0"
            available = flag in ("1", "true", "yes", "on")
        after = None
        if "cursor" in values:
            after = decode_cursor(values["cursor"])
            if after is None:
                errors["cursor"] = "is not a cursor this finder gave out"
        limit = DEFAULT_LIMIT
        if "limit" in values:
            raw = values["limit"]
            if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
                errors["limit"] = f"must be a whole number from 1 to {MAX_LIMIT}"
            else:
                limit = int(raw)
        course = values.get("course")
        if course is not None and len(course) > 80:
            errors["course"] = "is not a course"
        if errors:
            raise Invalid(errors)
        return cls(
            course=course,
            modes=tuple(modes),
            state=state,
            first_day=first_day,
            last_day=last_day,
            available=available,
            after=after,
            limit=limit,
        )

    def params(self) -> dict[str, str]:
        """The filters as query parameters (no cursor, no default limit), for page links."""
        out: dict[str, str] = {}
        if self.course:
            out["course"] = self.course
        if self.modes:
            out["mode"] = ",".join(self.modes)
        if self.state:
            out["state"] = self.state
        if self.first_day:
            out["from"] = self.first_day.isoformat()
        if self.last_day:
            out["to"] = self.last_day.isoformat()
        if self.available:
            out["available"] = "1"
        if self.limit != DEFAULT_LIMIT:
            out["limit"] = str(self.limit)
        return out


def _day(values: dict[str, str], name: str, errors: dict[str, str]) -> date | None:
    raw = values.get(name)
    if raw is None:
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "must be a date like 2027-01-31"
        return None


def encode_cursor(session: SessionView) -> str:
    key = [session.starts_at.astimezone(UTC).isoformat(), session.id]
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, int] | None:
    """The key a cursor names, or ``None`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        starts, session_id = json.loads(raw)
        instant = datetime.fromisoformat(starts)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None
    if instant.tzinfo is None or type(session_id) is not int or not 0 < session_id < 2**31:
        return None
    return instant.astimezone(UTC), session_id


@dataclass(frozen=True)
class FinderPage:
    sessions: list[SessionView]
    next_cursor: str | None


def has_free_seat(modes: tuple[str, ...]) -> Any:
    """A pool the asked modes can attend has a seat no one has taken.

    The one place the finder decides "seats available"; when held seats arrive they are
    subtracted here too.
    """
    pools = {pool for mode in (modes or MODES) for pool in POOLS_OF_MODE[mode]}
    return exists().where(
        SeatPool.session_id == TrainingSession.id,
        SeatPool.attendance.in_(sorted(pools)),
        SeatPool.confirmed < SeatPool.capacity,
    )


async def find_sessions(conn: AsyncConnection, query: FinderQuery, now: datetime) -> FinderPage:
    """One page of scheduled sessions that have not ended, by start, matching ``query``.

    Raises ``Invalid`` (naming ``course``) for a course that does not exist.
    """
    conditions: list[Any] = [
        TrainingSession.status != CANCELLED,
        TrainingSession.ends_at > now,
    ]
    if query.course is not None:
        try:
            course = await get_course(conn, query.course)
        except NotFound:
            raise Invalid({"course": "there is no such course"}) from None
        conditions.append(TrainingSession.course_id == course.id)
    if query.modes:
        conditions.append(TrainingSession.mode.in_(query.modes))
    if query.state is not None:
        conditions.append(func.upper(TrainingSession.venue_state) == query.state)
    if query.first_day is not None:
        start = datetime.combine(query.first_day, time(), UTC) - _DAY_MARGIN
        conditions.append(TrainingSession.starts_at >= start)
    if query.last_day is not None:
        end = datetime.combine(query.last_day + timedelta(days=1), time(), UTC) + _DAY_MARGIN
        conditions.append(TrainingSession.starts_at < end)
    if query.available:
        conditions.append(has_free_seat(query.modes))

    found: list[SessionView] = []
    after = query.after
    batch = query.limit + 1
    while len(found) <= query.limit:
        where = list(conditions)
        if after is not None:
            starts, session_id = after
            where.append(
                or_(
                    TrainingSession.starts_at > starts,
                    and_(TrainingSession.starts_at == starts, TrainingSession.id > session_id),
                )
            )
        ids = (
            (
                await conn.execute(
                    select(TrainingSession.id)
                    .where(*where)
                    .order_by(TrainingSession.starts_at, TrainingSession.id)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not ids:
            break
        views = await load_sessions(conn, session_ids=list(ids))
        found.extend(v for v in views if _on_local_days(v, query))
        last = views[-1]
        after = (last.starts_at, last.id)
        if len(ids) < batch:
            break
    page = found[: query.limit]
    more = len(found) > query.limit
    return FinderPage(page, encode_cursor(page[-1]) if more and page else None)


def _on_local_days(session: SessionView, query: FinderQuery) -> bool:
    day = session.starts_at.astimezone(session.zone).date()
    if query.first_day is not None and day < query.first_day:
        return False
    return not (query.last_day is not None and day > query.last_day)
