"""The JSON API of the contract: public catalogue and registration, and admin changes."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from notifications.models import utcnow
from scheduler import agencies, booking, catalog, models, tokens
from scheduler.calendar import add_to_calendar_links
from scheduler.catalog import directory
from scheduler.config import Settings
from scheduler.errors import Invalid
from scheduler.validation import Fields, is_encodable
from scheduler.web import ratelimit
from scheduler.web.params import db_of as _db
from scheduler.web.params import path_int, wanted_format
from scheduler.web.params import settings_of as _settings
from scheduler.web.present import (
    course_json,
    instructor_json,
    manage_url,
    session_json,
    venue_entry_json,
)

# Answers with personal data, a token or a join URL: no cache (browser or proxy) may keep them.
NO_STORE = {"Cache-Control": "no-store"}
# No body of the contract nests deeper than a few levels.
MAX_JSON_DEPTH = 8


async def read_json(request: Request) -> Any:
    """The request body as a JSON object; raises ``Invalid`` naming ``body`` when it is not,
    or the field whose text is not valid Unicode (a lone surrogate such as ``"\\ud800"``)."""
    raw = await request.body()
    if not raw.strip():
        raise Invalid({"body": "a JSON object is required"})
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise Invalid({"body": "is nested too deeply"}) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid({"body": f"is not valid JSON ({exc})"}, "the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise Invalid({"body": "must be a JSON object"})
    for key, value in data.items():
        problem = _json_problem(key, 1) or _json_problem(value, 1)
        if problem is not None:
            name = key if is_encodable(key) else "body"
            raise Invalid({name: problem})
    return data


def _json_problem(value: Any, depth: int) -> str | None:
    """Why a parsed JSON value cannot be taken: nested too deeply, or invalid text."""
    if isinstance(value, str):
        return None if is_encodable(value) else "contains characters that are not valid text"
    if isinstance(value, dict | list):
        if depth >= MAX_JSON_DEPTH:
            return "is nested too deeply"
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        for item in items:
            problem = _json_problem(item, depth + 1)
            if problem is not None:
                return problem
    return None


async def require_admin(request: Request) -> tokens.TokenInfo:
    return await tokens.verify(_db(request), request.headers.get("authorization"))


# -- public ----------------------------------------------------------------------------------


async def list_courses(request: Request) -> Response:
    async with _db(request).read() as conn:
        courses = await catalog.list_courses(conn)
    settings = _settings(request)
    return JSONResponse({"courses": [course_json(c, settings) for c in courses]})


async def get_course(request: Request) -> Response:
    async with _db(request).read() as conn:
        course = await catalog.get_course(conn, request.path_params["slug"])
    return JSONResponse(course_json(course, _settings(request)))


async def list_sessions(request: Request) -> Response:
    now = utcnow()
    async with _db(request).read() as conn:
        course = await catalog.get_course(conn, request.path_params["slug"])
        sessions = await catalog.load_sessions(conn, course_id=course.id, upcoming_after=now)
    settings = _settings(request)
    return JSONResponse(
        {
            "course": course.slug,
            "sessions": [session_json(s, settings, now) for s in sessions],
        }
    )


async def get_session(request: Request) -> Response:
    async with _db(request).read() as conn:
        session = await catalog.get_session(conn, path_int(request, "session_id"))
    return JSONResponse(session_json(session, _settings(request), utcnow()))


def registration_json(outcome: booking.RegistrationResult, settings: Settings) -> dict[str, Any]:
    return {
        "id": outcome.id,
        "session_id": outcome.session_id,
        "status": outcome.status,
        "waitlist_position": outcome.waitlist_position,
        "attendance": outcome.attendance,
        "token": outcome.token,
        "manage_url": manage_url(settings, outcome.token),
    }


async def calendar_links(request: Request, outcome: booking.RegistrationResult) -> dict[str, str]:
    """The registrant's "add to calendar" links: their invite .ics, Google, Outlook on the web."""
    if outcome.session is not None:
        # A new registration carries the session as it was read under the lock: no second read
        # on the hottest path of the service (bench/bench_registration.py).
        session = catalog.session_view(outcome.session)
    else:
        async with _db(request).read() as conn:
            session = await catalog.get_session(conn, outcome.session_id)
    return add_to_calendar_links(outcome, session, _settings(request))


