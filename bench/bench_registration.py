"""A registration burst against ``scheduler serve --workers 2`` on PostgreSQL, beside its floor.

Each round sends 2,560 registration attempts from 64 concurrent clients, spread over 8 training
sessions of 160 seats each (so half are confirmed and half waitlisted), to three servers in
turn, each on 8 fresh sessions:

- the service, ``scheduler serve --workers 2``;
- the honest floor, ``bench/floors/registration.py``: a bare Starlette app under
  ``uvicorn --workers 2`` over asyncpg that takes the seat with one conditional ``UPDATE``,
  inserts the registration ``ON CONFLICT DO NOTHING`` and writes its outbox rows in one
  transaction, written without our code. The service should reach half its throughput;
- the old floor, printed beside it: the service's own statements straight through asyncpg
  from this process, with no HTTP at all (what the database alone costs for our design). After every burst invariant 1 is checked in the tables, and after the last one
each worker's resident memory is read from /proc.

The server runs with ``SCHEDULER_RATE_LIMIT=0`` (one client address sends everything) and
``SCHEDULER_RUN_JOBS=false``: the floor writes outbox rows but sends nothing, so the service
must not spend the shared two cores mailing them during the burst either.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench import sized
from bench.common import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    Connection,
    FloorServer,
    Server,
    median,
    percentile,
    pg_connect,
    row,
    sqlalchemy_url,
    throwaway_database,
)
from scheduler.registration_sql import (
    BOOK_SEAT_SQL,
    BOOK_TICKET_SQL,
    BOOKED_COLUMNS,
    LOCK_SESSION_SQL,
    MESSAGE_ARRAYS,
    POOL_STATE_SQL,
)

NAME = "registration"
SESSIONS = sized(8, 2)
ATTEMPTS_PER_SESSION = 320
CAPACITY = 160
CLIENTS = 64
ROUNDS = sized(3, 1)
WORKERS = 2
TARGET_RATIO = 0.5
RSS_LIMIT_MB = 150
# The old floor's connections: as many as the service's two pools open at most (10 + 10 each),
# so the three servers together stay under PostgreSQL's default 100 connections.
OLD_FLOOR_CONNECTIONS = 2 * 20
REMINDER_OFFSETS = (timedelta(days=7), timedelta(days=1), timedelta(hours=1))


def attempts(session_ids: list[int], tag: str) -> list[tuple[int, dict[str, str]]]:
    """Every attempt of one burst, sessions interleaved so they all stay busy at once."""
    return [
        (
            session_ids[n % len(session_ids)],
            {
                "name": f"Officer {tag}-{n}",
                "email": f"officer.{tag}.{n}@pd{n % 37}.example.org",
                "agency": f"Agency {n % 37}",
                "attendance": "in_person",
            },
        )
        for n in range(len(session_ids) * ATTEMPTS_PER_SESSION)
    ]


# -- the service --------------------------------------------------------------------------------


async def admin_setup(server: Server, token: str) -> None:
    async with Connection(server.port) as http:
        status, body = await http.request(
            "POST",
            "/api/courses",
            json.dumps({"slug": "managing-bias", "title": "Managing Bias"}).encode(),
            f"Authorization: Bearer {token}\r\n",
        )
        assert status == 201, body


async def new_sessions(server: Server, token: str, count: int) -> list[int]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    body = {
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "UTC",
        "mode": "in_person",
        "in_person_capacity": CAPACITY,
        "venue": {"name": "Metro Training Center", "city": "Springfield", "state": "IL"},
    }
    ids = []
    async with Connection(server.port) as http:
        for _ in range(count):
            status, answer = await http.request(
                "POST",
                "/api/courses/managing-bias/sessions",
                json.dumps(body).encode(),
                f"Authorization: Bearer {token}\r\n",
            )
            assert status == 201, answer
            ids.append(json.loads(answer)["id"])
    return ids


async def service_burst(
    server: Server | FloorServer, work: list[tuple[int, dict[str, str]]]
) -> tuple[float, list[float], Counter[int]]:
    """Send ``work`` from ``CLIENTS`` keep-alive connections to ``server`` (the service or the
    honest floor); returns (seconds, latencies, statuses)."""
    requests = [
        (f"/api/sessions/{sid}/registrations", json.dumps(body).encode()) for sid, body in work
    ]
    queue = iter(requests)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def client() -> None:
        async with Connection(server.port) as http:
            for path, body in queue:
                began = time.perf_counter()
                status, _ = await http.request("POST", path, body)
                latencies.append(time.perf_counter() - began)
                statuses[status] += 1

    began = time.perf_counter()
    async with asyncio.timeout(300):
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return time.perf_counter() - began, latencies, statuses


# -- the floor: booking.register's statements, straight through asyncpg -----------------------
# The very SQL the service sends on PostgreSQL (scheduler/registration_sql.py), with nothing around it.


async def floor_register(conn: asyncpg.Connection, session_id: int, person: dict[str, str]) -> str:
    """What ``booking.register`` asks of the database, with no web, ORM or validation around it."""
    now = datetime.now(UTC).replace(tzinfo=None)
    email_key = person["email"].lower()
    agency_key = " ".join(person["agency"].lower().split())
    async with conn.transaction():
        session = await conn.fetchrow(LOCK_SESSION_SQL, session_id)
        pool = await conn.fetchrow(
            POOL_STATE_SQL, session_id, person["attendance"], email_key, agency_key
        )
        if pool["taken"] is not None:
            return "duplicate"
        seat = pool["confirmed"] + pool["held"] < pool["capacity"]
        status = "confirmed" if seat else "waitlisted"
        values = {
            "session_id": session_id,
            "attendance": person["attendance"],
            "name": person["name"],
            "email": person["email"],
            "email_key": email_key,
            "agency": person["agency"],
            "agency_key": agency_key,
            "status": status,
            "token": secrets.token_urlsafe(24),
            "created_at": now,
            "updated_at": now,
            "confirmed_at": now if seat else None,
            "sequence": 0,
        }
        email = person["email"]
        if seat:
            rows = [("confirmation", "{}", now)]
            rows += [
                (
                    "reminder",
                    json.dumps({"offset_seconds": int(offset.total_seconds())}),
                    session["starts_at"] - offset,
                )
                for offset in REMINDER_OFFSETS
                if session["starts_at"] - offset > now
            ]
        else:
            rows = [("waitlisted", json.dumps({"position": pool["waiting"] + 1}), now)]
        kinds, payloads, due = (list(column) for column in zip(*rows, strict=True))
        messages = {
            "kind": kinds,
            "recipient": [email] * len(rows),
            "session_id": [session_id] * len(rows),
            "payload": payloads,
            "due_at": due,
            "status": ["pending"] * len(rows),
            "attempts": [0] * len(rows),
            "created_at": [now] * len(rows),
        }
        await conn.fetchrow(
            BOOK_SEAT_SQL if seat else BOOK_TICKET_SQL,
            pool["id"],
            *(values.get(column) for column in BOOKED_COLUMNS),
            *(messages[column] for column in MESSAGE_ARRAYS),
        )
    return status


async def floor_burst(
    database: str, work: list[tuple[int, dict[str, str]]]
) -> tuple[float, list[float], Counter[str]]:
    queue = iter(work)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    connections = await asyncio.gather(
        *(pg_connect(database) for _ in range(OLD_FLOOR_CONNECTIONS))
    )

    async def client(conn: asyncpg.Connection) -> None:
        for session_id, person in queue:
            began = time.perf_counter()
            outcomes[await floor_register(conn, session_id, person)] += 1
            latencies.append(time.perf_counter() - began)

    try:
        began = time.perf_counter()
        async with asyncio.timeout(300):
            await asyncio.gather(*(client(conn) for conn in connections))
        return time.perf_counter() - began, latencies, outcomes
    finally:
        await asyncio.gather(*(conn.close() for conn in connections))


# -- checks -------------------------------------------------------------------------------------


async def invariant_1(database: str, session_ids: list[int]) -> list[str]:
    """Problems with invariant 1 (and the expected split) in these sessions; empty when intact."""
    conn = await pg_connect(database)
    try:
        pools = await conn.fetch(
            """
            SELECT p.session_id, p.capacity, p.confirmed,
                   count(r.id) FILTER (WHERE r.status = 'confirmed') AS counted,
                   count(r.id) FILTER (WHERE r.status = 'waitlisted') AS waiting
              FROM seat_pools p LEFT JOIN registrations r ON r.pool_id = p.id
             WHERE p.session_id = ANY($1::int[])
             GROUP BY p.id
            """,
            session_ids,
        )
    finally:
        await conn.close()
    problems = []
    for pool in pools:
        if not pool["counted"] == pool["confirmed"] <= pool["capacity"]:
            problems.append(f"session {pool['session_id']}: {dict(pool)}")
        if (pool["confirmed"], pool["waiting"]) != (CAPACITY, ATTEMPTS_PER_SESSION - CAPACITY):
            problems.append(f"session {pool['session_id']} split wrong: {dict(pool)}")
    if len(pools) != len(session_ids):
        problems.append("a session lost its pool")
    return problems


async def run() -> list[dict[str, Any]]:
    from scheduler.db import Database
    from scheduler.tokens import create_token

    service_rates: list[float] = []
    floor_rates: list[float] = []
    old_rates: list[float] = []
    service_latency: list[float] = []
    floor_latency: list[float] = []
    old_latency: list[float] = []
    problems: list[str] = []
    bursts = 0
    attempts_total = 0
    async with throwaway_database() as database:
        url = sqlalchemy_url(database)
        db = Database.from_url(url)
        try:
            token = await create_token(db, "bench")
        finally:
            await db.dispose()
        env = {"SCHEDULER_RATE_LIMIT": "0", "SCHEDULER_RUN_JOBS": "false"}
        dsn = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"
        with (
            Server(url, workers=WORKERS, **env) as server,
            FloorServer(
                "bench.floors.registration:app", workers=WORKERS, FLOOR_DSN=dsn
            ) as floor_server,
        ):
            await admin_setup(server, token)
            # Warm every path up once (connection pools, statement caches), unmeasured.
            await service_burst(server, attempts(await new_sessions(server, token, 2), "warm"))
            await service_burst(
                floor_server, attempts(await new_sessions(server, token, 2), "hwarm")
            )
            await floor_burst(database, attempts(await new_sessions(server, token, 2), "fwarm"))
            for round_ in range(ROUNDS):
                service_ids = await new_sessions(server, token, SESSIONS)
                floor_ids = await new_sessions(server, token, SESSIONS)
                old_ids = await new_sessions(server, token, SESSIONS)

                work = attempts(service_ids, f"s{round_}")
                seconds, latencies, statuses = await service_burst(server, work)
                if statuses != {201: len(work)}:
                    problems.append(f"service answers: {dict(statuses)}")
                problems += await invariant_1(database, service_ids)
                service_rates.append(len(work) / seconds)
                service_latency += latencies

                work = attempts(floor_ids, f"h{round_}")
                seconds, latencies, statuses = await service_burst(floor_server, work)
                if statuses != {201: len(work)}:
                    problems.append(f"floor answers: {dict(statuses)}")
                problems += await invariant_1(database, floor_ids)
                floor_rates.append(len(work) / seconds)
                floor_latency += latencies

                work = attempts(old_ids, f"f{round_}")
                seconds, latencies, outcomes = await floor_burst(database, work)
                if outcomes["duplicate"]:
                    problems.append(f"old floor outcomes: {dict(outcomes)}")
                problems += await invariant_1(database, old_ids)
                old_rates.append(len(work) / seconds)
                old_latency += latencies
                bursts += 3
                attempts_total += 3 * len(work)
            rss = server.worker_rss_mb()

    service, floor, old = median(service_rates), median(floor_rates), median(old_rates)
    ratios = sorted(s / f for s, f in zip(service_rates, floor_rates, strict=True))
    worst_rss = max(rss.values())
    label = f"{SESSIONS} sessions x {ATTEMPTS_PER_SESSION}, {CLIENTS} clients"
    return [
        row(
            NAME,
            f"throughput req/s ({label}, median of {ROUNDS}; "
            f"ratio per round {ratios[0]:.2f}-{ratios[-1]:.2f})",
            round(service, 1),
            floor=round(floor, 1),
            old_floor=round(old, 1),
            target=f"ratio >= {TARGET_RATIO}",
            ok=service >= TARGET_RATIO * floor,
        ),
        row(
            NAME,
            "latency p50 ms",
            round(percentile(service_latency, 0.50) * 1000, 1),
            floor=round(percentile(floor_latency, 0.50) * 1000, 1),
            old_floor=round(percentile(old_latency, 0.50) * 1000, 1),
        ),
        row(
            NAME,
            "latency p99 ms",
            round(percentile(service_latency, 0.99) * 1000, 1),
            floor=round(percentile(floor_latency, 0.99) * 1000, 1),
            old_floor=round(percentile(old_latency, 0.99) * 1000, 1),
        ),
        row(
            NAME,
            f"invariant 1 after {bursts} bursts ({attempts_total} attempts)",
            "intact" if not problems else "; ".join(problems[:3]),
            target="intact",
            ok=not problems,
        ),
        row(
            NAME,
            f"worker RSS MB after the bursts ({len(rss)} workers, largest)",
            round(worst_rss, 1),
            target=f"< {RSS_LIMIT_MB} MB",
            ok=len(rss) == WORKERS and worst_rss < RSS_LIMIT_MB,
        ),
    ]
