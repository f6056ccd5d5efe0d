"""The admin session form's schedule, instructors and venue, through the app, on both databases.

No JavaScript here: "Add another day" is the form's own submit button, and removing a day is
the row's box. The browser tests (tests/browser/test_meetings_form.py) drive the same form in
Chromium with the script on and off.
"""

from __future__ import annotations

import html
import re

from scheduler import catalog
from tests.web.page_client import csrf_from, post_form, sign_in
from tests.web.test_pages import COURSE

NEW = "/admin/courses/managing-bias/sessions/new"


def two_days(**extra: str) -> dict[str, str]:
    """A hybrid two-day session as the form posts it (no instructors, typed venue)."""
    return {
        "meeting_rows": "2",
        "meeting-0-id": "",
        "meeting-0-starts_at": "2031-03-04T09:00",
        "meeting-0-ends_at": "2031-03-04T17:00",
        "meeting-1-id": "",
        "meeting-1-starts_at": "2031-03-05T09:00",
        "meeting-1-ends_at": "2031-03-05T17:00",
        "timezone": "America/Chicago",
        "mode": "in_person",
        "in_person_capacity": "12",
        "venue_id": "",
        "venue_name": "Metro Training Center",
        "venue_address": "1 Main St",
        "venue_city": "Springfield",
        "venue_state": "IL",
        "venue_postal_code": "62701",
        "registration_closes_at": "",
        "max_per_agency": "",
        **extra,
    }


def hidden_ids(page: str) -> dict[int, str]:
    return {
        int(n): value for n, value in re.findall(r'name="meeting-(\d+)-id" value="(\d*)"', page)
    }


async def setup(client, db) -> tuple[str, int, int, int]:
    """Sign in, add the course, two instructors and a venue through the admin pages."""
    csrf = await sign_in(client, db)
    assert (await post_form(client, "/admin/courses/new", COURSE, csrf)).status_code == 303
    ids = []
    for name in ("Dana Reyes", "Sam Ortiz"):
        made = await post_form(
            client,
            "/admin/instructors/new",
            {"name": name, "email": f"{name.split()[0].lower()}@example.org", "public": "on"},
            csrf,
        )
        assert made.status_code == 303, made.text
    listing = (await client.get("/admin/instructors")).text
    ids = [int(n) for n in re.findall(r'href="/admin/instructors/(\d+)"', listing)]
    assert len(ids) == 2 and "Dana Reyes" in listing
    venue = await post_form(
        client,
        "/admin/venues/new",
        {"name": "Academy", "room": "Room 101", "address": "9 Oak Rd", "city": "Peoria"},
        csrf,
    )
    assert venue.status_code == 303, venue.text
    venues = (await client.get("/admin/venues")).text
    [venue_id] = [int(n) for n in re.findall(r'href="/admin/venues/(\d+)"', venues)]
    return csrf, ids[0], ids[1], venue_id


