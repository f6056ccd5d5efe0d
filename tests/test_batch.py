"""Batch registration, substitution and moves, with the mail read back from a real SMTP sink."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import insert

from scheduler.config import Settings
from scheduler.db import Database
from scheduler.models import Account, AccountAgency
from tests.helpers import make_course, make_session, person
from tests.notifications.mailbox import by_recipient, invite_of, kinds, smtp_dispatcher, text_of
from tests.support.smtp import SmtpSink
from tests.test_agencies import make_agency


async def deliver(db: Database, settings: Settings, smtp: SmtpSink) -> list[Any]:
    before = smtp.count()
    dispatcher = smtp_dispatcher(db, settings, smtp.url)
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()
    return smtp.messages[before:]


async def add_coordinator(db: Database, agency_id: int, email: str) -> None:
    async with db.write() as conn:
        account = (
            await conn.execute(
                insert(Account)
                .values(email=email, name="Casey Coordinator", role="coordinator")
                .returning(Account.id)
            )
        ).scalar_one()
        await conn.execute(insert(AccountAgency).values(account_id=account, agency_id=agency_id))


async def test_a_batch_of_40_with_bad_rows(client, admin_headers, db, settings, smtp_server):
    agency = await make_agency(client, admin_headers)
    await add_coordinator(db, agency["id"], "coord@pd.example.org")
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=30)
    sid = session["id"]
    already = await client.post(f"/api/sessions/{sid}/registrations", json=person(7))
    assert already.status_code == 201
    await deliver(db, settings, smtp_server)  # the earlier confirmation is not the batch's

    people: list[dict[str, Any]] = [
        {"name": f"Officer {n}", "email": f"officer{n}@example.org", "rank": "Officer"}
        for n in range(37)
        if n != 7
    ]
    people[3]["post_id"] = "IL-55"
    people.insert(10, {"name": "Twice", "email": "OFFICER2@example.org"})  # a duplicate row
    people.insert(20, {"name": "Thrice", "email": "officer5@example.org"})  # another one
    people.insert(30, {"name": "No Mail", "email": "not-an-address"})
    people.append({"name": "Officer 7", "email": "officer7@example.org"})  # already registered
    assert len(people) == 40

    response = await client.post(
        f"/api/sessions/{sid}/registrations/batch",
        json={
            "agency_id": agency["id"],
            "attendance": "in_person",
            "people": people,
            "summary_to": "COORD@pd.example.org",
        },
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(40))
    errors = {r["index"]: r for r in results if r["status"] == "error"}
    assert set(errors) == {10, 20, 30, 39}
    assert "twice" in errors[10]["error"] or "twice" in str(errors[10]["fields"])
    assert "email" in errors[30]["fields"]
    assert "already has an active registration" in errors[39]["error"]
    # 30 seats, one taken before: 29 confirmed, the other 7 of the 36 new officers wait.
    assert Counter(r["status"] for r in results) == {"confirmed": 29, "waitlisted": 7, "error": 4}
    waiting = [r["waitlist_position"] for r in results if r["status"] == "waitlisted"]
    assert waiting == [1, 2, 3, 4, 5, 6, 7]

    received = await deliver(db, settings, smtp_server)
    mailbox = by_recipient(received)
    officers = {f"officer{n}@example.org" for n in range(37)} - {"officer7@example.org"}
    assert set(mailbox) == officers | {"coord@pd.example.org"}
    assert all(len(mails) == 1 for mails in mailbox.values())
    assert Counter(kinds(received)) == {"confirmation": 29, "waitlisted": 7, "batch_summary": 1}
    summary = text_of(mailbox["coord@pd.example.org"][0])
    assert "not-an-address" in summary and "waitlisted, position 7" in summary
    roster = (await client.get(f"/api/sessions/{sid}/registrations", headers=admin_headers)).json()[
        "registrations"
    ]
    three = next(r for r in roster if r["email"] == "officer3@example.org")
    assert (three["post_id"], three["post_state"], three["agency_id"]) == (
        "IL-55",
        "IL",
        agency["id"],
    )


async def test_a_batch_for_an_unknown_agency_writes_nothing(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    response = await client.post(
        f"/api/sessions/{session['id']}/registrations/batch",
        json={"agency_id": 404, "attendance": "in_person", "people": [person(1)]},
        headers=admin_headers,
    )
    assert response.status_code == 422 and "agency_id" in response.json()["error"]["fields"]
    roster = await client.get(f"/api/sessions/{session['id']}/registrations", headers=admin_headers)
    assert roster.json()["registrations"] == []


async def test_substitution_passes_the_seat(client, admin_headers, db, settings, smtp_server):
    agency = await make_agency(client, admin_headers)
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=1)
    url = f"/api/sessions/{session['id']}/registrations"
    first = (await client.post(url, json={**person(1), "agency_id": agency["id"]})).json()
    waiting = (await client.post(url, json=person(2))).json()
    await deliver(db, settings, smtp_server)

    swapped = await client.post(
        f"/api/registrations/{first['id']}/transfer",
        json={"name": "Second Officer", "email": "second@pd.example.org"},
        headers=admin_headers,
    )
    assert swapped.status_code == 201, swapped.text
    assert swapped.json()["status"] == "confirmed"
    # Nothing freed: the waitlisted person is still waiting, first in line.
    still = (await client.get(f"/api/registrations/{waiting['token']}")).json()
    assert (still["status"], still["waitlist_position"]) == ("waitlisted", 1)

    mailbox = by_recipient(await deliver(db, settings, smtp_server))
    assert kinds(mailbox["officer1@example.org"]) == ["registration_cancelled"]
    cancel = invite_of(mailbox["officer1@example.org"][0])
    assert cancel is not None and str(cancel["METHOD"]) == "CANCEL"
    assert kinds(mailbox["second@pd.example.org"]) == ["confirmation"]
    invite = invite_of(mailbox["second@pd.example.org"][0])
    assert invite is not None and str(invite["METHOD"]) == "REQUEST"


async def test_move_to_another_session_of_the_course(
    client, admin_headers, db, settings, smtp_server
):
    await make_course(client, admin_headers)
    await make_course(client, admin_headers, slug="report-writing")
    here = await make_session(client, admin_headers, in_person=1, days=10)
    there = await make_session(client, admin_headers, in_person=5, days=20)
    elsewhere = await make_session(client, admin_headers, slug="report-writing")
    moving = (await client.post(f"/api/sessions/{here['id']}/registrations", json=person(1))).json()
    next_in_line = (
        await client.post(f"/api/sessions/{here['id']}/registrations", json=person(2))
    ).json()
    await deliver(db, settings, smtp_server)

    wrong = await client.post(
        f"/api/registrations/{moving['id']}/move",
        json={"session_id": elsewhere["id"]},
        headers=admin_headers,
    )
    assert wrong.status_code == 422
    moved = await client.post(
        f"/api/registrations/{moving['id']}/move",
        json={"session_id": there["id"], "attendance": "in_person"},
        headers=admin_headers,
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["session_id"], moved.json()["status"]) == (there["id"], "confirmed")
    promoted = (await client.get(f"/api/registrations/{next_in_line['token']}")).json()
    assert promoted["status"] == "confirmed"

    mailbox = by_recipient(await deliver(db, settings, smtp_server))
    assert kinds(mailbox["officer1@example.org"]) == ["registration_moved"]
    mail = mailbox["officer1@example.org"][0]
    invite = invite_of(mail)
    assert invite is not None and str(invite["METHOD"]) == "REQUEST"
    attachments = [p for p in mail.iter_attachments() if p.get_filename() == "cancel.ics"]
    assert len(attachments) == 1 and b"METHOD:CANCEL" in attachments[0].get_content()
    assert kinds(mailbox["officer2@example.org"]) == ["promoted"]


async def test_a_coordinator_route_needs_credentials(client, admin_headers):
    response = await client.post("/api/registrations/1/transfer", json={})
    assert response.status_code == 401
