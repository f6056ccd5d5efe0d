"""Attendance pages, the same for admins (``/admin/sessions/...``) and instructors
(``/instructor/sessions/...``): the grid of registrants x meetings, marking one meeting, importing
a Zoom or Teams report (and matching its leftover rows by hand), the check-in screen with its QR
code, the printable sign-in sheet, and finalizing.

Who may act is a ``Desk``: an admin (any session) or a signed-in instructor, who reaches only
the sessions they teach (``directory.teaches``); any other session is a 404, the same page as
a session that does not exist. Every form works without script and carries the CSRF token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import attendance, catalog, completion, documents
from scheduler.catalog import directory
from scheduler.errors import Conflict, Gone, Invalid, NotFound
from scheduler.web import attendance_api
from scheduler.web.attendance_api import issuer_of
from scheduler.web.auth import check_form, signed_in_admin
from scheduler.web.instructor_auth import LOGIN_PATH, current_instructor
from scheduler.web.pages import error_page, flash, meeting_when, render
from scheduler.web.params import parse_id
from scheduler.web.params import settings_of as _settings


@dataclass(frozen=True)
class Desk:
    """Who is at the attendance pages: where their pages live and what the audit calls them."""

    base: str
    layout: str
    actor: str
    instructor: Any = None


Handler = Callable[[Request, Desk], Awaitable[Response]]
Page = Callable[[Request], Awaitable[Response]]
MeetingHandler = Callable[[Request, Desk, catalog.SessionView, Any], Awaitable[Response]]


def _desk_pages(
    who: str, desk_of: Callable[[Request], Awaitable[Desk | Response]]
) -> Callable[[Handler], Page]:
    """A decorator: the page for whoever ``desk_of`` lets in (else its answer, a redirect to
    sign in); POSTs need the CSRF token; an uploaded report's spooled file goes afterwards."""

    def wrap(handler: Handler) -> Page:
        async def wrapper(request: Request) -> Response:
            desk = await desk_of(request)
            if isinstance(desk, Response):
                return desk
            try:
                refused = await check_form(request)
                return refused if refused is not None else await handler(request, desk)
            finally:
                await request.close()

        wrapper.__name__ = f"{who}_{handler.__name__}"
        return wrapper

    return wrap


async def _admin_desk(request: Request) -> Desk | Response:
    if await signed_in_admin(request) is None:
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"/admin/login?next={target}", 303)
    return Desk("/admin", "admin/base.html", str(request.session.get("admin_email") or "admin"))


async def _instructor_desk(request: Request) -> Desk | Response:
    instructor = await current_instructor(request)
    if instructor is None:
        return RedirectResponse(LOGIN_PATH, 303)
    return Desk("/instructor", "instructor/base.html", instructor.email, instructor)


for_admin = _desk_pages("admin", _admin_desk)
for_instructor = _desk_pages("instructor", _instructor_desk)


def _not_found(request: Request) -> Response:
    return error_page(request, 404, "Not found", "There is no such session or meeting.")


async def _session(request: Request, desk: Desk) -> catalog.SessionView | None:
    """The path's session if this desk may see it (an instructor: only their own)."""
    session_id = parse_id(request.path_params["session_id"])
    if session_id is None:
        return None
    async with request.state.db.read() as conn:
        if desk.instructor is not None and not await directory.teaches(
            conn, desk.instructor.email, session_id
        ):
            return None
        try:
            return await catalog.get_session(conn, session_id)
        except NotFound:
            return None


def _meeting(request: Request, session: catalog.SessionView) -> Any | None:
    meeting_id = parse_id(request.path_params["meeting_id"])
    return next((m for m in session.schedule if m.id == meeting_id), None)


def _at_meeting(handler: MeetingHandler) -> Handler:
    """A page about the path's meeting of the path's session: a 404 unless the desk may see
    both."""

    @wraps(handler)
    async def wrapper(request: Request, desk: Desk) -> Response:
        session = await _session(request, desk)
        meeting = _meeting(request, session) if session else None
        if session is None or meeting is None:
            return _not_found(request)
        return await handler(request, desk, session, meeting)

    return wrapper


