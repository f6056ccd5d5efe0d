"""The feeds' gzip representation: the identity bytes compressed once, with their own ETag."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import httpx
import icalendar
import pytest
import time_machine
from asgi_lifespan import LifespanManager

from scheduler.app import create_app
from scheduler.web.feeds import accepts_gzip
from tests.helpers import make_course, make_session, person

FEEDS = ("/courses/managing-bias/calendar.ics", "/calendar.ics")
PLAIN = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}


@pytest.fixture
async def served(settings):
    """A client of the app, and the app itself so a test can look at its feed cache."""
    application = create_app(settings)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, application


async def raw_get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], method: str = "GET"
) -> tuple[httpx.Response, bytes]:
    """The answer and its body as sent, not decoded."""
    async with client.stream(method, url, headers=headers) as response:
        return response, b"".join([chunk async for chunk in response.aiter_raw()])


async def a_catalogue(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict:
    await make_course(client, admin_headers)
    await make_session(client, admin_headers, mode="hybrid", days=9)
    return await make_session(client, admin_headers, in_person=3, days=10)


@pytest.mark.parametrize("url", FEEDS)
async def test_gzip_answer_is_the_identity_bytes_compressed(served, admin_headers, url):
    client, application = served
    await a_catalogue(client, admin_headers)
    plain, plain_body = await raw_get(client, url, PLAIN)
    zipped, zipped_body = await raw_get(client, url, GZIP)
    assert plain.status_code == zipped.status_code == 200

    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    for answer in (plain, zipped):
        assert answer.headers["vary"] == "Accept-Encoding"
        assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
        assert answer.headers["cache-control"] == "no-cache"
    assert zipped.headers["last-modified"] == plain.headers["last-modified"]
    assert zipped.headers["content-disposition"] == plain.headers["content-disposition"]
    assert int(zipped.headers["content-length"]) == len(zipped_body) < len(plain_body)
    assert int(plain.headers["content-length"]) == len(plain_body)

    assert gzip.decompress(zipped_body) == plain_body
    cal = icalendar.Calendar.from_ical(gzip.decompress(zipped_body))
    assert len(cal.walk("VEVENT")) == 2

    # Two representations, two strong tags, told apart inside the quotes.
    etag = plain.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.endswith('-gz"')
    assert zipped.headers["etag"] == etag[:-1] + '-gz"'

    # Compressed when the entry was made: a warm hit serves the very bytes kept in the cache.
    hits = application.state.feed_cache.hits
    _, again_body = await raw_get(client, url, GZIP)
    assert again_body == zipped_body and application.state.feed_cache.hits == hits + 1
    assert application.state.feed_cache.get(etag).gzipped == zipped_body


async def test_httpx_default_headers_get_gzip_and_read_back_the_same_feed(served, admin_headers):
    """A client that sends ``gzip, deflate`` as calendar clients do, decoding on its side."""
    client, _ = served
    await a_catalogue(client, admin_headers)
    plain = await client.get("/calendar.ics", headers=PLAIN)
    default = await client.get("/calendar.ics")
    assert default.headers["content-encoding"] == "gzip"
    assert default.content == plain.content


async def test_304_for_either_tag_in_either_encoding(served, admin_headers):
    client, _ = served
    session = await a_catalogue(client, admin_headers)
    url = FEEDS[0]
    plain = await client.get(url, headers=PLAIN)
    zipped = await client.get(url, headers=GZIP)
    tags = {"plain": plain.headers["etag"], "gzip": zipped.headers["etag"]}
    modified = plain.headers["last-modified"]

    for encoding in (PLAIN, GZIP):
        for held in tags.values():
            for sent in (held, f"W/{held}", f'"other", {held}'):
                answer, body = await raw_get(client, url, {**encoding, "If-None-Match": sent})
                assert answer.status_code == 304, (encoding, sent)
                assert body == b""
                # The tag the client holds comes back, so its cache freshens that entry.
                assert answer.headers["etag"] == held
                assert answer.headers["vary"] == "Accept-Encoding"
                assert answer.headers["last-modified"] == modified
                assert "content-encoding" not in answer.headers
        own = tags["gzip"] if encoding is GZIP else tags["plain"]
        for conditional in ({"If-None-Match": "*"}, {"If-Modified-Since": modified}):
            answer = await client.get(url, headers={**encoding, **conditional})
            assert answer.status_code == 304, (encoding, conditional)
            assert answer.headers["etag"] == own
        # A tag of neither encoding is not a match, nor a prefix of one.
        for other in ('"other"', tags["plain"][:-1] + '-zz"', tags["plain"][:-2] + '"'):
            answer = await client.get(url, headers={**encoding, "If-None-Match": other})
            assert answer.status_code == 200, (encoding, other)

    # A change makes both tags stale.
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=5), tick=True):
        taken = await client.post(f"/api/sessions/{session['id']}/registrations", json=person(1))
    assert taken.status_code == 201
    for encoding in (PLAIN, GZIP):
        for held in tags.values():
            answer, body = await raw_get(client, url, {**encoding, "If-None-Match": held})
            assert answer.status_code == 200, (encoding, held)
            assert answer.headers["etag"] not in tags.values()
            cal = icalendar.Calendar.from_ical(gzip.decompress(body) if encoding is GZIP else body)
            seats = [str(event["DESCRIPTION"]) for event in cal.walk("VEVENT")]
            assert any("in person: 2 of 3 left" in text for text in seats), seats


async def test_head_answers_the_headers_of_each_encoding(served, admin_headers):
    client, _ = served
    await a_catalogue(client, admin_headers)
    url = FEEDS[1]
    for encoding in (PLAIN, GZIP):
        got, body = await raw_get(client, url, encoding)
        head = await client.head(url, headers=encoding)
        assert head.status_code == 200
        for name in ("etag", "vary", "content-length", "content-type", "last-modified"):
            assert head.headers[name] == got.headers[name], name
        assert head.headers.get("content-encoding") == got.headers.get("content-encoding")
        assert int(head.headers["content-length"]) == len(body)


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        (None, False),
        ("", False),
        ("identity", False),
        ("deflate, br", False),
        ("gzip", True),
        ("GZip", True),
        ("x-gzip", True),
        ("gzip, deflate", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("*", True),
        ("*;q=0", False),
        ("identity;q=0, *", True),
        ("gzip;q=0.5, identity", False),
        ("gzip;q=oops", False),
        ("gzip ; q=0.3", True),
    ],
)
def test_accept_encoding_is_read_with_its_weights(header, gzip_ok):
    assert accepts_gzip(header) is gzip_ok
