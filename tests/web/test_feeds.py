"""Calendar endpoints over HTTP: headers, conditional requests, filters, privacy, invites."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import icalendar
import pytest
import time_machine
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from scheduler.app import create_app
from scheduler.db import Database
from scheduler.feed_content import KEEP_PAST
from scheduler.models import TrainingSession
from scheduler.tokens import create_token
from tests.helpers import make_course, make_session, person, session_body

JOIN = "https://meet.example.org/secret-room-123"


def events(body: bytes) -> dict[str, icalendar.Event]:
    cal = icalendar.Calendar.from_ical(body)
    return {str(ev["uid"]): ev for ev in cal.walk("VEVENT")}


def only_event(body: bytes) -> icalendar.Event:
    (event,) = events(body).values()
    return event


async def test_course_without_sessions_is_a_valid_named_calendar(client, admin_headers):
    await make_course(client, admin_headers)
    response = await client.get("/courses/managing-bias/calendar.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong, not W/
    assert response.headers["last-modified"].endswith("GMT")
    assert response.headers["cache-control"] == "no-cache"
    cal = icalendar.Calendar.from_ical(response.content)
    assert cal.walk("VEVENT") == []
    text = response.text
    for line in (
        "VERSION:2.0",
        "METHOD:PUBLISH",
        "NAME:Managing Bias",
        "X-WR-CALNAME:Managing Bias",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
    ):
        assert line + "\r\n" in text, line
    head = await client.head("/courses/managing-bias/calendar.ics")
    assert head.status_code == 200 and head.headers["etag"] == etag


async def test_unknown_course_and_bad_filters_use_the_error_shape(client, admin_headers):
    missing = await client.get("/courses/nope/calendar.ics")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    for query, field in (
        ("mode=carrier-pigeon", "mode"),
        ("mode=", "mode"),
        ("state=Illinois", "state"),
        ("state=ZZ", "state"),
        ("state=IL&state=NY", "state"),
    ):
        response = await client.get(f"/calendar.ics?{query}")
        assert response.status_code == 422, query
        assert field in response.json()["error"]["fields"], query


async def test_mode_and_state_filters(client, admin_headers):
    await make_course(client, admin_headers)
    in_il = await make_session(client, admin_headers, mode="in_person")
    virtual = await make_session(client, admin_headers, mode="virtual", days=11)
    ny = session_body("hybrid", days=12)
    ny["venue"] = dict(ny["venue"], state="ny", city="Albany")
    hybrid_ny = (
        await client.post("/api/courses/managing-bias/sessions", json=ny, headers=admin_headers)
    ).json()

    async def ids(query: str) -> set[int]:
        response = await client.get(f"/calendar.ics?{query}")
        assert response.status_code == 200, response.text
        return {int(uid.split("-")[1].split("@")[0]) for uid in events(response.content)}

    assert await ids("") == {in_il["id"], virtual["id"], hybrid_ny["id"]}
    assert await ids("mode=virtual") == {virtual["id"]}
    assert await ids("mode=in_person,hybrid") == {in_il["id"], hybrid_ny["id"]}
    assert await ids("mode=in_person&mode=virtual") == {in_il["id"], virtual["id"]}
    assert await ids("state=il") == {in_il["id"]}
    assert await ids("state=NY&mode=hybrid") == {hybrid_ny["id"]}
    assert await ids("state=NY&mode=virtual") == set()
    # Calendar clients append their own parameters; they are ignored.
    assert await ids("mode=virtual&_=12345") == {virtual["id"]}
    named = icalendar.Calendar.from_ical((await client.get("/calendar.ics?state=NY")).content)
    assert str(named["X-WR-CALNAME"]) == "Training sessions (NY)"


@pytest.fixture
async def starlette_app(settings):
    """The app itself, not the lifespan wrapper, so a test can look at its feed cache."""
    application = create_app(settings)
    async with LifespanManager(application) as manager:
        yield application, manager.app


async def test_304_on_unchanged_feed_and_200_with_new_seats_after_a_registration(
    starlette_app, admin_headers
):
    application, wrapped = starlette_app
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=wrapped), base_url="http://testserver"
    )
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=3)
    url = "/courses/managing-bias/calendar.ics"
    first = await client.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert "in person: 3 of 3 left" in str(only_event(first.content)["DESCRIPTION"])

    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        again = await client.get(url, headers=headers)
        assert again.status_code == 304, headers
        assert again.content == b""
        assert again.headers["etag"] == etag
    # A warm hit is served from the render cache, byte for byte.
    cache = application.state.feed_cache
    hits = cache.hits
    warm = await client.get(url)
    assert warm.content == first.content and cache.hits == hits + 1

    # Seats change without touching the session row; the feed must still change. The clock
    # moves on so Last-Modified (whole seconds) can move too.
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=5), tick=True):
        taken = await client.post(f"/api/sessions/{session['id']}/registrations", json=person(1))
    assert taken.status_code == 201
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        changed = await client.get(url, headers=headers)
        assert changed.status_code == 200, headers
        assert changed.headers["etag"] != etag
        assert "in person: 2 of 3 left" in str(only_event(changed.content)["DESCRIPTION"])
    assert (await client.get(url, headers={"If-None-Match": f'W/{etag}, "x"'})).status_code == 200
    await client.aclose()


async def test_reschedule_raises_sequence_and_moves_the_instants(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="virtual")
    registered = await client.post(
        f"/api/sessions/{session['id']}/registrations", json=person(1, attendance="virtual")
    )
    invite_url = f"/registrations/{registered.json()['token']}/calendar.ics"
    before = only_event((await client.get("/courses/managing-bias/calendar.ics")).content)
    invite_before = only_event((await client.get(invite_url)).content)

    moved = session_body("virtual", days=12)
    patch = {"starts_at": moved["starts_at"], "ends_at": moved["ends_at"]}
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=5), tick=True):
        response = await client.patch(
            f"/api/sessions/{session['id']}", json=patch, headers=admin_headers
        )
    assert response.status_code == 200, response.text

    after = only_event((await client.get("/courses/managing-bias/calendar.ics")).content)
    assert after["UID"] == before["UID"]
    assert after["SEQUENCE"] == before["SEQUENCE"] + 1
    assert after.start - before.start == timedelta(days=2)
    assert (
        after.start.astimezone(UTC).isoformat()
        == datetime.fromisoformat(response.json()["starts_at"]).astimezone(UTC).isoformat()
    )
    assert after["LAST-MODIFIED"].dt > before["LAST-MODIFIED"].dt
    invite_after = only_event((await client.get(invite_url)).content)
    assert invite_after["UID"] == invite_before["UID"] != after["UID"]
    assert invite_after["SEQUENCE"] > invite_before["SEQUENCE"]
    assert invite_after.start == after.start


async def test_cancelled_session_stays_as_cancelled_until_it_is_past(client, admin_headers):
    await make_course(client, admin_headers)
    kept = await make_session(client, admin_headers, days=3)
    doomed = await make_session(client, admin_headers, days=4)
    before = events((await client.get("/courses/managing-bias/calendar.ics")).content)
    response = await client.post(f"/api/sessions/{doomed['id']}/cancel", headers=admin_headers)
    assert response.status_code == 200

    now_feed = await client.get("/courses/managing-bias/calendar.ics")
    after = events(now_feed.content)
    uid = f"session-{doomed['id']}@testserver"
    assert str(after[uid]["STATUS"]) == "CANCELLED"
    assert str(after[uid]["SUMMARY"]).startswith("Cancelled: ")
    assert after[uid]["SEQUENCE"] == before[uid]["SEQUENCE"] + 1
    assert str(after[f"session-{kept['id']}@testserver"]["STATUS"]) == "CONFIRMED"

    # Once both are over, the cancelled one leaves the feed and the held one stays as history.
    with time_machine.travel(datetime.now(UTC) + timedelta(days=6), tick=False):
        later = await client.get(
            "/courses/managing-bias/calendar.ics",
            headers={"If-None-Match": now_feed.headers["etag"]},
        )
    assert later.status_code == 200
    assert set(events(later.content)) == {f"session-{kept['id']}@testserver"}


async def test_a_warm_feed_sees_a_write_made_outside_this_app(client, admin_headers, settings):
    """The reused fingerprint must not hide a commit from another process's connections."""
    await make_course(client, admin_headers)
    made = await make_session(client, admin_headers)
    feed = "/courses/managing-bias/calendar.ics"
    first = await client.get(feed)
    etag = first.headers["etag"]
    assert (await client.get(feed, headers={"If-None-Match": etag})).status_code == 304
    assert (await client.get(feed, headers={"If-None-Match": etag})).status_code == 304

    elsewhere = Database.from_url(settings.database_url)
    try:
        async with elsewhere.write() as conn:
            await conn.execute(
                update(TrainingSession)
                .where(TrainingSession.id == made["id"])
                .values(venue_name="Annex B", updated_at=datetime.now(UTC))
            )
    finally:
        await elsewhere.dispose()

    fresh = await client.get(feed, headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.headers["etag"] != etag
    assert "Annex B" in str(only_event(fresh.content)["LOCATION"])


async def test_a_held_session_leaves_the_feed_half_a_year_after_it_ended(client, admin_headers):
    await make_course(client, admin_headers)
    made = await make_session(client, admin_headers, days=3)
    feed = "/courses/managing-bias/calendar.ics"
    first = await client.get(feed)
    assert set(events(first.content)) == {f"session-{made['id']}@testserver"}
    # No write happens in between: only the clock says the session is now too old to show.
    with time_machine.travel(datetime.now(UTC) + KEEP_PAST + timedelta(days=5), tick=False):
        later = await client.get(feed, headers={"If-None-Match": first.headers["etag"]})
    assert later.status_code == 200
    assert events(later.content) == {}


async def test_feeds_carry_no_registrant_data_or_join_url(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="hybrid")
    tokens = []
    for n, attendance in ((1, "virtual"), (2, "in_person")):
        body = dict(person(n, attendance=attendance), name=f"Secret Person{n}", rank="Sergeant")
        made = await client.post(f"/api/sessions/{session['id']}/registrations", json=body)
        tokens.append(made.json()["token"])
    for url in (
        "/courses/managing-bias/calendar.ics",
        "/calendar.ics",
        "/calendar.ics?mode=hybrid",
    ):
        text = (await client.get(url)).text
        unfolded = text.replace("\r\n ", "")
        for secret in (
            "officer1@example.org",
            "officer2@example.org",
            "Secret Person",
            "Sergeant",
            "secret-room",
            "meet.example.org",
            *tokens,
        ):
            assert secret not in unfolded, (url, secret)
        assert "ATTENDEE" not in unfolded and "ORGANIZER" not in unfolded


async def test_invite_request_then_cancel_and_join_url_only_for_a_confirmed_virtual_seat(
    client, admin_headers
):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="hybrid", virtual=1)
    url = f"/api/sessions/{session['id']}/registrations"
    seat = (await client.post(url, json=person(1, attendance="virtual"))).json()
    waiting = (await client.post(url, json=person(2, attendance="virtual"))).json()
    in_person = (await client.post(url, json=person(3, attendance="in_person"))).json()
    assert (seat["status"], waiting["status"]) == ("confirmed", "waitlisted")
    assert (
        seat["calendar"]["ics"] == f"http://testserver/registrations/{seat['token']}/calendar.ics"
    )
    assert seat["calendar"]["google"].startswith("https://calendar.google.com/calendar/render?")
    assert seat["calendar"]["outlook"].startswith("https://outlook.office.com/calendar/")

    response = await client.get(f"/registrations/{seat['token']}/calendar.ics")
    assert response.headers["content-type"] == "text/calendar; charset=utf-8; method=REQUEST"
    assert "no-store" in response.headers["cache-control"]
    cal = icalendar.Calendar.from_ical(response.content)
    assert str(cal["METHOD"]) == "REQUEST"
    request = only_event(response.content)
    assert str(request["URL"]) == JOIN and str(request["CONFERENCE"]) == JOIN
    assert str(request["LOCATION"]) == JOIN and JOIN in str(request["DESCRIPTION"])
    assert str(request["ATTENDEE"]).lower() == "mailto:officer1@example.org"
    assert str(request["ORGANIZER"]).startswith("mailto:")
    feed_uids = set(events((await client.get("/courses/managing-bias/calendar.ics")).content))
    assert str(request["UID"]) not in feed_uids

    for other in (waiting, in_person):
        text = (await client.get(f"/registrations/{other['token']}/calendar.ics")).text
        assert "secret-room" not in text.replace("\r\n ", "")
    assert (
        str(
            only_event(
                (await client.get(f"/registrations/{waiting['token']}/calendar.ics")).content
            )["STATUS"]
        )
        == "TENTATIVE"
    )

    assert (await client.delete(f"/api/registrations/{seat['token']}")).status_code == 200
    cancelled = await client.get(f"/registrations/{seat['token']}/calendar.ics")
    assert cancelled.headers["content-type"].endswith("method=CANCEL")
    cancel = only_event(cancelled.content)
    assert cancel["UID"] == request["UID"]
    assert cancel["SEQUENCE"] > request["SEQUENCE"]
    assert str(cancel["STATUS"]) == "CANCELLED"
    assert "secret-room" not in cancelled.text.replace("\r\n ", "")
    # The waitlisted person was promoted into the freed seat: a REQUEST with the join URL now.
    promoted = only_event(
        (await client.get(f"/registrations/{waiting['token']}/calendar.ics")).content
    )
    assert str(promoted["STATUS"]) == "CONFIRMED" and str(promoted["URL"]) == JOIN
    assert (await client.get("/registrations/not-a-token/calendar.ics")).status_code == 404


