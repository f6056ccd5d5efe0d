"""An agency's private calendar feed: the sessions where it has officers or held seats, with
its counts and no one's name.

The agency's ``feed_token`` is the only key of the feed's URL
(``/agencies/{feed_token}/calendar.ics``); ``rotate`` replaces it, and the old URL answers 404
from then on. Each meeting is the public feed's event (``calendar.feed_event``: no registrant
data, no join URL) under a UID of its own, its summary and description carrying the counts.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from icalendar import Calendar
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.models import utcnow
from scheduler import agencies, agency_reads, catalog
from scheduler.agencies import AgencyView
from scheduler.calendar.render import PRODID, REFRESH, feed_event, feed_meetings
from scheduler.calendar.timezones import add_timezones
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.errors import NotFound
from scheduler.models import Agency

PATH = "/agencies/{feed_token}/calendar.ics"


def feed_path(agency: AgencyView) -> str:
    return PATH.format(feed_token=agency.feed_token)


async def by_token(conn: AsyncConnection, token: str) -> AgencyView:
    """The agency whose private feed URL carries ``token``; raises ``NotFound``."""
    if not token or len(token) > 64:
        raise NotFound("calendar", "")
    row = (await conn.execute(select(Agency.id).where(Agency.feed_token == token))).first()
    if row is None:
        raise NotFound("calendar", "")
    return await agencies.get_agency(conn, int(row.id))


async def rotate(db: Database, agency_id: int) -> AgencyView:
    """Give the agency a new feed URL; the old one stops working at once. Raises ``NotFound``."""
    async with db.write() as conn:
        await agencies.get_agency(conn, agency_id)
        await conn.execute(
            update(Agency)
            .where(Agency.id == agency_id)
            .values(feed_token=secrets.token_urlsafe(24), updated_at=utcnow())
        )
        return await agencies.get_agency(conn, agency_id)


def counts_text(seats: agency_reads.AgencySeats) -> str:
    return f"{seats.confirmed} confirmed, {seats.waitlisted} waitlisted, {seats.held} held"


async def render(
    conn: AsyncConnection, agency: AgencyView, settings: Settings, now: datetime | None = None
) -> bytes:
    """The feed of ``agency``: one event per meeting of each session it has people in."""
    now = now or utcnow()
    found = await agency_reads.feed_sessions(conn, agency.id)
    courses = {c.id: c for c in await catalog.list_courses(conn)}
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    name = f"{agency.name}: training"
    cal.add("name", name)
    cal.add("x-wr-calname", name)
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    add_timezones(cal, [s for s, _ in found])
    for session, seats in found:
        course = courses[session.course_id]
        for meeting in feed_meetings(session, now):
            event = feed_event(session, course, settings, meeting)
            uid = str(event.pop("uid"))
            event.add("uid", f"agency-{agency.id}-{uid}")
            summary = str(event.pop("summary"))
            event.add("summary", f"{summary} [{counts_text(seats)}]")
            description = str(event.pop("description"))
            event.add("description", f"{agency.name}: {counts_text(seats)}\n\n{description}")
            event.pop("class")
            event.add("class", "PRIVATE")
            cal.add_component(event)
    return bytes(cal.to_ical())
