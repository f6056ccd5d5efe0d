"""Public pages: the course list, a course's sessions with the register form, the result page,
and a registrant's manage page at ``/registrations/{token}``.

Nothing here shows another person's data or a join URL (invariant 7): the join URL appears only
on the manage page of a confirmed virtual registrant, who holds the secret token.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from notifications.models import utcnow
from scheduler import booking, catalog, models
from scheduler.calendar import add_to_calendar_links
from scheduler.catalog import SessionView
from scheduler.errors import DuplicateRegistration, Gone, Invalid, NotFound
from scheduler.web.auth import protected
from scheduler.web.forms import field_errors, registration_body
from scheduler.web.pages import enforce_rate_limit, error_page, flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id, path_id
from scheduler.web.params import settings_of as _settings
from scheduler.web.present import feed_urls, manage_url


async def index(request: Request) -> Response:
    now = utcnow()
    async with _db(request).read() as conn:
        courses = await catalog.list_courses(conn)
        upcoming = await catalog.upcoming_counts(conn, now)
    return render(
        request,
        "public/index.html",
        {
            "page_title": "Courses",
            "courses": courses,
            "upcoming": upcoming,
            "feeds": feed_urls(_settings(request)),
        },
    )


async def _course_page(
    request: Request,
    slug: str,
    *,
    form_session: int | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    carry_values: bool = False,
    status_code: int = 200,
) -> Response:
    """The course page; after a refused registration, with that form's values and errors.

    ``carry_values`` (the session no longer takes registrations) also fills every open
    session's form with what was typed, so nothing has to be typed again.
    """
    now = utcnow()
    try:
        async with _db(request).read() as conn:
            course = await catalog.get_course(conn, slug)
            sessions = await catalog.load_sessions(conn, course_id=course.id, upcoming_after=now)
    except NotFound:
        return error_page(request, 404, "Not found", "There is no such course.")
    return render(
        request,
        "public/course.html",
        {
            "page_title": course.title,
            "course": course,
            "sessions": sessions,
            "now": now,
            "feeds": feed_urls(_settings(request), course.slug),
            "form_session": form_session,
            "values": values or {},
            "errors": errors or {},
            "carry_values": carry_values,
        },
        status_code=status_code,
    )


async def course_page(request: Request) -> Response:
    # The finder's "Register" link opens that session's form: ?register=<session id>.
    opened = parse_id(request.query_params.get("register", ""))
    return await _course_page(request, request.path_params["slug"], form_session=opened)


@protected
async def register(request: Request) -> Response:
    """The register form's POST: on success, on to the result page; else the form again."""
    session_id = path_id(request, "session_id")
    if session_id is None:
        return error_page(request, 404, "Not found", "There is no such session.")
    limited = await enforce_rate_limit(request, "register")
    if limited is not None:
        return limited
    async with _db(request).read() as conn:
        try:
            session = await catalog.get_session(conn, session_id)
        except NotFound:
            return error_page(request, 404, "Not found", "There is no such session.")
    body, values = registration_body(await request.form())
    settings = _settings(request)
    errors: dict[str, str] = {}
    status_code = 422
    try:
        person = booking.RegistrationInput.parse(body)
        outcome = await booking.register(
            _db(request), session_id, person, reminder_offsets=settings.reminder_offsets
        )
    except (Invalid, DuplicateRegistration) as exc:
        errors = field_errors(exc.fields)
        if isinstance(exc, DuplicateRegistration):
            errors["email"] = "this email is already registered for this session"
            status_code = 409
    except Gone as exc:
        errors = {"form": _refusal(exc.message)}
        status_code = 410
    else:
        return RedirectResponse(f"/registrations/{outcome.token}/result", 303)
    return await _course_page(
        request,
        session.course_slug,
        form_session=session_id,
        values=values,
        errors=errors,
        carry_values=status_code == 410,
        status_code=status_code,
    )


def _refusal(reason: str) -> str:
    """A domain refusal as a sentence for the person whose form it refused."""
    return reason[:1].upper() + reason[1:] + "."


async def _registration(
    request: Request,
) -> tuple[Any, booking.RegistrationResult, SessionView] | None:
    async with _db(request).read() as conn:
        try:
            registration = await booking.find_by_token(conn, request.path_params["token"])
        except NotFound:
            return None
        outcome = await booking.describe(conn, registration)
        session = await catalog.get_session(conn, registration.session_id)
    return registration, outcome, session


async def _registration_page(request: Request, template: str) -> Response:
    found = await _registration(request)
    if found is None:
        return error_page(request, 404, "Not found", "This registration link is not valid.")
    registration, outcome, session = found
    now = utcnow()
    show_join = models.sees_join_url(outcome)
    return render(
        request,
        template,
        {
            "page_title": session.course_title,
            "registration": registration,
            "outcome": outcome,
            "session": session,
            "join_url": session.join_url if show_join else None,
            "can_cancel": outcome.status != models.CANCELLED and now < session.starts_at,
            "manage_url": manage_url(_settings(request), outcome.token),
            "calendar": add_to_calendar_links(registration, session, _settings(request)),
        },
        private=True,
    )


async def result_page(request: Request) -> Response:
    return await _registration_page(request, "public/result.html")


async def manage_page(request: Request) -> Response:
    return await _registration_page(request, "public/manage.html")


async def cancel_confirmation(request: Request) -> Response:
    """Cancelling asks first: this page, whose form posts the confirmed cancellation."""
    return await _registration_page(request, "public/cancel.html")


@protected
async def cancel_registration(request: Request) -> Response:
    """The confirmed cancellation; a post without the confirmation shows the question again."""
    token = request.path_params["token"]
    settings = _settings(request)
    if (await request.form()).get("confirm") != "yes":
        return await _registration_page(request, "public/cancel.html")
    try:
        await booking.cancel(_db(request), token, reminder_offsets=settings.reminder_offsets)
    except NotFound:
        return error_page(request, 404, "Not found", "This registration link is not valid.")
    except Gone as exc:
        return error_page(request, 410, "Too late to cancel", exc.message)
    flash(request, "Your registration is cancelled. We have emailed you a confirmation.")
    return RedirectResponse(f"/registrations/{token}", 303)


routes = [
    Route("/", index, methods=["GET"]),
    Route("/courses/{slug}", course_page, methods=["GET"]),
    Route("/sessions/{session_id}/register", register, methods=["POST"]),
    Route("/registrations/{token}", manage_page, methods=["GET"]),
    Route("/registrations/{token}/result", result_page, methods=["GET"]),
    Route("/registrations/{token}/cancel", cancel_confirmation, methods=["GET"]),
    Route("/registrations/{token}/cancel", cancel_registration, methods=["POST"]),
]
