"""Admin pages: the dashboard, courses and sessions (create, edit, reschedule, cancel).

Every handler is wrapped in ``admin_page``: anonymous visitors are sent to the login page and
every POST must carry the session's CSRF token. Validation is the domain's (``catalog``); a
refused form comes back with what was typed and each field's error next to it. The roster, the
outbox and API tokens live in ``admin_roster`` and ``admin_tools``; all their routes are
collected in ``routes`` at the bottom.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from notifications.models import Message, MessageStatus, utcnow
from scheduler import catalog
from scheduler.catalog import VENUE_FIELDS, SessionView
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.models import CANCELLED, DELIVERY, MODES
from scheduler.web import admin_roster, admin_search, admin_tools, auth
from scheduler.web.auth import admin_page
from scheduler.web.forms import (
    COMMON_ZONES,
    all_zones,
    course_body,
    field_errors,
    session_body,
)
from scheduler.web.pages import datetime_local, error_page, flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import path_id
from scheduler.web.params import settings_of as _settings


def not_found(request: Request, what: str = "page") -> Response:
    return error_page(request, 404, "Not found", f"There is no such {what}.")


# -- dashboard -------------------------------------------------------------------------------

# Past sessions are listed a page at a time, newest first, below the upcoming ones.
PAST_PAGE_SIZE = 20


def past_page(request: Request) -> int:
    """The 1-based page of past sessions asked for (``?past=N``); 1 when absent or bad."""
    value = request.query_params.get("past", "1")
    return int(value) if value.isdigit() and 0 < int(value) < 100_000 else 1


async def load_past(
    conn: Any, now: Any, page: int, course_id: int | None = None
) -> tuple[list[SessionView], bool]:
    """One page of past sessions, newest first, and whether an older page exists."""
    found = await catalog.load_sessions(
        conn,
        course_id=course_id,
        ended_by=now,
        newest_first=True,
        limit=PAST_PAGE_SIZE + 1,
        offset=(page - 1) * PAST_PAGE_SIZE,
    )
    return found[:PAST_PAGE_SIZE], len(found) > PAST_PAGE_SIZE


@admin_page
async def dashboard(request: Request) -> Response:
    now = utcnow()
    page = past_page(request)
    async with _db(request).read() as conn:
        sessions = await catalog.load_sessions(conn, upcoming_after=now)
        past, older = await load_past(conn, now, page)
        failed = (
            await conn.execute(
                select(func.count())
                .select_from(Message)
                .where(Message.status == MessageStatus.FAILED)
            )
        ).scalar_one()
        courses = await catalog.list_courses(conn)
    return render(
        request,
        "admin/dashboard.html",
        {
            "page_title": "Dashboard",
            "sessions": sessions,
            "past": past,
            "past_page": page,
            "past_older": older,
            "failed_mail": int(failed),
            "course_count": len(courses),
        },
        private=True,
    )


# -- courses ---------------------------------------------------------------------------------


@admin_page
async def courses(request: Request) -> Response:
    now = utcnow()
    async with _db(request).read() as conn:
        all_courses = await catalog.list_courses(conn)
        upcoming = await catalog.upcoming_counts(conn, now)
    return render(
        request,
        "admin/courses.html",
        {"page_title": "Courses", "courses": all_courses, "upcoming": upcoming},
        private=True,
    )


def _course_form(
    request: Request,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    editing: str | None = None,
    sessions: list[SessionView] | None = None,
    history: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/course_form.html",
        {
            "page_title": f"Edit {values.get('title') or editing}" if editing else "New course",
            "values": values,
            "errors": errors or {},
            "editing": editing,
            "delivery_choices": DELIVERY,
            "sessions": sessions or [],
            **(history or {"past": [], "past_page": 1, "past_older": False}),
        },
        status_code=status_code,
        private=True,
    )


@admin_page
async def course_new(request: Request) -> Response:
    if request.method == "GET":
        return _course_form(request, values={"delivery": ["in_person", "virtual"]})
    body, values = course_body(await request.form())
    try:
        course = await catalog.create_course(_db(request), body)
    except (Invalid, Conflict) as exc:
        return _course_form(
            request, values=values, errors=field_errors(exc.fields), status_code=exc.status_code
        )
    flash(request, f"Course “{course.title}” created.")
    return RedirectResponse(f"/admin/courses/{course.slug}", 303)


@admin_page
async def course_edit(request: Request) -> Response:
    slug = request.path_params["slug"]
    async with _db(request).read() as conn:
        try:
            course = await catalog.get_course(conn, slug)
        except NotFound:
            return not_found(request, "course")
        # Upcoming first, then one page of the past: a course's whole history is never loaded.
        now = utcnow()
        page = past_page(request)
        sessions = await catalog.load_sessions(conn, course_id=course.id, upcoming_after=now)
        past, older = await load_past(conn, now, page, course_id=course.id)
    history = {"past": past, "past_page": page, "past_older": older}
    if request.method == "GET":
        values: dict[str, Any] = {
            "slug": course.slug,
            "title": course.title,
            "description": course.description,
            "audience": course.audience,
            "provider": course.provider,
            "online_url": course.online_url or "",
            "delivery": list(course.delivery),
        }
        return _course_form(
            request, values=values, editing=slug, sessions=sessions, history=history
        )
    body, values = course_body(await request.form())
    body.pop("slug", None)
    values["slug"] = slug
    try:
        course = await catalog.update_course(_db(request), slug, body)
    except (Invalid, Conflict) as exc:
        return _course_form(
            request,
            values=values,
            errors=field_errors(exc.fields),
            editing=slug,
            sessions=sessions,
            history=history,
            status_code=exc.status_code,
        )
    flash(request, f"Course “{course.title}” saved.")
    return RedirectResponse(f"/admin/courses/{course.slug}", 303)


# -- sessions --------------------------------------------------------------------------------


def session_values(session: SessionView) -> dict[str, str]:
    """A session as the form shows it: wall-clock times in its own zone."""
    zone = session.timezone
    values = {
        "starts_at": datetime_local(session.starts_at, zone),
        "ends_at": datetime_local(session.ends_at, zone),
        "timezone": zone,
        "mode": session.mode,
        "join_url": session.join_url or "",
        "platform": session.platform or "",
        "max_per_agency": str(session.max_per_agency or ""),
        "registration_closes_at": datetime_local(session.registration_closes_at, zone),
    }
    for attendance in ("in_person", "virtual"):
        pool = session.pool(attendance)
        values[f"{attendance}_capacity"] = str(pool.capacity) if pool else ""
    for key in VENUE_FIELDS:
        values[f"venue_{key}"] = getattr(session, f"venue_{key}") or ""
    return values


def _session_form(
    request: Request,
    *,
    course: catalog.CourseView,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    session: SessionView | None = None,
    status_code: int = 200,
) -> Response:
    title = f"Edit session of {course.title}" if session else f"New session of {course.title}"
    return render(
        request,
        "admin/session_form.html",
        {
            "page_title": title,
            "course": course,
            "session": session,
            "values": values,
            "errors": errors or {},
            "modes": MODES,
            "common_zones": COMMON_ZONES,
            "all_zones": all_zones(),
        },
        status_code=status_code,
        private=True,
    )


@admin_page
async def session_new(request: Request) -> Response:
    slug = request.path_params["slug"]
    async with _db(request).read() as conn:
        try:
            course = await catalog.get_course(conn, slug)
        except NotFound:
            return not_found(request, "course")
    if request.method == "GET":
        defaults = {"timezone": "America/Chicago", "mode": "in_person"}
        return _session_form(request, course=course, values=defaults)
    body, values = session_body(await request.form())
    try:
        session = await catalog.create_session(
            _db(request), slug, body, travel_buffer=_settings(request).travel_buffer
        )
    except (Invalid, Conflict) as exc:
        return _session_form(
            request,
            course=course,
            values=values,
            errors=field_errors(exc.fields),
            status_code=exc.status_code,
        )
    flash(request, "Session scheduled.")
    return RedirectResponse(f"/admin/sessions/{session.id}", 303)


async def _load_session(request: Request) -> tuple[SessionView, catalog.CourseView] | None:
    session_id = path_id(request, "session_id")
    if session_id is None:
        return None
    async with _db(request).read() as conn:
        try:
            session = await catalog.get_session(conn, session_id)
        except NotFound:
            return None
        course = await catalog.get_course(conn, session.course_slug)
    return session, course


@admin_page
async def session_edit(request: Request) -> Response:
    found = await _load_session(request)
    if found is None:
        return not_found(request, "session")
    session, course = found
    if session.status == CANCELLED:
        return error_page(request, 409, "Cancelled", "A cancelled session cannot be changed.")
    if request.method == "GET":
        return _session_form(
            request, course=course, values=session_values(session), session=session
        )
    body, values = session_body(await request.form())
    try:
        await catalog.update_session(
            _db(request),
            session.id,
            body,
            reminder_offsets=_settings(request).reminder_offsets,
            travel_buffer=_settings(request).travel_buffer,
        )
    except (Invalid, Conflict) as exc:
        return _session_form(
            request,
            course=course,
            values=values,
            errors=field_errors(exc.fields) or {"form": exc.message},
            session=session,
            status_code=exc.status_code,
        )
    flash(request, "Session saved. Everyone affected will be told by email.")
    return RedirectResponse(f"/admin/sessions/{session.id}", 303)


@admin_page
async def session_cancel(request: Request) -> Response:
    """GET asks for confirmation; the POST from that page cancels and tells everyone."""
    found = await _load_session(request)
    if found is None:
        return not_found(request, "session")
    session, course = found
    if request.method == "GET":
        affected = sum(p.confirmed + p.waitlisted for p in session.pools)
        return render(
            request,
            "admin/session_cancel.html",
            {
                "page_title": "Cancel session",
                "session": session,
                "course": course,
                "affected": affected,
            },
            private=True,
        )
    form = await request.form()
    reason = str(form.get("reason", "")).strip()[:500]
    await catalog.cancel_session(_db(request), session.id, reason=reason)
    flash(request, "Session cancelled. Everyone registered will be told by email.")
    return RedirectResponse(f"/admin/sessions/{session.id}", 303)


routes = [
    *auth.routes,
    Route("/admin", dashboard, methods=["GET"]),
    Route("/admin/courses", courses, methods=["GET"]),
    Route("/admin/courses/new", course_new, methods=["GET", "POST"]),
    Route("/admin/courses/{slug}", course_edit, methods=["GET", "POST"]),
    Route("/admin/courses/{slug}/sessions/new", session_new, methods=["GET", "POST"]),
    Route("/admin/sessions/{session_id}/edit", session_edit, methods=["GET", "POST"]),
    Route("/admin/sessions/{session_id}/cancel", session_cancel, methods=["GET", "POST"]),
    *admin_roster.routes,
    *admin_tools.routes,
    *admin_search.routes,
]
