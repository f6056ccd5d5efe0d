"""Admin pages: the dashboard, courses and sessions (create, edit, reschedule, cancel).

The session form itself (meetings, instructors, venue) is ``admin_schedule``; the instructor
and venue directories are ``admin_directory``.

Every handler is wrapped in ``admin_page``: anonymous visitors are sent to the login page and
every POST must carry the session's CSRF token. Validation is the domain's (``catalog``); a
refused form comes back with what was typed and each field's error next to it. The roster, the
outbox and API tokens live in ``admin_roster`` and ``admin_tools``; all their routes are
collected in ``routes`` at the bottom.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from notifications import outbox
from notifications.models import MessageStatus, utcnow
from scheduler import catalog
from scheduler.catalog import SessionView
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.models import DELIVERY, TrainingSession
from scheduler.web import (
    admin_agencies,
    admin_agency_import,
    admin_coordinators,
    admin_directory,
    admin_holds,
    admin_roster,
    admin_roster_changes,
    admin_search,
    admin_tools,
    auth,
)
from scheduler.web.admin_schedule import load_session, session_edit, session_new
from scheduler.web.auth import admin_page
from scheduler.web.forms import (
    course_body,
    field_errors,
)
from scheduler.web.pages import error_page, flash, render
from scheduler.web.params import db_of as _db


def not_found(request: Request, what: str = "page") -> Response:
    return error_page(request, 404, "Not found", f"There is no such {what}.")


# -- dashboard -------------------------------------------------------------------------------

# Past sessions are listed a page at a time, newest first, below the upcoming ones.
PAST_PAGE_SIZE = 10


def past_page(request: Request) -> int:
    """The 1-based page of past sessions asked for (``?past=N``); 1 when absent or bad."""
    value = request.query_params.get("past", "1")
    return int(value) if value.isdigit() and 0 < int(value) < 100_000 else 1


async def upcoming_and_past(
    conn: Any, now: Any, page: int, course_id: int | None = None
) -> tuple[list[SessionView], list[SessionView], bool]:
    """Upcoming sessions in start order, one page of past ones newest first, and whether an
    older page exists.

    The two lists' pools, meetings and instructors load together, so the page costs the same
    statements with years of history as with none (tests/web/test_history_pages.py).
    """
    course = [] if course_id is None else [TrainingSession.course_id == course_id]
    upcoming_ids = (
        (
            await conn.execute(
                select(TrainingSession.id).where(TrainingSession.ends_at > now, *course)
            )
        )
        .scalars()
        .all()
    )
    past_ids = (
        (
            await conn.execute(
                select(TrainingSession.id)
                .where(TrainingSession.ends_at <= now, *course)
                .order_by(TrainingSession.starts_at.desc(), TrainingSession.id.desc())
                .limit(PAST_PAGE_SIZE + 1)
                .offset((page - 1) * PAST_PAGE_SIZE)
            )
        )
        .scalars()
        .all()
    )
    shown = set(past_ids[:PAST_PAGE_SIZE])
    ids = [*upcoming_ids, *shown]
    views = await catalog.load_sessions(conn, session_ids=ids) if ids else []
    upcoming = [v for v in views if v.id not in shown]
    past = [v for v in reversed(views) if v.id in shown]
    return upcoming, past, len(past_ids) > PAST_PAGE_SIZE


@admin_page
async def dashboard(request: Request) -> Response:
    now = utcnow()
    page = past_page(request)
    async with _db(request).read() as conn:
        sessions, past, older = await upcoming_and_past(conn, now, page)
        failed = (await outbox.count_by_status(conn, [MessageStatus.FAILED]))[MessageStatus.FAILED]
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
        return _course_form(
            request,
            values={
                "delivery": ["in_person", "virtual"],
                "completion_rule": "all_meetings",
                "attendance_threshold": 80,
            },
        )
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
        sessions, past, older = await upcoming_and_past(conn, now, page, course_id=course.id)
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
            "completion_rule": course.completion_rule,
            "completion_percent": course.completion_percent or "",
            "credit_hours": "" if course.credit_hours is None else str(course.credit_hours),
            "course_number": course.course_number or "",
            "attendance_threshold": course.attendance_threshold,
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


@admin_page
async def session_cancel(request: Request) -> Response:
    """GET asks for confirmation; the POST from that page cancels and tells everyone."""
    found = await load_session(request)
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
    *admin_directory.routes,
    *admin_roster.routes,
    *admin_tools.routes,
    *admin_search.routes,
    # The import's fixed paths come before /admin/agencies/{agency_id}.
    *admin_agency_import.routes,
    *admin_agencies.routes,
    *admin_coordinators.routes,
    *admin_holds.routes,
    *admin_roster_changes.routes,
]