def _meeting_url(desk: Desk, session: catalog.SessionView, meeting: Any) -> str:
    return f"{desk.base}/sessions/{session.id}/meetings/{meeting.id}"


def _form_values(form: Any) -> dict[str, str]:
    """A form's text fields (not its files), as typed, for the page that shows them again."""
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


def _ctx(desk: Desk, session: catalog.SessionView, **extra: Any) -> dict[str, Any]:
    labels = {m.id: _label(session, m) for m in session.schedule}
    return {
        "layout": desk.layout,
        "base": desk.base,
        "instructor": desk.instructor,
        "session": session,
        "meeting_labels": labels,
        **extra,
    }


def _label(session: catalog.SessionView, meeting: Any) -> str:
    day = session.day_of(meeting)
    prefix = f"Day {day[0]} of {day[1]} · " if day else ""
    return prefix + meeting_when(session, meeting)


# -- instructor home ---------------------------------------------------------------------------


async def my_sessions(request: Request, desk: Desk) -> Response:
    async with request.state.db.read() as conn:
        ids = await directory.sessions_of(conn, desk.actor)
        sessions = [await catalog.get_session(conn, sid) for sid in ids]
    return render(
        request,
        "instructor/home.html",
        {"page_title": "My sessions", "instructor": desk.instructor, "sessions": sessions},
        private=True,
    )


# -- the grid ----------------------------------------------------------------------------------


async def grid_page(request: Request, desk: Desk) -> Response:
    session = await _session(request, desk)
    if session is None:
        return _not_found(request)
    async with request.state.db.read() as conn:
        people = await attendance.confirmed_people(conn, session.id)
        marks = await attendance.grid(conn, session.id)
        results = await completion.completions(conn, session.id)
        trail = await completion.audit_trail(conn, session.id)
    done = {c["registration_id"]: c for c in results["completions"]}
    return render(
        request,
        "attendance/grid.html",
        _ctx(
            desk,
            session,
            page_title=f"{session.course_title} — attendance",
            people=people,
            marks=marks,
            completions=done,
            finalized=results["finalized_at"],
            finalized_by=results["finalized_by"],
            trail=trail,
        ),
        private=True,
    )


async def finalize(request: Request, desk: Desk) -> Response:
    session = await _session(request, desk)
    if session is None:
        return _not_found(request)
    try:
        result = await completion.finalize(
            request.state.db, session.id, actor=desk.actor, issuer=issuer_of(request)
        )
    except (Conflict, Gone) as exc:
        flash(request, f"Not finalized: {exc.message}.")
    else:
        completed = sum(1 for c in result["completions"] if c["completed"])
        flash(
            request,
            f"Finalized: {completed} of {len(result['completions'])} completed; "
            "their certificates are on their way.",
        )
    return RedirectResponse(f"{desk.base}/sessions/{session.id}/attendance", 303)


# -- one meeting -------------------------------------------------------------------------------


