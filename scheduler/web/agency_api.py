"""The JSON API of agencies, holds, batch registration, substitution and moves.

Who may call: an admin (``Authorization: Bearer``) for everything; a signed-in coordinator for
what belongs to their own agencies. Anything of another agency answers 404, as if it did not
exist (invariant 10): ``Actor.agency`` is the one check every endpoint here goes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scheduler import agencies, holds, sign_in, squads, tokens
from scheduler.errors import Invalid, NotFound, Unauthorized
from scheduler.validation import Fields
from scheduler.web import agency_auth
from scheduler.web.api import read_json, registration_json
from scheduler.web.auth import csrf_ok
from scheduler.web.params import db_of as _db
from scheduler.web.params import path_int
from scheduler.web.params import settings_of as _settings


@dataclass(frozen=True)
class Actor:
    """Who is asking: an admin, or a coordinator of ``agency_ids``."""

    admin: bool
    agency_ids: frozenset[int] = frozenset()
    account_id: int | None = None
    email: str | None = None

    def may(self, agency_id: int | None) -> bool:
        return self.admin or (agency_id is not None and agency_id in self.agency_ids)

    def agency(self, agency_id: int | None) -> int:
        """``agency_id`` when this actor may act for it; else ``NotFound`` (invariant 10)."""
        if agency_id is None or not self.may(agency_id):
            raise NotFound("agency", agency_id if agency_id is not None else "")
        return agency_id


async def actor(request: Request) -> Actor:
    """The admin behind a Bearer token or the coordinator signed in on this browser.

    Raises ``Unauthorized`` when neither.
    """
    authorization = request.headers.get("authorization")
    if authorization:
        await tokens.verify(_db(request), authorization)
        return Actor(admin=True)
    coordinator = await agency_auth.current_coordinator(request)
    if coordinator is None:
        raise Unauthorized("an admin token or a coordinator's sign-in is required")
    # A cookie rides along on requests other sites make: a change must also carry the
    # session's CSRF token in a header, which another site cannot read.
    if request.method not in ("GET", "HEAD") and not csrf_ok(
        request, request.headers.get("x-csrf-token")
    ):
        raise Unauthorized("a coordinator's change needs the X-CSRF-Token header")
    return Actor(
        admin=False,
        agency_ids=coordinator.agency_ids,
        account_id=coordinator.account_id,
        email=coordinator.email,
    )


async def require_admin(request: Request) -> Actor:
    await tokens.verify(_db(request), request.headers.get("authorization"))
    return Actor(admin=True)


# -- agencies --------------------------------------------------------------------------------


async def create_agency(request: Request) -> Response:
    await require_admin(request)
    agency = await agencies.create_agency(_db(request), await read_json(request))
    return JSONResponse(agencies.agency_json(agency), status_code=201)


async def list_agencies(request: Request) -> Response:
    """The directory is public: the register form picks an agency from it."""
    q = request.query_params.get("q")
    async with _db(request).read() as conn:
        found = await agencies.search(conn, q)
    return JSONResponse({"agencies": [agencies.agency_json(a) for a in found]})


async def get_agency(request: Request) -> Response:
    async with _db(request).read() as conn:
        agency = await agencies.get_agency(conn, path_int(request, "agency_id"))
    return JSONResponse(agencies.agency_json(agency))


async def patch_agency(request: Request) -> Response:
    await require_admin(request)
    agency = await agencies.update_agency(
        _db(request), path_int(request, "agency_id"), await read_json(request)
    )
    return JSONResponse(agencies.agency_json(agency))


async def merge_agency(request: Request) -> Response:
    await require_admin(request)
    fields = Fields(await read_json(request))
    into = fields.integer("into", minimum=1, maximum=2**31 - 1)
    fields.done()
    assert into is not None
    agency = await agencies.merge(_db(request), path_int(request, "agency_id"), into)
    return JSONResponse(agencies.agency_json(agency))


async def invite_coordinator(request: Request) -> Response:
    """``POST /api/agencies/{id}/coordinators`` ``{name, email}``: an invitation by email."""
    await require_admin(request)
    agency_id = path_int(request, "agency_id")
    data = await read_json(request)
    account_id = await sign_in.invite_coordinator(_db(request), agency_id, data)
    async with _db(request).read() as conn:
        found = [c for c in await sign_in.coordinators(conn, agency_id) if c["id"] == account_id]
    return JSONResponse(
        {
            "id": account_id,
            "agency_id": agency_id,
            "email": found[0]["email"] if found else None,
            "name": found[0]["name"] if found else None,
            "status": found[0]["status"] if found else None,
        },
        status_code=201,
    )


async def list_coordinators(request: Request) -> Response:
    await require_admin(request)
    agency_id = path_int(request, "agency_id")
    async with _db(request).read() as conn:
        await agencies.get_agency(conn, agency_id)
        found = await sign_in.coordinators(conn, agency_id)
    return JSONResponse({"coordinators": found})


async def person_history(request: Request) -> Response:
    """``GET /api/registrations?email=``: one person's registrations across sessions (admin)."""
    await require_admin(request)
    email = request.query_params.get("email", "").strip()
    if not email or len(email) > 320:
        raise Invalid({"email": "is required"})
    async with _db(request).read() as conn:
        entries = await agencies.history(conn, email)
    for entry in entries:
        entry["starts_at"] = entry["starts_at"].isoformat()
    return JSONResponse({"email": email.lower(), "registrations": entries})