async def test_two_day_session_through_the_form_add_move_and_remove_days(client, db):
    csrf, dana, _sam, venue = await setup(client, db)
    blank = await client.get(NEW)
    assert 'name="meeting_rows" value="1"' in blank.text
    assert "Dana Reyes" in blank.text and "Academy, Room 101 (Peoria)" in blank.text

    # Without JavaScript "Add another day" comes back with one more row and all that was typed.
    one = {
        **two_days(venue_name="Typed Hall"),
        "meeting_rows": "1",
        "action": "add_day",
        "instructors": str(dana),
    }
    added = await post_form(client, NEW, one, csrf)
    assert added.status_code == 200
    assert 'name="meeting_rows" value="2"' in added.text
    assert 'name="meeting-1-starts_at" type="datetime-local" value=""' in added.text
    assert 'value="2031-03-04T09:00"' in added.text and 'value="Typed Hall"' in added.text
    assert f'value="{dana}" checked' in added.text
    assert "Day 2 added" in added.text

    made = await post_form(client, NEW, two_days(venue_id=str(venue), instructors=str(dana)), csrf)
    assert made.status_code == 303, made.text
    session_id = int(made.headers["location"].rsplit("/", 1)[1])
    async with db.read() as conn:
        session = await catalog.get_session(conn, session_id)
    assert [i.id for i in session.instructors] == [dana]
    assert session.venue_id == venue and session.venue_name == "Academy"
    assert session.venue_room == "Room 101"
    assert session.contact_hours == 16
    day1, day2 = session.schedule

    # The edit form carries each meeting's id; moving day 2 keeps it, a new day 3 is added.
    edit_url = f"/admin/sessions/{session_id}/edit"
    edit = (await client.get(edit_url)).text
    assert hidden_ids(edit) == {0: str(day1.id), 1: str(day2.id)}
    assert 'value="2031-03-05T09:00"' in edit
    form = two_days(
        venue_id=str(venue),
        instructors=str(dana),
        **{
            "meeting-0-id": str(day1.id),
            "meeting-1-id": str(day2.id),
            "meeting-1-starts_at": "2031-03-06T08:00",
            "meeting-1-ends_at": "2031-03-06T12:00",
        },
    )
    grown = await post_form(client, edit_url, {**form, "action": "add_day"}, csrf)
    assert hidden_ids(grown.text) == {0: str(day1.id), 1: str(day2.id), 2: ""}
    assert 'value="2031-03-06T08:00"' in grown.text
    form.update(
        {
            "meeting_rows": "3",
            "meeting-2-id": "",
            "meeting-2-starts_at": "2031-03-07T08:00",
            "meeting-2-ends_at": "2031-03-07T12:00",
        }
    )
    saved = await post_form(client, edit_url, form, csrf)
    assert saved.status_code == 303, saved.text
    async with db.read() as conn:
        session = await catalog.get_session(conn, session_id)
    assert [m.id for m in session.schedule][:2] == [day1.id, day2.id]
    moved = session.schedule[1]
    assert moved.uid == day2.uid and moved.sequence == day2.sequence + 1
    assert len(session.schedule) == 3
    day3 = session.schedule[2]

    # Removing day 1 (the box) cancels that meeting; the others keep their ids.
    form["meeting-2-id"] = str(day3.id)
    form["meeting-0-remove"] = "on"
    removed = await post_form(client, edit_url, form, csrf)
    assert removed.status_code == 303, removed.text
    async with db.read() as conn:
        session = await catalog.get_session(conn, session_id)
    assert [m.id for m in session.schedule] == [day2.id, day3.id]
    assert [m.status for m in session.meetings if m.id == day1.id] == ["cancelled"]
    assert hidden_ids((await client.get(edit_url)).text) == {0: str(day2.id), 1: str(day3.id)}


async def test_errors_show_beside_their_row_and_conflicts_beside_instructors_and_venue(client, db):
    csrf, dana, sam, venue = await setup(client, db)
    first = await post_form(client, NEW, two_days(venue_id=str(venue), instructors=str(dana)), csrf)
    assert first.status_code == 303, first.text
    first_id = int(first.headers["location"].rsplit("/", 1)[1])
    async with db.read() as conn:
        clashing = (await catalog.get_session(conn, first_id)).schedule[1]

    # A removed row is not sent: the domain's meetings[1] is the form's row 2.
    bad = two_days(
        **{
            "meeting_rows": "3",
            "meeting-0-remove": "on",
            "meeting-2-starts_at": "2031-04-02T09:00",
            "meeting-2-ends_at": "2031-04-02T08:00",
            "meeting-1-starts_at": "2031-04-01T09:00",
            "meeting-1-ends_at": "2031-04-01T12:00",
        }
    )
    refused = await post_form(client, NEW, bad, csrf)
    assert refused.status_code == 422
    assert 'id="meeting-2-ends_at-error"' in refused.text
    assert 'aria-invalid="true" aria-describedby="meeting-2-ends_at-error"' in refused.text
    assert "must be after the start" in refused.text
    assert 'id="meeting-0-remove" name="meeting-0-remove" value="on" checked' in refused.text
    assert 'value="2031-04-02T08:00"' in refused.text

    # Dana teaches the other session on day 2: refused beside the instructors, naming it.
    again = two_days(
        instructors=[str(dana), str(sam)],
        venue_name="Elsewhere Hall",
        **{
            "meeting-0-starts_at": "2031-03-03T09:00",
            "meeting-0-ends_at": "2031-03-03T12:00",
            "meeting-1-starts_at": "2031-03-05T13:00",
            "meeting-1-ends_at": "2031-03-05T18:00",
        },
    )
    clash = await post_form(client, NEW, again, csrf)
    assert clash.status_code == 409
    message = html.unescape(
        re.search(r'id="instructors-error">([^<]+)<', clash.text).group(1)  # type: ignore[union-attr]
    )
    assert f"session {first_id} (Managing Bias)" in message
    assert f"meeting {clashing.id} at 2031-03-05 09:00-17:00" in message
    assert "Dana Reyes" in message
    assert f'value="{sam}" checked' in clash.text and 'value="Elsewhere Hall"' in clash.text
    assert 'value="2031-03-05T13:00"' in clash.text

    # The room: refused beside the venue select, unless overlap is allowed on purpose.
    room = two_days(venue_id=str(venue))
    taken = await post_form(client, NEW, room, csrf)
    assert taken.status_code == 409
    assert 'id="venue_id-error"' in taken.text and f"session {first_id}" in taken.text
    assert f'<option value="{venue}" selected>' in taken.text
    shared = await post_form(client, NEW, {**room, "allow_overlap": "on"}, csrf)
    assert shared.status_code == 303, shared.text

    # Every row removed: one error on the whole schedule.
    none = await post_form(
        client, NEW, two_days(**{"meeting-0-remove": "on", "meeting-1-remove": "on"}), csrf
    )
    assert none.status_code == 422 and 'id="meetings-error"' in none.text
    assert "at least one day" in none.text


