"""Calendar endpoints: course feeds, the all-courses feed, and a registrant's own invite.

Feeds answer conditional requests from a fingerprint of database state
(``feed_content.fingerprint``): a matching ``If-None-Match`` (or, without one,
``If-Modified-Since``) gets a 304 without rendering, and an unchanged feed is served from bytes
rendered earlier by this process. A fingerprint is reused only while the database's change
token says nothing was committed since (``FreshFingerprints``), so neither cache can hide
another instance's change.

Each cached feed is kept twice: as rendered, and gzip-compressed once when the entry is made.
A feed keeps half a year of the past, so it runs to a megabyte with history, and moving those
bytes was most of a warm request; every calendar client asks for gzip. The two encodings are
two representations with two strong ETags (the gzip one ends ``-gz"``), both deterministic, so
every instance gives the same bytes the same tag; ``If-None-Match`` with either tag is a 304.
A compressing middleware would compress on every request instead, so there is none.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import TypeVar

from starlette.datastructures import QueryParams
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
# zlib's default: a megabyte feed compresses to a tenth in a few milliseconds, once per render.
GZIP_LEVEL = 6
T = TypeVar("T")


@dataclass(frozen=True)
class CachedFeed:
    """One rendered feed: the bytes as rendered, and the same bytes gzip-compressed."""

    body: bytes
    gzipped: bytes

    @classmethod
    def of(cls, body: bytes) -> CachedFeed:
        # mtime=0 keeps the gzip bytes a function of the body alone, as a strong ETag needs.
        return cls(body, gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))


class FeedCache:
    """Rendered feeds by ETag, least recently used first out.

    Keys are fingerprints of database state, so an entry is never stale: a change makes a new
    key and the old entry simply ages out.
    """

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedFeed] = OrderedDict()
        self.hits = 0

    def get(self, etag: str) -> CachedFeed | None:
        entry = self._entries.get(etag)
        if entry is None:
            return None
        self._entries.move_to_end(etag)
        self.hits += 1
        return entry

    def put(self, etag: str, body: bytes) -> CachedFeed:
        """Keep ``body`` under ``etag``, compressing it once here; returns the entry."""
        entry = CachedFeed.of(body)
        self._entries[etag] = entry
        self._entries.move_to_end(etag)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry


def _per_process(request: Request, name: str, make: Callable[[], T]) -> T:
    # Made on first use and kept for the life of the process. Both of these only save work:
    # the database's change token, not process memory, decides what is fresh.
    state = request.scope["app"].state
    found: T | None = state._state.get(name)  # not through State.__getattr__, in Python
    if found is None:
        found = make()
        setattr(state, name, found)
    return found


def _cache(request: Request) -> FeedCache:
    return _per_process(request, "feed_cache", FeedCache)


def _fingerprints(request: Request) -> FreshFingerprints:
    return _per_process(request, "feed_fingerprints", FreshFingerprints)


def gzip_etag(etag: str) -> str:
    """The gzip representation's strong ETag: ``"abc"`` becomes ``"abc-gz"``."""
    return etag[:-1] + '-gz"'


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value lets us answer in gzip (RFC 9110 section 12.5.3).

    ``gzip`` (or its alias ``x-gzip``) with a non-zero weight, or ``*`` with one when gzip is not
    named; not when the client weighs ``identity`` above gzip. A weight that does not parse
    counts as 0, so a garbled header gets the plain body, which every client can read.
    """
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding] = max(weight, weights.get(coding, 0.0))
    gzip_weight = weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0)))
    return gzip_weight > 0 and gzip_weight >= weights.get("identity", 0.0)


# What one feed request's conditional headers say, read in one pass over the raw headers.
_CONDITIONALS = (b"accept-encoding", b"if-none-match", b"if-modified-since")


def _conditionals(request: Request) -> tuple[str | None, str | None, str | None]:
    """``Accept-Encoding``, ``If-None-Match`` and ``If-Modified-Since``, the first of each."""
    found: list[str | None] = [None, None, None]
    for name, value in request.scope["headers"]:
        if name in _CONDITIONALS:
            index = _CONDITIONALS.index(name)
            if found[index] is None:
                found[index] = value.decode("latin-1")
    return found[0], found[1], found[2]


# Calendar clients send the same few Accept-Encoding values all day.
_accepts_gzip = lru_cache(maxsize=64)(accepts_gzip)


def _matched_tag(if_none_match: str, fp: Fingerprint) -> str | None:
    """The ETag an ``If-None-Match`` names, of either encoding (``*`` gives ``""``)."""
    # Compared weakly, as RFC 9110 says for GET: W/"abc" names what "abc" does.
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    for tag in (fp.etag, gzip_etag(fp.etag)):
        if tag in tags:
            return tag
    return "" if "*" in tags else None


def _not_modified(
    if_none_match: str | None, if_modified_since: str | None, fp: Fingerprint
) -> str | None:
    """The tag to answer a 304 with (``""`` for the encoding's own), or None for a 200."""
    if if_none_match is not None:
        # RFC 9110: If-None-Match wins over If-Modified-Since.
        return _matched_tag(if_none_match, fp)
    if if_modified_since is None or fp.last_modified is None:
        return None
    try:
        stamp = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, OverflowError):
        return None  # RFC 9110: an invalid date is ignored
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return "" if fp.last_modified.replace(microsecond=0) <= stamp else None


