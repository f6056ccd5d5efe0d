"""Held seats from the console: hold N seats of a session, list the holds, name officers into
one, give the unnamed seats back (after a confirmation page).

The checks are ``holds``' own: more seats than the pool has free and a release after the start
come back as field errors on the form, with what was typed kept.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import agencies, agency_reads, catalog, holds
from scheduler.errors import Conflict, Gone, Invalid
from scheduler.web.agency_auth import Coordinator
from scheduler.web.agency_console import (
    PERSON_FIELDS,
    confirmed,
    console_page,
    may,
    not_found,
    own_agency,
    path_record,
    path_session,
    person_form_again,
    session_context,
)
from scheduler.web.forms import text_values
from scheduler.web.pages import flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import settings_of as _settings

HOLD_FIELDS = ("agency_id", "attendance", "seats", "release_at")


async def _hold(request: Request, coordinator: Coordinator) -> holds.HoldView | None:
    """The hold in the path, if it is one of the coordinator's agencies'."""
    return await path_record(request, coordinator, "hold_id", holds.get_hold)


async def _hold_context(
    request: Request, coordinator: Coordinator, hold: holds.HoldView, title: str
) -> dict[str, Any]:
    context = await session_context(request, coordinator, hold.session_id, hold=hold)
    return {**context, "page_title": title}


@console_page
async def new_hold(request: Request, coordinator: Coordinator) -> Response:
    """GET: the form. POST: hold the seats, or the form again with its errors."""
    session = await path_session(request)
    if session is None:
        return not_found(request, "session")
    async with _db(request).read() as conn:
        mine = [await agencies.get_agency(conn, a) for a in sorted(coordinator.agency_ids)]
    context: dict[str, Any] = {
        "page_title": f"Hold seats: {session.course_title}",
        "coordinator": coordinator,
        "session": session,
        "agencies": mine,
    }
    if request.method == "GET":
        values = {"agency_id": request.query_params.get("agency_id", "")}
        if values["agency_id"] and own_agency(coordinator, values["agency_id"]) is None:
            return not_found(request, "agency")
        if len(session.pools) == 1:
            values["attendance"] = session.pools[0].attendance
        return render(request, "agency/hold_form.html", {**context, "values": values}, private=True)
    values = text_values(await request.form(), HOLD_FIELDS)
    agency_id = own_agency(coordinator, values["agency_id"])
    if agency_id is None:
        return not_found(request, "agency")
    body = {
        "agency_id": agency_id,
        "attendance": values["attendance"] or None,
        "seats": values["seats"] or None,
        "release_at": values["release_at"] or None,
    }
    try:
        hold = await holds.create_hold(_db(request), session.id, body, may=may(coordinator))
    except (Invalid, Conflict, Gone) as exc:
        errors = dict(exc.fields) or {"form": exc.message}
        if "seats" in exc.fields and isinstance(exc, Conflict):
            errors = {"seats": exc.message.capitalize() + f" ({exc.fields['seats']})."}
        if isinstance(exc, Gone):
            errors = {"form": exc.message.capitalize() + "."}
        return render(
            request,
            "agency/hold_form.html",
            {**context, "values": values, "errors": errors},
            status_code=exc.status_code,
            private=True,
        )
    flash(request, f"Holding {hold.seats} seat{'s' if hold.seats != 1 else ''} (hold {hold.id}).")
    return RedirectResponse("/agency/holds", 303)


@console_page
async def hold_list(request: Request, coordinator: Coordinator) -> Response:
    async with _db(request).read() as conn:
        found = await holds.agency_holds(conn, sorted(coordinator.agency_ids))
        sessions = {
            s.id: s
            for s in await catalog.load_sessions(
                conn, session_ids=sorted({h.session_id for h in found})
            )
        }
        names = {a: (await agencies.get_agency(conn, a)).name for a in coordinator.agency_ids}
        named: dict[int, list[str]] = {}
        for entry in await agency_reads.registrations(conn, sorted(coordinator.agency_ids)):
            if entry["hold_id"] is not None and entry["status"] != "cancelled":
                named.setdefault(entry["hold_id"], []).append(entry["name"])
    return render(
        request,
        "agency/holds.html",
        {
            "page_title": "Held seats",
            "coordinator": coordinator,
            "entries": [(h, sessions[h.session_id], names.get(h.agency_id, "")) for h in found],
            "named": named,
        },
        private=True,
    )


@console_page
async def name_into(request: Request, coordinator: Coordinator) -> Response:
    """GET: the form for one officer. POST: name them into an unnamed held seat."""
    hold = await _hold(request, coordinator)
    if hold is None:
        return not_found(request, "hold")
    context = await _hold_context(request, coordinator, hold, "Name an officer")
    if request.method == "GET":
        return render(request, "agency/hold_name.html", context, private=True)
    values = text_values(await request.form(), PERSON_FIELDS)
    body = {k: (v or None) for k, v in values.items()}
    try:
        outcome = await holds.name_into(
            _db(request),
            hold.id,
            body,
            reminder_offsets=_settings(request).reminder_offsets,
            may=may(coordinator),
        )
    except (Invalid, Conflict, Gone) as exc:
        return person_form_again(request, "agency/hold_name.html", context, values, exc)
    flash(request, f"{values['name']} has a confirmed seat (registration {outcome.id}).")
    return RedirectResponse("/agency/holds", 303)


@console_page
async def release(request: Request, coordinator: Coordinator) -> Response:
    """GET asks for confirmation; the POST from that page gives the unnamed seats back."""
    hold = await _hold(request, coordinator)
    if hold is None:
        return not_found(request, "hold")
    if not await confirmed(request):
        context = await _hold_context(request, coordinator, hold, "Release held seats")
        return render(request, "agency/hold_release.html", context, private=True)
    released = await holds.release(
        _db(request),
        hold.id,
        reminder_offsets=_settings(request).reminder_offsets,
        may=may(coordinator),
    )
    flash(
        request,
        f"Released {hold.remaining} unnamed seat{'s' if hold.remaining != 1 else ''} of hold "
        f"{released.id}; the waitlist was offered them.",
    )
    return RedirectResponse("/agency/holds", 303)


routes = [
    Route("/agency/holds", hold_list, methods=["GET"]),
    Route("/agency/sessions/{session_id}/holds/new", new_hold, methods=["GET", "POST"]),
    Route("/agency/holds/{hold_id}/name", name_into, methods=["GET", "POST"]),
    Route("/agency/holds/{hold_id}/release", release, methods=["GET", "POST"]),
]