async def test_instructor_and_venue_directory_pages(client, db):
    csrf, dana, _, venue = await setup(client, db)
    bad = await post_form(
        client, "/admin/instructors/new", {"name": "Lee Park", "email": "not-an-address"}, csrf
    )
    assert bad.status_code == 422
    assert 'id="email-error"' in bad.text and 'value="Lee Park"' in bad.text

    page = (await client.get(f"/admin/instructors/{dana}")).text
    old_feed = re.search(r'id="feed-url" class="token" type="text" readonly value="([^"]+)"', page)
    assert old_feed and "/instructors/" in old_feed.group(1)
    path = old_feed.group(1).removeprefix("http://testserver")
    assert (await client.get(path)).status_code == 200
    rotated = await post_form(
        client,
        f"/admin/instructors/{dana}",
        {"name": "Dana Reyes", "email": "dana@example.org", "rotate_feed_token": "on"},
        csrf,
    )
    assert rotated.status_code == 303
    assert (await client.get(path)).status_code == 404
    listing = (await client.get("/admin/instructors")).text
    assert re.search(
        r"Dana Reyes</a></td>\s*<td>dana@example.org</td>\s*<td></td>\s*<td>No", listing
    )

    renamed = await post_form(
        client, f"/admin/venues/{venue}", {"name": "", "room": "Room 7"}, csrf
    )
    assert renamed.status_code == 422 and 'id="name-error"' in renamed.text
    assert 'value="Room 7"' in renamed.text
    saved = await post_form(
        client, f"/admin/venues/{venue}", {"name": "Academy East", "room": "Room 7"}, csrf
    )
    assert saved.status_code == 303
    assert "Academy East" in (await client.get("/admin/venues")).text
    assert (await client.get("/admin/venues/999")).status_code == 404
    assert (await client.get("/admin/instructors/nope")).status_code == 404
    assert csrf_from((await client.get("/admin/venues/new")).text)


async def test_hostile_rows_are_refused_by_field_and_nothing_is_written(client, db):
    csrf, *_ = await setup(client, db)
    made = await post_form(client, NEW, two_days(), csrf)
    other_id = int(made.headers["location"].rsplit("/", 1)[1])
    async with db.read() as conn:
        foreign = (await catalog.get_session(conn, other_id)).schedule[0].id
    cases = [
        ({"meeting_rows": "99999999"}, "meeting-0-starts_at-error"),  # rows beyond 61 ignored
        ({"timezone": "Mars/Olympus"}, "timezone-error"),
        ({"instructors": ["abc"]}, "instructors-error"),
        ({"instructors": ["999"]}, "instructors-error"),
        ({"venue_id": "abc"}, "venue_id-error"),
        ({"venue_id": "999"}, "venue_id-error"),
        ({"meeting-1-id": str(foreign)}, "meeting-1-starts_at-error"),
        (
            {"meeting-1-starts_at": "2031-03-04T16:00", "meeting-1-ends_at": "2031-03-04T18:00"},
            "meeting-1-starts_at-error",  # overlaps day 1
        ),
        ({"meeting-0-starts_at": "tomorrow-ish"}, "meeting-0-starts_at-error"),
    ]
    for change, error_id in cases:
        form = two_days(**change)
        if change.get("meeting_rows") == "99999999":
            form = two_days(**{"meeting_rows": "99999999", "meeting-0-starts_at": ""})
        refused = await post_form(client, NEW, form, csrf)
        assert refused.status_code == 422, (change, refused.status_code)
        assert f'id="{error_id}"' in refused.text, change
    async with db.read() as conn:
        assert [s.id for s in await catalog.load_sessions(conn)] == [other_id]


async def test_directory_names_are_escaped_on_the_session_form(client, db):
    csrf, *_ = await setup(client, db)
    hostile = '"><img src=x onerror=alert(1)>'
    for url, body in (
        ("/admin/instructors/new", {"name": hostile, "email": "x@example.org"}),
        ("/admin/venues/new", {"name": hostile, "room": hostile}),
    ):
        assert (await post_form(client, url, body, csrf)).status_code == 303
    for url in (NEW, "/admin/instructors", "/admin/venues"):
        page = (await client.get(url)).text
        assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page, url
