"""Admin pages for coordinators: invite (name, email, agencies), list, disable or enable, and
the access requests people sent from ``/agency/request-access`` (approve or refuse).

The invitation form finds agencies without script: its "Find agencies" button posts the form
back with what was typed, the agencies already ticked and the matches of the search box.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import agencies, coordinators, sign_in
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.web.auth import admin_page
from scheduler.web.forms import text_values
from scheduler.web.pages import error_page, flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id
from scheduler.web.params import settings_of as _settings

MAX_AGENCIES = 50


@admin_page
async def coordinator_list(request: Request) -> Response:
    async with _db(request).read() as conn:
        people = await coordinators.listing(conn)
        pending = await coordinators.listing(conn, status=coordinators.PENDING)
    return render(
        request,
        "admin/coordinators.html",
        {
            "page_title": "Coordinators",
            "people": people,
            "pending": pending,
            "admin_zone": _settings(request).admin_timezone,
        },
        private=True,
    )


def _chosen(form: FormData | None, request: Request) -> list[int]:
    raw = (
        form.getlist("agency_id") if form is not None else request.query_params.getlist("agency_id")
    )
    ids = [i for i in (parse_id(v) for v in raw) if i is not None]
    return list(dict.fromkeys(ids))[:MAX_AGENCIES]


async def _invite_form(
    request: Request,
    *,
    values: dict[str, str],
    chosen: list[int],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    q = values.get("q", "")
    async with _db(request).read() as conn:
        picked = []
        for agency_id in chosen:
            try:
                picked.append(await agencies.get_agency(conn, agency_id))
            except NotFound:
                continue
        found = await agencies.search(conn, q, limit=20) if q else []
    shown = picked + [a for a in found if a.id not in chosen]
    return render(
        request,
        "admin/coordinator_invite.html",
        {
            "page_title": "Invite a coordinator",
            "values": values,
            "errors": errors or {},
            "agencies": shown,
            "chosen": {a.id for a in picked},
            "searched": bool(q),
        },
        status_code=status_code,
        private=True,
    )


@admin_page
async def invite(request: Request) -> Response:
    """GET shows the form (``?agency_id=`` ticks an agency); POST either searches agencies
    (``action=search``) or sends the invitation."""
    if request.method == "GET":
        return await _invite_form(request, values={}, chosen=_chosen(None, request))
    form = await request.form()
    values = text_values(form, ("name", "email", "q"))
    chosen = _chosen(form, request)
    if form.get("action") == "search":
        return await _invite_form(request, values=values, chosen=chosen)
    errors: dict[str, str] = {}
    try:
        sign_in.parse_person(values)
    except Invalid as exc:
        errors.update(exc.fields)
    if not chosen:
        errors["agency_id"] = "tick at least one agency (find it with the search box)"
    if not errors:
        try:
            await sign_in.invite_to_agencies(_db(request), chosen, values)
        except NotFound:
            errors["agency_id"] = "one of the ticked agencies is no longer in the directory"
    if errors:
        return await _invite_form(
            request, values=values, chosen=chosen, errors=errors, status_code=422
        )
    flash(request, f"Invitation sent to {values['email']} with a sign-in link.")
    return RedirectResponse("/admin/coordinators", 303)


def _account_id(request: Request) -> int | None:
    return parse_id(request.path_params["account_id"])


async def _act(request: Request, action: str) -> Response:
    account_id = _account_id(request)
    if account_id is None:
        return error_page(request, 404, "Not found", "There is no such coordinator.")
    db = _db(request)
    try:
        if action == "approve":
            if not await coordinators.is_pending(db, account_id):
                raise Conflict("this request was already answered", {})
            await sign_in.approve(db, account_id)
            message = "Access approved; they are emailed a sign-in link."
        elif action == "refuse":
            name = await coordinators.refuse(db, account_id)
            message = f"Refused the request of {name}."
        else:
            status = coordinators.DISABLED if action == "disable" else coordinators.ACTIVE
            name = await coordinators.set_status(db, account_id, status)
            message = (
                f"{name} can no longer sign in; any open sign-in has ended."
                if action == "disable"
                else f"{name} can sign in again."
            )
    except NotFound:
        return error_page(request, 404, "Not found", "There is no such coordinator.")
    except Conflict as exc:
        message = f"Nothing changed: {exc.message}."
    flash(request, message)
    return RedirectResponse("/admin/coordinators", 303)


def _action(name: str) -> Any:
    @admin_page
    async def handler(request: Request) -> Response:
        return await _act(request, name)

    handler.__name__ = f"coordinator_{name}"
    return handler


routes = [
    Route("/admin/coordinators", coordinator_list, methods=["GET"]),
    Route("/admin/coordinators/invite", invite, methods=["GET", "POST"]),
    *(
        Route(f"/admin/coordinators/{{account_id}}/{name}", _action(name), methods=["POST"])
        for name in ("approve", "refuse", "disable", "enable")
    ),
]
