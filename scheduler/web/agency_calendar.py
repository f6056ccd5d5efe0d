"""The agency's private calendar feed: the feed itself, and the console page that shows its URL
and replaces it ("new URL" revokes the old one at once)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import agencies, agency_feed
from scheduler.web.agency_auth import Coordinator
from scheduler.web.agency_console import console_page, not_found, own_agency
from scheduler.web.feeds import CALENDAR_TYPE
from scheduler.web.pages import flash, render
from scheduler.web.params import db_of as _db
from scheduler.web.params import settings_of as _settings


async def agency_calendar(request: Request) -> Response:
    """``GET /agencies/{feed_token}/calendar.ics``: counts only; 404 for an old or wrong token."""
    async with _db(request).read() as conn:
        agency = await agency_feed.by_token(conn, request.path_params["feed_token"])
        body = await agency_feed.render(conn, agency, _settings(request))
    return Response(
        body,
        media_type=CALENDAR_TYPE,
        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
    )


@console_page
async def calendar_page(request: Request, coordinator: Coordinator) -> Response:
    base = _settings(request).base_url
    async with _db(request).read() as conn:
        mine = [await agencies.get_agency(conn, a) for a in sorted(coordinator.agency_ids)]
    feeds = [(a, base + agency_feed.feed_path(a)) for a in mine]
    return render(
        request,
        "agency/calendar.html",
        {"page_title": "Calendar feed", "coordinator": coordinator, "feeds": feeds},
        private=True,
    )


@console_page
async def new_url(request: Request, coordinator: Coordinator) -> Response:
    agency_id = own_agency(coordinator, (await request.form()).get("agency_id"))
    if agency_id is None:
        return not_found(request, "agency")
    agency = await agency_feed.rotate(_db(request), agency_id)
    flash(request, f"{agency.name} has a new calendar URL; the old one no longer works.")
    return RedirectResponse("/agency/calendar", 303)


routes = [
    Route(agency_feed.PATH, agency_calendar, methods=["GET"]),
    Route("/agency/calendar", calendar_page, methods=["GET"]),
    Route("/agency/calendar/new-url", new_url, methods=["POST"]),
]
