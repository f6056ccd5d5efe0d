"""Invariants 1-3 under real concurrency: real clients racing real ``scheduler serve`` processes.

On PostgreSQL two server processes share one database, so the session row lock is all that
keeps them apart; on SQLite one process races its own connections for the file's write lock.
After every race the invariants are checked in the database itself, not only in the answers.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from scheduler.db import Database
from scheduler.tokens import create_token
from tests.dbs import BACKENDS
from tests.helpers import person, session_body

pytestmark = pytest.mark.slow

RACE_TIMEOUT = 120  # seconds for one whole race, generous for a loaded two-core CI machine


@pytest.fixture(params=BACKENDS)
def race_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def race_url(race_backend: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{race_backend}_url"))


class Cluster:
    """The servers of one race and a client wide enough to hit them all at once."""

    def __init__(self, urls: Sequence[str], client: httpx.AsyncClient, headers: dict[str, str]):
        self.urls = list(urls)
        self.client = client
        self.admin = headers
        self._next = itertools.cycle(self.urls)

    def url(self, path: str) -> str:
        """``path`` on the next server in turn, so requests spread over every process."""
        return next(self._next) + path

    async def create_session(self, **kwargs: Any) -> dict[str, Any]:
        mode = kwargs.pop("mode", "in_person")
        response = await self.client.post(
            self.url("/api/courses/managing-bias/sessions"),
            json=session_body(mode, **kwargs),
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def register(self, session_id: int, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            self.url(f"/api/sessions/{session_id}/registrations"), json=body
        )


@pytest.fixture
async def cluster(race_backend: str, race_url: str, live_server_factory: Any) -> Any:
    """Two servers on one PostgreSQL database, or one server on a SQLite file."""
    db = Database.from_url(race_url)
    try:
        token = await create_token(db, "races")
    finally:
        await db.dispose()
    count = 2 if race_backend == "postgres" else 1
    servers = [await asyncio.to_thread(live_server_factory, race_url) for _ in range(count)]
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        found = Cluster([s.url for s in servers], client, {"Authorization": f"Bearer {token}"})
        response = await client.post(
            found.url("/api/courses"),
            json={"slug": "managing-bias", "title": "Managing Bias"},
            headers=found.admin,
        )
        assert response.status_code == 201, response.text
        yield found


async def race(calls: Sequence[Callable[[], Awaitable[httpx.Response]]]) -> list[httpx.Response]:
    """Start every call at the same moment and wait for all of them, within the time bound."""
    go = asyncio.Event()

    async def one(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        await go.wait()
        return await call()

    tasks = [asyncio.create_task(one(call)) for call in calls]
    await asyncio.sleep(0)  # let every task reach the gate
    go.set()
    async with asyncio.timeout(RACE_TIMEOUT):
        responses = await asyncio.gather(*tasks)
    server_errors = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    assert server_errors == [], server_errors[:3]
    return responses


# -- what the database must say after any race ------------------------------------------------


async def rows(url: str, sql: str, **params: Any) -> list[Any]:
    db = Database.from_url(url)
    try:
        async with db.read() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await db.dispose()


async def check_invariants(url: str) -> None:
    """Invariants 1-4 read straight from the tables, whatever the answers said."""
    pools = await rows(
        url,
        """
        SELECT p.id, p.capacity, p.confirmed, p.held, p.waitlist_seq, s.max_per_agency,
               (SELECT count(*) FROM registrations r
                 WHERE r.pool_id = p.id AND r.status = 'confirmed') AS counted,
               (SELECT coalesce(sum(h.remaining), 0) FROM holds h
                 WHERE h.pool_id = p.id AND h.status = 'active') AS holding
          FROM seat_pools p JOIN training_sessions s ON s.id = p.session_id
        """,
    )
    for pool in pools:
        # Invariant 1 (held seats count), and the counters agree with the rows they count.
        assert pool.counted == pool.confirmed, pool
        assert pool.holding == pool.held, pool
        assert pool.confirmed + pool.held <= pool.capacity, pool
        tickets = await rows(
            url,
            "SELECT waitlist_seq FROM registrations "
            "WHERE pool_id = :pool AND status = 'waitlisted'",
            pool=pool.id,
        )
        seqs = [t.waitlist_seq for t in tickets]
        assert None not in seqs
        assert len(set(seqs)) == len(seqs), "two waitlisted people hold the same ticket"
        assert all(0 < s <= pool.waitlist_seq for s in seqs)
        if seqs and pool.confirmed + pool.held < pool.capacity:
            # Invariant 3: a free seat with people waiting is only allowed when each of them
            # belongs to an agency already at its cap.
            assert pool.max_per_agency is not None, pool
            blocked = await rows(
                url,
                """
                SELECT w.agency_key, (SELECT count(*) FROM registrations c
                    WHERE c.session_id = w.session_id AND c.agency_key = w.agency_key
                      AND c.status = 'confirmed') AS held
                  FROM registrations w WHERE w.pool_id = :pool AND w.status = 'waitlisted'
                """,
                pool=pool.id,
            )
            assert all(b.held >= pool.max_per_agency for b in blocked), blocked
    # Invariant 2: one active registration per person per session.
    doubles = await rows(
        url,
        "SELECT session_id, email_key, count(*) FROM registrations WHERE status != 'cancelled' "
        "GROUP BY session_id, email_key HAVING count(*) > 1",
    )
    assert doubles == []
    # Invariant 4: every registration's news went to the outbox with it.
    unannounced = await rows(
        url,
        """
        SELECT r.id, r.status FROM registrations r
         WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.registration_id = r.id AND m.kind =
               CASE r.status WHEN 'waitlisted' THEN 'waitlisted'
                             WHEN 'cancelled' THEN 'registration_cancelled'
                             ELSE (CASE WHEN r.waitlist_seq IS NULL THEN 'confirmation'
                                        ELSE 'promoted' END) END)
        """,
    )
    assert unannounced == []


async def waitlist(url: str, pool_attendance: str, session_id: int) -> list[str]:
    """Emails on a pool's waitlist in ticket order."""
    found = await rows(
        url,
        "SELECT r.email FROM registrations r JOIN seat_pools p ON p.id = r.pool_id "
        "WHERE r.session_id = :sid AND p.attendance = :att AND r.status = 'waitlisted' "
        "ORDER BY r.waitlist_seq",
        sid=session_id,
        att=pool_attendance,
    )
    return [r.email for r in found]


