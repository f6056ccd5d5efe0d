"""Course and session bodies (API JSON or form posts) into checked values; raises ``Invalid``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.catalog.views import SessionView
from scheduler.errors import Invalid
from scheduler.models import DELIVERY, MODES
from scheduler.validation import Fields

POOLS_OF_MODE = {
    "in_person": ("in_person",),
    "virtual": ("virtual",),
    "hybrid": ("in_person", "virtual"),
}
VENUE_FIELDS = ("name", "address", "city", "state", "postal_code")
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
    fields.done()
    if values.get("delivery") == "online" and not values.get("online_url") and not partial:
        raise Invalid({"online_url": "a self-paced online course needs its link"})
    return values


def parse_session(data: Any, *, current: SessionView | None = None) -> dict[str, Any]:
    """Validate a session body into column values and pool capacities; raises ``Invalid``.

    With ``current`` the body is a PATCH: absent fields keep their value, and times given
    without a time zone are read in the session's current zone.
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
    for name in ("starts_at", "ends_at"):
        if current is None or name in given:
            values[name] = fields.local_datetime(name, tz)
    if current is not None and "timezone" in given and tz is not None:
        # A new zone with unchanged wall-clock times moves the instants.
        for name in ("starts_at", "ends_at"):
            if name not in given:
                wall = getattr(current, name).astimezone(current.zone).replace(tzinfo=None)
                values[name] = wall.replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))
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
    if "venue" in given and given["venue"] is not None:
        venue = given["venue"]
        if not isinstance(venue, dict):
            fields.fail("venue", "must be an object with name, address, city, state, postal_code")
        else:
            venue_fields = Fields(venue)
            for key in VENUE_FIELDS:
                if current is None or key in venue:
                    values[f"venue_{key}"] = venue_fields.text(
                        key, max_length=VENUE_LIMITS[key], required=False
                    )
            for key, why in venue_fields.errors.items():
                fields.fail(f"venue.{key}", why)
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

    starts = values.get("starts_at") or (current.starts_at if current else None)
    ends = values.get("ends_at") or (current.ends_at if current else None)
    if starts and ends and ends <= starts:
        raise Invalid({"ends_at": "must be after starts_at"})
    if starts and ends and ends - starts > timedelta(days=14):
        raise Invalid({"ends_at": "a session lasts at most 14 days"})
    closes = values.get("registration_closes_at")
    if closes and starts and closes > starts:
        raise Invalid({"registration_closes_at": "must not be after starts_at"})
    venue_name = values.get("venue_name") or (current.venue_name if current else None)
    if mode in ("in_person", "hybrid") and not venue_name:
        raise Invalid({"venue.name": "an in-person or hybrid session needs a venue"})
    join_url = (
        values.get("join_url") if "join_url" in values else (current.join_url if current else None)
    )
    if mode in ("virtual", "hybrid") and not join_url:
        raise Invalid({"join_url": "a virtual or hybrid session needs its join URL"})
    return {"values": values, "capacities": capacities}
