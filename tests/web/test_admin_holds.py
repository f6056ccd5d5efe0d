"""Held seats in the admin, on both databases: the list by session and agency, release by hand
(promoting the waitlist), a session's cancellation ending its holds (the coordinator is told),
a capacity cut below confirmed + held refused; and the roster's add-by-hand and move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from notifications.models import Message, utcnow
from scheduler.models import Hold, Registration
from tests.helpers import make_course, make_session, person
from tests.notifications.mailbox import by_recipient, invite_of, kinds, text_of
from tests.test_agencies import make_agency
from tests.test_batch import deliver
from tests.web.agency_client import invite
from tests.web.page_client import post_form, session_form, sign_in


async def seats(client, session_id: int) -> dict[str, int]:
    return dict((await client.get(f"/api/sessions/{session_id}")).json()["seats"]["in_person"])


async def sent_kinds(db, recipient: str) -> list[str]:
    async with db.read() as conn:
        rows = await conn.scalars(
            select(Message.kind).where(Message.recipient == recipient).order_by(Message.id)
        )
        return list(rows.all())


async def held_session(client, headers, capacity: int = 3, seats_held: int = 2):
    agency = await make_agency(client, headers)
    await make_course(client, headers)
    session = await make_session(client, headers, in_person=capacity)
    made = await client.post(
        f"/api/sessions/{session['id']}/holds",
        json={"agency_id": agency["id"], "attendance": "in_person", "seats": seats_held},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    return agency, session, made.json()


async def test_holds_listed_by_session_and_agency_and_released_by_hand(client, db, admin_headers):
    csrf = await sign_in(client, db)
    agency, session, hold = await held_session(client, admin_headers)
    other = await make_agency(client, admin_headers, name="Other PD", state="WI")
    sid = session["id"]
    for n in range(3):  # one seat free, then two on the waitlist
        await client.post(f"/api/sessions/{sid}/registrations", json=person(n))
    assert await seats(client, sid) == {
        "capacity": 3,
        "confirmed": 1,
        "held": 2,
        "waitlisted": 2,
        "available": 0,
    }
    page = (await client.get(f"/admin/holds?session_id={sid}")).text
    assert "1 hold" in page and "2 held: 0 named, 2 unnamed" in page
    assert "Springfield Police Department" in page
    by_other = (await client.get(f"/admin/holds?agency_id={other['id']}")).text
    assert "0 holds" in by_other
    assert "1 hold" in (await client.get(f"/admin/holds?agency_id={agency['id']}")).text

    back = f"/admin/holds?session_id={sid}"
    released = await post_form(client, f"/admin/holds/{hold['id']}/release", {"back": back}, csrf)
    assert released.status_code == 303 and released.headers["location"] == back
    assert "2 unnamed seats back" in (await client.get(back)).text
    assert await seats(client, sid) == {
        "capacity": 3,
        "confirmed": 3,
        "held": 0,
        "waitlisted": 0,
        "available": 0,
    }
    assert "promoted" in await sent_kinds(db, "officer1@example.org")
    assert "0 holds" in (await client.get(back)).text
    assert "1 hold" in (await client.get(back + "&show=all")).text
    twice = await post_form(
        client, f"/admin/holds/{hold['id']}/release", {"back": "https://evil.example"}, csrf
    )
    assert twice.headers["location"] == "/admin/holds"  # only a holds page to go back to
    assert "already released" in (await client.get("/admin/holds")).text
    assert (await post_form(client, "/admin/holds/999999/release", {}, csrf)).status_code == 404


async def test_cancelling_a_session_ends_its_holds_and_tells_the_coordinator(
    client, db, admin_headers, settings, smtp_server
):
    csrf = await sign_in(client, db)
    agency, session, hold = await held_session(client, admin_headers, capacity=5, seats_held=3)
    await invite(client, admin_headers, agency["id"], "casey@pd.example.org")
    sid = session["id"]
    cancelled = await post_form(
        client, f"/admin/sessions/{sid}/cancel", {"reason": "Instructor ill"}, csrf
    )
    assert cancelled.status_code == 303
    async with db.read() as conn:
        row = (await conn.execute(select(Hold).where(Hold.id == hold["id"]))).one()
        payload = (
            await conn.execute(
                select(Message.payload).where(
                    Message.kind == "hold_released", Message.recipient == "casey@pd.example.org"
                )
            )
        ).scalar_one()
    assert (row.status, row.remaining) == ("released", 0) and row.released_at is not None
    assert payload["seats"] == 3 and payload["reason"] == "Instructor ill"
    in_person = (await client.get(f"/api/sessions/{sid}")).json()["seats"]["in_person"]
    assert in_person["held"] == 0
    mailbox = by_recipient(await deliver(db, settings, smtp_server))
    # The dispatcher sends in parallel, so the two may arrive in either order.
    casey = mailbox["casey@pd.example.org"]
    assert sorted(kinds(casey)) == ["coordinator_invitation", "hold_released"]
    told = text_of(next(m for m in casey if m["X-Outbox-Kind"] == "hold_released"))
    assert "is cancelled, so the 3 unnamed seats Springfield Police Department held" in told
    assert "Reason: Instructor ill" in told


async def test_a_capacity_cut_below_confirmed_plus_held_is_refused(client, db, admin_headers):
    csrf = await sign_in(client, db)
    _, session, _ = await held_session(client, admin_headers, capacity=5, seats_held=3)
    sid = session["id"]
    await client.post(f"/api/sessions/{sid}/registrations", json=person(1))
    edit = await client.get(f"/admin/sessions/{sid}/edit")
    assert edit.status_code == 200
    form = session_form("in_person", in_person="3")
    # Keep the session's own time: only the capacity changes.
    api = (await client.get(f"/api/sessions/{sid}")).json()
    form["starts_at"], form["ends_at"] = api["starts_at"][:16], api["ends_at"][:16]
    refused = await post_form(client, f"/admin/sessions/{sid}/edit", form, csrf)
    assert refused.status_code == 409
    assert "must be at least 4" in refused.text and 'value="3"' in refused.text
    assert (await seats(client, sid))["capacity"] == 5
    api_refused = await client.patch(
        f"/api/sessions/{sid}", json={"in_person_capacity": 3}, headers=admin_headers
    )
    assert api_refused.status_code == 409
    assert api_refused.json()["error"]["fields"] == {"in_person_capacity": "must be at least 4"}
    form["in_person_capacity"] = "4"
    assert (await post_form(client, f"/admin/sessions/{sid}/edit", form, csrf)).status_code == 303
    assert await seats(client, sid) == {
        "capacity": 4,
        "confirmed": 1,
        "held": 3,
        "waitlisted": 0,
        "available": 0,
    }


async def test_an_admin_adds_a_registrant_by_hand(client, db, admin_headers):
    csrf = await sign_in(client, db)
    agency = await make_agency(client, admin_headers, name="Sangamon County Sheriff")
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=1)
    url = f"/admin/sessions/{session['id']}/add"
    assert "Add a registrant" in (await client.get(f"/admin/sessions/{session['id']}")).text
    typed = {"name": "Robin Lee", "email": "robin@so.example.org", "rank": "Deputy"}
    found = await post_form(client, url, {**typed, "q": "sangamon", "action": "search"}, csrf)
    assert found.status_code == 200
    assert f'value="{agency["id"]}"' in found.text and 'value="Deputy"' in found.text
    bad = await post_form(
        client,
        url,
        {**typed, "email": "nope", "agency_id": "", "agency": "", "attendance": "virtual"},
        csrf,
    )
    assert bad.status_code == 422
    assert "is not a valid email address" in bad.text
    assert "choose an agency from the directory, or type its name" in bad.text
    bad_post = await post_form(
        client,
        url,
        {**typed, "agency_id": str(agency["id"]), "post_id": "#!", "attendance": "in_person"},
        csrf,
    )
    assert bad_post.status_code == 422 and "use letters, digits" in bad_post.text
    assert f'value="{agency["id"]}" checked' in bad_post.text

    added = await post_form(
        client,
        url,
        {
            **typed,
            "agency_id": str(agency["id"]),
            "post_id": "PID-1234",
            "post_state": "",
            "attendance": "in_person",
        },
        csrf,
    )
    assert added.status_code == 303
    assert "Robin Lee has a confirmed seat" in (await client.get(added.headers["location"])).text
    async with db.read() as conn:
        row = (await conn.execute(select(Registration))).one()
    assert (row.agency, row.agency_id, row.rank, row.post_id, row.post_state) == (
        "Sangamon County Sheriff",
        agency["id"],
        "Deputy",
        "PID-1234",
        "IL",
    )
    mail = await sent_kinds(db, "robin@so.example.org")
    assert mail[0] == "confirmation" and set(mail[1:]) == {"reminder"}  # the usual emails
    again = await post_form(
        client,
        url,
        {
            **typed,
            "agency": "Free Text PD",
            "attendance": "in_person",
            "email": "ROBIN@so.example.org",
        },
        csrf,
    )
    assert again.status_code == 409 and "already has an active registration" in again.text
    waiting = await post_form(
        client,
        url,
        {
            "name": "Sam",
            "email": "sam@x.example.org",
            "agency": "Free Text PD",
            "attendance": "in_person",
        },
        csrf,
    )
    assert waiting.status_code == 303
    assert "Sam is on the waitlist" in (await client.get(waiting.headers["location"])).text
    assert (await client.get("/admin/sessions/999999/add")).status_code == 404


async def test_an_admin_moves_a_registrant_to_another_session(
    client, db, admin_headers, settings, smtp_server
):
    csrf = await sign_in(client, db)
    await make_course(client, admin_headers)
    first = await make_session(client, admin_headers, in_person=1, days=10)
    second = await make_session(client, admin_headers, in_person=5, days=20)
    await make_course(client, admin_headers, slug="other-course")
    elsewhere = await make_session(client, admin_headers, slug="other-course", days=30)
    moving = (
        await client.post(f"/api/sessions/{first['id']}/registrations", json=person(1))
    ).json()
    waiting = (
        await client.post(f"/api/sessions/{first['id']}/registrations", json=person(2))
    ).json()
    url = f"/admin/registrations/{moving['id']}/move"
    page = await client.get(url)
    assert page.status_code == 200
    assert f'value="{second["id"]}"' in page.text and f'value="{elsewhere["id"]}"' not in page.text

    none = await post_form(client, url, {"attendance": "in_person"}, csrf)
    assert none.status_code == 422 and "session_id-error" in none.text
    other_course = await post_form(
        client, url, {"session_id": str(elsewhere["id"]), "attendance": "in_person"}, csrf
    )
    assert other_course.status_code == 422 and "same course" in other_course.text
    virtual = await post_form(
        client, url, {"session_id": str(second["id"]), "attendance": "virtual"}, csrf
    )
    assert virtual.status_code == 422 and "offered only in person" in virtual.text

    moved = await post_form(
        client, url, {"session_id": str(second["id"]), "attendance": "in_person"}, csrf
    )
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/admin/sessions/{second['id']}"
    assert (
        "moved here and has a confirmed seat" in (await client.get(moved.headers["location"])).text
    )
    async with db.read() as conn:
        rows = {
            (r.session_id, r.email): r.status
            for r in (await conn.execute(select(Registration))).all()
        }
    assert rows[(first["id"], "officer1@example.org")] == "cancelled"
    assert rows[(second["id"], "officer1@example.org")] == "confirmed"
    assert rows[(first["id"], "officer2@example.org")] == "confirmed"  # promoted in order
    await deliver(db, settings, smtp_server)  # (nothing of the move is sent before this)
    mailbox = by_recipient(smtp_server.messages)
    moved_mail = [
        m for m in mailbox["officer1@example.org"] if m["X-Outbox-Kind"] != "confirmation"
    ]
    assert kinds(moved_mail) == ["registration_moved"]  # one email about the move
    invite = invite_of(moved_mail[0])
    assert invite is not None and str(invite["METHOD"]) == "REQUEST"
    cancels = [p for p in moved_mail[0].iter_attachments() if p.get_filename() == "cancel.ics"]
    assert len(cancels) == 1 and b"METHOD:CANCEL" in cancels[0].get_content()
    assert "promoted" in kinds(mailbox["officer2@example.org"])
    assert waiting["status"] == "waitlisted"
    gone = await post_form(
        client, url, {"session_id": str(second["id"]), "attendance": "in_person"}, csrf
    )
    assert gone.status_code == 409 and "This registration is cancelled" in gone.text
    assert (await client.get("/admin/registrations/999999/move")).status_code == 404


async def test_rescheduling_moves_a_holds_release_with_the_start(client, db, admin_headers):
    csrf = await sign_in(client, db)
    _, session, hold = await held_session(client, admin_headers, capacity=5, seats_held=2)
    sid = session["id"]
    before = datetime.fromisoformat(hold["release_at"])
    api = (await client.get(f"/api/sessions/{sid}")).json()
    start = datetime.fromisoformat(api["starts_at"])
    later = (start + timedelta(days=14)).replace(tzinfo=None)
    form = session_form(
        "in_person",
        in_person="5",
        starts=later.isoformat(timespec="minutes"),
        ends=(later + timedelta(hours=4)).isoformat(timespec="minutes"),
    )
    moved = await post_form(client, f"/admin/sessions/{sid}/edit", form, csrf)
    assert moved.status_code == 303, moved.text
    got = (await client.get(f"/api/holds/{hold['id']}", headers=admin_headers)).json()
    assert datetime.fromisoformat(got["release_at"]) == before + timedelta(days=14)

    # Sooner than the hold's lead time: its release goes halfway to the new start, not past.
    soon = (utcnow() + timedelta(days=3)).replace(tzinfo=UTC).astimezone(start.tzinfo)
    soon = soon.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    form.update(
        starts_at=soon.isoformat(timespec="minutes"),
        ends_at=(soon + timedelta(hours=4)).isoformat(timespec="minutes"),
    )
    assert (await post_form(client, f"/admin/sessions/{sid}/edit", form, csrf)).status_code == 303
    got = (await client.get(f"/api/holds/{hold['id']}", headers=admin_headers)).json()
    new_start = datetime.fromisoformat(
        (await client.get(f"/api/sessions/{sid}")).json()["starts_at"]
    )
    release = datetime.fromisoformat(got["release_at"])
    assert utcnow().replace(tzinfo=UTC) < release < new_start
    assert got["status"] == "active"
