"""Course and session bodies (API JSON or form posts) into checked values; raises ``Invalid``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.catalog.views import SessionView
from scheduler.errors import Invalid
from scheduler.models import COMPLETION_RULES, DELIVERY, MAX_MEETINGS, MODES
from scheduler.validation import Fields

POOLS_OF_MODE = {
    "in_person": ("in_person",),
    "virtual": ("virtual",),
    "hybrid": ("in_person", "virtual"),
}
VENUE_FIELDS = ("name", "address", "city", "state", "postal_code")
# One meeting is at most a day; a legacy one-block session keeps its old 14-day limit.
MAX_MEETING = timedelta(hours=24)
VENUE_LIMITS = {"name": 200, "address": 300, "city": 120, "state": 40, "postal_code": 20}


def parse_course(data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validate a course body; raises ``Invalid``. With ``partial`` only given fields count."""
    fields = Fields(data)
    values: dict[str, Any] = {}

    def want(name: str) -> bool:
        return not partial or name in fields.data

    if want("slug") and not partial:
        values["slug"] = fields.slug("slug")
    if want("title"):
        values["title"] = fields.text("title", max_length=200)
    if want("description"):
        values["description"] = fields.text(
            "description", max_length=10_000, required=False, multiline=True, default=""
        )
    if want("audience"):
        values["audience"] = fields.text("audience", max_length=300, required=False, default="")
    if want("provider"):
        values["provider"] = fields.text("provider", max_length=200, required=False, default="")
    if want("delivery"):
        raw = fields.data.get("delivery", ["in_person", "virtual"])
        if isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(raw, list) or not raw or any(d not in DELIVERY for d in raw):
            fields.fail("delivery", f"must be a list drawn from {', '.join(DELIVERY)}")
        else:
            values["delivery"] = ",".join(d for d in DELIVERY if d in raw)
    if want("online_url"):
        values["online_url"] = fields.url("online_url")
    values.update(_completion(fields, partial=partial))
    fields.done()
    if values.get("delivery") == "online" and not values.get("online_url") and not partial:
        raise Invalid({"online_url": "a self-paced online course needs its link"})
    return values


def _completion(fields: Fields, *, partial: bool) -> dict[str, Any]:
    """The completion settings of a course body: JSON ``completion: {rule, percent}`` (errors
    named ``completion.rule``/``completion.percent``) or a form's flat ``completion_rule`` and
    ``completion_percent``; ``credit_hours``, ``course_number``, ``attendance_threshold``."""
    values: dict[str, Any] = {}
    data = fields.data
    nested = data.get("completion")
    if "completion" in data or "completion_rule" in data or not partial:
        if nested is not None and not isinstance(nested, dict):
            fields.fail("completion", "must be an object with rule and percent")
        else:
            inner = Fields(nested) if isinstance(nested, dict) else None
            rule_name, percent_name = (
                ("rule", "percent") if inner else ("completion_rule", "completion_percent")
            )
            source = inner or fields
            prefix = "completion." if inner else ""
            # Not given: all meetings (a form's empty choice too; JSON says null).
            rule = source.data.get(rule_name)
            if rule is None or (rule == "" and not inner):
                rule = "all_meetings"
            if not isinstance(rule, str) or rule not in COMPLETION_RULES:
                fields.fail(prefix + rule_name, f"must be one of {', '.join(COMPLETION_RULES)}")
            else:
                percent = source.integer(percent_name, minimum=1, maximum=100, required=False)
                for name, why in source.errors.items() if inner else ():
                    fields.fail(prefix + name, why)
                if rule == "percent_hours" and percent is None:
                    fields.fail(prefix + percent_name, "is required when the rule is percent_hours")
                values["completion_rule"] = rule
                values["completion_percent"] = percent if rule == "percent_hours" else None
    if want_any(fields, "credit_hours", partial):
        values["credit_hours"] = _hours(fields, "credit_hours")
    if want_any(fields, "course_number", partial):
        values["course_number"] = fields.text("course_number", max_length=40, required=False)
    if want_any(fields, "attendance_threshold", partial):
        threshold = fields.integer("attendance_threshold", minimum=1, maximum=100, required=False)
        values["attendance_threshold"] = 80 if threshold is None else threshold
    return values


def want_any(fields: Fields, name: str, partial: bool) -> bool:
    return not partial or name in fields.data


