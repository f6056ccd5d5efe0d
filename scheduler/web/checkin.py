"""The self check-in page ``/checkin/{code}``: a confirmed registrant confirms with their email.

The code is the meeting's unguessable ``checkin_code`` (on the sign-in sheet's QR code and the
instructor's screen); an unknown code is a plain 404. Each attempt counts against the client's
per-minute limit (``checkin`` bucket), so the page cannot be used to probe addresses quickly,
and the answer for an unknown address is the same as for one that is not confirmed.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler import attendance
from scheduler.errors import NotFound
from scheduler.web.auth import protected
from scheduler.web.pages import enforce_rate_limit, error_page, local_time, render

OUTCOMES = {
    "marked": (True, "You are checked in", "Thank you, {name}: you are marked present."),
    "already": (True, "You are already checked in", "{name}, you are already checked in."),
    "too_early": (
        False,
        "Check-in is not open yet",
        "Check-in opens 30 minutes before the meeting starts. Nothing was recorded.",
    ),
    "too_late": (
        False,
        "Check-in is closed",
        "Check-in closed 30 minutes after the start. Ask the instructor to mark you present.",
    ),
    "unknown": (
        False,
        "Not checked in",
        "This address is not registered and confirmed for this session. Use the address you "
        "registered with, or ask the instructor. Nothing was recorded.",
    ),
    "finalized": (
        False,
        "The roster is final",
        "The instructor has finalized this roster. Ask them about a change.",
    ),
}


async def _meeting(request: Request) -> Any | Response:
    code = request.path_params["code"]
    try:
        async with request.state.db.read() as conn:
            return await attendance.checkin_meeting(conn, code)
    except NotFound:
        return error_page(request, 404, "Not found", "There is no such check-in page.")


def _context(request: Request, meeting: Any, **extra: Any) -> dict[str, Any]:
    opens, closes = attendance.window(meeting.starts_at)
    zone = meeting.timezone
    return {
        "page_title": "Check in",
        "outcome": None,
        "meeting": meeting,
        "code": request.path_params["code"],
        "meeting_label": local_time(meeting.starts_at, zone),
        "opens": local_time(opens, zone, "%-I:%M %p"),
        "closes": local_time(closes, zone, "%-I:%M %p %Z"),
        **extra,
    }


async def checkin_form(request: Request) -> Response:
    meeting = await _meeting(request)
    if isinstance(meeting, Response):
        return meeting
    return render(request, "public/checkin.html", _context(request, meeting), private=True)


@protected
async def checkin(request: Request) -> Response:
    limited = await enforce_rate_limit(request, "checkin")
    if limited is not None:
        return limited
    meeting = await _meeting(request)
    if isinstance(meeting, Response):
        return meeting
    form = await request.form()
    email = str(form.get("email", "")).strip()[:320]
    values = {"email": email}
    if "@" not in email:
        context = _context(
            request,
            meeting,
            values=values,
            errors={"email": "Enter the email address you registered with."},
        )
        return render(request, "public/checkin.html", context, status_code=422, private=True)
    result = await attendance.check_in(request.state.db, request.path_params["code"], email)
    ok, title, text = OUTCOMES[result.status]
    outcome = {"ok": ok, "title": title, "text": text.format(name=result.name or "")}
    status = 200 if ok else 409
    return render(
        request,
        "public/checkin.html",
        _context(request, meeting, values=values, outcome=outcome),
        status_code=status,
        private=True,
    )


routes = [
    Route("/checkin/{code}", checkin_form, methods=["GET"]),
    Route("/checkin/{code}", checkin, methods=["POST"]),
]
