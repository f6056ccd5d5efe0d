"""Admin session form (new and edit): its meetings, instructors and venue.

The form carries one row per meeting: ``meeting-N-id`` (hidden: the meeting the row keeps, so a
moved day keeps its calendar UID), ``meeting-N-starts_at``, ``meeting-N-ends_at`` and a
``meeting-N-remove`` box; ``meeting_rows`` says how many rows were sent. Without JavaScript
"Add another day" is a submit button (``action=add_day``) that re-renders the form with one
more empty row and everything typed; ``static/meetings.js`` adds the row in place instead. A
new row left empty is skipped when saving, a row marked "remove" is left out (and that meeting
cancelled in every calendar). Without the script, Enter in a field also "adds a day" (the
first submit button is the default): harmless, as the empty row is skipped; the script makes
the button a plain one, so Enter saves.

The domain validates (``catalog.parse_session``) and names meeting errors by their place in the
list it was given (``meetings[1].ends_at``); removed and empty rows are not in that list, so
``MeetingRows.errors`` maps each back to the row it came from. A double-booking (``Conflict``
with ``instructors`` or ``venue_id``) is shown beside those fields. A post without
``meeting_rows`` (a plain ``starts_at``/``ends_at`` form) still means one meeting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scheduler import catalog
from scheduler.catalog import VENUE_FIELDS, SessionView
from scheduler.catalog import directory as directory_
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.models import CANCELLED, MAX_MEETINGS, MODES
from scheduler.web.auth import admin_page
from scheduler.web.forms import COMMON_ZONES, all_zones, field_errors, session_body
from scheduler.web.pages import datetime_local, error_page, flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id
from scheduler.web.params import settings_of as _settings

_MEETING_ERROR = re.compile(r"meetings\[(\d+)\](?:\.(\w+))?")


@dataclass
class MeetingRow:
    """One row of the form's schedule, as typed."""

    index: int
    id: str = ""
    starts_at: str = ""
    ends_at: str = ""
    remove: bool = False

    @property
    def empty(self) -> bool:
        return not (self.id or self.starts_at or self.ends_at)


@dataclass
class MeetingRows:
    """The form's rows and, for each meeting sent to the domain, the row it came from."""

    rows: list[MeetingRow]
    sent_from: list[int] = field(default_factory=list)

    def meetings(self) -> list[dict[str, Any]]:
        """The schedule for ``parse_session``: removed rows and empty new rows left out."""
        body: list[dict[str, Any]] = []
        self.sent_from = []
        for row in self.rows:
            if row.remove or row.empty:
                continue
            entry: dict[str, Any] = {"starts_at": row.starts_at, "ends_at": row.ends_at}
            if row.id:
                entry["id"] = row.id
            body.append(entry)
            self.sent_from.append(row.index)
        return body

    def values(self) -> dict[str, str]:
        return {
            f"meeting-{row.index}-{key}": getattr(row, key)
            for row in self.rows
            for key in ("starts_at", "ends_at")
        }

    def errors(self, fields: dict[str, str]) -> dict[str, str]:
        """Domain field names onto the form's inputs: ``meetings[1].ends_at`` onto the row that
        sent meeting 1, ``instructors[0]`` onto the instructors' group."""
        shown: dict[str, str] = {}
        for name, why in fields.items():
            match = _MEETING_ERROR.fullmatch(name)
            first = self.sent_from[0] if self.sent_from else 0
            if match and int(match[1]) < len(self.sent_from):
                key = match[2] if match[2] in ("starts_at", "ends_at") else "starts_at"
                shown.setdefault(f"meeting-{self.sent_from[int(match[1])]}-{key}", why)
            elif name == "meetings" or match:
                shown["meetings"] = why if self.sent_from else "a session needs at least one day"
            elif name in ("starts_at", "ends_at"):
                shown.setdefault(f"meeting-{first}-{name}", why)
            elif name.startswith("instructors"):
                shown.setdefault("instructors", why)
            else:
                shown.update(field_errors({name: why}))
        return shown