# -- the races ----------------------------------------------------------------------------------


async def test_200_registrations_for_20_seats(cluster, race_url):
    session = await cluster.create_session(in_person=20)
    sid = session["id"]

    responses = await race([lambda n=n: cluster.register(sid, person(n)) for n in range(200)])

    assert Counter(r.status_code for r in responses) == {201: 200}
    answers = [r.json() for r in responses]
    assert Counter(a["status"] for a in answers) == {"confirmed": 20, "waitlisted": 180}
    positions = sorted(a["waitlist_position"] for a in answers if a["status"] == "waitlisted")
    assert positions == list(range(1, 181))
    # Each answer's position is the one its ticket gives: the queue the answers describe is the
    # queue the database holds.
    by_token = {a["token"]: a for a in answers}
    tickets = await rows(
        race_url,
        "SELECT token, waitlist_seq FROM registrations WHERE status = 'waitlisted' "
        "ORDER BY waitlist_seq",
    )
    assert [by_token[t.token]["waitlist_position"] for t in tickets] == list(range(1, 181))
    assert [t.waitlist_seq for t in tickets] == list(range(1, 181))

    seats = (await cluster.client.get(cluster.url(f"/api/sessions/{sid}"))).json()["seats"]
    assert seats["in_person"] == {
        "capacity": 20,
        "confirmed": 20,
        "held": 0,
        "waitlisted": 180,
        "available": 0,
    }
    await check_invariants(race_url)


async def test_cancellations_and_capacity_raises_promote_in_ticket_order(cluster, race_url):
    session = await cluster.create_session(mode="hybrid", in_person=10, virtual=10)
    sid = session["id"]
    answers: dict[str, dict[str, Any]] = {}
    # Sign-ups one at a time, so ticket order is known: 10 seats and 20 waiting per pool.
    for n in range(60):
        attendance = "in_person" if n % 2 == 0 else "virtual"
        response = await cluster.register(sid, person(n, attendance=attendance))
        assert response.status_code == 201, response.text
        answers[response.json()["token"]] = {**response.json(), "n": n}
    queue = {
        att: [
            t for t, a in answers.items() if a["attendance"] == att and a["status"] == "waitlisted"
        ]
        for att in ("in_person", "virtual")
    }
    seated = {
        att: [
            t for t, a in answers.items() if a["attendance"] == att and a["status"] == "confirmed"
        ]
        for att in ("in_person", "virtual")
    }
    assert [len(q) for q in queue.values()] == [20, 20]

    # At once: 4 seated people per pool cancel, two people near the head of each waitlist give
    # up, and the admin raises both capacities by 3.
    leavers = [*seated["in_person"][:4], *seated["virtual"][:4]]
    quitters = [queue["in_person"][1], queue["in_person"][5], queue["virtual"][0]]
    calls: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda t=t: cluster.client.delete(cluster.url(f"/api/registrations/{t}"))
        for t in [*leavers, *quitters]
    ]
    for field in ("in_person_capacity", "virtual_capacity"):
        calls.append(
            lambda f=field: cluster.client.patch(
                cluster.url(f"/api/sessions/{sid}"), json={f: 13}, headers=cluster.admin
            )
        )
    responses = await race(calls)
    assert [r.status_code for r in responses] == [200] * len(calls), [r.text for r in responses]

    # Whatever order the changes landed in, the seats went to the earliest tickets still
    # waiting: 4 freed + 3 added = 7 promotions per pool.
    for att in ("in_person", "virtual"):
        remaining = [t for t in queue[att] if t not in quitters]
        promoted, still = remaining[:7], remaining[7:]
        for token in promoted:
            body = (await cluster.client.get(cluster.url(f"/api/registrations/{token}"))).json()
            assert body["status"] == "confirmed", (att, answers[token]["n"])
        for place, token in enumerate(still, start=1):
            body = (await cluster.client.get(cluster.url(f"/api/registrations/{token}"))).json()
            assert (body["status"], body["waitlist_position"]) == ("waitlisted", place)
        # The promotions happened in ticket order too: their outbox rows were written in it.
        order = await rows(
            race_url,
            "SELECT r.token FROM messages m JOIN registrations r ON r.id = m.registration_id "
            "WHERE m.kind = 'promoted' AND r.attendance = :att AND r.status = 'confirmed' "
            "ORDER BY m.id",
            att=att,
        )
        assert [o.token for o in order] == promoted
    seats = (await cluster.client.get(cluster.url(f"/api/sessions/{sid}"))).json()["seats"]
    for att in ("in_person", "virtual"):
        assert seats[att]["capacity"] == seats[att]["confirmed"] == 13
    await check_invariants(race_url)