@pytest.mark.postgres
@pytest.mark.slow
async def test_another_instance_change_is_served_fresh(live_server_factory, postgres_url):
    database = Database.from_url(postgres_url)
    try:
        token = await create_token(database, "feeds test")
    finally:
        await database.dispose()
    headers = {"Authorization": f"Bearer {token}"}
    # Instances behind one load balancer share the public base URL.
    public = {"SCHEDULER_BASE_URL": "https://training.example.org"}
    one = live_server_factory(postgres_url, **public)
    two = live_server_factory(postgres_url, **public)
    async with httpx.AsyncClient(timeout=30) as http:
        made = await http.post(
            f"{one.url}/api/courses",
            json={"slug": "managing-bias", "title": "Managing Bias"},
            headers=headers,
        )
        assert made.status_code == 201, made.text
        session = await http.post(
            f"{one.url}/api/courses/managing-bias/sessions",
            json=session_body(in_person=2),
            headers=headers,
        )
        feed = f"{two.url}/courses/managing-bias/calendar.ics"
        first = await http.get(feed)
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert (await http.get(feed, headers={"If-None-Match": etag})).status_code == 304
        # Instance two has these bytes cached; instance one changes the seats.
        taken = await http.post(
            f"{one.url}/api/sessions/{session.json()['id']}/registrations", json=person(1)
        )
        assert taken.status_code == 201
        fresh = await http.get(feed, headers={"If-None-Match": etag})
        assert fresh.status_code == 200
        assert fresh.headers["etag"] != etag
        assert "in person: 1 of 2 left" in str(only_event(fresh.content)["DESCRIPTION"])
        # Both instances render the same state to the same bytes and the same ETag.
        other = await http.get(f"{one.url}/courses/managing-bias/calendar.ics")
        assert other.headers["etag"] == fresh.headers["etag"]
        assert other.content == fresh.content


async def test_feeds_skip_the_page_session_and_keep_their_headers(client, admin_headers):
    """Issue 16: calendar feeds skip the signed-cookie session (no cookie is verified for them),
    and with a page cookie sent a feed still carries no ``Set-Cookie`` and every security
    header, while pages keep loading the session from the same cookie."""
    await make_course(client, admin_headers)
    page = await client.get("/admin/login")
    cookie = page.headers["set-cookie"].split(";")[0]  # the page session, with a CSRF token
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    with_cookie = {"Cookie": cookie}
    for path in ("/courses/managing-bias/calendar.ics", "/calendar.ics"):
        feed = await client.get(path, headers=with_cookie)
        assert feed.status_code == 200, path
        assert "set-cookie" not in feed.headers, path
        assert feed.headers["content-security-policy"].startswith("default-src 'self'"), path
        assert feed.headers["x-content-type-options"] == "nosniff", path
        assert len(feed.headers["x-request-id"]) == 32, path
    again = await client.get("/admin/login", headers=with_cookie)
    assert f'name="csrf_token" value="{token[1]}"' in again.text  # the same session
