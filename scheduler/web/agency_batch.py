"""Register a squad from the console: rows in a form or a CSV upload, a preview, one submit.

- ``GET /agency/sessions/{id}/batch`` shows empty rows; "Add rows" posts the form back with
  more (what was typed stays), "Check these officers" posts it to the preview.
- ``POST …/batch/upload`` reads a CSV file (``squad_sheet.read_csv``) straight to the preview.
- The preview lists every row's problems and carries the rows in hidden fields to
  ``POST …/batch/register``, which calls ``squads.register_batch`` once; the result page shows
  each row confirmed, waitlisted or with its error.

Nothing here validates a row itself: the preview and the batch use the domain's checks.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler import agencies, squad_sheet, squads
from scheduler.catalog import SessionView
from scheduler.errors import Gone, Invalid
from scheduler.web.agency_auth import Coordinator
from scheduler.web.agency_console import console_page, not_found, own_agency, path_session
from scheduler.web.pages import error_page, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import settings_of as _settings

BASE = "/agency/sessions/{session_id}/batch"
START_ROWS = 5
ADD_ROWS = 5
# The rows travel in form fields and the CSV as a file: these posts may be larger than others.
UPLOAD_PATHS = re.compile(r"/agency/sessions/[0-9]{1,10}/batch(/upload|/register)?")
UPLOAD_MAX_BYTES = squad_sheet.MAX_CSV_BYTES + 64 * 1024


def rows_from(form: FormData) -> list[squad_sheet.Row]:
    """The rows of the form, as typed (``name_0``, ``email_0``, …)."""
    try:
        count = min(int(str(form.get("row_count", START_ROWS))), squads.MAX_BATCH + ADD_ROWS)
    except ValueError:
        count = START_ROWS
    rows = []
    for i in range(max(count, 0)):
        rows.append({c: str(form.get(f"{c}_{i}", "")).strip()[:400] for c in squad_sheet.COLUMNS})
    return rows


async def _page(
    request: Request,
    coordinator: Coordinator,
    session: SessionView,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    async with _db(request).read() as conn:
        mine = [await agencies.get_agency(conn, a) for a in sorted(coordinator.agency_ids)]
    return render(
        request,
        template,
        {
            "page_title": f"Register officers: {session.course_title}",
            "coordinator": coordinator,
            "session": session,
            "agencies": mine,
            "columns": squad_sheet.COLUMNS,
            "max_batch": squads.MAX_BATCH,
            **context,
        },
        status_code=status_code,
        private=True,
    )


def _choices(form: FormData | None, request: Request, session: SessionView) -> dict[str, str]:
    source: Any = form if form is not None else request.query_params
    attendance = str(source.get("attendance", "") or "")
    if not attendance and len(session.pools) == 1:
        attendance = session.pools[0].attendance
    return {"agency_id": str(source.get("agency_id", "") or ""), "attendance": attendance}


async def _rows_form(
    request: Request,
    coordinator: Coordinator,
    session: SessionView,
    rows: list[squad_sheet.Row],
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return await _page(
        request,
        coordinator,
        session,
        "agency/batch_form.html",
        {"rows": rows, "values": values, "errors": errors or {}},
        status_code,
    )


def _check_choices(
    coordinator: Coordinator, session: SessionView, values: dict[str, str]
) -> tuple[int | None, dict[str, str]]:
    """The agency (None: not theirs, a 404) and the attendance's field error, if any."""
    agency_id = own_agency(coordinator, values["agency_id"])
    errors: dict[str, str] = {}
    if values["attendance"] not in {p.attendance for p in session.pools}:
        errors["attendance"] = "Choose in person or live virtual, as the session offers."
    return agency_id, errors


async def _posted(
    request: Request, coordinator: Coordinator
) -> tuple[SessionView, FormData, dict[str, str], int, dict[str, str]] | Response:
    """A posted batch's session, form, choices, agency and the choices' errors; the 404 page
    for a session that does not exist or an agency that is not the coordinator's."""
    session = await path_session(request)
    if session is None:
        return not_found(request, "session")
    form = await request.form()
    values = _choices(form, request, session)
    agency_id, errors = _check_choices(coordinator, session, values)
    if agency_id is None:
        return not_found(request, "agency")
    return session, form, values, agency_id, errors


def _size_errors(rows: list[squad_sheet.Row]) -> dict[str, str]:
    """The batch size limit's field error, if the rows break it."""
    try:
        squad_sheet.check_size(rows)
    except Invalid as exc:
        return exc.fields
    return {}


