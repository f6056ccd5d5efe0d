"""Admin pages for importing a CSV of agencies: upload, preview with each row's errors, import.

The upload is checked whole (``agency_import.check_csv``) and stored as a preview; confirming
it starts the import, which runs after the response (a background task) in chunks whose
progress is committed with them. The progress page reads that row: without script it
refreshes itself (``<noscript><meta http-equiv=refresh>``), with script
``static/import_progress.js`` fetches it again and updates its ``<progress>`` in place. An
import that nobody moved for a while (its process stopped) is taken over by the next look.
"""

from __future__ import annotations

import re

from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from notifications.models import utcnow
from scheduler import agency_import
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.web.auth import admin_page
from scheduler.web.pages import error_page, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id

UPLOAD_PATH = "/admin/agencies/import"
UPLOAD_PATTERN = re.compile(re.escape(UPLOAD_PATH))
# What the body limit lets through on the upload's path: the file and the form around it.
UPLOAD_MAX_BODY = agency_import.MAX_BYTES + 64 * 1024
SHOWN_PROBLEMS = 500
SHOWN_ROWS = 100


def _upload_form(
    request: Request, *, errors: dict[str, str] | None = None, status_code: int = 200
) -> Response:
    return render(
        request,
        "admin/agency_import.html",
        {
            "page_title": "Import agencies",
            "errors": errors or {},
            "max_rows": agency_import.MAX_ROWS,
            "columns": agency_import.COLUMNS,
        },
        status_code=status_code,
        private=True,
    )


@admin_page
async def upload(request: Request) -> Response:
    if request.method == "GET":
        return _upload_form(request)
    form = await request.form()
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        await form.close()
        return _upload_form(request, errors={"file": "choose a CSV file"}, status_code=422)
    try:
        content = await file.read(agency_import.MAX_BYTES + 1)
    finally:
        await form.close()  # the upload's spooled temporary file
    try:
        made = await agency_import.check_csv(_db(request), file.filename, content)
    except Invalid as exc:
        return _upload_form(request, errors=exc.fields, status_code=422)
    return RedirectResponse(f"/admin/agencies/imports/{made.id}", 303)


@admin_page
async def import_page(request: Request) -> Response:
    """The preview, the progress, or the result of one import (by its status).

    POST confirms the preview: the import starts after this response is sent.
    """
    import_id = parse_id(request.path_params["import_id"])
    if import_id is None:
        return error_page(request, 404, "Not found", "There is no such import.")
    db = _db(request)
    try:
        if request.method == "POST":
            await agency_import.start(db, import_id)
            return RedirectResponse(
                f"/admin/agencies/imports/{import_id}",
                303,
                background=BackgroundTask(agency_import.run, db, import_id),
            )
        found = await agency_import.get_import(db, import_id)
    except NotFound:
        return error_page(request, 404, "Not found", "There is no such import.")
    except Conflict as exc:
        return error_page(request, 409, "Nothing to import", exc.message)
    response = render(
        request,
        "admin/agency_import_result.html",
        {
            "page_title": f"Import of {found.filename}",
            "job": found,
            "problems": found.problems[:SHOWN_PROBLEMS],
            "rows": found.rows[:SHOWN_ROWS],
        },
        private=True,
    )
    if found.stale(utcnow()):
        response.background = BackgroundTask(agency_import.run, db, import_id)
    return response


routes = [
    Route(UPLOAD_PATH, upload, methods=["GET", "POST"]),
    Route("/admin/agencies/imports/{import_id}", import_page, methods=["GET", "POST"]),
]
