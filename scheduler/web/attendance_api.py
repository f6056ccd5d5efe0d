"""The JSON API of attendance and completion (admin token): marks per meeting, imported
Zoom/Teams reports, finalize, completions. Instructors do the same from their pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scheduler import attendance, catalog, certificates, completion
from scheduler.attendance_reports import PLATFORMS
from scheduler.errors import Invalid
from scheduler.web.api import NO_STORE, read_json, require_admin
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id, path_int
from scheduler.web.params import settings_of as _settings

# The largest report read (the request itself may be a little larger: the multipart framing).
MAX_REPORT_BYTES = 3 * 1024 * 1024


def iso(instant: datetime) -> str:
    return instant.isoformat()


def issuer_of(request: Request) -> certificates.Issuer:
    """Certificates name this site's provider and verification URL (``SCHEDULER_BASE_URL``)."""
    return certificates.Issuer.from_settings(_settings(request))


def _actor(token: Any) -> str:
    return f"token:{token.name}"[:320]


async def put_attendance(request: Request) -> Response:
    token = await require_admin(request)
    session_id = path_int(request, "session_id")
    marks = attendance.parse_marks(await read_json(request))
    result = await attendance.record(
        _db(request), session_id, marks, actor=_actor(token), issuer=issuer_of(request)
    )
    return JSONResponse(result, headers=NO_STORE)


async def get_attendance(request: Request) -> Response:
    await require_admin(request)
    session_id = path_int(request, "session_id")
    async with _db(request).read() as conn:
        await catalog.get_session(conn, session_id)
        marks = await attendance.grid(conn, session_id)
    return JSONResponse(
        {
            "session_id": session_id,
            "marks": [
                {
                    "registration_id": r.registration_id,
                    "meeting_id": r.meeting_id,
                    "present": r.present,
                    "minutes": r.minutes,
                    "source": r.source,
                    "marked_at": iso(r.marked_at),
                    "marked_by": r.marked_by,
                }
                for r in marks.values()
            ],
        },
        headers=NO_STORE,
    )


async def read_upload(request: Request) -> tuple[int, str, bytes, str | None]:
    """``(meeting_id, platform, file bytes, reason)`` of a multipart import; ``Invalid``."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Invalid({"file": "send multipart/form-data with meeting_id, platform and file"})
    try:
        async with request.form(max_files=1, max_fields=10) as form:
            return await _read_form(form)
    except (MultiPartException, ValueError) as exc:
        raise Invalid({"file": f"the upload could not be read ({exc})"}) from exc


async def _read_form(form: Any) -> tuple[int, str, bytes, str | None]:
    errors: dict[str, str] = {}
    meeting_id = parse_id(str(form.get("meeting_id", "")))
    if meeting_id is None:
        errors["meeting_id"] = "is required: the id of one of this session's meetings"
    platform = str(form.get("platform", ""))
    if platform not in PLATFORMS:
        errors["platform"] = f"must be one of {', '.join(PLATFORMS)}"
    upload = form.get("file")
    data = b""
    if not isinstance(upload, UploadFile):
        errors["file"] = "is required: the participant report exported by Zoom or Teams"
    else:
        data = await upload.read(MAX_REPORT_BYTES + 1)
        if len(data) > MAX_REPORT_BYTES:
            errors["file"] = f"is larger than {MAX_REPORT_BYTES // (1024 * 1024)} MB"
    reason = str(form.get("reason", "")).strip()[:2000] or None
    if errors:
        raise Invalid(errors)
    assert meeting_id is not None
    return meeting_id, platform, data, reason


async def import_attendance(request: Request) -> Response:
    token = await require_admin(request)
    session_id = path_int(request, "session_id")
    meeting_id, platform, data, reason = await read_upload(request)
    result = await attendance.import_report(
        _db(request),
        session_id,
        meeting_id,
        platform,
        data,
        actor=_actor(token),
        reason=reason,
        issuer=issuer_of(request),
    )
    return JSONResponse(attendance.import_json(result), headers=NO_STORE)


async def finalize(request: Request) -> Response:
    token = await require_admin(request)
    session_id = path_int(request, "session_id")
    result = await completion.finalize(
        _db(request), session_id, actor=_actor(token), issuer=issuer_of(request)
    )
    result["finalized_at"] = iso(result["finalized_at"])
    return JSONResponse(result, headers=NO_STORE)


async def get_completions(request: Request) -> Response:
    await require_admin(request)
    session_id = path_int(request, "session_id")
    async with _db(request).read() as conn:
        result = await completion.completions(conn, session_id)
    result["finalized_at"] = iso(result["finalized_at"]) if result["finalized_at"] else None
    for entry in result["completions"]:
        entry["computed_at"] = iso(entry["computed_at"])
    return JSONResponse(result, headers=NO_STORE)


routes = [
    Route("/api/sessions/{session_id}/attendance", put_attendance, methods=["PUT"]),
    Route("/api/sessions/{session_id}/attendance", get_attendance, methods=["GET"]),
    Route("/api/sessions/{session_id}/attendance/import", import_attendance, methods=["POST"]),
    Route("/api/sessions/{session_id}/finalize", finalize, methods=["POST"]),
    Route("/api/sessions/{session_id}/completions", get_completions, methods=["GET"]),
]