def read_rows(form: FormData) -> MeetingRows | None:
    """The schedule rows of a posted form, or None for a plain ``starts_at``/``ends_at`` post."""
    raw = form.get("meeting_rows")
    if not isinstance(raw, str) or not raw.isdigit():
        return None
    rows = []
    for index in range(min(int(raw), MAX_MEETINGS + 1)):

        def text(key: str, index: int = index) -> str:
            value = form.get(f"meeting-{index}-{key}")
            return value.strip() if isinstance(value, str) else ""

        rows.append(
            MeetingRow(
                index,
                text("id"),
                text("starts_at"),
                text("ends_at"),
                form.get(f"meeting-{index}-remove") == "on",
            )
        )
    return MeetingRows(rows)


def schedule_body(
    form: FormData, *, editing: bool
) -> tuple[dict[str, Any], dict[str, Any], MeetingRows]:
    """``(body for catalog, values to re-display, rows)`` from the session form."""
    base, typed = session_body(form)
    body: dict[str, Any] = dict(base)
    values: dict[str, Any] = dict(typed)
    rows = read_rows(form)
    if rows is None:
        # A one-meeting post: ``starts_at``/``ends_at`` keep that meeting on an edit.
        rows = MeetingRows([MeetingRow(0, "", values["starts_at"], values["ends_at"])])
        rows.sent_from = [0]
    else:
        body.pop("starts_at", None)
        body.pop("ends_at", None)
        body["meetings"] = rows.meetings()
        body["instructors"] = [v for v in form.getlist("instructors") if isinstance(v, str)]
        body["allow_overlap"] = form.get("allow_overlap") == "on"
    if editing and "instructors" not in body:
        values["instructors"] = None
    else:
        values["instructors"] = body.get("instructors", [])
    values["allow_overlap"] = "on" if form.get("allow_overlap") == "on" else ""
    venue_id = form.get("venue_id")
    values["venue_id"] = venue_id.strip() if isinstance(venue_id, str) else ""
    room = form.get("venue_room")
    values["venue_room"] = room.strip() if isinstance(room, str) else ""
    if "venue" in body:
        if values["venue_id"]:
            del body["venue"]
            body["venue_id"] = values["venue_id"]
        else:
            body["venue"]["room"] = values["venue_room"] or None
    values.update(rows.values())
    return body, values, rows


def session_values(session: SessionView) -> tuple[dict[str, Any], MeetingRows]:
    """A session as the form shows it: wall-clock times in its own zone, one row a meeting."""
    zone = session.timezone
    values: dict[str, Any] = {
        "timezone": zone,
        "mode": session.mode,
        "join_url": session.join_url or "",
        "platform": session.platform or "",
        "max_per_agency": str(session.max_per_agency or ""),
        "registration_closes_at": datetime_local(session.registration_closes_at, zone),
        "instructors": [str(i.id) for i in session.instructors],
        "venue_id": str(session.venue_id or ""),
        "venue_room": session.venue_room or "",
        "allow_overlap": "on" if session.allow_overlap else "",
    }
    for attendance in ("in_person", "virtual"):
        pool = session.pool(attendance)
        values[f"{attendance}_capacity"] = str(pool.capacity) if pool else ""
    for key in VENUE_FIELDS:
        values[f"venue_{key}"] = getattr(session, f"venue_{key}") or ""
    rows = MeetingRows(
        [
            MeetingRow(
                index,
                str(m.id),
                datetime_local(m.starts_at, zone),
                datetime_local(m.ends_at, zone),
            )
            for index, m in enumerate(session.schedule)
        ]
    )
    values.update(rows.values())
    return values, rows


