"""Certificates on the web: public verification, the registrant's downloads and training record,
and the admin's training-record exports.

``/verify/{code}`` and ``/api/verify/{code}`` say valid or revoked with name, course, date and
hours, nothing more. An unknown code and a malformed one get the same 404 after the same work
(one rate-limit count, one indexed lookup), and the API's 404 is the one any unknown path gets.
Every answer about a person says ``noindex`` to search engines.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scheduler import training_records
from scheduler.catalog import get_session
from scheduler.certificates import REVOKED, find_by_code, format_date
from scheduler.errors import NotFound
from scheduler.web.api import csv_safe, require_admin
from scheduler.web.auth import admin_page
from scheduler.web.errors import error_response
from scheduler.web.pages import enforce_rate_limit, error_page, render
from scheduler.web.params import db_of, parse_id, path_int, settings_of, wanted_format
from scheduler.web.ratelimit import enforce

# A verification answer may be cached briefly by the browser, but must be checked again
# (a revocation shows at once); nobody's name belongs in a search index.
_VERIFIED = {"Cache-Control": "no-cache", "X-Robots-Tag": "noindex"}
_PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def verification_json(found: Any) -> dict[str, Any]:
    facts = found.facts
    return {
        "status": found.status,
        "name": facts["name"],
        "course": facts["course_title"],
        "completed_on": facts["completed_on"],
        "credit_hours": float(facts["credit_hours"]),
    }


async def verify_api(request: Request) -> Response:
    await enforce(request, "verify")
    async with db_of(request).read() as conn:
        found = await find_by_code(conn, str(request.path_params["code"]))
    if found is None:
        # Byte for byte what any unknown path answers.
        return error_response(404, "not_found", "Not Found", headers=_PRIVATE)
    return JSONResponse(verification_json(found), headers=_VERIFIED)


async def verify_page(request: Request) -> Response:
    limited = await enforce_rate_limit(request, "verify")
    if limited is not None:
        return limited
    async with db_of(request).read() as conn:
        found = await find_by_code(conn, str(request.path_params["code"]))
    if found is None:
        response = error_page(
            request, 404, "Not found", "No certificate has this code. Check it and try again."
        )
        response.headers.update(_PRIVATE)
        return response
    facts = found.facts
    response = render(
        request,
        "public/verify.html",
        {
            "page_title": "Certificate verification",
            "revoked": found.status == REVOKED,
            "name": facts["name"],
            "course": facts["course_title"],
            "completed_on": format_date(facts["completed_on"]),
            "credit_hours": facts["credit_hours"],
        },
    )
    response.headers.update(_VERIFIED)
    return response


async def certificate_download(request: Request) -> Response:
    """The registrant's own valid certificate (``certificate.pdf``), or, from their training
    record, another of the same person's (``certificates/{id}.pdf``)."""
    token = str(request.path_params["token"])
    raw_id = request.path_params.get("certificate_id")
    certificate_id = parse_id(raw_id) if raw_id is not None else None
    found = None
    if raw_id is None or certificate_id is not None:
        async with db_of(request).read() as conn:
            found = await training_records.own_certificate_pdf(conn, token, certificate_id)
    if found is None:
        response = error_page(request, 404, "Not found", "There is no certificate here.")
        response.headers.update(_PRIVATE)
        return response
    code, pdf = found
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="certificate-{code}.pdf"', **_PRIVATE},
    )


async def training_page(request: Request) -> Response:
    token = str(request.path_params["token"])
    async with db_of(request).read() as conn:
        courses = await training_records.completed_courses(conn, token)
    if courses is None:
        return error_page(request, 404, "Not found", "This registration link is not valid.")
    response = render(
        request,
        "public/training.html",
        {
            "page_title": "Your training record",
            "token": token,
            "courses": courses,
        },
        private=True,
    )
    response.headers.update(_PRIVATE)
    return response


# -- exports ---------------------------------------------------------------------------------


def records_csv(rows: list[dict[str, Any]]) -> bytes:
    """Training records as CSV for spreadsheets: a BOM (Excel then reads UTF-8), CRLF rows,
    every cell formula-safe by the roster export's own rule."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([heading for _, heading in training_records.COLUMNS])
    for row in rows:
        writer.writerow([csv_safe(row.get(key)) for key, _ in training_records.COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _records_response(request: Request, rows: list[dict[str, Any]], filename: str) -> Response:
    if wanted_format(request) == "csv":
        return Response(
            records_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"', **_PRIVATE},
        )
    return JSONResponse({"records": rows}, headers=_PRIVATE)


async def training_records_api(request: Request) -> Response:
    await require_admin(request)
    start, end = training_records.parse_range(
        request.query_params.get("from"), request.query_params.get("to")
    )
    async with db_of(request).read() as conn:
        rows = await training_records.records(conn, settings_of(request), start=start, end=end)
    span = f"{start or 'start'}-to-{end or 'now'}"
    return _records_response(request, rows, f"training-records-{span}.csv")


async def session_records_api(request: Request) -> Response:
    await require_admin(request)
    session_id = path_int(request, "session_id")
    async with db_of(request).read() as conn:
        session = await get_session(conn, session_id)
        rows = await training_records.records(conn, settings_of(request), session_id=session_id)
    return _records_response(
        request, rows, f"training-records-{session.course_slug}-{session.id}.csv"
    )


@admin_page
async def session_records_download(request: Request) -> Response:
    session_id = parse_id(request.path_params["session_id"])
    try:
        if session_id is None:
            raise NotFound("session", str(request.path_params["session_id"]))
        async with db_of(request).read() as conn:
            session = await get_session(conn, session_id)
            rows = await training_records.records(conn, settings_of(request), session_id=session_id)
    except NotFound:
        return error_page(request, 404, "Not found", "There is no such session.")
    filename = f"training-records-{session.course_slug}-{session.id}.csv"
    return Response(
        records_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **_PRIVATE},
    )


routes = [
    Route("/api/verify/{code}", verify_api, methods=["GET"]),
    Route("/verify/{code}", verify_page, methods=["GET"]),
    Route("/registrations/{token}/certificate.pdf", certificate_download, methods=["GET"]),
    Route(
        "/registrations/{token}/certificates/{certificate_id}.pdf",
        certificate_download,
        methods=["GET"],
    ),
    Route("/registrations/{token}/training", training_page, methods=["GET"]),
    Route("/api/training-records", training_records_api, methods=["GET"]),
    Route("/api/sessions/{session_id}/training-records", session_records_api, methods=["GET"]),
    Route(
        "/admin/sessions/{session_id}/training-records.csv",
        session_records_download,
        methods=["GET"],
    ),
]