async def test_same_email_in_any_case_at_once_gets_one_seat(cluster, race_url):
    session = await cluster.create_session(mode="hybrid", in_person=5, virtual=5)
    sid = session["id"]

    def spellings() -> Iterator[str]:
        for i in itertools.count():
            local = "".join(c.upper() if (i >> k) & 1 else c for k, c in enumerate("officer7"))
            yield f"{local}@{'EXAMPLE.org' if i % 3 else 'example.ORG'}"

    bodies = [
        dict(person(7, attendance="in_person" if i % 2 else "virtual"), email=email)
        for i, email in zip(range(40), spellings(), strict=False)
    ]
    responses = await race([lambda b=b: cluster.register(sid, b) for b in bodies])

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 39}
    for refused in (r for r in responses if r.status_code == 409):
        error = refused.json()["error"]
        assert (error["code"], error["fields"]) == ("duplicate_registration", {"email": "taken"})
    active = await rows(
        race_url,
        "SELECT status FROM registrations WHERE session_id = :sid AND email_key = :key",
        sid=sid,
        key="officer7@example.org",
    )
    assert [a.status for a in active] == ["confirmed"]
    seats = (await cluster.client.get(cluster.url(f"/api/sessions/{sid}"))).json()["seats"]
    assert seats["in_person"]["confirmed"] + seats["virtual"]["confirmed"] == 1
    await check_invariants(race_url)


async def test_agency_cap_under_a_race_waitlists_that_agency_only(cluster, race_url):
    session = await cluster.create_session(in_person=20, max_per_agency=3)
    sid = session["id"]
    # The same agency spelt several ways counts as one agency.
    a_spellings = ["Agency A", "agency a", "AGENCY  A", " Agency A "]
    bodies = [person(n, agency=a_spellings[n % 4]) for n in range(10)]
    bodies += [person(100 + n, agency="Agency B") for n in range(3)]
    bodies += [person(200 + n, agency="Agency C") for n in range(2)]
    bodies += [person(300, agency="Agency D")]
    responses = await race([lambda b=b: cluster.register(sid, b) for b in bodies])
    assert Counter(r.status_code for r in responses) == {201: len(bodies)}

    held = await rows(
        race_url,
        "SELECT agency_key, status, count(*) AS n FROM registrations WHERE session_id = :sid "
        "GROUP BY agency_key, status ORDER BY agency_key, status",
        sid=sid,
    )
    assert [(h.agency_key, h.status, h.n) for h in held] == [
        ("agency a", "confirmed", 3),
        ("agency a", "waitlisted", 7),
        ("agency b", "confirmed", 3),
        ("agency c", "confirmed", 2),
        ("agency d", "confirmed", 1),
    ]
    waiting = sorted(
        r.json()["waitlist_position"] for r in responses if r.json()["status"] == "waitlisted"
    )
    assert waiting == list(range(1, 8))
    seats = (await cluster.client.get(cluster.url(f"/api/sessions/{sid}"))).json()["seats"]
    assert seats["in_person"] == {
        "capacity": 20,
        "confirmed": 9,
        "held": 0,
        "waitlisted": 7,
        "available": 11,
    }
    await check_invariants(race_url)
