"""What people see after a change is true and final (issue 11), through the API and the pages.

A cancelled session cancels its registrations on every surface; cancelling asks first on both
sides; a refused registration form comes back with what was typed; attendance and promotion
show only where they can work; past sessions need saying so; the outbox, tokens and password
pages tell the admin what happened.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import icalendar
import time_machine
from sqlalchemy import select

from notifications.models import Message
from scheduler.models import ApiToken, Registration
from tests.helpers import make_course, make_session, person
from tests.web.page_client import (
    ADMIN_PASSWORD,
    csrf_from,
    log_in,
    person_form,
    post_form,
    session_form,
    sign_in,
)
from tests.web.test_pages import make_course_and_session, register

JOIN = "secret-room-123"


def form_actions(page: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]+)"', page)


def input_value(page: str, input_id: str) -> str:
    match = re.search(rf'<input id="{re.escape(input_id)}"[^>]*value="([^"]*)"', page)
    assert match, f"no input {input_id}"
    return unescape(match.group(1))


def local_span(start: datetime, hours: int = 2) -> dict[str, str]:
    """``starts``/``ends`` for ``session_form``: wall-clock Chicago time from an instant."""
    zone = ZoneInfo("America/Chicago")
    fmt = "%Y-%m-%dT%H:%M"
    return {
        "starts": start.astimezone(zone).strftime(fmt),
        "ends": (start + timedelta(hours=hours)).astimezone(zone).strftime(fmt),
    }


async def add_session(client, csrf, **kwargs) -> int:
    made = await post_form(
        client, "/admin/courses/managing-bias/sessions/new", session_form(**kwargs), csrf
    )
    assert made.status_code == 303, made.text
    return int(made.headers["location"].rsplit("/", 1)[1])


async def statuses(db) -> dict[str, str]:
    async with db.read() as conn:
        rows = (await conn.execute(select(Registration.name, Registration.status))).all()
    return dict(rows)


# -- a cancelled session ---------------------------------------------------------------------


async def test_a_cancelled_session_cancels_its_registrations_on_every_surface(
    client, admin_headers, db
):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="hybrid", in_person=1, virtual=5)
    sid = session["id"]
    seats = {}
    for n, pool in ((1, "virtual"), (2, "in_person"), (3, "in_person")):
        made = await client.post(
            f"/api/sessions/{sid}/registrations", json=person(n, attendance=pool)
        )
        assert made.status_code == 201
        seats[n] = made.json()
    assert seats[3]["status"] == "waitlisted"
    before = (await client.get(f"/api/registrations/{seats[1]['token']}")).json()
    assert before["status"] == "confirmed" and JOIN in before["join_url"]

    cancelled = await client.post(
        f"/api/sessions/{sid}/cancel",
        json={"reason": "Instructor unavailable."},
        headers=admin_headers,
    )
    assert cancelled.status_code == 200

    # API: the registrant's view and the session's seats.
    for n in (1, 2, 3):
        view = (await client.get(f"/api/registrations/{seats[n]['token']}")).json()
        assert view["status"] == "cancelled", n
        assert "join_url" not in view and JOIN not in str(view)
    public = (await client.get(f"/api/sessions/{sid}")).json()
    assert public["status"] == "cancelled" and public["registration_open"] is False
    assert {pool["available"] for pool in public["seats"].values()} == {0}

    # The manage page: cancelled in the danger colour, no join link, no cancel button.
    manage = (await client.get(f"/registrations/{seats[1]['token']}")).text
    assert JOIN not in manage
    assert 'class="status-cancelled"' in manage and "status-confirmed" not in manage
    assert f"/registrations/{seats[1]['token']}/cancel" not in manage

    # The personal invite withdraws the event; the feed shows it cancelled without seats.
    invite = icalendar.Calendar.from_ical(
        (await client.get(f"/registrations/{seats[1]['token']}/calendar.ics")).content
    )
    assert str(invite["METHOD"]) == "CANCEL" and JOIN not in invite.to_ical().decode()
    feed = (await client.get("/courses/managing-bias/calendar.ics")).content.decode()
    assert "STATUS:CANCELLED" in feed and "Seats left" not in feed

    # The public course page offers no seats for it.
    course = (await client.get("/courses/managing-bias")).text
    article = course[course.index(f'id="session-{sid}"') :]
    assert "seats left" not in article and "seat left" not in article
    assert f"/sessions/{sid}/register" not in course

    # The roster (API and CSV): everyone cancelled, what they held kept.
    roster = (await client.get(f"/api/sessions/{sid}/registrations", headers=admin_headers)).json()[
        "registrations"
    ]
    assert {(r["name"], r["status"], r["held"]) for r in roster} == {
        ("Officer 1", "cancelled", "confirmed"),
        ("Officer 2", "cancelled", "confirmed"),
        ("Officer 3", "cancelled", "waitlisted"),
    }
    csv_text = (
        await client.get(f"/api/sessions/{sid}/registrations?format=csv", headers=admin_headers)
    ).text
    assert {row["status"] for row in csv.DictReader(io.StringIO(csv_text))} == {"cancelled"}


async def test_the_roster_of_a_cancelled_session_can_only_be_viewed_and_exported(client, db):
    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf, in_person="1")
    await register(client, csrf, session_id, 1)
    await register(client, csrf, session_id, 2)
    cancelled = await post_form(
        client, f"/admin/sessions/{session_id}/cancel", {"reason": "Storm"}, csrf
    )
    assert cancelled.status_code == 303

    page = (await client.get(f"/admin/sessions/{session_id}")).text
    assert "seats taken" not in page
    assert "Cancelled (was confirmed)" in page and "Cancelled (was waitlisted)" in page
    # Only signing out is left to post: no attendance, cancel or promote forms.
    assert form_actions(page) == ["/admin/logout"]
    assert f"/admin/sessions/{session_id}/roster.csv" in page
    # And the handlers refuse even when posted to by hand.
    async with db.read() as conn:
        ids = dict((await conn.execute(select(Registration.name, Registration.id))).all())
    await post_form(
        client, f"/admin/registrations/{ids['Officer 1']}/outcome", {"outcome": "attended"}, csrf
    )
    promoted = await post_form(client, f"/admin/registrations/{ids['Officer 2']}/promote", {}, csrf)
    assert "session is cancelled" in (await client.get(promoted.headers["location"])).text
    async with db.read() as conn:
        outcomes = dict((await conn.execute(select(Registration.name, Registration.outcome))).all())
    assert outcomes == {"Officer 1": None, "Officer 2": None}
    assert await statuses(db) == {"Officer 1": "confirmed", "Officer 2": "waitlisted"}


# -- cancelling asks first ---------------------------------------------------------------------


async def test_registrant_cancel_asks_for_confirmation_first(client, db):
    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf)
    token, _ = await register(client, csrf, session_id, 1)

    manage = (await client.get(f"/registrations/{token}")).text
    assert f'href="/registrations/{token}/cancel"' in manage
    assert f"/registrations/{token}/cancel" not in form_actions(manage)  # no one-click form
    # A post without the confirmation (an old page, a crawler) only asks.
    asked = await post_form(client, f"/registrations/{token}/cancel", {}, csrf)
    assert asked.status_code == 200 and "Cancel your registration?" in asked.text
    assert await statuses(db) == {"Officer 1": "confirmed"}

    confirm = (await client.get(f"/registrations/{token}/cancel")).text
    assert "Yes, cancel my registration" in confirm and "No, keep it" in confirm
    done = await post_form(
        client, f"/registrations/{token}/cancel", {"confirm": "yes"}, csrf_from(confirm)
    )
    assert done.status_code == 303
    assert await statuses(db) == {"Officer 1": "cancelled"}


async def test_admin_cancel_asks_for_a_reason_and_names_who_was_promoted(client, db):
    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf, in_person="1")
    await register(client, csrf, session_id, 1)
    await register(client, csrf, session_id, 2)
    async with db.read() as conn:
        ids = dict((await conn.execute(select(Registration.name, Registration.id))).all())
    url = f"/admin/registrations/{ids['Officer 1']}/cancel"

    roster = (await client.get(f"/admin/sessions/{session_id}")).text
    assert f'href="{url}"' in roster and url not in form_actions(roster)
    asked = await post_form(client, url, {"reason": "no"}, csrf)
    assert asked.status_code == 200 and 'name="reason"' in asked.text
    assert await statuses(db) == {"Officer 1": "confirmed", "Officer 2": "waitlisted"}

    done = await post_form(client, url, {"confirm": "yes", "reason": "Duplicate booking"}, csrf)
    assert done.status_code == 303
    flash = (await client.get(done.headers["location"])).text
    assert "Cancelled the registration of Officer 1" in flash
    assert "Promoted from the waitlist: Officer 2." in flash
    assert await statuses(db) == {"Officer 1": "cancelled", "Officer 2": "confirmed"}
    async with db.read() as conn:
        payload = (
            await conn.execute(
                select(Message.payload).where(Message.kind == "registration_cancelled")
            )
        ).scalar_one()
    assert payload == {"was": "confirmed", "by": "admin", "reason": "Duplicate booking"}


# -- forms keep what was typed -----------------------------------------------------------------


async def test_a_late_registration_comes_back_with_the_typed_data_and_a_clear_message(client, db):
    csrf = await sign_in(client, db)
    now = datetime.now(UTC)
    soon = await make_course_and_session(client, csrf, **local_span(now + timedelta(hours=2)))
    later = await add_session(client, csrf, starts="2031-04-01T09:00", ends="2031-04-01T12:00")
    form = person_form(7, rank="Sergeant")
    # The tab stayed open past the start of the first session (the clock stays there: the
    # session cookie is signed with the time it was last written).
    with time_machine.travel(now + timedelta(hours=3), tick=True):
        late = await post_form(client, f"/sessions/{soon}/register", form, csrf)
        assert late.status_code == 410
        page = late.text
        assert "Your registration was not taken:" in page
        assert "Registration for this session has closed." in page
        for session_id in (soon, later):
            prefix = f"s{session_id}-"
            assert input_value(page, prefix + "name") == "Officer 7"
            assert input_value(page, prefix + "email") == "officer7@example.org"
            assert input_value(page, prefix + "rank") == "Sergeant"
        assert await statuses(db) == {}

        # A cancelled session refuses the same way; a duplicate keeps the data with its own error.
        await post_form(client, f"/admin/sessions/{soon}/cancel", {}, csrf)
        refused = await post_form(client, f"/sessions/{soon}/register", form, csrf)
        assert refused.status_code == 410 and "This session was cancelled." in refused.text
        assert input_value(refused.text, f"s{later}-name") == "Officer 7"
        await register(client, csrf, later, 7)
        duplicate = await post_form(client, f"/sessions/{later}/register", form, csrf)
        assert duplicate.status_code == 409
        assert input_value(duplicate.text, f"s{later}-agency") == "Springfield PD"
        assert "already registered for this session" in duplicate.text


# -- the admin session form --------------------------------------------------------------------


async def test_a_past_start_or_close_time_needs_saying_so(client, db):
    csrf = await sign_in(client, db)
    await make_course_and_session(client, csrf)
    url = "/admin/courses/managing-bias/sessions/new"
    past = session_form(starts="2020-03-04T09:00", ends="2020-03-04T13:00")
    refused = await post_form(client, url, past, csrf)
    assert refused.status_code == 422
    assert re.search(r'id="meeting-0-starts_at-error">is in the past', refused.text)
    assert input_value(refused.text, "meeting-0-starts_at") == "2020-03-04T09:00"

    recorded = await post_form(client, url, {**past, "record_past": "on"}, csrf)
    assert recorded.status_code == 303

    closes_past = {**session_form(), "registration_closes_at": "2020-01-01T09:00"}
    refused = await post_form(client, url, closes_past, csrf)
    assert refused.status_code == 422
    assert "registration would never open" in refused.text

    backwards = session_form(starts="2031-03-04T13:00", ends="2031-03-04T09:00")
    refused = await post_form(client, url, backwards, csrf)
    assert "must be after the start" in refused.text and "starts_at" not in re.sub(
        r'(id|name|for|aria-describedby)="[^"]*"', "", refused.text
    )


async def test_attendance_waits_for_the_start_and_promote_shows_only_with_a_free_seat(client, db):
    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf, in_person="1")
    await register(client, csrf, session_id, 1)
    await register(client, csrf, session_id, 2)
    async with db.read() as conn:
        ids = dict((await conn.execute(select(Registration.name, Registration.id))).all())
    roster = (await client.get(f"/admin/sessions/{session_id}")).text
    assert "Attendance can be marked once the session starts" in roster
    assert "/outcome" not in roster
    assert "/promote" not in roster  # the pool is full: promoting could not work
    early = await post_form(
        client, f"/admin/registrations/{ids['Officer 1']}/outcome", {"outcome": "attended"}, csrf
    )
    assert "Attendance not saved" in (await client.get(early.headers["location"])).text

    with time_machine.travel(datetime(2031, 3, 4, 15, 30, tzinfo=UTC), tick=True):
        csrf = await log_in(client)
        roster = (await client.get(f"/admin/sessions/{session_id}")).text
        assert f"/admin/registrations/{ids['Officer 1']}/outcome" in roster
        saved = await post_form(
            client,
            f"/admin/registrations/{ids['Officer 1']}/outcome",
            {"outcome": "attended"},
            csrf,
        )
        flash = (await client.get(saved.headers["location"])).text
        assert "Attendance saved: Officer 1 — attended." in flash


# -- admin tools -------------------------------------------------------------------------------


async def test_outbox_names_its_zone_shows_subject_and_session_and_opens_a_message(
    client, db, settings, smtp_server
):
    from tests.notifications.mailbox import smtp_dispatcher

    csrf = await sign_in(client, db)
    session_id = await make_course_and_session(client, csrf)
    await register(client, csrf, session_id, 1)
    dispatcher = smtp_dispatcher(db, settings, smtp_server.url)
    await dispatcher.drain()
    await dispatcher.close()

    sent = (await client.get("/admin/outbox?status=sent")).text
    assert "Times in UTC." in sent and "UTC" in sent
    assert "Confirmed: Managing Bias, Tuesday, March 4, 2031, 9:00 AM CST" in sent
    assert f'href="/admin/sessions/{session_id}">Managing Bias, 4 Mar 2031' in sent
    async with db.read() as conn:
        message_id = (
            await conn.execute(select(Message.id).where(Message.kind == "confirmation"))
        ).scalar_one()
    assert f'href="/admin/outbox/{message_id}"' in sent

    page = (await client.get(f"/admin/outbox/{message_id}")).text
    [received] = [m for m in smtp_server.messages if m["X-Outbox-Kind"] == "confirmation"]
    body = received.get_body(preferencelist=("plain",)).get_content()
    assert f"Subject: {received['Subject']}" in unescape(page)
    assert "To: Officer 1 &lt;officer1@example.org&gt;" in page
    first_line = body.strip().splitlines()[0]
    assert first_line in unescape(page) and "[attached: invite.ics]" in page

    pending = (await client.get("/admin/outbox?status=pending")).text
    assert "(written when it is sent)" in pending
    assert (await client.get("/admin/outbox/999999")).status_code == 404


async def test_api_tokens_show_when_they_were_last_used(client, db):
    csrf = await sign_in(client, db)
    made = await post_form(client, "/admin/tokens", {"name": "partner sync"}, csrf)
    token = re.search(r'value="(sch_[^"]+)"', made.text).group(1)
    assert "Never" in made.text
    headers = {"Authorization": f"Bearer {token}"}
    start = datetime(2031, 1, 1, 12, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert (await client.get("/api/sessions/1/registrations", headers=headers)).status_code in (
            200,
            404,
        )
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        await client.get("/api/sessions/1/registrations", headers=headers)
    async with db.read() as conn:
        used = (await conn.execute(select(ApiToken.last_used_at))).scalar_one()
    assert used == start  # kept to the minute: the second call wrote nothing
    page = (await client.get("/admin/tokens")).text
    assert "Wed 1 Jan 2031, 12:00 PM UTC" in page and "Never" not in page


async def test_change_my_password(client, db):
    csrf = await sign_in(client, db)
    new = "another long passphrase here"
    wrong = await post_form(
        client,
        "/admin/password",
        {"current_password": "nope", "new_password": new, "repeat_password": new},
        csrf,
    )
    assert wrong.status_code == 422 and "is not your current password" in wrong.text
    assert new not in wrong.text  # passwords are never sent back into the page
    mismatch = await post_form(
        client,
        "/admin/password",
        {"current_password": ADMIN_PASSWORD, "new_password": new, "repeat_password": new + "x"},
        csrf,
    )
    assert mismatch.status_code == 422 and "does not match" in mismatch.text
    done = await post_form(
        client,
        "/admin/password",
        {"current_password": ADMIN_PASSWORD, "new_password": new, "repeat_password": new},
        csrf,
    )
    assert done.status_code == 303
    assert "Your password is changed" in (await client.get("/admin")).text

    await post_form(client, "/admin/logout", {}, csrf)
    login = await client.get("/admin/login")
    old = await client.post(
        "/admin/login",
        data={
            "email": "admin@example.org",
            "password": ADMIN_PASSWORD,
            "csrf_token": csrf_from(login.text),
            "next": "/admin",
        },
    )
    assert old.status_code == 401
    assert await log_in(client, new)