# -- holds -----------------------------------------------------------------------------------


async def create_hold(request: Request) -> Response:
    who = await actor(request)
    data = await read_json(request)
    request_agency = data.get("agency_id")
    if isinstance(request_agency, int) and not isinstance(request_agency, bool):
        who.agency(request_agency)
    hold = await holds.create_hold(_db(request), path_int(request, "session_id"), data, may=who.may)
    return JSONResponse(holds.hold_json(hold), status_code=201)


async def get_hold(request: Request) -> Response:
    who = await actor(request)
    async with _db(request).read() as conn:
        hold = await holds.get_hold(conn, path_int(request, "hold_id"))
    if not who.may(hold.agency_id):
        raise NotFound("hold", hold.id)
    return JSONResponse(holds.hold_json(hold))


async def release_hold(request: Request) -> Response:
    who = await actor(request)
    settings = _settings(request)
    hold = await holds.release(
        _db(request),
        path_int(request, "hold_id"),
        reminder_offsets=settings.reminder_offsets,
        may=who.may,
    )
    return JSONResponse(holds.hold_json(hold))


async def name_into_hold(request: Request) -> Response:
    who = await actor(request)
    settings = _settings(request)
    outcome = await holds.name_into(
        _db(request),
        path_int(request, "hold_id"),
        await read_json(request),
        reminder_offsets=settings.reminder_offsets,
        may=who.may,
    )
    return JSONResponse(registration_json(outcome, settings), status_code=201)


# -- batch, substitution, move ---------------------------------------------------------------


async def batch_register(request: Request) -> Response:
    who = await actor(request)
    settings = _settings(request)
    data = await read_json(request)
    agency_id = data.get("agency_id")
    if isinstance(agency_id, int) and not isinstance(agency_id, bool):
        who.agency(agency_id)
    results = await squads.register_batch(
        _db(request),
        path_int(request, "session_id"),
        data,
        reminder_offsets=settings.reminder_offsets,
        sender=who.email,
    )
    return JSONResponse({"results": [_result_json(r, settings) for r in results]})


def _result_json(result: squads.RowResult, settings: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"index": result.index, "status": result.status, "error": result.error}
    if result.outcome is not None:
        body.update(registration_json(result.outcome, settings))
        body["status"] = result.status
    else:
        body.update(id=None, token=None, fields=result.fields)
    return body


async def transfer(request: Request) -> Response:
    who = await actor(request)
    settings = _settings(request)
    outcome = await squads.transfer(
        _db(request),
        path_int(request, "registration_id"),
        await read_json(request),
        reminder_offsets=settings.reminder_offsets,
        may=who.may,
    )
    return JSONResponse(registration_json(outcome, settings), status_code=201)


async def move(request: Request) -> Response:
    who = await actor(request)
    settings = _settings(request)
    data = await read_json(request)
    outcome = await squads.move(
        _db(request),
        path_int(request, "registration_id"),
        data,
        reminder_offsets=settings.reminder_offsets,
        may=who.may,
    )
    return JSONResponse(registration_json(outcome, settings))


async def cancel_by_id(request: Request) -> Response:
    """``POST /api/registrations/{id}/cancel``: an admin or the agency's coordinator."""
    who = await actor(request)
    settings = _settings(request)
    outcome = await squads.cancel_for(
        _db(request),
        path_int(request, "registration_id"),
        reminder_offsets=settings.reminder_offsets,
        may=who.may,
    )
    return JSONResponse(registration_json(outcome, settings))


routes = [
    Route("/api/agencies", list_agencies, methods=["GET"]),
    Route("/api/agencies", create_agency, methods=["POST"]),
    Route("/api/agencies/{agency_id}", get_agency, methods=["GET"]),
    Route("/api/agencies/{agency_id}", patch_agency, methods=["PATCH"]),
    Route("/api/agencies/{agency_id}/merge", merge_agency, methods=["POST"]),
    Route("/api/agencies/{agency_id}/coordinators", invite_coordinator, methods=["POST"]),
    Route("/api/agencies/{agency_id}/coordinators", list_coordinators, methods=["GET"]),
    Route("/api/registrations", person_history, methods=["GET"]),
    Route("/api/sessions/{session_id}/holds", create_hold, methods=["POST"]),
    Route("/api/holds/{hold_id}", get_hold, methods=["GET"]),
    Route("/api/holds/{hold_id}", release_hold, methods=["DELETE"]),
    Route("/api/holds/{hold_id}/registrations", name_into_hold, methods=["POST"]),
    Route("/api/sessions/{session_id}/registrations/batch", batch_register, methods=["POST"]),
    Route("/api/registrations/{registration_id}/transfer", transfer, methods=["POST"]),
    Route("/api/registrations/{registration_id}/move", move, methods=["POST"]),
    Route("/api/registrations/{registration_id}/cancel", cancel_by_id, methods=["POST"]),
]