Block = tuple[tuple[bytes, bytes], ...]


def _http_date(stamp: datetime) -> bytes:
    return format_datetime(stamp.astimezone(UTC), usegmt=True).encode("latin-1")


@lru_cache(maxsize=256)
def _ok_block(
    etag: str, last_modified: datetime | None, filename: str, gzipped: bool, length: int
) -> Block:
    """The whole header block of a 200 with these bytes, in the order Starlette would send."""
    headers = [
        (b"etag", (gzip_etag(etag) if gzipped else etag).encode("latin-1")),
        # Store, but ask us every time: the ETag makes asking cheap and answers stay fresh.
        (b"cache-control", b"no-cache"),
        (b"content-disposition", f'inline; filename="{filename}"'.encode("latin-1")),
        # On every answer, 304s too: which bytes came back depends on Accept-Encoding.
        (b"vary", b"Accept-Encoding"),
    ]
    if gzipped:
        headers.append((b"content-encoding", b"gzip"))
    if last_modified is not None:
        headers.append((b"last-modified", _http_date(last_modified)))
    headers.append((b"content-length", str(length).encode("latin-1")))
    headers.append((b"content-type", CALENDAR_TYPE.encode("latin-1")))
    return tuple(headers)


@lru_cache(maxsize=256)
def _not_modified_block(etag: str, last_modified: datetime | None, gzipped: bool) -> Block:
    """A 304's header block: no Content-Disposition, and no Content-Encoding, as a 304 has no
    content to be encoded; ``etag`` is the tag the client holds when it named one, since a cache
    freshens the stored response whose tag the 304 carries (RFC 9111 section 4.3.4), and that
    may be the other encoding's."""
    headers = [
        (b"etag", etag.encode("latin-1")),
        (b"cache-control", b"no-cache"),
        (b"vary", b"Accept-Encoding"),
    ]
    if last_modified is not None:
        headers.append((b"last-modified", _http_date(last_modified)))
    return tuple(headers)


class FeedResponse(Response):
    """A feed answer whose header block was built once for every request that gets it.

    A warm feed request is a dictionary look-up; building and encoding eight headers through
    ``Response.init_headers`` each time was a good part of what was left.
    """

    def __init__(self, body: bytes, block: Block, status_code: int = 200) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = list(block)  # the middleware adds to its own copy, never to ours


async def _serve_feed(request: Request, feed: FeedFilter, filename: str) -> Response:
    state = request.scope["state"]
    db: Database = state["db"]
    settings: Settings = state["settings"]
    now = utcnow()
    accept_encoding, if_none_match, if_modified_since = _conditionals(request)
    gzipped = _accepts_gzip(accept_encoding)
    fp = await _fingerprints(request).current(db, feed, now, base_url=settings.base_url)
    matched = _not_modified(if_none_match, if_modified_since, fp)
    if matched is not None:
        etag = matched or (gzip_etag(fp.etag) if gzipped else fp.etag)
        return FeedResponse(b"", _not_modified_block(etag, fp.last_modified, gzipped), 304)
    cache = _cache(request)
    entry = cache.get(fp.etag)
    if entry is None:
        # Render and fingerprint in one snapshot, so the bytes cached under an ETag are
        # exactly the state that ETag names, even if a change landed since the first look.
        async with feed_content.snapshot(db) as conn:
            fp = await feed_content.fingerprint(conn, feed, now, base_url=settings.base_url)
            entry = cache.get(fp.etag)
            if entry is None:
                body = await feed_content.render(conn, feed, settings, now)
                entry = cache.put(fp.etag, body)
    body = entry.gzipped if gzipped else entry.body
    return FeedResponse(body, _ok_block(fp.etag, fp.last_modified, filename, gzipped, len(body)))


# Longer queries are parsed each time, so the cache below holds a few kilobytes at most.
_CACHED_QUERY_BYTES = 256


def _feed_filter(query_string: bytes, course_slug: str | None) -> FeedFilter:
    """The feed a URL's query selects; a short query is parsed once. Raises ``Invalid``."""
    if len(query_string) <= _CACHED_QUERY_BYTES:
        return _parsed_filter(query_string, course_slug)
    return _parse_filter(query_string, course_slug)


def _parse_filter(query_string: bytes, course_slug: str | None) -> FeedFilter:
    params = QueryParams(query_string.decode("latin-1")).multi_items()
    return FeedFilter.parse(params, course_slug=course_slug)


_parsed_filter = lru_cache(maxsize=256)(_parse_filter)


async def course_feed(request: Request) -> Response:
    slug = request.path_params["slug"]
    feed = _feed_filter(request.scope["query_string"], slug)
    return await _serve_feed(request, feed, f"{slug}.ics")


async def all_courses_feed(request: Request) -> Response:
    feed = _feed_filter(request.scope["query_string"], None)
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