async def create_registration(request: Request) -> Response:
    await ratelimit.enforce(request, "register")
    session_id = path_int(request, "session_id")
    person = booking.RegistrationInput.parse(await read_json(request))
    if person.agency_id is not None:  # the directory's name and key for the agency
        async with _db(request).read() as conn:
            person = await agencies.complete(conn, person)
    settings = _settings(request)
    outcome = await booking.register(
        _db(request), session_id, person, reminder_offsets=settings.reminder_offsets
    )
    request.state.registration_outcome = outcome.status  # counted by the request middleware
    body = registration_json(outcome, settings)
    body["calendar"] = await calendar_links(request, outcome)
    return JSONResponse(body, status_code=201, headers=NO_STORE)


async def get_registration(request: Request) -> Response:
    settings = _settings(request)
    async with _db(request).read() as conn:
        registration = await booking.find_by_token(conn, request.path_params["token"])
        outcome = await booking.describe(conn, registration)
        session = await catalog.get_session(conn, registration.session_id)
    body = registration_json(outcome, settings)
    body.update(name=registration.name, email=registration.email, agency=registration.agency)
    body.update(
        rank=registration.rank,
        agency_id=registration.agency_id,
        post_id=registration.post_id,
        post_state=registration.post_state,
        post_id_label=agencies.post_id_label(registration.post_state),
    )
    body["session"] = session_json(session, settings, utcnow())
    body["calendar"] = add_to_calendar_links(outcome, session, settings)
    if models.sees_join_url(outcome):
        body["join_url"] = session.join_url
    return JSONResponse(body, headers=NO_STORE)


async def delete_registration(request: Request) -> Response:
    settings = _settings(request)
    outcome = await booking.cancel(
        _db(request), request.path_params["token"], reminder_offsets=settings.reminder_offsets
    )
    body = registration_json(outcome, settings)
    body["calendar"] = await calendar_links(request, outcome)
    return JSONResponse(body, headers=NO_STORE)


# -- admin -----------------------------------------------------------------------------------


async def create_course(request: Request) -> Response:
    await require_admin(request)
    course = await catalog.create_course(_db(request), await read_json(request))
    return JSONResponse(course_json(course, _settings(request)), status_code=201)


async def patch_course(request: Request) -> Response:
    await require_admin(request)
    course = await catalog.update_course(
        _db(request), request.path_params["slug"], await read_json(request)
    )
    return JSONResponse(course_json(course, _settings(request)))


async def create_session(request: Request) -> Response:
    await require_admin(request)
    session = await catalog.create_session(
        _db(request),
        request.path_params["slug"],
        await read_json(request),
        travel_buffer=_settings(request).travel_buffer,
    )
    return JSONResponse(
        session_json(session, _settings(request), utcnow(), private=True),
        status_code=201,
        headers=NO_STORE,
    )


async def patch_session(request: Request) -> Response:
    await require_admin(request)
    session_id = path_int(request, "session_id")
    settings = _settings(request)
    session = await catalog.update_session(
        _db(request),
        session_id,
        await read_json(request),
        reminder_offsets=settings.reminder_offsets,
        travel_buffer=settings.travel_buffer,
    )
    return JSONResponse(session_json(session, settings, utcnow(), private=True), headers=NO_STORE)


async def cancel_session(request: Request) -> Response:
    await require_admin(request)
    session_id = path_int(request, "session_id")
    reason = None
    if (await request.body()).strip():
        fields = Fields(await read_json(request))
        reason = fields.text("reason", max_length=500, required=False, multiline=True)
        fields.done()
    session = await catalog.cancel_session(_db(request), session_id, reason=reason or "")
    return JSONResponse(
        session_json(session, _settings(request), utcnow(), private=True), headers=NO_STORE
    )


ROSTER_COLUMNS = (
    "id",
    "attendance",
    "status",
    "waitlist_position",
    "name",
    "email",
    "agency",
    "rank",
    "outcome",
    "created_at",
)