@console_page
async def batch_form(request: Request, coordinator: Coordinator) -> Response:
    """GET: the empty rows. POST: "Add rows" or "Check these officers"."""
    session = await path_session(request)
    if session is None:
        return not_found(request, "session")
    form = await request.form() if request.method == "POST" else None
    values = _choices(form, request, session)
    if own_agency(coordinator, values["agency_id"]) is None and values["agency_id"]:
        return not_found(request, "agency")
    if form is None:
        rows = [dict.fromkeys(squad_sheet.COLUMNS, "") for _ in range(START_ROWS)]
        return await _rows_form(request, coordinator, session, rows, values)
    rows = rows_from(form)
    if form.get("action") == "add_rows":
        rows += [dict.fromkeys(squad_sheet.COLUMNS, "") for _ in range(ADD_ROWS)]
        return await _rows_form(request, coordinator, session, rows, values)
    if form.get("action") == "edit":
        return await _rows_form(request, coordinator, session, rows, values)
    agency_id, errors = _check_choices(coordinator, session, values)
    if agency_id is None:
        return not_found(request, "agency")
    typed = squad_sheet.clean_rows(rows)
    errors.update(_size_errors(typed))
    if errors:
        return await _rows_form(request, coordinator, session, rows, values, errors, 422)
    return await _preview(request, coordinator, session, agency_id, values, typed)


async def _preview(
    request: Request,
    coordinator: Coordinator,
    session: SessionView,
    agency_id: int,
    values: dict[str, str],
    rows: list[squad_sheet.Row],
) -> Response:
    async with _db(request).read() as conn:
        checks = await squad_sheet.preview(conn, session.id, agency_id, values["attendance"], rows)
    return await _page(
        request,
        coordinator,
        session,
        "agency/batch_preview.html",
        {
            "checks": checks,
            "values": {**values, "agency_id": str(agency_id)},
            "problems": sum(1 for c in checks if not c.ok),
        },
    )


@console_page
async def batch_upload(request: Request, coordinator: Coordinator) -> Response:
    """A CSV file straight to the preview; a wrong file is a field error on the form."""
    posted = await _posted(request, coordinator)
    if isinstance(posted, Response):
        return posted
    session, form, values, agency_id, errors = posted
    upload = form.get("file")
    rows: list[squad_sheet.Row] = []
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors["file"] = "Choose a CSV file to upload."
    else:
        try:
            rows = squad_sheet.read_csv(await upload.read(squad_sheet.MAX_CSV_BYTES + 1))
        except Invalid as exc:
            errors.update(exc.fields)
    if errors:
        empty = [dict.fromkeys(squad_sheet.COLUMNS, "") for _ in range(START_ROWS)]
        return await _rows_form(request, coordinator, session, empty, values, errors, 422)
    return await _preview(request, coordinator, session, agency_id, values, rows)


@console_page
async def batch_register(request: Request, coordinator: Coordinator) -> Response:
    """The one submit: every row registered that can be; the result per row."""
    posted = await _posted(request, coordinator)
    if isinstance(posted, Response):
        return posted
    session, form, values, agency_id, errors = posted
    rows = squad_sheet.clean_rows(rows_from(form))
    errors.update(_size_errors(rows))
    if errors:
        return await _rows_form(request, coordinator, session, rows, values, errors, 422)
    settings = _settings(request)
    try:
        results = await squads.register_batch(
            _db(request),
            session.id,
            {
                "agency_id": agency_id,
                "attendance": values["attendance"],
                "people": squad_sheet.people(rows),
            },
            reminder_offsets=settings.reminder_offsets,
            sender=coordinator.email,
        )
    except Gone as exc:
        return error_page(request, 410, "Registration closed", exc.message.capitalize() + ".")
    except Invalid as exc:
        return await _rows_form(request, coordinator, session, rows, values, exc.fields, 422)
    counts = {s: sum(1 for r in results if r.status == s) for s in ("confirmed", "waitlisted")}
    return await _page(
        request,
        coordinator,
        session,
        "agency/batch_result.html",
        {
            "results": results,
            "counts": counts,
            "errors_count": sum(1 for r in results if r.status == "error"),
        },
    )


routes = [
    Route(BASE, batch_form, methods=["GET", "POST"]),
    Route(BASE + "/upload", batch_upload, methods=["POST"]),
    Route(BASE + "/register", batch_register, methods=["POST"]),
]
