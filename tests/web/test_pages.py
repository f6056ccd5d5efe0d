"""The HTML pages through the app: admin forms, public registration, roster, outbox, tokens."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import time_machine
from sqlalchemy import insert, select

from notifications.models import Message, utcnow
from scheduler.models import Registration
from tests.web.page_client import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    csrf_from,
    log_in,
    make_admin,
    person_form,
    post_form,
    session_form,
    sign_in,
)

COURSE = {
    "slug": "managing-bias",
    "title": "Managing Bias",
    "description": "How bias shapes split-second decisions.",
    "audience": "Officers of all ranks",
    "provider": "Network",
    "delivery": ["in_person", "virtual"],
}


async def make_course_and_session(client, csrf, **session_kwargs) -> int:
    created = await post_form(client, "/admin/courses/new", COURSE, csrf)
    assert created.status_code == 303, created.text
    made = await post_form(
        client, "/admin/courses/managing-bias/sessions/new", session_form(**session_kwargs), csrf
    )
    assert made.status_code == 303, made.text
    return int(made.headers["location"].rsplit("/", 1)[1])


async def register(client, csrf, session_id, n, attendance="in_person", **extra):
    response = await post_form(
        client, f"/sessions/{session_id}/register", person_form(n, attendance, **extra), csrf
    )
    assert response.status_code == 303, response.text
    token = response.headers["location"].split("/")[2]
    return token, await client.get(response.headers["location"])


async def test_admin_builds_a_hybrid_session_and_the_public_fills_it(client, db):
    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf)

    course_page = await client.get("/courses/managing-bias")
    assert course_page.status_code == 200
    page = course_page.text
    # Local time with the zone's abbreviation: 4 March 2031 is still standard time in Chicago.
    assert "Tue 4 Mar 2031, 9:00 AM – 1:00 PM CST" in page
    assert "Metro Training Center" in page and "Live virtual" in page
    assert "webcal://testserver/courses/managing-bias/calendar.ics" in page
    assert "http://testserver/courses/managing-bias/calendar.ics" in page
    assert "secret-room-123" not in page  # invariant 7

    _, first = await register(client, csrf, session_id, 1)
    assert "You're registered" in first.text
    assert "/calendar.ics" in first.text and "calendar.google.com" in first.text
    await register(client, csrf, session_id, 2)
    token3, third = await register(client, csrf, session_id, 3)
    assert "You're on the waitlist" in third.text
    assert re.search(r"number <strong>1</strong> on the waitlist", third.text)
    assert f"http://testserver/registrations/{token3}" in third.text

    page = (await client.get("/courses/managing-bias")).text
    assert "full</strong>, waitlist open (1 waiting)" in page
    assert "Officer 1" not in page  # nobody's personal data on a public page

    dashboard = (await client.get("/admin")).text
    assert 'value="2"' in dashboard and "2/2" in dashboard and "1 waitlisted" in dashboard
    assert "0/1" in dashboard


async def test_forms_keep_what_was_typed_and_show_each_error_next_to_its_field(client, db):
    csrf = await sign_in(client, db)
    bad = await post_form(
        client, "/admin/courses/new", {**COURSE, "slug": "Bad Slug!", "title": ""}, csrf
    )
    assert bad.status_code == 422
    assert 'value="Bad Slug!"' in bad.text
    assert 'id="slug-error"' in bad.text and 'id="title-error"' in bad.text
    assert 'aria-invalid="true" aria-describedby="slug-error"' in bad.text
    assert "How bias shapes split-second decisions." in bad.text

    await post_form(client, "/admin/courses/new", COURSE, csrf)
    taken = await post_form(client, "/admin/courses/new", COURSE, csrf)
    assert taken.status_code == 409 and 'id="slug-error"' in taken.text

    form = {**session_form(), "venue_name": "", "ends_at": "2031-03-04T08:00", "timezone": "UTC"}
    bad_session = await post_form(client, "/admin/courses/managing-bias/sessions/new", form, csrf)
    assert bad_session.status_code == 422
    assert 'id="meeting-0-ends_at-error"' in bad_session.text
    assert 'value="2031-03-04T08:00"' in bad_session.text
    assert '<option value="UTC" selected>' in bad_session.text
    no_venue = await post_form(
        client,
        "/admin/courses/managing-bias/sessions/new",
        {**session_form(), "venue_name": ""},
        csrf,
    )
    assert no_venue.status_code == 422 and 'id="venue_name-error"' in no_venue.text
    gap = await post_form(
        client,
        "/admin/courses/managing-bias/sessions/new",
        session_form(starts="2031-03-09T02:30", ends="2031-03-09T05:00"),
        csrf,
    )
    assert gap.status_code == 422 and "daylight-saving gap" in gap.text
    # A virtual session ignores the in-person capacity the form still shows.
    virtual = await post_form(
        client, "/admin/courses/managing-bias/sessions/new", session_form("virtual"), csrf
    )
    assert virtual.status_code == 303, virtual.text


async def test_register_form_errors_keep_values_and_duplicates_are_refused(client, db):
    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf)
    bad = await post_form(
        client,
        f"/sessions/{session_id}/register",
        person_form(1, email="not-an-email", name="Dana Smith"),
        csrf,
    )
    assert bad.status_code == 422
    assert f'id="s{session_id}-email-error"' in bad.text
    assert 'value="Dana Smith"' in bad.text and 'value="not-an-email"' in bad.text
    await register(client, csrf, session_id, 1)
    again = await post_form(
        client,
        f"/sessions/{session_id}/register",
        person_form(1, email="OFFICER1@example.org"),
        csrf,
    )
    assert again.status_code == 409 and "already registered" in again.text


async def test_manage_page_shows_join_url_only_to_a_confirmed_virtual_registrant(client, db):
    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf, virtual="1")
    confirmed, _ = await register(client, csrf, session_id, 1, "virtual")
    waiting, _ = await register(client, csrf, session_id, 2, "virtual")
    in_person, _ = await register(client, csrf, session_id, 3, "in_person")
    assert "secret-room-123" in (await client.get(f"/registrations/{confirmed}")).text
    for token in (waiting, in_person):
        page = await client.get(f"/registrations/{token}")
        assert page.status_code == 200 and "secret-room-123" not in page.text
    assert "On the waitlist, position 1" in (await client.get(f"/registrations/{waiting}")).text

    cancelled = await post_form(
        client, f"/registrations/{confirmed}/cancel", {"confirm": "yes"}, csrf
    )
    assert cancelled.status_code == 303
    page = (await client.get(f"/registrations/{confirmed}")).text
    assert "Your registration is cancelled" in page and "Cancel my registration" not in page
    assert "secret-room-123" not in page
    promoted = (await client.get(f"/registrations/{waiting}")).text
    assert "Confirmed" in promoted and "secret-room-123" in promoted


async def test_roster_cancel_promotes_the_next_in_line_and_csv_matches(client, db):
    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf, in_person="2")
    for n in (1, 2, 3, 4):
        await register(client, csrf, session_id, n)
    roster = (await client.get(f"/admin/sessions/{session_id}")).text
    assert "2 of 2 seats taken" in roster
    async with db.read() as conn:
        ids = {
            row.name: row.id
            for row in (await conn.execute(select(Registration.id, Registration.name))).all()
        }

    full = await post_form(client, f"/admin/registrations/{ids['Officer 3']}/promote", {}, csrf)
    assert full.status_code == 303
    assert "pool is full: raise its capacity" in (await client.get(full.headers["location"])).text

    cancel = await post_form(
        client, f"/admin/registrations/{ids['Officer 1']}/cancel", {"confirm": "yes"}, csrf
    )
    assert cancel.status_code == 303
    # Attendance exists once the session has started (4 March 2031, 9:00 CST).
    with time_machine.travel(datetime(2031, 3, 4, 16, tzinfo=UTC), tick=True):
        csrf = await log_in(client)
        await post_form(
            client,
            f"/admin/registrations/{ids['Officer 2']}/outcome",
            {"outcome": "attended"},
            csrf,
        )
    csrf = await log_in(client)
    download = await client.get(f"/admin/sessions/{session_id}/roster.csv")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    by_name = {row["name"]: row for row in rows}
    assert by_name["Officer 1"]["status"] == "cancelled"
    assert (by_name["Officer 2"]["status"], by_name["Officer 2"]["outcome"]) == (
        "confirmed",
        "attended",
    )
    assert by_name["Officer 3"]["status"] == "confirmed"  # promoted in the same transaction
    assert (by_name["Officer 4"]["status"], by_name["Officer 4"]["waitlist_position"]) == (
        "waitlisted",
        "1",
    )


async def test_edit_reschedules_and_cancel_needs_the_confirmation_step(client, db):
    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf)
    await register(client, csrf, session_id, 1)
    edit = await client.get(f"/admin/sessions/{session_id}/edit")
    assert 'value="2031-03-04T09:00"' in edit.text
    moved = await post_form(
        client,
        f"/admin/sessions/{session_id}/edit",
        session_form(starts="2031-03-05T10:00", ends="2031-03-05T12:00", in_person="5"),
        csrf,
    )
    assert moved.status_code == 303, moved.text
    roster = (await client.get(f"/admin/sessions/{session_id}")).text
    assert "Wed 5 Mar 2031, 10:00 AM – 12:00 PM CST" in roster
    assert "1 of 5 seats taken" in roster
    too_low = await post_form(
        client, f"/admin/sessions/{session_id}/edit", session_form(in_person="0"), csrf
    )
    assert too_low.status_code == 409 and 'id="in_person_capacity-error"' in too_low.text
    async with db.read() as conn:
        kinds = list((await conn.execute(select(Message.kind))).scalars())
    assert "session_changed" in kinds

    confirm = await client.get(f"/admin/sessions/{session_id}/cancel")
    assert confirm.status_code == 200 and "Yes, cancel the session" in confirm.text
    assert "Cancelled" not in (await client.get("/courses/managing-bias")).text
    done = await post_form(
        client, f"/admin/sessions/{session_id}/cancel", {"reason": "Instructor ill"}, csrf
    )
    assert done.status_code == 303
    assert "Cancelled" in (await client.get("/courses/managing-bias")).text
    assert (await client.get(f"/admin/sessions/{session_id}/edit")).status_code == 409


async def test_outbox_lists_failures_with_the_server_answer_and_resends(client, db):
    csrf = await sign_in(client, db)
    async with db.write() as conn:
        message_id = (
            await conn.execute(
                insert(Message)
                .values(
                    kind="confirmation",
                    recipient="someone@example.org",
                    due_at=utcnow(),
                    status="failed",
                    attempts=5,
                    last_error="550 5.1.1 mailbox unavailable",
                    payload={},
                    created_at=utcnow(),
                )
                .returning(Message.id)
            )
        ).scalar_one()
    page = await client.get("/admin/outbox?status=failed")
    assert "550 5.1.1 mailbox unavailable" in page.text and "someone@example.org" in page.text
    assert "1 email failed" in (await client.get("/admin")).text
    resent = await post_form(client, f"/admin/outbox/{message_id}/resend?status=failed", {}, csrf)
    assert resent.status_code == 303
    async with db.read() as conn:
        row = (await conn.execute(select(Message).where(Message.id == message_id))).one()
    assert (row.status, row.attempts) == ("pending", 0)
    again = await post_form(client, f"/admin/outbox/{message_id}/resend", {}, csrf)
    assert "cannot be resent" in (await client.get(again.headers["location"])).text


async def test_api_token_is_shown_once_works_and_can_be_revoked(client, db):
    csrf = await sign_in(client, db)
    created = await post_form(client, "/admin/tokens", {"name": "partner sync"}, csrf)
    assert created.status_code == 200
    token = re.search(
        r'id="new-token" class="token" type="text" readonly value="([^"]+)"', created.text
    )
    assert token
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    api = await client.post("/api/courses", json={"slug": "x1", "title": "X"}, headers=headers)
    assert api.status_code == 201
    listing = (await client.get("/admin/tokens")).text
    assert "partner sync" in listing and token.group(1) not in listing
    token_id = re.search(r"/admin/tokens/(\d+)/revoke", listing).group(1)
    await post_form(client, f"/admin/tokens/{token_id}/revoke", {}, csrf)
    refused = await client.post("/api/courses", json={"slug": "x2", "title": "X"}, headers=headers)
    assert refused.status_code == 401
    empty = await post_form(client, "/admin/tokens", {"name": "  "}, csrf)
    assert empty.status_code == 422 and 'id="name-error"' in empty.text


async def test_login_is_throttled_after_repeated_failures_and_logout_ends_the_session(client, db):
    await make_admin(db)
    csrf = csrf_from((await client.get("/admin/login")).text)
    for _ in range(5):
        wrong = await client.post(
            "/admin/login",
            data={"email": ADMIN_EMAIL, "password": "wrong password!", "csrf_token": csrf},
        )
        assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    locked = await client.post(
        "/admin/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": csrf},
    )
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert (await client.get("/admin")).status_code == 303


async def test_logout_needs_csrf_and_then_ends_the_session(client, db):
    csrf = await sign_in(client, db)
    assert (await client.post("/admin/logout", data={})).status_code == 403
    assert (await client.get("/admin")).status_code == 200
    out = await post_form(client, "/admin/logout", {}, csrf)
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    again = await client.get("/admin")
    assert again.status_code == 303 and again.headers["location"].startswith("/admin/login")