def _hours(fields: Fields, name: str) -> Decimal | None:
    raw = fields.data.get(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        fields.fail(name, "must be a number of hours, such as 7.5")
        return None
    try:
        hours = Decimal(str(raw).strip())
    except InvalidOperation:
        fields.fail(name, "must be a number of hours, such as 7.5")
        return None
    if not hours.is_finite() or not Decimal("0.25") <= hours <= Decimal("9999.99"):
        fields.fail(name, "must be between 0.25 and 9999.99")
        return None
    if hours != hours.quantize(Decimal("0.01")):
        fields.fail(name, "may have at most two decimals")
        return None
    return hours.quantize(Decimal("0.01"))


@dataclass(frozen=True)
class MeetingInput:
    """One meeting of a parsed schedule: ``id`` names an existing meeting it keeps (or None)."""

    id: int | None
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class SessionInput:
    """A checked session body.

    ``columns`` are the session's own column values to write (only those the body gives, on a
    PATCH); ``meetings`` the whole new schedule, or None when it stays as it is; ``instructors``
    the new set of instructor ids, or None when unchanged. ``venue_id`` in ``columns`` is still
    to be looked up (``catalog.commands`` copies the venue's fields and refuses unknown ids).
    """

    columns: dict[str, Any]
    capacities: dict[str, int]
    meetings: tuple[MeetingInput, ...] | None = None
    instructors: tuple[int, ...] | None = None


def parse_session(
    data: Any, *, current: SessionView | None = None, now: datetime | None = None
) -> SessionInput:
    """Validate a session body into a :class:`SessionInput`; raises ``Invalid``.

    With ``current`` the body is a PATCH: absent fields keep their value, and times given
    without a time zone are read in the session's current zone. A schedule comes either as
    ``meetings`` (1-60, ordered, not overlapping; an entry with ``id`` keeps that meeting) or
    as ``starts_at``/``ends_at`` (one meeting). With ``now``, a meeting that is new or moved
    must not start in the past. Errors name the field path, e.g. ``meetings[1].ends_at``.
    """
    fields = Fields(data)
    given = fields.data
    values: dict[str, Any] = {}
    if current is None or "timezone" in given:
        tz = fields.timezone("timezone")
        if tz is not None:
            values["timezone"] = tz.key
    else:
        tz = current.zone
    meetings: tuple[MeetingInput, ...] | None = None
    if "meetings" in given:
        meetings = _parse_meetings(given["meetings"], tz, fields, current, now)
    elif current is None or "starts_at" in given or "ends_at" in given:
        if current is not None and len(current.schedule) > 1:
            fields.fail(
                "starts_at" if "starts_at" in given else "ends_at",
                "this session meets on several days: change its meetings instead",
            )
        else:
            known = current.schedule[0] if current is not None else None
            starts = (
                fields.local_datetime("starts_at", tz)
                if known is None or "starts_at" in given
                else known.starts_at
            )
            ends = (
                fields.local_datetime("ends_at", tz)
                if known is None or "ends_at" in given
                else known.ends_at
            )
            if starts is not None and ends is not None:
                if ends <= starts:
                    fields.fail("ends_at", "must be after the start")
                elif ends - starts > timedelta(days=14):
                    fields.fail("ends_at", "a session lasts at most 14 days")
                else:
                    meetings = (MeetingInput(known.id or None if known else None, starts, ends),)
    if current is not None and "timezone" in given and tz is not None and meetings is None:
        # A new zone with unchanged wall-clock times moves the instants.
        meetings = tuple(
            MeetingInput(
                m.id or None,
                _same_wall(m.starts_at, current.zone, tz),
                _same_wall(m.ends_at, current.zone, tz),
            )
            for m in current.schedule
        )
    if current is None or "registration_closes_at" in given:
        values["registration_closes_at"] = fields.local_datetime(
            "registration_closes_at", tz, required=False
        )
    if current is None or "mode" in given:
        values["mode"] = fields.choice("mode", MODES)
    mode = values.get("mode") or (current.mode if current else None)
    if current is None or "max_per_agency" in given:
        values["max_per_agency"] = fields.integer(
            "max_per_agency", minimum=1, maximum=10_000, required=False
        )
    if "venue_id" in given and given["venue_id"] is not None:
        venue_id = fields.integer("venue_id", minimum=1, maximum=2**31 - 1)
        if venue_id is not None:
            values["venue_id"] = venue_id
    elif "venue" in given and given["venue"] is not None:
        venue = given["venue"]
        if not isinstance(venue, dict):
            fields.fail("venue", "must be an object with name, address, city, state, postal_code")
        else:
            venue_fields = Fields(venue)
            # A free-typed venue is not the directory's: it takes no part in room bookings.
            values["venue_id"] = None
            for key in VENUE_FIELDS:
                if current is None or key in venue:
                    values[f"venue_{key}"] = venue_fields.text(
                        key, max_length=VENUE_LIMITS[key], required=False
                    )
            if current is None or "room" in venue:
                values["venue_room"] = venue_fields.text("room", max_length=120, required=False)
            for key, why in venue_fields.errors.items():
                fields.fail(f"venue.{key}", why)
    if current is None or "allow_overlap" in given:
        flag = given.get("allow_overlap", False)
        if flag in (None, ""):
            flag = False
        if isinstance(flag, str) and flag.lower() in ("true", "on", "1", "false", "0"):
            flag = flag.lower() in ("true", "on", "1")
        if not isinstance(flag, bool):
            fields.fail("allow_overlap", "must be true or false")
        else:
            values["allow_overlap"] = flag
    instructors: tuple[int, ...] | None = None
    if "instructors" in given or current is None:
        instructors = _parse_ids(given.get("instructors") or [], "instructors", fields)
    if current is None or "join_url" in given:
        values["join_url"] = fields.url("join_url")
    if current is None or "platform" in given:
        values["platform"] = fields.text("platform", max_length=80, required=False)

    capacities: dict[str, int] = {}
    if mode in POOLS_OF_MODE:
        offered = POOLS_OF_MODE[mode]
        for attendance in ("in_person", "virtual"):
            name = f"{attendance}_capacity"
            if attendance in offered:
                needed = current is None or current.pool(attendance) is None
                if needed or name in given:
                    capacity = fields.integer(name, minimum=0, maximum=100_000)
                    if capacity is not None:
                        capacities[attendance] = capacity
            elif given.get(name) not in (None, 0):
                fields.fail(name, f"a {mode} session has no {attendance.replace('_', '-')} seats")
    fields.done()

    schedule = meetings if meetings is not None else (current.schedule if current else ())
    starts = schedule[0].starts_at if schedule else None
    closes = values.get("registration_closes_at")
    if closes and starts and closes > starts:
        raise Invalid({"registration_closes_at": "must not be after the first meeting's start"})
    has_venue = (
        values.get("venue_id")
        or values.get("venue_name")
        or (current.venue_name if current and "venue_id" not in values else None)
    )
    if mode in ("in_person", "hybrid") and not has_venue:
        raise Invalid({"venue.name": "an in-person or hybrid session needs a venue"})
    join_url = (
        values.get("join_url") if "join_url" in values else (current.join_url if current else None)
    )
    if mode in ("virtual", "hybrid") and not join_url:
        raise Invalid({"join_url": "a virtual or hybrid session needs its join URL"})
    return SessionInput(
        columns=values, capacities=capacities, meetings=meetings, instructors=instructors
    )


def _same_wall(instant: datetime, old: ZoneInfo, new: ZoneInfo) -> datetime:
    wall = instant.astimezone(old).replace(tzinfo=None)
    return wall.replace(tzinfo=new).astimezone(UTC)


def _parse_ids(raw: Any, name: str, fields: Fields) -> tuple[int, ...]:
    if not isinstance(raw, list):
        fields.fail(name, "must be a list of ids")
        return ()
    ids: list[int] = []
    for index, item in enumerate(raw):
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item.strip())
        if isinstance(item, float) and item.is_integer() and abs(item) < 2**53:
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 2**31:
            fields.fail(f"{name}[{index}]", "must be an id (a whole number)")
        elif item in ids:
            fields.fail(f"{name}[{index}]", "is listed twice")
        else:
            ids.append(item)
    if len(ids) > 20:
        fields.fail(name, "at most 20")
    return tuple(ids)


