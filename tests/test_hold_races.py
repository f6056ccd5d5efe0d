"""Held seats under real concurrency: two ``scheduler serve`` processes on PostgreSQL, one on
SQLite; the invariants are read back from the tables after every race."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler import holds
from scheduler.db import Database
from tests import test_races
from tests.helpers import person
from tests.test_races import check_invariants, race, rows, waitlist

# The race fixtures: two servers on PostgreSQL, one on SQLite.
race_backend = test_races.race_backend
race_url = test_races.race_url
cluster = test_races.cluster

pytestmark = pytest.mark.slow


async def make_agency(cluster: Any) -> int:
    response = await cluster.client.post(
        cluster.url("/api/agencies"),
        json={"name": "Springfield PD", "state": "IL", "type": "municipal"},
        headers=cluster.admin,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_a_hold_racing_100_registrations_for_the_last_20_seats(cluster, race_url):
    agency_id = await make_agency(cluster)
    sid = (await cluster.create_session(in_person=30))["id"]
    for n in range(10):
        assert (await cluster.register(sid, person(1000 + n))).status_code == 201

    def hold() -> Any:
        return cluster.client.post(
            cluster.url(f"/api/sessions/{sid}/holds"),
            json={"agency_id": agency_id, "attendance": "in_person", "seats": 15},
            headers=cluster.admin,
        )

    calls = [lambda n=n: cluster.register(sid, person(n)) for n in range(100)]
    calls.insert(50, hold)
    responses = await race(calls)

    hold_answer = responses[50]
    registrations = [r for i, r in enumerate(responses) if i != 50]
    assert hold_answer.status_code in (201, 409), hold_answer.text
    held = 15 if hold_answer.status_code == 201 else 0
    if held:
        assert hold_answer.json()["remaining"] == 15  # whole, never part
    assert Counter(r.status_code for r in registrations) == {201: 100}
    answers = Counter(r.json()["status"] for r in registrations)
    assert answers == {"confirmed": 20 - held, "waitlisted": 80 + held}
    positions = sorted(
        r.json()["waitlist_position"] for r in registrations if r.json()["status"] == "waitlisted"
    )
    assert positions == list(range(1, 81 + held))
    seats = (await cluster.client.get(cluster.url(f"/api/sessions/{sid}"))).json()["seats"]
    assert seats["in_person"]["confirmed"] + seats["in_person"]["held"] == 30
    assert seats["in_person"]["held"] == held
    await check_invariants(race_url)


async def test_an_automatic_release_racing_capacity_changes(cluster, race_url):
    agency_id = await make_agency(cluster)
    sid = (await cluster.create_session(in_person=10))["id"]
    created = await cluster.client.post(
        cluster.url(f"/api/sessions/{sid}/holds"),
        json={"agency_id": agency_id, "attendance": "in_person", "seats": 5},
        headers=cluster.admin,
    )
    assert created.status_code == 201, created.text
    release_at = datetime.fromisoformat(created.json()["release_at"]).astimezone(UTC)
    for n in range(25):  # 5 seated, 20 waiting, in a known order
        assert (await cluster.register(sid, person(n))).status_code == 201
    queue = await waitlist(race_url, "in_person", sid)
    assert len(queue) == 20

    db = Database.from_url(race_url)
    try:

        async def release() -> Any:
            released = await holds.release_due(
                db, reminder_offsets=(timedelta(days=1),), now=release_at + timedelta(seconds=1)
            )
            return released

        def patch(capacity: int) -> Any:
            return lambda: cluster.client.patch(
                cluster.url(f"/api/sessions/{sid}"),
                json={"in_person_capacity": capacity},
                headers=cluster.admin,
            )

        async with asyncio.timeout(120):
            released, *patched = await asyncio.gather(
                release(), patch(13)(), patch(8)(), patch(12)(), patch(11)()
            )
    finally:
        await db.dispose()

    assert released == [created.json()["id"]]
    # Lowering below confirmed + held is refused (409) or fits; nothing else.
    assert all(p.status_code in (200, 409) for p in patched), [p.text for p in patched]
    final = await rows(race_url, "SELECT capacity, confirmed, held FROM seat_pools")
    capacity, confirmed, held = final[0]
    assert held == 0 and confirmed == capacity, final[0]
    # The promoted are exactly the head of the queue, in ticket order.
    still = await waitlist(race_url, "in_person", sid)
    assert still == queue[len(queue) - len(still) :]
    assert len(queue) - len(still) == capacity - 5
    await check_invariants(race_url)