async def _session_form(
    request: Request,
    *,
    course: catalog.CourseView,
    values: dict[str, Any],
    rows: MeetingRows,
    errors: dict[str, str] | None = None,
    session: SessionView | None = None,
    status_code: int = 200,
    notice: str = "",
) -> Response:
    async with _db(request).read() as conn:
        instructors = await directory_.list_instructors(conn)
        venues = await directory_.list_venues(conn)
    title = f"Edit session of {course.title}" if session else f"New session of {course.title}"
    return render(
        request,
        "admin/session_form.html",
        {
            "page_title": title,
            "course": course,
            "session": session,
            "values": values,
            "rows": rows.rows,
            "row_count": max((r.index for r in rows.rows), default=-1) + 1,
            "max_meetings": MAX_MEETINGS,
            "errors": errors or {},
            "notice": notice,
            "instructors": instructors,
            "venues": venues,
            "modes": MODES,
            "common_zones": COMMON_ZONES,
            "all_zones": all_zones(),
        },
        status_code=status_code,
        private=True,
    )


async def _add_day(
    request: Request,
    *,
    course: catalog.CourseView,
    values: dict[str, Any],
    rows: MeetingRows,
    session: SessionView | None,
) -> Response:
    """Re-render the form with one more empty row (the no-JavaScript "Add another day")."""
    if len(rows.rows) >= MAX_MEETINGS:
        return await _session_form(
            request,
            course=course,
            values=values,
            rows=rows,
            session=session,
            errors={"meetings": f"a session meets on at most {MAX_MEETINGS} days"},
            status_code=422,
        )
    rows.rows.append(MeetingRow(max((r.index for r in rows.rows), default=-1) + 1))
    return await _session_form(
        request,
        course=course,
        values=values,
        rows=rows,
        session=session,
        notice=f"Day {len(rows.rows)} added below: fill in its start and end, then save.",
    )


@admin_page
async def session_new(request: Request) -> Response:
    slug = request.path_params["slug"]
    async with _db(request).read() as conn:
        try:
            course = await catalog.get_course(conn, slug)
        except NotFound:
            return error_page(request, 404, "Not found", "There is no such course.")
    if request.method == "GET":
        defaults: dict[str, Any] = {"timezone": "America/Chicago", "mode": "in_person"}
        return await _session_form(
            request, course=course, values=defaults, rows=MeetingRows([MeetingRow(0)])
        )
    form = await request.form()
    body, values, rows = schedule_body(form, editing=False)
    if form.get("action") == "add_day":
        return await _add_day(request, course=course, values=values, rows=rows, session=None)
    try:
        session = await catalog.create_session(
            _db(request), slug, body, travel_buffer=_settings(request).travel_buffer
        )
    except (Invalid, Conflict) as exc:
        return await _session_form(
            request,
            course=course,
            values=values,
            rows=rows,
            errors=rows.errors(exc.fields) or {"form": exc.message},
            status_code=exc.status_code,
        )
    flash(request, "Session scheduled.")
    return RedirectResponse(f"/admin/sessions/{session.id}", 303)


async def load_session(request: Request) -> tuple[SessionView, catalog.CourseView] | None:
    """The session named by the path and its course, or None (the admin pages answer 404)."""
    session_id = parse_id(request.path_params["session_id"])
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
    found = await load_session(request)
    if found is None:
        return error_page(request, 404, "Not found", "There is no such session.")
    session, course = found
    if session.status == CANCELLED:
        return error_page(request, 409, "Cancelled", "A cancelled session cannot be changed.")
    if request.method == "GET":
        values, rows = session_values(session)
        return await _session_form(
            request, course=course, values=values, rows=rows, session=session
        )
    form = await request.form()
    body, values, rows = schedule_body(form, editing=True)
    if values["instructors"] is None:
        values["instructors"] = [str(i.id) for i in session.instructors]
    if form.get("action") == "add_day":
        return await _add_day(request, course=course, values=values, rows=rows, session=session)
    try:
        await catalog.update_session(
            _db(request),
            session.id,
            body,
            reminder_offsets=_settings(request).reminder_offsets,
            travel_buffer=_settings(request).travel_buffer,
        )
    except (Invalid, Conflict) as exc:
        return await _session_form(
            request,
            course=course,
            values=values,
            rows=rows,
            errors=rows.errors(exc.fields) or {"form": exc.message},
            session=session,
            status_code=exc.status_code,
        )
    flash(request, "Session saved. Everyone affected will be told by email.")
    return RedirectResponse(f"/admin/sessions/{session.id}", 303)
