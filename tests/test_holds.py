"""Held seats: create whole or 409, name into, release by hand or at release_at, warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.exc import IntegrityError

from scheduler import holds
from scheduler.models import Account, AccountAgency, SeatPool
from tests.helpers import future_local, make_course, make_session, person
from tests.test_agencies import make_agency

OFFSETS = (timedelta(days=1),)


async def setup(client: Any, headers: dict[str, str], **session: Any) -> tuple[int, int]:
    agency = await make_agency(client, headers)
    await make_course(client, headers)
    created = await make_session(client, headers, **session)
    return int(agency["id"]), int(created["id"])


async def hold(client: Any, headers: dict[str, str], session_id: int, **body: Any) -> Any:
    return await client.post(
        f"/api/sessions/{session_id}/holds",
        json={"attendance": "in_person", **body},
        headers=headers,
    )


async def seats(client: Any, session_id: int) -> dict[str, int]:
    return dict((await client.get(f"/api/sessions/{session_id}")).json()["seats"]["in_person"])


async def test_a_hold_takes_seats_and_names_fill_it(client, admin_headers):
    agency_id, sid = await setup(client, admin_headers, in_person=10)
    created = await hold(client, admin_headers, sid, agency_id=agency_id, seats=4)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["seats"], body["remaining"], body["status"]) == (4, 4, "active")
    # Default release: seven days before the start, in the session's zone.
    start = datetime.fromisoformat((await client.get(f"/api/sessions/{sid}")).json()["starts_at"])
    assert datetime.fromisoformat(body["release_at"]) == start - timedelta(days=7)
    assert await seats(client, sid) == {
        "capacity": 10,
        "confirmed": 0,
        "held": 4,
        "waitlisted": 0,
        "available": 6,
    }

    named = await client.post(
        f"/api/holds/{body['id']}/registrations",
        json={"name": "Sam Rivera", "email": "sam@pd.example.org", "post_id": "12345"},
        headers=admin_headers,
    )
    assert named.status_code == 201, named.text
    assert named.json()["status"] == "confirmed"
    details = (await client.get(f"/api/registrations/{named.json()['token']}")).json()
    assert details["agency_id"] == agency_id and details["post_state"] == "IL"
    again = await client.post(
        f"/api/holds/{body['id']}/registrations",
        json={"name": "Sam Rivera", "email": "SAM@pd.example.org"},
        headers=admin_headers,
    )
    assert again.status_code == 409
    assert (await seats(client, sid))["held"] == 3
    assert (await seats(client, sid))["confirmed"] == 1
    got = (await client.get(f"/api/holds/{body['id']}", headers=admin_headers)).json()
    assert (got["remaining"], got["named"]) == (3, 1)


async def test_a_hold_larger_than_the_free_seats_is_refused_whole(client, admin_headers):
    agency_id, sid = await setup(client, admin_headers, in_person=5)
    for n in range(3):
        await client.post(f"/api/sessions/{sid}/registrations", json=person(n))
    refused = await hold(client, admin_headers, sid, agency_id=agency_id, seats=3)
    assert refused.status_code == 409
    assert refused.json()["error"]["fields"] == {"seats": "at most 2"}
    assert (await seats(client, sid))["held"] == 0
    assert (await hold(client, admin_headers, sid, agency_id=agency_id, seats=2)).status_code == 201


async def test_bad_holds(client, admin_headers):
    agency_id, sid = await setup(client, admin_headers, in_person=5, days=10)
    after_start = future_local(11).isoformat(timespec="minutes")
    cases = [
        ({"agency_id": agency_id, "seats": 1, "release_at": after_start}, 422, "release_at"),
        ({"agency_id": agency_id, "seats": 1, "release_at": "2020-01-01T09:00"}, 422, "release_at"),
        ({"agency_id": agency_id, "seats": 0}, 422, "seats"),
        ({"agency_id": 999, "seats": 1}, 422, "agency_id"),
        ({"agency_id": agency_id, "seats": 1, "attendance": "virtual"}, 422, "attendance"),
    ]
    for body, status, field in cases:
        response = await hold(client, admin_headers, sid, **body)
        assert response.status_code == status, (body, response.text)
        assert field in response.json()["error"]["fields"], response.text
    assert (await seats(client, sid))["held"] == 0
    assert (await client.post(f"/api/sessions/{sid}/holds", json={})).status_code == 401


async def test_the_agency_cap_counts_held_seats(client, admin_headers):
    agency_id, sid = await setup(client, admin_headers, in_person=10, max_per_agency=3)
    assert (await hold(client, admin_headers, sid, agency_id=agency_id, seats=2)).status_code == 201
    url = f"/api/sessions/{sid}/registrations"
    one = await client.post(url, json={**person(1), "agency_id": agency_id})
    two = await client.post(url, json={**person(2), "agency_id": agency_id})
    assert (one.json()["status"], two.json()["status"]) == ("confirmed", "waitlisted")
    more = await hold(client, admin_headers, sid, agency_id=agency_id, seats=1)
    assert more.status_code == 409 and more.json()["error"]["code"] == "agency_cap"


async def test_releasing_promotes_the_waitlist_in_order(client, admin_headers):
    agency_id, sid = await setup(client, admin_headers, in_person=4)
    held = (await hold(client, admin_headers, sid, agency_id=agency_id, seats=3)).json()
    tokens = []
    for n in range(4):
        response = await client.post(f"/api/sessions/{sid}/registrations", json=person(n))
        tokens.append((response.json()["status"], response.json()["token"]))
    assert [s for s, _ in tokens] == ["confirmed", "waitlisted", "waitlisted", "waitlisted"]
    await client.post(
        f"/api/holds/{held['id']}/registrations",
        json={"name": "Named One", "email": "named@pd.example.org"},
        headers=admin_headers,
    )
    released = await client.delete(f"/api/holds/{held['id']}", headers=admin_headers)
    assert released.status_code == 200 and released.json()["status"] == "released"
    statuses = [(await client.get(f"/api/registrations/{t}")).json()["status"] for _, t in tokens]
    assert statuses == ["confirmed", "confirmed", "confirmed", "waitlisted"]
    assert await seats(client, sid) == {
        "capacity": 4,
        "confirmed": 4,
        "held": 0,
        "waitlisted": 1,
        "available": 0,
    }
    # Twice is harmless.
    assert (
        await client.delete(f"/api/holds/{held['id']}", headers=admin_headers)
    ).status_code == 200


async def test_capacity_cannot_drop_below_confirmed_plus_held(client, admin_headers):
    agency_id, sid = await setup(client, admin_headers, in_person=6)
    await hold(client, admin_headers, sid, agency_id=agency_id, seats=4)
    await client.post(f"/api/sessions/{sid}/registrations", json=person(1))
    response = await client.patch(
        f"/api/sessions/{sid}", json={"in_person_capacity": 4}, headers=admin_headers
    )
    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"in_person_capacity": "must be at least 5"}


async def test_the_check_constraint_backs_invariant_1(client, admin_headers, db):
    _, sid = await setup(client, admin_headers, in_person=3)
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(
                update(SeatPool).where(SeatPool.session_id == sid).values(held=2, confirmed=2)
            )
    # The older checks survived the table rebuild that added this one (SQLite).
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(text("UPDATE seat_pools SET capacity = -1"))


async def test_release_at_its_time_and_the_warning_two_days_before(client, admin_headers, db):
    agency_id, sid = await setup(client, admin_headers, in_person=2, days=20)
    created = (await hold(client, admin_headers, sid, agency_id=agency_id, seats=2)).json()
    release_at = datetime.fromisoformat(created["release_at"]).astimezone(UTC)
    waiting = await client.post(f"/api/sessions/{sid}/registrations", json=person(1))
    assert waiting.json()["status"] == "waitlisted"
    async with db.write() as conn:
        account = (
            await conn.execute(
                insert(Account)
                .values(email="coord@pd.example.org", name="Casey", role="coordinator")
                .returning(Account.id)
            )
        ).scalar_one()
        await conn.execute(insert(AccountAgency).values(account_id=account, agency_id=agency_id))

    assert await holds.warn_due(db, now=release_at - timedelta(days=3)) == []
    assert await holds.warn_due(db, now=release_at - timedelta(days=2)) == [created["id"]]
    assert await holds.warn_due(db, now=release_at - timedelta(days=1)) == []
    async with db.read() as conn:
        warnings = (
            await conn.execute(
                text("SELECT recipient, payload FROM messages WHERE kind = 'hold_release_warning'")
            )
        ).all()
    assert [w.recipient for w in warnings] == ["coord@pd.example.org"]

    early = release_at - timedelta(seconds=1)
    assert await holds.release_due(db, reminder_offsets=OFFSETS, now=early) == []
    assert await holds.release_due(db, reminder_offsets=OFFSETS, now=release_at) == [created["id"]]
    assert (await client.get(f"/api/registrations/{waiting.json()['token']}")).json()[
        "status"
    ] == "confirmed"
    assert (await seats(client, sid))["held"] == 0