def csv_safe(value: object) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice)."""
    text = "" if value is None else str(value)
    if text and text[0] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def roster_csv(entries: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ROSTER_COLUMNS)
    for entry in entries:
        writer.writerow([csv_safe(entry.get(col)) for col in ROSTER_COLUMNS])
    return out.getvalue()


def roster_csv_response(session: catalog.SessionView, entries: list[dict[str, Any]]) -> Response:
    """A session's roster as a CSV download: the API's ``?format=csv`` and the admin button."""
    filename = f"roster-{session.course_slug}-{session.id}.csv"
    return Response(
        roster_csv(entries),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **NO_STORE},
    )


async def list_registrations(request: Request) -> Response:
    await require_admin(request)
    session_id = path_int(request, "session_id")
    async with _db(request).read() as conn:
        session = await catalog.get_session(conn, session_id)
        entries = await catalog.roster(conn, session_id)
    if wanted_format(request) == "csv":
        return roster_csv_response(session, entries)
    for entry in entries:
        for key in ("created_at", "updated_at", "confirmed_at", "cancelled_at"):
            if entry.get(key) is not None:
                entry[key] = entry[key].isoformat()
        entry.pop("token", None)
        entry.pop("email_key", None)
        entry.pop("agency_key", None)
        entry.pop("waitlist_seq", None)
        entry.pop("sequence", None)
    return JSONResponse({"session_id": session_id, "registrations": entries}, headers=NO_STORE)


async def create_instructor(request: Request) -> Response:
    await require_admin(request)
    person = await directory.create_instructor(_db(request), await read_json(request))
    return JSONResponse(instructor_json(person, _settings(request)), status_code=201)


async def list_instructors(request: Request) -> Response:
    await require_admin(request)
    async with _db(request).read() as conn:
        people = await directory.list_instructors(conn)
    settings = _settings(request)
    return JSONResponse({"instructors": [instructor_json(p, settings) for p in people]})


async def patch_instructor(request: Request) -> Response:
    await require_admin(request)
    person = await directory.update_instructor(
        _db(request), path_int(request, "instructor_id"), await read_json(request)
    )
    return JSONResponse(instructor_json(person, _settings(request)))


async def create_venue(request: Request) -> Response:
    await require_admin(request)
    place = await directory.create_venue(_db(request), await read_json(request))
    return JSONResponse(venue_entry_json(place), status_code=201)


async def list_venues(request: Request) -> Response:
    await require_admin(request)
    async with _db(request).read() as conn:
        places = await directory.list_venues(conn)
    return JSONResponse({"venues": [venue_entry_json(p) for p in places]})


routes = [
    Route("/api/instructors", list_instructors, methods=["GET"]),
    Route("/api/instructors", create_instructor, methods=["POST"]),
    Route("/api/instructors/{instructor_id}", patch_instructor, methods=["PATCH"]),
    Route("/api/venues", list_venues, methods=["GET"]),
    Route("/api/venues", create_venue, methods=["POST"]),
    Route("/api/courses", list_courses, methods=["GET"]),
    Route("/api/courses", create_course, methods=["POST"]),
    Route("/api/courses/{slug}", get_course, methods=["GET"]),
    Route("/api/courses/{slug}", patch_course, methods=["PATCH"]),
    Route("/api/courses/{slug}/sessions", list_sessions, methods=["GET"]),
    Route("/api/courses/{slug}/sessions", create_session, methods=["POST"]),
    Route("/api/sessions/{session_id}", get_session, methods=["GET"]),
    Route("/api/sessions/{session_id}", patch_session, methods=["PATCH"]),
    Route("/api/sessions/{session_id}/cancel", cancel_session, methods=["POST"]),
    Route("/api/sessions/{session_id}/registrations", create_registration, methods=["POST"]),
    Route("/api/sessions/{session_id}/registrations", list_registrations, methods=["GET"]),
    Route("/api/registrations/{token}", get_registration, methods=["GET"]),
    Route("/api/registrations/{token}", delete_registration, methods=["DELETE"]),
]
