"""The roster of one session: confirmed and waitlisted people per pool, hand changes, CSV.

An admin can cancel anyone (the next in line is promoted in the same transaction), promote a
waitlisted person when their pool has a free seat, and mark attendance. The CSV is the API's
(``roster_csv``), so spreadsheet formulas in names are neutralised the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from notifications.models import utcnow
from scheduler import booking, catalog, models
from scheduler.errors import Conflict, Invalid, NotFound
from scheduler.models import Registration
from scheduler.web.api import roster_csv_response
from scheduler.web.auth import admin_page
from scheduler.web.pages import error_page, flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import path_id
from scheduler.web.params import settings_of as _settings

OUTCOMES = {"attended": "attended", "no_show": "no_show", "clear": None}
OUTCOME_LABELS = {"attended": "attended", "no_show": "no-show", "clear": "not marked"}


def group_roster(
    session: catalog.SessionView, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per pool: its counts, the confirmed people, the waitlist in order, the cancelled."""
    groups = []
    for pool in session.pools:
        mine = [e for e in entries if e["attendance"] == pool.attendance]
        groups.append(
            {
                "pool": pool,
                "confirmed": [e for e in mine if e["status"] == models.CONFIRMED],
                "waitlisted": [e for e in mine if e["status"] == models.WAITLISTED],
                "cancelled": [e for e in mine if e["status"] == models.CANCELLED],
            }
        )
    return groups


async def _load_roster(
    request: Request,
) -> tuple[catalog.SessionView, list[dict[str, Any]]] | Response:
    """The session in the path and its roster, or the 404 page to answer with."""
    session_id = path_id(request, "session_id")
    if session_id is None:
        return error_page(request, 404, "Not found", "There is no such session.")
    async with _db(request).read() as conn:
        try:
            session = await catalog.get_session(conn, session_id)
        except NotFound:
            return error_page(request, 404, "Not found", "There is no such session.")
        return session, await catalog.roster(conn, session_id)


@admin_page
async def roster_page(request: Request) -> Response:
    loaded = await _load_roster(request)
    if isinstance(loaded, Response):
        return loaded
    session, entries = loaded
    return render(
        request,
        "admin/roster.html",
        {
            "page_title": f"{session.course_title} — roster",
            "session": session,
            "groups": group_roster(session, entries),
            "started": utcnow() >= session.starts_at,
        },
        private=True,
    )


@admin_page
async def roster_csv_download(request: Request) -> Response:
    loaded = await _load_roster(request)
    if isinstance(loaded, Response):
        return loaded
    session, entries = loaded
    return roster_csv_response(session, entries)


async def _registration(request: Request) -> Any | None:
    registration_id = path_id(request, "registration_id")
    if registration_id is None:
        return None
    async with _db(request).read() as conn:
        return (
            await conn.execute(select(Registration).where(Registration.id == registration_id))
        ).first()


@admin_page
async def cancel_registration(request: Request) -> Response:
    """GET asks for confirmation and an optional reason; the POST from that page cancels.

    The person is told the training team cancelled their seat, with the reason; the flash
    names whoever the freed seat went to.
    """
    registration = await _registration(request)
    if registration is None:
        return error_page(request, 404, "Not found", "There is no such registration.")
    form = await request.form() if request.method == "POST" else None
    if form is None or form.get("confirm") != "yes":
        async with _db(request).read() as conn:
            session = await catalog.get_session(conn, registration.session_id)
        return render(
            request,
            "admin/registration_cancel.html",
            {
                "page_title": f"Cancel the registration of {registration.name}",
                "registration": registration,
                "session": session,
            },
            private=True,
        )
    reason = str(form.get("reason", "")).strip()[:500]
    outcome = await booking.cancel(
        _db(request),
        registration.token,
        reminder_offsets=_settings(request).reminder_offsets,
        by_admin=True,
        reason=reason,
    )
    message = f"Cancelled the registration of {registration.name}; they are told by email."
    if outcome.promoted:
        async with _db(request).read() as conn:
            names = (
                await conn.execute(
                    select(Registration.id, Registration.name).where(
                        Registration.id.in_(outcome.promoted)
                    )
                )
            ).all()
        by_id = dict(names)
        moved = ", ".join(by_id[i] for i in outcome.promoted)
        message += f" Promoted from the waitlist: {moved}."
    flash(request, message)
    return RedirectResponse(f"/admin/sessions/{registration.session_id}", 303)


@admin_page
async def promote_registration(request: Request) -> Response:
    registration = await _registration(request)
    if registration is None:
        return error_page(request, 404, "Not found", "There is no such registration.")
    try:
        await booking.promote_by_hand(
            _db(request), registration.id, reminder_offsets=_settings(request).reminder_offsets
        )
    except Conflict as exc:
        flash(request, f"Could not promote {registration.name}: {exc.message}.")
    else:
        flash(request, f"{registration.name} now has a confirmed seat.")
    return RedirectResponse(f"/admin/sessions/{registration.session_id}", 303)


@admin_page
async def mark_outcome(request: Request) -> Response:
    registration = await _registration(request)
    if registration is None:
        return error_page(request, 404, "Not found", "There is no such registration.")
    choice = str((await request.form()).get("outcome", ""))
    if choice not in OUTCOMES:
        return error_page(request, 422, "Invalid", "Choose attended, no-show or clear.")
    try:
        await booking.set_outcome(_db(request), registration.id, OUTCOMES[choice])
    except Conflict as exc:
        flash(request, f"Attendance not saved: {exc.message}.")
    except (NotFound, Invalid):
        flash(request, "Only a confirmed registration can be marked attended or no-show.")
    else:
        flash(request, f"Attendance saved: {registration.name} — {OUTCOME_LABELS[choice]}.")
    return RedirectResponse(f"/admin/sessions/{registration.session_id}", 303)


routes = [
    Route("/admin/sessions/{session_id}", roster_page, methods=["GET"]),
    Route("/admin/sessions/{session_id}/roster.csv", roster_csv_download, methods=["GET"]),
    Route(
        "/admin/registrations/{registration_id}/cancel",
        cancel_registration,
        methods=["GET", "POST"],
    ),
    Route("/admin/registrations/{registration_id}/promote", promote_registration, methods=["POST"]),
    Route("/admin/registrations/{registration_id}/outcome", mark_outcome, methods=["POST"]),
]
