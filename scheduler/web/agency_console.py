"""The coordinator console at ``/agency``: upcoming sessions with seats and cap left, and the
agency's registrations with their outcomes (page and CSV). Only the signed-in coordinator's
agencies are ever read (invariant 10)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from notifications.models import utcnow
from scheduler import agencies, agency_reads, catalog
from scheduler.catalog import SessionView
from scheduler.errors import Conflict, Gone, Invalid, NotFound
from scheduler.web.agency_auth import LOGIN_PATH, Coordinator, current_coordinator
from scheduler.web.api import csv_safe
from scheduler.web.auth import check_form
from scheduler.web.pages import error_page, render
from scheduler.web.params import parse_id

Handler = Callable[[Request, Coordinator], Awaitable[Response]]

# What a coordinator types about one officer (naming into a hold, a substitute).
PERSON_FIELDS = ("name", "email", "rank", "post_id", "post_state")


class _OfAgency(Protocol):
    @property
    def agency_id(self) -> int | None: ...


Owned = TypeVar("Owned", bound=_OfAgency)


def may(coordinator: Coordinator) -> Callable[[int | None], bool]:
    """The domain's ``may`` check for this coordinator: their own agencies only."""
    return lambda agency_id: agency_id is not None and agency_id in coordinator.agency_ids


def own_agency(coordinator: Coordinator, raw: object) -> int | None:
    """``raw`` as one of the coordinator's agency ids; their only one when not given."""
    if raw in (None, "") and len(coordinator.agency_ids) == 1:
        return next(iter(coordinator.agency_ids))
    agency_id = parse_id(raw)
    return agency_id if agency_id in coordinator.agency_ids else None


async def path_session(request: Request) -> SessionView | None:
    """The training session named in the path (``session_id``), or None."""
    session_id = parse_id(request.path_params["session_id"])
    if session_id is None:
        return None
    async with request.state.db.read() as conn:
        try:
            return await catalog.get_session(conn, session_id)
        except NotFound:
            return None


async def path_record(
    request: Request,
    coordinator: Coordinator,
    param: str,
    load: Callable[[AsyncConnection, int], Awaitable[Owned | None]],
) -> Owned | None:
    """The record whose id is the path's ``param``, as ``load`` reads it, if it is one of the
    coordinator's agencies'; None when the id is not one, nothing has it, or it is another's."""
    record_id = parse_id(request.path_params[param])
    if record_id is None:
        return None
    async with request.state.db.read() as conn:
        try:
            found = await load(conn, record_id)
        except NotFound:
            return None
    return found if found is not None and may(coordinator)(found.agency_id) else None


async def session_context(
    request: Request, coordinator: Coordinator, session_id: int, **more: Any
) -> dict[str, Any]:
    """A console page's context about one record of a training session: the session, and
    ``more`` (the record itself)."""
    async with request.state.db.read() as conn:
        session = await catalog.get_session(conn, session_id)
    return {"coordinator": coordinator, "session": session, **more}


async def confirmed(request: Request) -> bool:
    """Whether this is the POST from a confirmation page (``confirm=yes``); a GET asks."""
    if request.method != "POST":
        return False
    return (await request.form()).get("confirm") == "yes"


def person_form_again(
    request: Request,
    template: str,
    context: dict[str, Any],
    values: dict[str, str],
    exc: Invalid | Conflict | Gone,
) -> Response:
    """An officer form again, as typed, with why it was refused and the error's own status:
    the fields of bad input; a clash over the address (registered already) on the email
    field; anything else for the whole form."""
    if isinstance(exc, Invalid):
        errors = dict(exc.fields)
    elif "email" in exc.fields:
        errors = {"email": exc.message}
    else:
        errors = {"form": exc.message}
    return render(
        request,
        template,
        {**context, "values": values, "errors": errors},
        status_code=exc.status_code,
        private=True,
    )


def not_found(request: Request, what: str) -> Response:
    """The same 404 page for what does not exist and what belongs to another agency."""
    return error_page(request, 404, "Not found", f"There is no such {what}.")


def console_page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Signed-in coordinators only (others go to the sign-in page); POSTs need CSRF."""

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        coordinator = await current_coordinator(request)
        if coordinator is None:
            return RedirectResponse(LOGIN_PATH, 303)
        try:
            refused = await check_form(request)
            return refused if refused is not None else await handler(request, coordinator)
        finally:
            await request.close()  # an uploaded file's spooled copy goes now

    return wrapper


@console_page
async def home(request: Request, coordinator: Coordinator) -> Response:
    now = utcnow()
    async with request.state.db.read() as conn:
        mine = [await agencies.get_agency(conn, a) for a in sorted(coordinator.agency_ids)]
        boards = [(agency, await agency_reads.upcoming(conn, agency.id, now)) for agency in mine]
    return render(
        request,
        "agency/home.html",
        {
            "page_title": "Agency console",
            "coordinator": coordinator,
            "boards": boards,
            "now": now,
        },
        private=True,
    )


CSV_COLUMNS = (
    "id",
    "course",
    "starts_at",
    "attendance",
    "status",
    "outcome",
    "name",
    "email",
    "rank",
    "post_id",
    "post_state",
    "agency",
)


@console_page
async def registrations(request: Request, coordinator: Coordinator) -> Response:
    async with request.state.db.read() as conn:
        entries = await agency_reads.registrations(conn, sorted(coordinator.agency_ids))
    if request.query_params.get("format") == "csv":
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for e in entries:
            e = {**e, "starts_at": e["starts_at"].isoformat()}
            writer.writerow([csv_safe(e.get(c)) for c in CSV_COLUMNS])
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="agency-registrations.csv"',
                "Cache-Control": "no-store",
            },
        )
    return render(
        request,
        "agency/registrations.html",
        {
            "page_title": "Registrations",
            "coordinator": coordinator,
            "entries": entries,
            "now": utcnow(),
        },
        private=True,
    )


routes = [
    Route("/agency", home, methods=["GET"]),
    Route("/agency/registrations", registrations, methods=["GET"]),
]
