"""Admin pages for the agency directory: list and search, create, edit, merge a duplicate.

Validation is the directory's (``agencies.parse_agency``), as for the JSON API; a refused form
comes back with what was typed and each field's error next to it. A merge asks first: the
confirmation page says what moves (registrations, holds, coordinators, the ORI) before the
POST that does it. The CSV import lives in ``admin_agency_import``.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import agencies, sign_in
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.models import AGENCY_TYPES
from scheduler.validation import STATES
from scheduler.web.auth import admin_page
from scheduler.web.forms import field_errors, text_values
from scheduler.web.pages import error_page, flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id

PAGE_SIZE = 50
AGENCY_FIELDS = ("name", "state", "type", "ori")
TYPE_LABELS = {
    "municipal": "Municipal police",
    "sheriff": "Sheriff's office",
    "state": "State agency",
    "tribal": "Tribal",
    "campus": "Campus",
    "federal": "Federal",
    "other": "Other",
}


def page_number(request: Request) -> int:
    value = request.query_params.get("page", "1")
    return int(value) if value.isdigit() and 0 < int(value) < 100_000 else 1


def agency_body(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """``(body for agencies.parse_agency, values to re-display)``; empty fields mean none."""
    values = text_values(form, AGENCY_FIELDS)
    return {k: (v or None) for k, v in values.items()}, values


def not_found(request: Request) -> Response:
    return error_page(request, 404, "Not found", "There is no such agency.")


@admin_page
async def agency_list(request: Request) -> Response:
    q = request.query_params.get("q", "").strip()[:100]
    page = page_number(request)
    async with _db(request).read() as conn:
        found = await agencies.search(
            conn, q or None, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
    return render(
        request,
        "admin/agencies.html",
        {
            "page_title": "Agencies",
            "q": q,
            "agencies": found[:PAGE_SIZE],
            "page": page,
            "more": len(found) > PAGE_SIZE,
            "type_labels": TYPE_LABELS,
        },
        private=True,
    )


def _form(
    request: Request,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    agency: agencies.AgencyView | None = None,
    coordinators: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/agency_form.html",
        {
            "page_title": f"Edit {agency.name}" if agency else "New agency",
            "values": values,
            "errors": errors or {},
            "agency": agency,
            "coordinators": coordinators or [],
            "types": AGENCY_TYPES,
            "type_labels": TYPE_LABELS,
            "state_options": [(code, code) for code in sorted(STATES)],
            "post_id_label": agencies.post_id_label(agency.state if agency else None),
        },
        status_code=status_code,
        private=True,
    )


@admin_page
async def agency_new(request: Request) -> Response:
    if request.method == "GET":
        return _form(request, values={"type": "municipal"})
    body, values = agency_body(await request.form())
    try:
        agency = await agencies.create_agency(_db(request), body)
    except (Invalid, Conflict) as exc:
        return _form(
            request, values=values, errors=field_errors(exc.fields), status_code=exc.status_code
        )
    flash(request, f"Agency “{agency.name}” added to the directory.")
    return RedirectResponse(f"/admin/agencies/{agency.id}", 303)


async def _load(request: Request) -> agencies.AgencyView | None:
    agency_id = parse_id(request.path_params["agency_id"])
    if agency_id is None:
        return None
    async with _db(request).read() as conn:
        try:
            return await agencies.get_agency(conn, agency_id)
        except NotFound:
            return None


@admin_page
async def agency_edit(request: Request) -> Response:
    agency = await _load(request)
    if agency is None:
        return not_found(request)
    if agency.merged_into_id is not None:
        flash(request, f"“{agency.name}” was merged into this agency.")
        return RedirectResponse(f"/admin/agencies/{agency.merged_into_id}", 303)
    async with _db(request).read() as conn:
        coordinators = await sign_in.coordinators(conn, agency.id)
    if request.method == "GET":
        values = {
            "name": agency.name,
            "state": agency.state,
            "type": agency.type,
            "ori": agency.ori or "",
        }
        return _form(request, values=values, agency=agency, coordinators=coordinators)
    body, values = agency_body(await request.form())
    try:
        saved = await agencies.update_agency(_db(request), agency.id, body)
    except (Invalid, Conflict) as exc:
        return _form(
            request,
            values=values,
            errors=field_errors(exc.fields),
            agency=agency,
            coordinators=coordinators,
            status_code=exc.status_code,
        )
    flash(request, f"Agency “{saved.name}” saved.")
    return RedirectResponse(f"/admin/agencies/{saved.id}", 303)


@admin_page
async def agency_merge(request: Request) -> Response:
    """Merge this agency (a duplicate) into another one.

    GET searches for the agency to keep; a POST naming it (``into``) shows what will move;
    the POST from that page with ``confirm=yes`` merges.
    """
    duplicate = await _load(request)
    if duplicate is None or duplicate.merged_into_id is not None:
        return not_found(request)
    form = await request.form() if request.method == "POST" else None
    q = request.query_params.get("q", "").strip()[:100] if form is None else ""
    error = ""
    survivor = None
    if form is not None:
        into = parse_id(form.get("into", ""))
        if into is not None:
            async with _db(request).read() as conn:
                try:
                    survivor = await agencies.get_agency(conn, into)
                except NotFound:
                    survivor = None
        if survivor is None or survivor.merged_into_id is not None or survivor.id == duplicate.id:
            error = "Choose another agency of the directory to keep."
            survivor = None
    if survivor is not None and form is not None and form.get("confirm") == "yes":
        try:
            kept = await agencies.merge(_db(request), duplicate.id, survivor.id)
        except Conflict as exc:
            return error_page(request, 409, "Not merged", exc.message)
        flash(request, f"Merged “{duplicate.name}” into “{kept.name}”.")
        return RedirectResponse(f"/admin/agencies/{kept.id}", 303)
    async with _db(request).read() as conn:
        moves = await agencies.what_moves(conn, duplicate.id)
        candidates = (
            [a for a in await agencies.search(conn, q, limit=21) if a.id != duplicate.id][:20]
            if q
            else []
        )
    return render(
        request,
        "admin/agency_merge.html",
        {
            "page_title": f"Merge {duplicate.name} into another agency",
            "duplicate": duplicate,
            "survivor": survivor,
            "moves": moves,
            "q": q,
            "candidates": candidates,
            "error": error,
            "type_labels": TYPE_LABELS,
        },
        status_code=422 if error else 200,
        private=True,
    )


routes = [
    Route("/admin/agencies", agency_list, methods=["GET"]),
    Route("/admin/agencies/new", agency_new, methods=["GET", "POST"]),
    Route("/admin/agencies/{agency_id}", agency_edit, methods=["GET", "POST"]),
    Route("/admin/agencies/{agency_id}/merge", agency_merge, methods=["GET", "POST"]),
]
