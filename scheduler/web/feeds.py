"""Calendar endpoints: course feeds, the all-courses feed, and a registrant's own invite.

Feeds answer conditional requests from a fingerprint of database state
(``feed_content.fingerprint``): a matching ``If-None-Match`` (or, without one,
``If-Modified-Since``) gets a 304 without rendering, and an unchanged feed is served from bytes
rendered earlier by this process. A fingerprint is reused only while the database's change
token says nothing was committed since (``FreshFingerprints``), so neither cache can hide
another instance's change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from notifications.models import utcnow
from scheduler import booking, calendar, catalog, feed_content
from scheduler.catalog import directory
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.feed_content import FeedFilter, Fingerprint, FreshFingerprints

CALENDAR_TYPE = "text/calendar; charset=utf-8"
T = TypeVar("T")


class FeedCache:
    """Rendered feeds by ETag, least recently used first out.

    Keys are fingerprints of database state, so an entry is never stale: a change makes a new
    key and the old entry simply ages out.
    """

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self.hits = 0

    def get(self, etag: str) -> bytes | None:
        body = self._entries.get(etag)
        if body is None:
            return None
        self._entries.move_to_end(etag)
        self.hits += 1
        return body

    def put(self, etag: str, body: bytes) -> None:
        self._entries[etag] = body
        self._entries.move_to_end(etag)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def _per_process(request: Request, name: str, make: Callable[[], T]) -> T:
    # Made on first use and kept for the life of the process. Both of these only save work:
    # the database's change token, not process memory, decides what is fresh.
    found: T | None = getattr(request.app.state, name, None)
    if found is None:
        found = make()
        setattr(request.app.state, name, found)
    return found


def _cache(request: Request) -> FeedCache:
    return _per_process(request, "feed_cache", FeedCache)


def _fingerprints(request: Request) -> FreshFingerprints:
    return _per_process(request, "feed_fingerprints", FreshFingerprints)


def _not_modified(request: Request, fp: Fingerprint) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        # RFC 9110: If-None-Match wins over If-Modified-Since; compare weakly for GET.
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or fp.etag in tags
    since = request.headers.get("if-modified-since")
    if since is None or fp.last_modified is None:
        return False
    try:
        stamp = parsedate_to_datetime(since)
    except (TypeError, ValueError, OverflowError):
        return False  # RFC 9110: an invalid date is ignored
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return fp.last_modified.replace(microsecond=0) <= stamp


def _headers(fp: Fingerprint, filename: str) -> dict[str, str]:
    return dict(_headers_of(fp, filename))  # a copy: the 304 path drops one


@lru_cache(maxsize=256)
def _headers_of(fp: Fingerprint, filename: str) -> dict[str, str]:
    headers = {
        "ETag": fp.etag,
        # Store, but ask us every time: the ETag makes asking cheap and answers stay fresh.
        "Cache-Control": "no-cache",
        "Content-Disposition": f'inline; filename="{filename}"',
    }
    if fp.last_modified is not None:
        headers["Last-Modified"] = format_datetime(fp.last_modified.astimezone(UTC), usegmt=True)
    return headers


async def _serve_feed(request: Request, feed: FeedFilter, filename: str) -> Response:
    db: Database = request.state.db
    settings: Settings = request.state.settings
    now = utcnow()
    fp = await _fingerprints(request).current(db, feed, now, base_url=settings.base_url)
    headers = _headers(fp, filename)
    if _not_modified(request, fp):
        headers.pop("Content-Disposition")
        return Response(status_code=304, headers=headers)
    cache = _cache(request)
    body = cache.get(fp.etag)
    if body is None:
        # Render and fingerprint in one snapshot, so the bytes cached under an ETag are
        # exactly the state that ETag names, even if a change landed since the first look.
        async with feed_content.snapshot(db) as conn:
            fp = await feed_content.fingerprint(conn, feed, now, base_url=settings.base_url)
            body = cache.get(fp.etag)
            if body is None:
                body = await feed_content.render(conn, feed, settings, now)
                cache.put(fp.etag, body)
        headers = _headers(fp, filename)
    return Response(body, media_type=CALENDAR_TYPE, headers=headers)


async def course_feed(request: Request) -> Response:
    slug = request.path_params["slug"]
    feed = FeedFilter.parse(request.query_params.multi_items(), course_slug=slug)
    return await _serve_feed(request, feed, f"{slug}.ics")


async def all_courses_feed(request: Request) -> Response:
    feed = FeedFilter.parse(request.query_params.multi_items())
    return await _serve_feed(request, feed, "training-sessions.ics")


async def registration_calendar(request: Request) -> Response:
    db: Database = request.state.db
    settings: Settings = request.state.settings
    async with db.read() as conn:
        registration = await booking.find_by_token(conn, request.path_params["token"])
        session = await catalog.get_session(conn, registration.session_id)
        course = await catalog.get_course(conn, session.course_slug)
    method, body = calendar.registration_calendar(registration, session, course, settings)
    return Response(
        body,
        media_type=f"text/calendar; charset=utf-8; method={method}",
        headers={
            "Content-Disposition": f'attachment; filename="{course.slug}-{session.id}.ics"',
            # Personal data and possibly a join URL: no shared caches, no stored copies.
            "Cache-Control": "private, no-store",
            "Last-Modified": format_datetime(
                max(session.updated_at, registration.updated_at).astimezone(UTC), usegmt=True
            ),
        },
    )


async def instructor_calendar(request: Request) -> Response:
    """An instructor's private feed: the URL's token is the only key, and replacing it revokes
    the old URL. It carries the join URLs of what they teach (invariant 7), so nothing caches it."""
    db: Database = request.state.db
    settings: Settings = request.state.settings
    now = utcnow()
    async with db.read() as conn:
        person = await directory.instructor_by_feed_token(conn, request.path_params["feed_token"])
        ids = await directory.sessions_taught(conn, person.id, now - feed_content.KEEP_PAST)
        sessions = await catalog.load_sessions(conn, session_ids=ids) if ids else []
        courses = {c.id: c for c in await catalog.list_courses(conn)}
    body = calendar.instructor_feed(person, sessions, courses, settings, now=now)
    return Response(
        body,
        media_type=CALENDAR_TYPE,
        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
    )


routes: list[BaseRoute] = [
    Route("/instructors/{feed_token}/calendar.ics", instructor_calendar, methods=["GET"]),
    Route("/courses/{slug}/calendar.ics", course_feed, methods=["GET"]),
    Route("/calendar.ics", all_courses_feed, methods=["GET"]),
    Route("/registrations/{token}/calendar.ics", registration_calendar, methods=["GET"]),
]