def _parse_meetings(
    raw: Any,
    tz: ZoneInfo | None,
    fields: Fields,
    current: SessionView | None,
    now: datetime | None,
) -> tuple[MeetingInput, ...] | None:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_MEETINGS:
        fields.fail("meetings", f"must be a list of 1 to {MAX_MEETINGS} meetings")
        return None
    known = {m.id: m for m in current.schedule} if current is not None else {}
    parsed: list[MeetingInput] = []
    seen: set[int] = set()
    ok = True
    for index, entry in enumerate(raw):
        path = f"meetings[{index}]"
        if not isinstance(entry, dict):
            fields.fail(path, "must be an object with starts_at and ends_at")
            ok = False
            continue
        inner = Fields(entry)
        meeting_id: int | None = None
        if entry.get("id") not in (None, ""):
            meeting_id = inner.integer("id", minimum=1, maximum=2**31 - 1)
            if meeting_id is not None and (meeting_id not in known or meeting_id in seen):
                inner.fail(
                    "id",
                    "is not a meeting of this session"
                    if meeting_id not in known
                    else "is listed twice",
                )
            if meeting_id is not None:
                seen.add(meeting_id)
        starts = inner.local_datetime("starts_at", tz)
        ends = inner.local_datetime("ends_at", tz)
        if starts is not None and ends is not None:
            if ends <= starts:
                inner.fail("ends_at", "must be after the start")
            elif ends - starts > MAX_MEETING:
                inner.fail("ends_at", "a meeting lasts at most 24 hours")
            before = known.get(meeting_id) if meeting_id is not None else None
            moved = before is None or (before.starts_at, before.ends_at) != (starts, ends)
            if now is not None and moved and starts < now:
                inner.fail("starts_at", "is in the past")
        for key, why in inner.errors.items():
            fields.fail(f"{path}.{key}", why)
        if inner.errors or starts is None or ends is None:
            ok = False
            continue
        if parsed and starts < parsed[-1].starts_at:
            fields.fail(f"{path}.starts_at", "meetings must be in order of their start")
            ok = False
        elif parsed and starts < parsed[-1].ends_at:
            fields.fail(f"{path}.starts_at", f"overlaps meetings[{index - 1}]")
            ok = False
        parsed.append(MeetingInput(meeting_id, starts, ends))
    return tuple(parsed) if ok else None
