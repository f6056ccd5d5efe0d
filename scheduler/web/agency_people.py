"""Change one officer from the console's registrations list: substitute or cancel, each after
a confirmation page.

- Substitute: a form for the other officer; its post is checked by the domain's parser and
  shows a confirmation page carrying what was typed; the post from there calls
  ``squads.transfer`` (the seat or waitlist place passes on, the first officer gets a
  cancellation with a calendar CANCEL, the second the confirmation with the invite).
- Cancel: a confirmation page; its post calls ``squads.cancel_for``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import squads
from scheduler.booking import RegistrationInput
from scheduler.errors import Conflict, Gone, Invalid
from scheduler.models import Registration
from scheduler.web.agency_auth import Coordinator
from scheduler.web.agency_console import (
    PERSON_FIELDS,
    confirmed,
    console_page,
    may,
    not_found,
    path_record,
    person_form_again,
    session_context,
)
from scheduler.web.forms import text_values
from scheduler.web.pages import flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import settings_of as _settings


async def _load(conn: AsyncConnection, registration_id: int) -> Any | None:
    return (
        await conn.execute(select(Registration).where(Registration.id == registration_id))
    ).first()


async def _registration(request: Request, coordinator: Coordinator) -> Any | None:
    """The registration in the path, if it is one of the coordinator's agencies'."""
    return await path_record(request, coordinator, "registration_id", _load)


async def _context(
    request: Request, coordinator: Coordinator, registration: Any, title: str
) -> dict[str, Any]:
    context = await session_context(
        request, coordinator, registration.session_id, registration=registration
    )
    return {**context, "page_title": title}


@console_page
async def substitute(request: Request, coordinator: Coordinator) -> Response:
    """GET: who takes the seat. POST ``step=check``: the confirmation page; ``step=confirm``:
    pass the seat on; ``step=edit``: the form again as typed."""
    registration = await _registration(request, coordinator)
    if registration is None:
        return not_found(request, "registration")
    context = await _context(request, coordinator, registration, f"Substitute {registration.name}")
    if request.method == "GET":
        return render(request, "agency/substitute.html", context, private=True)
    form = await request.form()
    values = text_values(form, PERSON_FIELDS)
    body = {k: (v or None) for k, v in values.items()}
    body["agency_id"] = registration.agency_id
    if form.get("step") == "edit":  # back from the confirmation page, with what was typed
        return render(
            request, "agency/substitute.html", {**context, "values": values}, private=True
        )
    try:
        RegistrationInput.parse(body, attendance=registration.attendance)
        if form.get("step") != "confirm":
            return render(
                request,
                "agency/substitute_confirm.html",
                {**context, "values": values},
                private=True,
            )
        outcome = await squads.transfer(
            _db(request),
            registration.id,
            body,
            reminder_offsets=_settings(request).reminder_offsets,
            may=may(coordinator),
        )
    except (Invalid, Conflict, Gone) as exc:
        return person_form_again(request, "agency/substitute.html", context, values, exc)
    place = "seat" if outcome.status == "confirmed" else "waitlist place"
    flash(
        request,
        f"{values['name']} now has the {place} of {registration.name}; both are told by email.",
    )
    return RedirectResponse("/agency/registrations", 303)


@console_page
async def cancel(request: Request, coordinator: Coordinator) -> Response:
    """GET asks for confirmation; the POST from that page cancels (the waitlist moves up)."""
    registration = await _registration(request, coordinator)
    if registration is None:
        return not_found(request, "registration")
    if not await confirmed(request):
        context = await _context(request, coordinator, registration, f"Cancel {registration.name}")
        return render(request, "agency/cancel.html", context, private=True)
    try:
        await squads.cancel_for(
            _db(request),
            registration.id,
            reminder_offsets=_settings(request).reminder_offsets,
            may=may(coordinator),
        )
    except (Conflict, Gone) as exc:
        flash(request, f"{registration.name} was not cancelled: {exc.message}.")
    else:
        flash(
            request, f"Cancelled the registration of {registration.name}; they are told by email."
        )
    return RedirectResponse("/agency/registrations", 303)


routes = [
    Route(
        "/agency/registrations/{registration_id}/substitute",
        substitute,
        methods=["GET", "POST"],
    ),
    Route("/agency/registrations/{registration_id}/cancel", cancel, methods=["GET", "POST"]),
]