async def _meeting_page(
    request: Request,
    desk: Desk,
    session: catalog.SessionView,
    meeting: Any,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    async with request.state.db.read() as conn:
        people = await attendance.confirmed_people(conn, session.id)
        marks = await attendance.grid(conn, session.id)
        finalized = (await completion.completions(conn, session.id))["finalized_at"]
    context = _ctx(
        desk,
        session,
        page_title=f"{session.course_title} — {_label(session, meeting)}",
        meeting=meeting,
        meeting_label=_label(session, meeting),
        people=people,
        marks=marks,
        finalized=finalized,
        **{"errors": {}, "values": {}, "result": None, "failed": "", **extra},
    )
    return render(
        request, "attendance/meeting.html", context, status_code=status_code, private=True
    )


@_at_meeting
async def meeting_page(
    request: Request, desk: Desk, session: catalog.SessionView, meeting: Any
) -> Response:
    return await _meeting_page(request, desk, session, meeting)


async def _refused(
    request: Request,
    desk: Desk,
    session: catalog.SessionView,
    meeting: Any,
    failed: str,
    errors: dict[str, str],
    values: dict[str, str],
) -> Response:
    """The meeting page again with the ``failed`` form's errors and what was typed (422)."""
    return await _meeting_page(
        request,
        desk,
        session,
        meeting,
        status_code=422,
        errors=errors,
        values=values,
        failed=failed,
    )


@_at_meeting
async def save_marks(
    request: Request, desk: Desk, session: catalog.SessionView, meeting: Any
) -> Response:
    form = await request.form()
    values = _form_values(form)
    marks = []
    for key, choice in values.items():
        if not key.startswith("mark-") or choice not in ("present", "absent"):
            continue
        registration_id = parse_id(key.removeprefix("mark-"))
        raw_minutes = values.get(f"minutes-{key.removeprefix('mark-')}", "").strip()
        marks.append(
            {
                "registration_id": registration_id,
                "present": choice == "present",
                "minutes": raw_minutes or None,
            }
        )
    body = {"meeting_id": meeting.id, "marks": marks, "reason": values.get("reason", "")}
    try:
        request_marks = attendance.parse_marks(body)
        await attendance.record(
            request.state.db,
            session.id,
            request_marks,
            actor=desk.actor,
            issuer=issuer_of(request),
        )
    except Invalid as exc:
        errors = _form_errors(exc.fields, marks)
        return await _refused(request, desk, session, meeting, "marks", errors, values)
    except Gone as exc:
        return error_page(request, 410, "Not saved", exc.message)
    flash(request, f"Attendance saved for {len(marks)} people.")
    return RedirectResponse(_meeting_url(desk, session, meeting), 303)


def _form_errors(fields: dict[str, str], marks: list[dict[str, Any]]) -> dict[str, str]:
    """``marks.N.minutes`` (the API's paths) as the form's own field, ``minutes-<id>``."""
    errors: dict[str, str] = {}
    for key, why in fields.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "marks" and parts[1].isdigit():
            mark = marks[int(parts[1])] if int(parts[1]) < len(marks) else {}
            name = "minutes" if parts[2] == "minutes" else "mark"
            errors[f"{name}-{mark.get('registration_id')}"] = f"{parts[2]} {why}"
        else:
            errors[key] = why
    return errors


@_at_meeting
async def import_report(
    request: Request, desk: Desk, session: catalog.SessionView, meeting: Any
) -> Response:
    try:
        _, platform, data, reason = await attendance_api.read_upload(request)
        result = await attendance.import_report(
            request.state.db,
            session.id,
            meeting.id,
            platform,
            data,
            actor=desk.actor,
            reason=reason,
            issuer=issuer_of(request),
        )
    except Invalid as exc:
        form = await request.form()
        values = _form_values(form)
        return await _refused(request, desk, session, meeting, "import", exc.fields, values)
    except Gone as exc:
        return error_page(request, 410, "Not imported", exc.message)
    return await _meeting_page(request, desk, session, meeting, result=result)


@_at_meeting
async def match_row(
    request: Request, desk: Desk, session: catalog.SessionView, meeting: Any
) -> Response:
    """A report row the import could not match, given to a registrant by hand."""
    form = await request.form()
    values = _form_values(form)
    registration_id = parse_id(values.get("registration_id", ""))
    minutes = values.get("minutes", "")
    errors = {}
    if registration_id is None:
        errors["registration_id"] = "Choose the registrant this row belongs to."
    if not minutes.isdigit() or int(minutes) > 24 * 60:
        errors["minutes"] = "The report's minutes are missing."
    if errors:
        return await _refused(request, desk, session, meeting, "match", errors, values)
    platform = values.get("platform", "")
    async with request.state.db.read() as conn:
        threshold = await attendance.threshold_of(conn, session.id)
    length = int((meeting.ends_at - meeting.starts_at).total_seconds() // 60)
    present = attendance.is_present(int(minutes), length, threshold)
    body = {
        "meeting_id": meeting.id,
        "marks": [
            {"registration_id": registration_id, "present": present, "minutes": int(minutes)}
        ],
        "reason": values.get("reason", ""),
    }
    try:
        await attendance.record(
            request.state.db,
            session.id,
            attendance.parse_marks(body),
            actor=desk.actor,
            source=platform if platform in ("zoom", "teams") else "manual",
            issuer=issuer_of(request),
        )
    except Invalid as exc:
        return await _refused(request, desk, session, meeting, "match", exc.fields, values)
    flash(request, f"Matched: {minutes} minutes, {'present' if present else 'absent'}.")
    return RedirectResponse(_meeting_url(desk, session, meeting), 303)


# -- check-in screen, QR code and sign-in sheet -------------------------------------------------


async def _checkin_url(request: Request, session_id: int, meeting_id: int) -> str:
    async with request.state.db.read() as conn:
        facts = await attendance.meeting_of(conn, session_id, meeting_id)
    return f"{_settings(request).base_url}/checkin/{facts.checkin_code}"


@_at_meeting
async def checkin_screen(
    request: Request, desk: Desk, session: catalog.SessionView, meeting: Any
) -> Response:
    url = await _checkin_url(request, session.id, meeting.id)
    opens, closes = attendance.window(meeting.starts_at)
    return render(
        request,
        "attendance/checkin_screen.html",
        _ctx(
            desk,
            session,
            page_title=f"Check in — {session.course_title}",
            meeting=meeting,
            meeting_label=_label(session, meeting),
            checkin_url=url,
            opens=opens,
            closes=closes,
        ),
        private=True,
    )


@_at_meeting
async def checkin_qr(
    request: Request, desk: Desk, session: catalog.SessionView, meeting: Any
) -> Response:
    url = await _checkin_url(request, session.id, meeting.id)
    return Response(
        documents.qr_png(url), media_type="image/png", headers={"Cache-Control": "no-store"}
    )


@_at_meeting
async def sign_in_sheet(
    request: Request, desk: Desk, session: catalog.SessionView, meeting: Any
) -> Response:
    url = await _checkin_url(request, session.id, meeting.id)
    async with request.state.db.read() as conn:
        people = await attendance.confirmed_people(conn, session.id)
        provider = await attendance.provider_of(conn, session.id)
    venue = ", ".join(
        part for part in (session.venue_name, session.venue_room, session.venue_city) if part
    ) or ("Live virtual" if session.mode == "virtual" else "")
    facts = documents.SheetFacts(
        provider=provider,
        course_title=session.course_title,
        session_title=f"{session.course_title} · session {session.id}",
        meeting_label=_label(session, meeting),
        venue=venue,
        instructors=[i.name for i in session.instructors],
        checkin_url=url,
        rows=[
            documents.SheetRow(
                name=p.name,
                agency=p.agency,
                post_id=p.post_id or "",
                post_state=p.post_state or "",
            )
            for p in people
        ],
    )
    filename = f"sign-in-{session.id}-{meeting.id}.pdf"
    return Response(
        documents.sign_in_sheet(facts),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _routes(base: str, wrap: Callable[[Handler], Any]) -> list[Route]:
    s = base + "/sessions/{session_id}"
    m = s + "/meetings/{meeting_id}"
    return [
        Route(s + "/attendance", wrap(grid_page), methods=["GET"]),
        Route(s + "/finalize", wrap(finalize), methods=["POST"]),
        Route(m, wrap(meeting_page), methods=["GET"]),
        Route(m, wrap(save_marks), methods=["POST"]),
        Route(m + "/attendance/import", wrap(import_report), methods=["POST"]),
        Route(m + "/match", wrap(match_row), methods=["POST"]),
        Route(m + "/checkin", wrap(checkin_screen), methods=["GET"]),
        Route(m + "/checkin.png", wrap(checkin_qr), methods=["GET"]),
        Route(m + "/sheet.pdf", wrap(sign_in_sheet), methods=["GET"]),
    ]


routes = [
    Route("/instructor", for_instructor(my_sessions), methods=["GET"]),
    *_routes("/admin", for_admin),
    *_routes("/instructor", for_instructor),
]
