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
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import catalog, squads
from scheduler.booking import RegistrationInput
from scheduler.errors import Conflict, Gone, Invalid
from scheduler.models import Registration
from scheduler.web.agency_auth import Coordinator
from scheduler.web.agency_console import console_page, may, not_found
from scheduler.web.forms import text_values
from scheduler.web.pages import flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id
from scheduler.web.params import settings_of as _settings

PERSON_FIELDS = ("name", "email", "rank", "post_id", "post_state")


async def _registration(request: Request, coordinator: Coordinator) -> Any | None:
    """The registration in the path, if it is one of the coordinator's agencies'."""
    registration_id = parse_id(request.path_params["registration_id"])
    if registration_id is None:
        return None
    async with _db(request).read() as conn:
        row = (
            await conn.execute(select(Registration).where(Registration.id == registration_id))
        ).first()
    return row if row is not None and may(coordinator)(row.agency_id) else None


async def _context(request: Request, coordinator: Coordinator, registration: Any) -> dict[str, Any]:
    async with _db(request).read() as conn:
        session = await catalog.get_session(conn, registration.session_id)
    return {"coordinator": coordinator, "registration": registration, "session": session}


@console_page
async def substitute(request: Request, coordinator: Coordinator) -> Response:
    """GET: who takes the seat. POST ``step=check``: the confirmation page; ``step=confirm``:
    pass the seat on; ``step=edit``: the form again as typed."""
    registration = await _registration(request, coordinator)
    if registration is None:
        return not_found(request, "registration")
    context = {
        **await _context(request, coordinator, registration),
        "page_title": f"Substitute {registration.name}",
    }
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
        errors = dict(exc.fields) if isinstance(exc, Invalid) else {"form": exc.message}
        if "email" in exc.fields and not isinstance(exc, Invalid):
            errors = {"email": exc.message}
        status = 409 if isinstance(exc, Conflict) else 410 if isinstance(exc, Gone) else 422
        return render(
            request,
            "agency/substitute.html",
            {**context, "values": values, "errors": errors},
            status_code=status,
            private=True,
        )
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
    form = await request.form() if request.method == "POST" else None
    if form is None or form.get("confirm") != "yes":
        context = await _context(request, coordinator, registration)
        return render(
            request,
            "agency/cancel.html",
            {**context, "page_title": f"Cancel {registration.name}"},
            private=True,
        )
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
