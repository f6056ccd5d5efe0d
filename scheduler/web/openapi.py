"""The OpenAPI 3.1 description of the JSON API, served at ``/openapi.json``.

Written out by hand from the contract so the schema is the promise, not a by-product; a test
checks that every API route of the app appears here and that responses match it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scheduler.validation import RESERVED_SLUGS, STATES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "A malformed form body (e.g. more parts than the form has)",
        401: "Missing or invalid admin token",
        404: "Not found",
        409: "Conflicts with the current state",
        410: "Closed, cancelled or already started",
        413: "Body over 64 KiB",
        422: "Invalid input; `fields` names each bad field",
        429: "Too many requests",
        503: "Database unavailable",
    }
    return {str(code): _json(_ref("Error"), text[code]) for code in codes}


_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_NINT = {"type": ["integer", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NTIME = {"type": ["string", "null"], "format": "date-time"}
_ADMIN: list[dict[str, list[str]]] = [{"bearer": []}]

# What ``scheduler.validation.Fields`` takes, as JSON Schema, so the description is exactly as
# strict as the server: text has no control characters (a tab is fine; one line unless it is a
# description), a required text has one visible character (not only spaces or invisible
# format characters, which are dropped), an optional value may be null, blank or left out.
_CONTROL_LINE = "\\x00-\\x08\\x0a-\\x1f\\x7f-\\x9f"
_CONTROL_TEXT = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
_INVISIBLE = (
    "\\s\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u180e"
    "\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb"
)


def _text(max_length: int, *, required: bool = True, multiline: bool = False) -> dict[str, Any]:
    control = _CONTROL_TEXT if multiline else _CONTROL_LINE
    if required:
        pattern = f"^[^{control}]*[^{control}{_INVISIBLE}][^{control}]*$"
        return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": pattern}
    return {"type": ["string", "null"], "maxLength": max_length, "pattern": f"^[^{control}]*$"}


def _any_case(words: Any) -> str:
    """An alternation matching each word in any letter case (JSON Schema has no flags)."""
    return "|".join(
        "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)
        for word in sorted(words)
    )


def _codes(words: Any, *, required: bool = True) -> dict[str, Any]:
    """One of ``words``, any case, spaces around allowed (the server strips and uppercases)."""
    pattern = f"^\\s*({_any_case(words)})\\s*$"
    if required:
        return {"type": "string", "pattern": pattern}
    return {"type": ["string", "null"], "pattern": f"^\\s*({_any_case(words)})?\\s*$"}


def _url(*, required: bool = False) -> dict[str, Any]:
    host, rest = f"[^\\s/?#\\[\\]{_CONTROL_LINE}]", f"[^\\s{_CONTROL_LINE}]"
    url = f"[Hh][Tt][Tt][Pp][Ss]?://{host}+(?:[/?#]{rest}*)?"
    if required:
        return {"type": "string", "maxLength": 2000, "pattern": f"^\\s*{url}\\s*$"}
    return {"type": ["string", "null"], "maxLength": 2000, "pattern": f"^\\s*({url})?\\s*$"}


def _id(*, required: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    return schema if required else {**schema, "type": ["integer", "null"]}


def _count(minimum: int, maximum: int, *, required: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    return schema if required else {**schema, "type": ["integer", "null"]}


def _choice(values: tuple[str, ...], *, required: bool = True) -> dict[str, Any]:
    return {"enum": list(values)} if required else {"enum": [*values, None]}


# email_validator refuses the special-use names (RFC 6761) as domains: nothing is delivered there.
_EMAIL = {
    "type": "string",
    "format": "email",
    "maxLength": 320,
    "not": {
        "pattern": "[.@]("
        + _any_case(["arpa", "invalid", "local", "localhost", "onion", "test"])
        + ")\\.?\\s*$"
    },
}
# Wall-clock time in the session's zone (or with an offset), years 2000-2199.
_WHEN = (
    "2[01][0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    "[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?"
)
_LOCAL_TIME = {
    "type": "string",
    "maxLength": 40,
    "pattern": f"^\\s*{_WHEN}\\s*$",
    "description": "wall-clock time, e.g. 2027-01-12T09:00",
}
# Optional: null or blank is not given.
_NLOCAL_TIME = {**_LOCAL_TIME, "type": ["string", "null"], "pattern": f"^\\s*({_WHEN})?\\s*$"}
_FLAG = {"type": "boolean"}
# Hours as a number or its text; 0.25-9999.99 with at most two decimals (the server checks the
# decimals), blank or null for "the contact hours".
_CREDIT_HOURS = {
    "anyOf": [
        {"type": "null"},
        {"type": "number", "minimum": 0.25, "maximum": 9999.99},
        {"type": "string", "maxLength": 12, "pattern": "^\\s*([0-9]*\\.?[0-9]*)?\\s*$"},
    ]
}
# A calendar day, or blank (not given).
_DAY = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "pattern": "^\\s*$"}]}
_NFLAG = {"type": ["boolean", "null"]}


_DELIVERY = {
    "type": "array",
    "minItems": 1,
    "items": {"enum": ["in_person", "virtual", "online"]},
}
_TRUTHY = _any_case(["true", "on", "1", "false", "0"])


def _session_input() -> dict[str, Any]:
    return {
        "starts_at": _LOCAL_TIME,
        "ends_at": _LOCAL_TIME,
        "timezone": {
            "type": "string",
            "maxLength": 64,
            "pattern": "^\\s*[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*\\s*$",
            "description": "an IANA name, e.g. America/Chicago",
        },
        "mode": {"enum": ["in_person", "virtual", "hybrid"]},
        "in_person_capacity": _count(0, 100_000, required=False),
        "virtual_capacity": _count(0, 100_000, required=False),
        "venue": _ref("VenueInput"),
        "join_url": _url(),
        "platform": _text(80, required=False),
        "max_per_agency": _count(1, 10_000, required=False),
        "registration_closes_at": _NLOCAL_TIME,
        "record_past": {
            **_NFLAG,
            "description": "allow a start (and close) before now: a session already held",
        },
        "meetings": {
            "type": "array",
            "items": _ref("MeetingInput"),
            "minItems": 1,
            "maxItems": 60,
            "description": "ordered, not overlapping; replaces starts_at/ends_at",
        },
        "instructors": {
            "type": ["array", "null"],
            "items": _id(),
            "maxItems": 20,
            "uniqueItems": True,
        },
        "venue_id": _id(required=False),
        "allow_overlap": {"type": ["boolean", "null", "string"], "pattern": f"^({_TRUTHY})?$"},
    }


def _person_input(*, attendance: bool) -> dict[str, Any]:
    """A person's body: a registration, a hold's name, a substitute, a batch row."""
    fields: dict[str, Any] = {
        "name": _text(200),
        "email": _EMAIL,
        "agency": _text(200, required=False),
        "agency_id": _id(required=False),
        "rank": _text(120, required=False),
        "post_id": {
            "type": ["string", "null"],
            "pattern": "^\\s*([A-Za-z0-9][A-Za-z0-9 ./-]{0,39})?\\s*$",
            "description": "the officer's number with the state's standards board",
        },
        "post_state": _codes(STATES, required=False),
    }
    if attendance:
        fields["attendance"] = {"enum": ["in_person", "virtual"]}
    return fields


# What a new course and a change to one both take (a course's slug is set once, at creation).
_COURSE_INPUT: dict[str, Any] = {
    "title": _text(200),
    "description": _text(10000, required=False, multiline=True),
    "audience": _text(300, required=False),
    "provider": _text(200, required=False),
    "delivery": _DELIVERY,
    "online_url": _url(),
    "completion": {"anyOf": [_ref("CompletionInput"), {"type": "null"}]},
    "credit_hours": _CREDIT_HOURS,
    "course_number": {"type": ["string", "null"], "maxLength": 40},
    "attendance_threshold": _count(1, 100, required=False),
}

SCHEMAS: dict[str, Any] = {
    "Completion": {
        "type": "object",
        "required": ["rule", "percent"],
        "properties": {
            "rule": {"enum": ["all_meetings", "percent_hours"]},
            "percent": _NINT,
        },
    },
    "CompletionInput": {
        "type": "object",
        "properties": {
            "rule": _choice(("all_meetings", "percent_hours"), required=False),
            "percent": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "fields"],
                "properties": {
                    "code": _STR,
                    "message": _STR,
                    "fields": {"type": "object", "additionalProperties": _STR},
                },
            }
        },
    },
    "FeedUrls": {
        "type": "object",
        "required": ["https", "webcal"],
        "properties": {"https": _STR, "webcal": _STR},
    },
    "Course": {
        "type": "object",
        "required": ["slug", "title", "description", "delivery", "url", "feed_url"],
        "properties": {
            "slug": _STR,
            "title": _STR,
            "description": _STR,
            "audience": _STR,
            "provider": _STR,
            "delivery": {"type": "array", "items": {"enum": ["in_person", "virtual", "online"]}},
            "self_paced": {"type": "boolean"},
            "online_url": _NSTR,
            "completion": _ref("Completion"),
            "credit_hours": {"type": ["number", "null"]},
            "course_number": _NSTR,
            "attendance_threshold": _INT,
            "url": _STR,
            "sessions_url": _STR,
            "feed_url": _ref("FeedUrls"),
        },
    },
    "CourseList": {
        "type": "object",
        "required": ["courses"],
        "properties": {"courses": {"type": "array", "items": _ref("Course")}},
    },
    "NewCourse": {
        "type": "object",
        "required": ["slug", "title"],
        "description": "a self-paced online course (delivery online only) needs online_url",
        "if": {
            "required": ["delivery"],
            "properties": {"delivery": {"type": "array", "items": {"const": "online"}}},
        },
        "then": {"required": ["online_url"], "properties": {"online_url": _url(required=True)}},
        "properties": {
            "slug": {
                "type": "string",
                "pattern": "^\\s*[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?\\s*$",
                "not": {"enum": sorted(RESERVED_SLUGS)},
            },
            **_COURSE_INPUT,
        },
    },
    "CoursePatch": {"type": "object", "properties": {**_COURSE_INPUT}},
    "Pool": {
        "type": "object",
        "required": ["capacity", "confirmed", "held", "waitlisted", "available"],
        "properties": {
            "capacity": _INT,
            "confirmed": _INT,
            "held": _INT,
            "waitlisted": _INT,
            "available": _INT,
        },
    },
    "Venue": {
        "type": ["object", "null"],
        "properties": {
            "name": _NSTR,
            "address": _NSTR,
            "city": _NSTR,
            "state": _NSTR,
            "postal_code": _NSTR,
            "id": {**_NINT, "description": "the directory venue, if chosen from it"},
            "room": _NSTR,
        },
    },
    "Meeting": {
        "type": "object",
        "required": ["id", "starts_at", "ends_at"],
        "properties": {"id": _INT, "starts_at": _TIME, "ends_at": _TIME},
    },
    "MeetingInput": {
        "type": "object",
        "required": ["starts_at", "ends_at"],
        "properties": {
            "id": {**_id(required=False), "description": "keeps that meeting (and its UID)"},
            "starts_at": _LOCAL_TIME,
            "ends_at": _LOCAL_TIME,
        },
    },
    "SessionInstructor": {
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": _INT, "name": _STR, "credentials": _STR},
    },
    "Instructor": {
        "type": "object",
        "required": ["id", "name", "email", "public", "feed_url"],
        "properties": {
            "id": _INT,
            "name": _STR,
            "email": _STR,
            "credentials": _STR,
            "public": {"type": "boolean"},
            "feed_url": {**_STR, "description": "private, revocable calendar feed"},
        },
    },
    "InstructorList": {
        "type": "object",
        "required": ["instructors"],
        "properties": {"instructors": {"type": "array", "items": _ref("Instructor")}},
    },
    "NewInstructor": {
        "type": "object",
        "required": ["name", "email"],
        "properties": {
            "name": _text(200),
            "email": _EMAIL,
            "credentials": _text(500, required=False),
            "public": {**_FLAG, "description": "show the name on public pages"},
        },
    },
    "InstructorPatch": {
        "type": "object",
        "properties": {
            "name": _text(200),
            "email": _EMAIL,
            "credentials": _text(500, required=False),
            "public": _FLAG,
            "rotate_feed_token": {**_FLAG, "description": "revoke the old feed URL"},
        },
    },
    "DirectoryVenue": {
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": _INT,
            "name": _STR,
            "address": _NSTR,
            "city": _NSTR,
            "state": _NSTR,
            "postal_code": _NSTR,
            "room": _NSTR,
        },
    },
    "VenueList": {
        "type": "object",
        "required": ["venues"],
        "properties": {"venues": {"type": "array", "items": _ref("DirectoryVenue")}},
    },
    "NewVenue": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": _text(200),
            "address": _text(300, required=False),
            "city": _text(120, required=False),
            "state": _text(40, required=False),
            "postal_code": _text(20, required=False),
            "room": _text(120, required=False),
        },
    },
    "Session": {
        "type": "object",
        "required": ["id", "course", "starts_at", "ends_at", "timezone", "mode", "status", "seats"],
        "properties": {
            "id": _INT,
            "course": _STR,
            "course_title": _STR,
            "starts_at": _TIME,
            "ends_at": _TIME,
            "timezone": _STR,
            "mode": {"enum": ["in_person", "virtual", "hybrid"]},
            "status": {"enum": ["scheduled", "cancelled"]},
            "meetings": {"type": "array", "items": _ref("Meeting")},
            "contact_hours": {"type": "number"},
            "venue": _ref("Venue"),
            "venue_id": _NINT,
            "allow_overlap": {"type": "boolean"},
            "instructors": {
                "type": "array",
                "items": _ref("SessionInstructor"),
                "description": "public answers list only instructors who allow it",
            },
            "platform": _NSTR,
            "max_per_agency": _NINT,
            "registration_closes_at": _NTIME,
            "registration_open": {"type": "boolean"},
            "seats": {
                "type": "object",
                "properties": {"in_person": _ref("Pool"), "virtual": _ref("Pool")},
            },
            "url": _STR,
            "registrations_url": _STR,
            "sequence": _INT,
            "updated_at": _TIME,
            "join_url": {**_NSTR, "description": "admin responses only"},
        },
    },
    "SessionList": {
        "type": "object",
        "required": ["course", "sessions"],
        "properties": {"course": _STR, "sessions": {"type": "array", "items": _ref("Session")}},
    },
    "SessionPage": {
        "type": "object",
        "required": ["sessions", "next_cursor"],
        "properties": {
            "sessions": {"type": "array", "items": _ref("Session")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page",
            },
        },
    },
    "VenueInput": {
        "type": ["object", "null"],
        "properties": {
            "name": _text(200, required=False),
            "address": _text(300, required=False),
            "city": _text(120, required=False),
            "state": _text(40, required=False),
            "postal_code": _text(20, required=False),
            "room": _text(120, required=False),
        },
    },
    "NewSession": {
        "type": "object",
        "required": ["timezone", "mode"],
        "description": "a schedule as meetings, or as starts_at and ends_at (one meeting)",
        "properties": _session_input(),
    },
    "SessionPatch": {
        "type": "object",
        "properties": _session_input(),
    },
    "CancelSession": {
        "type": "object",
        "properties": {"reason": _text(500, required=False, multiline=True)},
    },
    "NewRegistration": {
        "type": "object",
        "required": ["name", "email", "attendance"],
        "description": "`agency` (free text) may be left out when `agency_id` names one",
        "anyOf": [
            {"required": ["agency"], "properties": {"agency": _text(200)}},
            {"required": ["agency_id"], "properties": {"agency_id": _id()}},
        ],
        "properties": _person_input(attendance=True),
    },
    "CalendarLinks": {
        "type": "object",
        "description": "Add-to-calendar links: the personal invite, Google, Outlook on the web",
        "required": ["ics", "google", "outlook", "outlook_live"],
        "properties": {"ics": _STR, "google": _STR, "outlook": _STR, "outlook_live": _STR},
    },
    "Registration": {
        "type": "object",
        "required": ["id", "status", "waitlist_position", "attendance", "token", "manage_url"],
        "properties": {
            "id": _INT,
            "session_id": _INT,
            "status": {"enum": ["confirmed", "waitlisted", "cancelled"]},
            "waitlist_position": _NINT,
            "attendance": {"enum": ["in_person", "virtual"]},
            "token": _STR,
            "manage_url": _STR,
            "calendar": _ref("CalendarLinks"),
        },
    },
    "RegistrationDetail": {
        "allOf": [
            _ref("Registration"),
            {
                "type": "object",
                "properties": {
                    "name": _STR,
                    "email": _STR,
                    "agency": _STR,
                    "rank": _NSTR,
                    "agency_id": _NINT,
                    "post_id": _NSTR,
                    "post_state": _NSTR,
                    "post_id_label": _STR,
                    "session": _ref("Session"),
                    "join_url": {**_NSTR, "description": "confirmed virtual seats only"},
                },
            },
        ]
    },
    "RosterEntry": {
        "type": "object",
        "required": ["id", "attendance", "status", "waitlist_position", "name", "email", "agency"],
        "properties": {
            "id": _INT,
            "session_id": _INT,
            "pool_id": _INT,
            "attendance": {"enum": ["in_person", "virtual"]},
            "status": {
                "enum": ["confirmed", "waitlisted", "cancelled"],
                "description": "cancelled for everyone once the session is cancelled",
            },
            "held": {
                "enum": ["confirmed", "waitlisted", "cancelled"],
                "description": "what the person held until the session was cancelled",
            },
            "waitlist_position": _NINT,
            "name": _STR,
            "email": _STR,
            "agency": _STR,
            "rank": _NSTR,
            "agency_id": _NINT,
            "post_id": _NSTR,
            "post_state": _NSTR,
            "hold_id": _NINT,
            "outcome": {"enum": ["attended", "no_show", None]},
            "created_at": _TIME,
            "updated_at": _TIME,
            "confirmed_at": _NTIME,
            "cancelled_at": _NTIME,
        },
    },
    "Roster": {
        "type": "object",
        "required": ["session_id", "registrations"],
        "properties": {
            "session_id": _INT,
            "registrations": {"type": "array", "items": _ref("RosterEntry")},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "database"],
        "properties": {
            "status": {"const": "ok"},
            "database": {"const": "ok"},
            "outbox": {
                "type": "object",
                "description": "emails due and how late the oldest is; informational only",
                "properties": {"due": _INT, "lag_seconds": {"type": "number"}},
            },
        },
    },
}

_SLUG = {"name": "slug", "in": "path", "required": True, "schema": _STR}
_SID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_TOKEN = {"name": "token", "in": "path", "required": True, "schema": _STR}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


_IID = {"name": "instructor_id", "in": "path", "required": True, "schema": {"type": "integer"}}

PATHS: dict[str, Any] = {
    "/api/instructors": {
        "get": {
            "summary": "List instructors (admin)",
            "security": _ADMIN,
            "responses": {"200": _json(_ref("InstructorList"), "Instructors"), **_errors(401)},
        },
        "post": {
            "summary": "Add an instructor (admin)",
            "security": _ADMIN,
            "requestBody": _body("NewInstructor"),
            "responses": {"201": _json(_ref("Instructor"), "Created"), **_errors(401, 422)},
        },
    },
    "/api/instructors/{instructor_id}": {
        "parameters": [_IID],
        "patch": {
            "summary": "Change an instructor (admin)",
            "security": _ADMIN,
            "requestBody": _body("InstructorPatch"),
            "responses": {"200": _json(_ref("Instructor"), "Updated"), **_errors(401, 404, 422)},
        },
    },
    "/api/venues": {
        "get": {
            "summary": "List venues (admin)",
            "security": _ADMIN,
            "responses": {"200": _json(_ref("VenueList"), "Venues"), **_errors(401)},
        },
        "post": {
            "summary": "Add a venue (one room) to the directory (admin)",
            "security": _ADMIN,
            "requestBody": _body("NewVenue"),
            "responses": {"201": _json(_ref("DirectoryVenue"), "Created"), **_errors(401, 422)},
        },
    },
    "/api/courses": {
        "get": {
            "summary": "List courses",
            "responses": {"200": _json(_ref("CourseList"), "Courses")},
        },
        "post": {
            "summary": "Create a course",
            "security": _ADMIN,
            "requestBody": _body("NewCourse"),
            "responses": {
                "201": _json(_ref("Course"), "Created"),
                **_errors(401, 409, 413, 422),
            },
        },
    },
    "/api/courses/{slug}": {
        "parameters": [_SLUG],
        "get": {
            "summary": "One course",
            "responses": {"200": _json(_ref("Course"), "The course"), **_errors(404)},
        },
        "patch": {
            "summary": "Edit a course",
            "security": _ADMIN,
            "requestBody": _body("CoursePatch"),
            "responses": {"200": _json(_ref("Course"), "Updated"), **_errors(401, 404, 413, 422)},
        },
    },
    "/api/courses/{slug}/sessions": {
        "parameters": [_SLUG],
        "get": {
            "summary": "Upcoming sessions of a course with seats per pool",
            "responses": {"200": _json(_ref("SessionList"), "Sessions"), **_errors(404)},
        },
        "post": {
            "summary": "Schedule a session",
            "security": _ADMIN,
            "requestBody": _body("NewSession"),
            "responses": {
                "201": _json(_ref("Session"), "Created"),
                **_errors(401, 404, 413, 422),
            },
        },
    },
    "/api/sessions": {
        "get": {
            "summary": "Find upcoming sessions across courses, soonest first, a page at a time",
            "description": "Scheduled sessions that have not ended, ordered by start. Filters "
            "combine; `from` and `to` are calendar days where the session is held. Unknown "
            "or malformed filters answer 422.",
            "parameters": [
                _query("course", {"type": "string", "maxLength": 80}, "A course slug"),
                _query(
                    "mode",
                    {
                        "type": "string",
                        "pattern": "^[\\s,]*((in_person|virtual|hybrid)[\\s,]*)*$",
                    },
                    "One or more of in_person, virtual, hybrid (comma-separated)",
                ),
                _query(
                    "state",
                    {"type": "string", "pattern": f"^\\s*({_any_case(STATES)})?\\s*$"},
                    "Two-letter US state of the venue",
                ),
                _query("from", _DAY, "First day, 2027-01-31"),
                _query("to", _DAY, "Last day, 2027-02-28 (not before `from`)"),
                _query(
                    "available",
                    {
                        "type": "string",
                        "pattern": "^\\s*("
                        + _any_case(["1", "0", "true", "false", "yes", "no", "on"])
                        + ")?\\s*$",
                    },
                    "1: only sessions with a free seat (in the asked mode's pools)",
                ),
                _query("cursor", _STR, "The `next_cursor` of the previous page"),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 100},
                    "Sessions per page, default 25",
                ),
            ],
            "responses": {"200": _json(_ref("SessionPage"), "One page"), **_errors(422)},
        }
    },
    "/api/sessions/{session_id}": {
        "parameters": [_SID],
        "get": {
            "summary": "One session with seats per pool",
            "responses": {"200": _json(_ref("Session"), "The session"), **_errors(404)},
        },
        "patch": {
            "summary": "Reschedule, move or change capacities",
            "security": _ADMIN,
            "requestBody": _body("SessionPatch"),
            "responses": {
                "200": _json(_ref("Session"), "Updated"),
                **_errors(401, 404, 409, 413, 422),
            },
        },
    },
    "/api/sessions/{session_id}/cancel": {
        "parameters": [_SID],
        "post": {
            "summary": "Cancel a session; everyone registered is told",
            "security": _ADMIN,
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref("CancelSession")}},
            },
            "responses": {
                "200": _json(_ref("Session"), "Cancelled"),
                **_errors(401, 404, 413, 422),
            },
        },
    },
    "/api/sessions/{session_id}/registrations": {
        "parameters": [_SID],
        "post": {
            "summary": "Register for a seat or join the waitlist",
            "requestBody": _body("NewRegistration"),
            "responses": {
                "201": _json(_ref("Registration"), "Confirmed or waitlisted"),
                **_errors(404, 409, 410, 413, 422, 429),
            },
        },
        "get": {
            "summary": "Roster (JSON, or CSV with ?format=csv)",
            "security": _ADMIN,
            "parameters": [
                {
                    "name": "format",
                    "in": "query",
                    "required": False,
                    "schema": {"enum": ["json", "csv"]},
                }
            ],
            "responses": {
                "200": {
                    "description": "Roster",
                    "content": {
                        "application/json": {"schema": _ref("Roster")},
                        "text/csv": {"schema": _STR},
                    },
                },
                **_errors(401, 404, 422),
            },
        },
    },
    "/api/registrations/{token}": {
        "parameters": [_TOKEN],
        "get": {
            "summary": "A registration, by its secret token",
            "responses": {
                "200": _json(_ref("RegistrationDetail"), "The registration"),
                **_errors(404),
            },
        },
        "delete": {
            "summary": "Cancel a registration; the next waitlisted person is promoted",
            "responses": {
                "200": _json(_ref("Registration"), "Cancelled"),
                **_errors(404, 410),
            },
        },
    },
    "/healthz": {
        "get": {
            "summary": "Liveness and database check",
            "responses": {"200": _json(_ref("Health"), "Healthy"), **_errors(503)},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text exposition format)",
            "responses": {
                "200": {
                    "description": "Metrics",
                    "content": {"text/plain": {"schema": _STR}},
                }
            },
        }
    },
}


# Agencies, holds, batches, substitution and moves (#13): the bodies as strictly as the server
# reads them; the answers loosely (objects), as the handlers' docstrings in
# scheduler/web/agency_api.py describe them.
_OBJECT = {"type": "object"}
_AGENCY_TYPES = ["municipal", "sheriff", "state", "tribal", "campus", "federal", "other"]


_AGENCY_FIELDS = {
    "name": _text(200),
    "state": _codes(STATES),
    "type": {"enum": _AGENCY_TYPES},
    "ori": {
        "type": ["string", "null"],
        "pattern": "^\\s*([A-Za-z]{2}[A-Za-z0-9]{7})?\\s*$",
        "description": "NCIC ORI: nine letters or digits, the first two the state",
    },
}
_PERSON = {
    "type": "object",
    "required": ["name", "email"],
    "properties": _person_input(attendance=False),
}
_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/agencies", "post"): {
        "type": "object",
        "required": ["name", "state", "type"],
        "properties": _AGENCY_FIELDS,
        "description": "an ORI starts with the agency's state",
    },
    ("/api/agencies/{agency_id}", "patch"): {
        "type": "object",
        "properties": _AGENCY_FIELDS,
        "description": "a new state must match the ORI (given or kept)",
    },
    ("/api/agencies/{agency_id}/merge", "post"): {
        "type": "object",
        "required": ["into"],
        "properties": {"into": {**_id(), "description": "the agency to keep"}},
    },
    ("/api/agencies/{agency_id}/coordinators", "post"): {
        "type": "object",
        "required": ["name", "email"],
        "properties": {"name": _text(200), "email": _EMAIL},
    },
    ("/api/sessions/{session_id}/holds", "post"): {
        "type": "object",
        "required": ["agency_id", "attendance", "seats"],
        "properties": {
            "agency_id": _id(),
            "attendance": {"enum": ["in_person", "virtual"]},
            "seats": _count(1, 1000),
            "release_at": {
                **_NLOCAL_TIME,
                "description": "in the future and before the session starts",
            },
        },
    },
    ("/api/holds/{hold_id}/registrations", "post"): _PERSON,
    ("/api/registrations/{registration_id}/transfer", "post"): _PERSON,
    ("/api/sessions/{session_id}/registrations/batch", "post"): {
        "type": "object",
        "required": ["agency_id", "attendance", "people"],
        "properties": {
            "agency_id": _id(),
            "attendance": {"enum": ["in_person", "virtual"]},
            "people": {
                "type": "array",
                "minItems": 1,
                "maxItems": 200,
                "items": {},
                "description": "each a person's body, checked on its own: a bad row is an "
                "`error` in `results`, the others go ahead",
            },
            "summary_to": {"anyOf": [_EMAIL, {"type": "null"}]},
        },
    },
    ("/api/registrations/{registration_id}/move", "post"): {
        "type": "object",
        "required": ["session_id"],
        "properties": {
            "session_id": {**_id(), "description": "another session of the same course"},
            "attendance": {"enum": ["in_person", "virtual", None]},
        },
    },
}
_QUERIES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("/api/agencies", "get"): [
        _query("q", {"type": "string"}, "Part of a name, or an ORI's start")
    ],
    ("/api/registrations", "get"): [
        {
            "name": "email",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "maxLength": 320, "pattern": "\\S"},
        }
    ],
}
_AGENCY_ROUTES: tuple[tuple[str, str, str, int], ...] = (
    ("/api/agencies", "get", "Search the agency directory (?q=)", 200),
    ("/api/agencies", "post", "Add an agency {name, state, type, ori}", 201),
    ("/api/agencies/{agency_id}", "get", "One agency", 200),
    ("/api/agencies/{agency_id}", "patch", "Edit an agency", 200),
    ("/api/agencies/{agency_id}/merge", "post", "Merge a duplicate into {into}", 200),
    ("/api/agencies/{agency_id}/coordinators", "post", "Invite a coordinator {name, email}", 201),
    ("/api/agencies/{agency_id}/coordinators", "get", "An agency's coordinators", 200),
    ("/api/registrations", "get", "One person's history (?email=)", 200),
    ("/api/sessions/{session_id}/holds", "post", "Hold seats for an agency", 201),
    ("/api/holds/{hold_id}", "get", "A hold", 200),
    ("/api/holds/{hold_id}", "delete", "Release a hold's unnamed seats", 200),
    ("/api/holds/{hold_id}/registrations", "post", "Name a person into a hold", 201),
    ("/api/sessions/{session_id}/registrations/batch", "post", "Register a batch", 200),
    ("/api/registrations/{registration_id}/transfer", "post", "Substitute a person", 201),
    ("/api/registrations/{registration_id}/move", "post", "Move to another session", 200),
    ("/api/registrations/{registration_id}/cancel", "post", "Cancel by id", 200),
)


def _agency_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, method, summary, status in _AGENCY_ROUTES:
        item = paths.setdefault(path, {})
        names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
        if names:
            item["parameters"] = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "integer"}}
                for n in names
            ]
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                str(status): _json(_OBJECT, "OK"),
                **_errors(401, 404, 409, 410, 413, 422),
            },
        }
        if (path, method) in _BODIES:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _BODIES[path, method]}},
            }
        if (path, method) in _QUERIES:
            operation["parameters"] = _QUERIES[path, method]
        if not (method == "get" and path.startswith("/api/agencies") and "coord" not in path):
            operation["security"] = _ADMIN
        item[method] = operation
    return paths


PATHS.update(_agency_paths())

_MARK = {
    "type": "object",
    "required": ["registration_id", "present"],
    "properties": {
        "registration_id": _id(),
        "present": {"type": "boolean"},
        "minutes": {"type": ["integer", "null"], "minimum": 0, "maximum": 1440},
    },
}
_OUTCOME = {
    "type": "object",
    "properties": {
        "registration_id": _INT,
        "name": _STR,
        "completed": {"type": "boolean"},
        "attended_minutes": _INT,
        "meetings_present": _INT,
        "computed_at": _TIME,
    },
}
SCHEMAS.update(
    {
        "AttendanceMarks": {
            "type": "object",
            "required": ["meeting_id", "marks"],
            "properties": {
                "meeting_id": _id(),
                "marks": {"type": "array", "items": _MARK, "minItems": 1, "maxItems": 2000},
                "reason": {
                    **_text(2000, required=False, multiline=True),
                    "description": "Required once the session is finalized; kept in the audit",
                },
            },
        },
        "AttendanceSaved": {
            "type": "object",
            "required": ["meeting_id", "marked", "audited"],
            "properties": {"meeting_id": _INT, "marked": _INT, "audited": _INT},
        },
        "AttendanceGrid": {
            "type": "object",
            "required": ["session_id", "marks"],
            "properties": {
                "session_id": _INT,
                "marks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "registration_id": _INT,
                            "meeting_id": _INT,
                            "present": {"type": "boolean"},
                            "minutes": _NINT,
                            "source": {"enum": ["manual", "checkin", "zoom", "teams"]},
                            "marked_at": _TIME,
                            "marked_by": _STR,
                        },
                    },
                },
            },
        },
        "AttendanceImport": {
            "type": "object",
            "required": ["meeting_id", "matched", "unmatched"],
            "properties": {
                "meeting_id": _INT,
                "meeting_minutes": _INT,
                "threshold_percent": _INT,
                "matched": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "registration_id": _INT,
                            "name": _STR,
                            "report_name": _STR,
                            "email": _NSTR,
                            "minutes": _INT,
                            "rows": _INT,
                            "present": {"type": "boolean"},
                            "matched_by": {"enum": ["email", "name"]},
                        },
                    },
                },
                "unmatched": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": _STR,
                            "email": _NSTR,
                            "minutes": _INT,
                            "rows": _INT,
                        },
                    },
                },
            },
        },
        "Finalized": {
            "type": "object",
            "required": ["session_id", "finalized_at", "completions"],
            "properties": {
                "session_id": _INT,
                "finalized_at": _TIME,
                "finalized_by": _STR,
                "completions": {"type": "array", "items": _OUTCOME},
                "certificates": {"type": "object", "additionalProperties": True},
            },
        },
        "Completions": {
            "type": "object",
            "required": ["session_id", "completions"],
            "properties": {
                "session_id": _INT,
                "finalized_at": _NTIME,
                "finalized_by": _NSTR,
                "contact_minutes": _INT,
                "completions": {"type": "array", "items": _OUTCOME},
            },
        },
    }
)
PATHS.update(
    {
        "/api/sessions/{session_id}/attendance": {
            "parameters": [_SID],
            "get": {
                "summary": "Every attendance mark of a session (admin)",
                "security": _ADMIN,
                "responses": {
                    "200": _json(_ref("AttendanceGrid"), "Marks"),
                    **_errors(401, 404),
                },
            },
            "put": {
                "summary": "Mark confirmed registrants present or absent at one meeting",
                "description": "After finalizing, `reason` is required; the change is audited, "
                "completions are computed again and certificates reissued or revoked.",
                "security": _ADMIN,
                "requestBody": _body("AttendanceMarks"),
                "responses": {
                    "200": _json(_ref("AttendanceSaved"), "Saved"),
                    **_errors(401, 404, 410, 413, 422),
                },
            },
        },
        "/api/sessions/{session_id}/attendance/import": {
            "parameters": [_SID],
            "post": {
                "summary": "Import a Zoom or Teams participant report for one meeting",
                "description": "Rows are matched by email, then by name; rejoins are summed; "
                "present when the minutes reach the course's attendance threshold.",
                "security": _ADMIN,
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["meeting_id", "platform", "file"],
                                "properties": {
                                    "meeting_id": _id(),
                                    "platform": {"enum": ["zoom", "teams"]},
                                    "file": {"type": "string", "format": "binary"},
                                    "reason": _text(2000, required=False, multiline=True),
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(_ref("AttendanceImport"), "Matched and unmatched rows"),
                    **_errors(400, 401, 404, 410, 413, 422),
                },
            },
        },
        "/api/sessions/{session_id}/finalize": {
            "parameters": [_SID],
            "post": {
                "summary": "Compute completions, lock the roster, issue certificates",
                "security": _ADMIN,
                "responses": {
                    "200": _json(_ref("Finalized"), "Finalized"),
                    **_errors(401, 404, 409, 410),
                },
            },
        },
        "/api/sessions/{session_id}/completions": {
            "parameters": [_SID],
            "get": {
                "summary": "Who completed a finalized session (admin)",
                "security": _ADMIN,
                "responses": {
                    "200": _json(_ref("Completions"), "Completions"),
                    **_errors(401, 404),
                },
            },
        },
    }
)


# -- certificates and training records (scheduler/web/certificates.py) -----------------------

_RECORD_KEYS = (
    "name",
    "certification_number",
    "state",
    "agency",
    "ori",
    "course",
    "course_number",
    "provider",
    "instructors",
    "dates",
    "hours",
    "result",
    "verification_code",
)
SCHEMAS["Verification"] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status", "name", "course", "completed_on", "credit_hours"],
    "properties": {
        "status": {"enum": ["valid", "revoked"]},
        "name": _STR,
        "course": _STR,
        "completed_on": {"type": "string", "format": "date"},
        "credit_hours": {"type": "number"},
    },
}
SCHEMAS["TrainingRecord"] = {
    "type": "object",
    "additionalProperties": False,
    "required": [*_RECORD_KEYS, "session_id"],
    "properties": {
        **{key: _STR for key in _RECORD_KEYS},
        "result": {"enum": ["completed", "not completed"]},
        "session_id": _INT,
    },
}
SCHEMAS["TrainingRecords"] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["records"],
    "properties": {"records": {"type": "array", "items": _ref("TrainingRecord")}},
}
_FORMAT = _query("format", {"enum": ["json", "csv"]}, "csv: UTF-8 with BOM, formula-safe cells")
_RECORDS_200 = {
    "description": "Training records",
    "content": {
        "application/json": {"schema": _ref("TrainingRecords")},
        "text/csv": {"schema": _STR},
    },
}
PATHS["/api/verify/{code}"] = {
    "parameters": [{"name": "code", "in": "path", "required": True, "schema": _STR}],
    "get": {
        "summary": "Verify a certificate: valid or revoked, with name, course, date and hours",
        "responses": {
            "200": _json(_ref("Verification"), "The certificate's status"),
            **_errors(404, 429),
        },
    },
}
PATHS["/api/training-records"] = {
    "get": {
        "summary": "Training records of finalized sessions whose last meeting is in the range",
        "security": _ADMIN,
        "parameters": [
            _query("from", _DAY, "first local date, inclusive"),
            _query("to", _DAY, "last local date, inclusive (not before `from`)"),
            _FORMAT,
        ],
        "responses": {"200": _RECORDS_200, **_errors(401, 422)},
    },
}
PATHS["/api/sessions/{session_id}/training-records"] = {
    "parameters": [_SID],
    "get": {
        "summary": "Training records of one session (empty until it is finalized)",
        "security": _ADMIN,
        "parameters": [_FORMAT],
        "responses": {"200": _RECORDS_200, **_errors(401, 404, 422)},
    },
}


def build_spec(base_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Training session scheduler",
            "version": "1",
            "description": "Sessions, seats and waitlists for the de-escalation training network.",
        },
        "servers": [{"url": base_url}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(build_spec(request.state.settings.base_url))


routes = [Route("/openapi.json", openapi, methods=["GET"])]
