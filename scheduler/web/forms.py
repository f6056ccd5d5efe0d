"""HTML form posts into the bodies the domain parsers read, and their errors back onto fields.

The pages validate nothing themselves: ``catalog.parse_course``/``parse_session`` and
``RegistrationInput.parse`` do, exactly as for the JSON API. This module only reshapes flat form
fields (``venue_name``, checkbox lists, empty strings) and maps ``Invalid.fields`` names such as
``venue.name`` onto the inputs that show them.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import available_timezones

from starlette.datastructures import FormData

from scheduler.catalog import POOLS_OF_MODE, VENUE_FIELDS

# The zones most sessions use come first in the picker; every IANA zone follows.
COMMON_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "UTC",
)

COURSE_FIELDS = (
    "slug",
    "title",
    "description",
    "audience",
    "provider",
    "online_url",
    "completion_rule",
    "completion_percent",
    "credit_hours",
    "course_number",
    "attendance_threshold",
)
SESSION_FIELDS = (
    "starts_at",
    "ends_at",
    "timezone",
    "mode",
    "in_person_capacity",
    "virtual_capacity",
    "join_url",
    "platform",
    "max_per_agency",
    "registration_closes_at",
    *(f"venue_{key}" for key in VENUE_FIELDS),
)
REGISTRATION_FIELDS = ("name", "email", "agency", "rank", "attendance")


@cache
def all_zones() -> tuple[str, ...]:
    return tuple(sorted(z for z in available_timezones() if "/" in z and z not in COMMON_ZONES))


def text_values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    """The named fields as stripped strings ('' when absent), as typed, for re-display."""
    values: dict[str, str] = {}
    for name in names:
        raw = form.get(name)
        values[name] = raw.strip() if isinstance(raw, str) else ""
    return values


def course_body(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(body for catalog, values to re-display)`` from the course form."""
    values: dict[str, Any] = text_values(form, COURSE_FIELDS)
    delivery = [d for d in form.getlist("delivery") if isinstance(d, str)]
    values["delivery"] = delivery
    body: dict[str, Any] = {k: v for k, v in values.items() if k != "delivery"}
    body["delivery"] = delivery
    return body, values


def session_body(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """``(body for catalog.parse_session, values to re-display)`` from the session form.

    Pools and places the chosen mode does not have are left out, so a filled-in but unused
    capacity on a virtual session is not an error. Empty optional fields mean "none".
    """
    values = text_values(form, SESSION_FIELDS)
    values["record_past"] = "on" if form.get("record_past") == "on" else ""
    mode = values["mode"]
    body: dict[str, Any] = {
        "starts_at": values["starts_at"],
        "ends_at": values["ends_at"],
        "timezone": values["timezone"],
        "mode": mode or None,
        "max_per_agency": values["max_per_agency"] or None,
        "registration_closes_at": values["registration_closes_at"] or None,
        "record_past": form.get("record_past") == "on",
    }
    offered = POOLS_OF_MODE.get(mode, ("in_person", "virtual"))
    for attendance in offered:
        body[f"{attendance}_capacity"] = values[f"{attendance}_capacity"]
    if "in_person" in offered:
        body["venue"] = {key: values[f"venue_{key}"] or None for key in VENUE_FIELDS}
    if "virtual" in offered:
        body["join_url"] = values["join_url"] or None
        body["platform"] = values["platform"] or None
    return body, values


def registration_body(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    values = text_values(form, REGISTRATION_FIELDS)
    body: dict[str, Any] = {k: (v or None) for k, v in values.items()}
    return body, values


def field_errors(fields: dict[str, str]) -> dict[str, str]:
    """Domain field names (``venue.name``) to form input names (``venue_name``)."""
    return {name.replace(".", "_"): why for name, why in fields.items()}
