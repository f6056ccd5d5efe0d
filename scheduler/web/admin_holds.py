"""Admin pages for held seats: every hold by session and agency, and releasing one by hand.

Releasing gives the hold's unnamed seats back and promotes the pool's waitlist in the same
transaction (``holds.release``); officers already named into it keep their seats.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import holds
from scheduler.errors import NotFound
from scheduler.web.auth import admin_page
from scheduler.web.pages import error_page, flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import parse_id
from scheduler.web.params import settings_of as _settings


@admin_page
async def hold_list(request: Request) -> Response:
    params = request.query_params
    session_id = parse_id(params.get("session_id", ""))
    agency_id = parse_id(params.get("agency_id", ""))
    active_only = params.get("show") != "all"
    async with _db(request).read() as conn:
        everything = await holds.listing(conn, active_only=active_only)
        shown = await holds.listing(
            conn, session_id=session_id, agency_id=agency_id, active_only=active_only
        )
    sessions = {r.hold.session_id: r for r in everything}
    agencies = {r.hold.agency_id: r.agency for r in everything}
    return render(
        request,
        "admin/holds.html",
        {
            "page_title": "Held seats",
            "rows": shown,
            "session_choices": list(sessions.values()),
            "agency_choices": sorted(agencies.items(), key=lambda kv: kv[1].lower()),
            "session_id": session_id,
            "agency_id": agency_id,
            "show_all": not active_only,
            "back": str(request.url.path) + ("?" + request.url.query if request.url.query else ""),
        },
        private=True,
    )


@admin_page
async def release_hold(request: Request) -> Response:
    hold_id = parse_id(request.path_params["hold_id"])
    if hold_id is None:
        return error_page(request, 404, "Not found", "There is no such hold.")
    try:
        before = await _remaining(request, hold_id)
        await holds.release(
            _db(request), hold_id, reminder_offsets=_settings(request).reminder_offsets
        )
    except NotFound:
        return error_page(request, 404, "Not found", "There is no such hold.")
    if before is None:
        flash(request, f"Hold {hold_id} was already released.")
    else:
        flash(
            request,
            f"Hold {hold_id} released: {before} unnamed seat{'' if before == 1 else 's'} back "
            "in the pool; the waitlist was promoted in order.",
        )
    back = str((await request.form()).get("back", ""))
    if not back.startswith("/admin/holds") or "//" in back or "\\" in back:
        back = "/admin/holds"
    return RedirectResponse(back, 303)


async def _remaining(request: Request, hold_id: int) -> int | None:
    """The hold's unnamed seats while it is active, else None; raises ``NotFound``."""
    async with _db(request).read() as conn:
        hold = await holds.get_hold(conn, hold_id)
    return hold.remaining if hold.status == "active" else None


routes = [
    Route("/admin/holds", hold_list, methods=["GET"]),
    Route("/admin/holds/{hold_id}/release", release_hold, methods=["POST"]),
]
