"""Roster changes an admin makes for someone: add a registrant by hand (a phone call) and move
a registrant to another session of the same course.

Adding runs the public registration's rules (``booking.register``: a seat or the waitlist, the
per-agency cap, the usual emails); the agency comes from the directory, found with the form's
own search button so the page works without script and keeps what was typed. A move is
``squads.move``: confirmed or waitlisted in the other session by the usual rules, one email
that withdraws the old calendar entry and sends the new one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from notifications.models import utcnow
from scheduler import agencies, booking, catalog, squads
from scheduler.errors import Conflict, Gone, Invalid, NotFound
from scheduler.models import Registration
from scheduler.validation import STATES
from scheduler.web.auth import admin_page
from scheduler.web.forms import field_errors, text_values
from scheduler.web.pages import error_page, flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id
from scheduler.web.params import settings_of as _settings

PERSON_FIELDS = ("name", "email", "agency", "rank", "post_id", "post_state", "attendance", "q")
STATUS_WORDS = {"confirmed": "has a confirmed seat", "waitlisted": "is on the waitlist"}


def _not_found(request: Request, what: str) -> Response:
    return error_page(request, 404, "Not found", f"There is no such {what}.")


async def _session(request: Request) -> catalog.SessionView | None:
    session_id = parse_id(request.path_params["session_id"])
    if session_id is None:
        return None
    async with _db(request).read() as conn:
        try:
            return await catalog.get_session(conn, session_id)
        except NotFound:
            return None


async def _add_form(
    request: Request,
    session: catalog.SessionView,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    chosen = parse_id(values.get("agency_id", ""))
    async with _db(request).read() as conn:
        picked = []
        if chosen is not None:
            try:
                picked = [await agencies.resolve(conn, chosen)]
            except Invalid:
                picked = []
        q = values.get("q", "")
        found = await agencies.search(conn, q, limit=20) if q else []
    return render(
        request,
        "admin/registration_add.html",
        {
            "page_title": f"Add a registrant to {session.course_title}",
            "session": session,
            "values": values,
            "errors": errors or {},
            "agencies": picked + [a for a in found if not picked or a.id != picked[0].id],
            "chosen": picked[0].id if picked else None,
            "searched": bool(values.get("q")),
            "state_options": [("", "—")] + [(code, code) for code in sorted(STATES)],
        },
        status_code=status_code,
        private=True,
    )


def _person_values(form: FormData) -> dict[str, str]:
    values = text_values(form, PERSON_FIELDS)
    raw = form.get("agency_id")
    values["agency_id"] = raw.strip() if isinstance(raw, str) else ""
    return values


@admin_page
async def add_registrant(request: Request) -> Response:
    """GET shows the form; POST finds agencies (``action=search``) or registers the person."""
    session = await _session(request)
    if session is None:
        return _not_found(request, "session")
    if session.status == "cancelled":
        return error_page(request, 409, "Cancelled", "A cancelled session takes no one.")
    if request.method == "GET":
        first = session.pools[0].attendance if session.pools else ""
        return await _add_form(request, session, values={"attendance": first})
    form = await request.form()
    values = _person_values(form)
    if form.get("action") == "search":
        return await _add_form(request, session, values=values)
    body: dict[str, Any] = {
        k: (v or None) for k, v in values.items() if k not in ("q", "agency_id")
    }
    if values["agency_id"]:
        body["agency_id"] = values["agency_id"]
        body.pop("agency", None)
    try:
        person = booking.RegistrationInput.parse(body)
        if person.agency_id is not None:
            async with _db(request).read() as conn:
                person = await agencies.complete(conn, person)
        outcome = await booking.register(
            _db(request),
            session.id,
            person,
            reminder_offsets=_settings(request).reminder_offsets,
        )
    except Invalid as exc:
        errors = field_errors(exc.fields)
        if "agency" in errors and not values["agency_id"]:
            errors["agency"] = "choose an agency from the directory, or type its name"
        return await _add_form(request, session, values=values, errors=errors, status_code=422)
    except (Conflict, Gone) as exc:
        # The field says where; the sentence at the top says what ("… already has an
        # active registration for this session").
        errors = {**field_errors(exc.fields), "form": f"Not added: {exc.message}."}
        return await _add_form(
            request, session, values=values, errors=errors, status_code=exc.status_code
        )
    where = STATUS_WORDS.get(outcome.status, outcome.status)
    flash(request, f"{person.name} {where}; they are told by email.")
    return RedirectResponse(f"/admin/sessions/{session.id}", 303)


@admin_page
async def move_registrant(request: Request) -> Response:
    """GET lists the course's other upcoming sessions; POST moves the registration there."""
    registration_id = parse_id(request.path_params["registration_id"])
    if registration_id is None:
        return _not_found(request, "registration")
    async with _db(request).read() as conn:
        registration = (
            await conn.execute(select(Registration).where(Registration.id == registration_id))
        ).first()
        if registration is None:
            return _not_found(request, "registration")
        session = await catalog.get_session(conn, registration.session_id)
        others = [
            s
            for s in await catalog.load_sessions(
                conn, course_id=session.course_id, upcoming_after=utcnow(), include_cancelled=False
            )
            if s.id != session.id
        ]
    values: dict[str, str] = {"attendance": registration.attendance}
    errors: dict[str, str] = {}
    status_code = 200
    if request.method == "POST":
        form = await request.form()
        values = text_values(form, ("session_id", "attendance"))
        try:
            outcome = await squads.move(
                _db(request),
                registration.id,
                {"session_id": values["session_id"] or None, "attendance": values["attendance"]},
                reminder_offsets=_settings(request).reminder_offsets,
            )
        except (Invalid, Conflict, Gone) as exc:
            errors = {**field_errors(exc.fields), "form": f"Not moved: {exc.message}."}
            status_code = exc.status_code
        except NotFound:
            errors, status_code = {"session_id": "choose one of the sessions listed"}, 422
        else:
            where = STATUS_WORDS.get(outcome.status, outcome.status)
            flash(
                request,
                f"{registration.name} moved here and {where}; one email tells them, "
                "with both calendar entries updated.",
            )
            return RedirectResponse(f"/admin/sessions/{outcome.session_id}", 303)
    return render(
        request,
        "admin/registration_move.html",
        {
            "page_title": f"Move {registration.name} to another session",
            "registration": registration,
            "session": session,
            "others": others,
            "values": values,
            "errors": errors,
        },
        status_code=status_code,
        private=True,
    )


routes = [
    Route("/admin/sessions/{session_id}/add", add_registrant, methods=["GET", "POST"]),
    Route("/admin/registrations/{registration_id}/move", move_registrant, methods=["GET", "POST"]),
]
