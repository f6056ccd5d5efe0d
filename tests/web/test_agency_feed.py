"""An agency's private calendar feed, read back with icalendar: counts, no names, revocable."""

from __future__ import annotations

import re

from icalendar import Calendar

from tests.helpers import make_course, make_session, person
from tests.test_agencies import make_agency
from tests.web.agency_client import sign_in_coordinator
from tests.web.test_agency_console import form_fields

FEED = re.compile(r'value="http://testserver(/agencies/[^"]+/calendar\.ics)"')


async def test_the_feed_has_counts_no_names_and_a_revocable_url(client, admin_headers, db):
    a = await make_agency(client, admin_headers, name="Alpha PD")
    b = await make_agency(client, admin_headers, name="Bravo Sheriff", type="sheriff")
    await make_course(client, admin_headers)
    first = (await make_session(client, admin_headers, in_person=2, days=10))["id"]
    second = (await make_session(client, admin_headers, in_person=5, days=20))["id"]
    quiet = (await make_session(client, admin_headers, in_person=5, days=30))["id"]
    for n in (1, 2, 3):  # two confirmed, one waitlisted
        r = await client.post(
            f"/api/sessions/{first}/registrations", json={**person(n), "agency_id": a["id"]}
        )
        assert r.status_code == 201
    hold = await client.post(
        f"/api/sessions/{second}/holds",
        json={"agency_id": a["id"], "attendance": "in_person", "seats": 2},
        headers=admin_headers,
    )
    assert hold.status_code == 201
    b_reg = {**person(4), "name": "Bravo Person", "agency_id": b["id"]}
    assert (
        await client.post(f"/api/sessions/{quiet}/registrations", json=b_reg)
    ).status_code == 201

    csrf = await sign_in_coordinator(client, db, admin_headers, a["id"], "coord@alpha.example")
    page = await client.get("/agency/calendar")
    assert page.status_code == 200
    path = FEED.search(page.text).group(1)  # type: ignore[union-attr]

    feed = await client.get(path)
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    assert feed.headers["cache-control"] == "private, no-store"
    cal = Calendar.from_ical(feed.content)
    events = list(cal.walk("VEVENT"))
    assert len(events) == 2
    by_summary = sorted(str(e["SUMMARY"]) for e in events)
    assert by_summary == [
        "Managing Bias [0 confirmed, 0 waitlisted, 2 held]",
        "Managing Bias [2 confirmed, 1 waitlisted, 0 held]",
    ]
    assert all(str(e["CLASS"]) == "PRIVATE" for e in events)
    text = feed.text.lower()
    for secret in ("officer1", "officer 1", "officer2", "@example.org", "bravo"):
        assert secret not in text, secret
    shown = {str(e["URL"]).rsplit("#session-", 1)[1] for e in events}
    assert shown == {str(first), str(second)}  # not the session A has nobody in
    assert all(str(e["UID"]).startswith(f"agency-{a['id']}-") for e in events)

    # B's feed never shows A's sessions.
    async with db.read() as conn:
        from scheduler.agency_feed import by_token, feed_path, render
        from scheduler.config import Settings

        b_view = await by_token(conn, (await _token_of(conn, b["id"])))
        b_feed = Calendar.from_ical(await render(conn, b_view, Settings(base_url="http://t")))
        assert feed_path(b_view) != path
    b_events = list(b_feed.walk("VEVENT"))
    assert [str(e["SUMMARY"]) for e in b_events] == [
        "Managing Bias [1 confirmed, 0 waitlisted, 0 held]"
    ]

    # A new URL: the old one is gone at once.
    renewed = await client.post(
        "/agency/calendar/new-url", data=form_fields(page.text, "/agency/calendar/new-url")
    )
    assert renewed.status_code == 303
    assert (await client.get(path)).status_code == 404
    new_path = FEED.search((await client.get("/agency/calendar")).text).group(1)  # type: ignore[union-attr]
    assert new_path != path and (await client.get(new_path)).status_code == 200
    assert (await client.get("/agencies/not-a-token/calendar.ics")).status_code == 404
    assert csrf


async def _token_of(conn, agency_id: int) -> str:
    from scheduler.agencies import get_agency

    return (await get_agency(conn, agency_id)).feed_token
