"""The registration floor: Starlette on uvicorn over asyncpg, one transaction per attempt.

``POST /api/sessions/{session_id}/registrations`` with the service's body does, in one
transaction, what any correct registration must: an atomic conditional seat ``UPDATE`` (or a
waitlist ticket when the pool is full), the registration ``INSERT ... ON CONFLICT DO NOTHING``
(the partial unique index on the lower-cased email refuses a second active one), and its outbox
rows (a confirmation and three reminders; one "waitlisted" message otherwise). It answers 201
with the same fields the service does. Nothing of the service is imported: this is written
from the schema alone. ``FLOOR_DSN`` names the database (an asyncpg DSN).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.floors import HEALTHZ

SEAT = """
UPDATE seat_pools p SET confirmed = p.confirmed + 1
  FROM training_sessions s
 WHERE p.session_id = $1 AND p.attendance = $2 AND p.confirmed < p.capacity
   AND s.id = p.session_id AND s.status = 'scheduled' AND s.starts_at > $3
RETURNING p.id, s.starts_at
"""
TICKET = """
UPDATE seat_pools p SET waitlist_seq = p.waitlist_seq + 1
  FROM training_sessions s
 WHERE p.session_id = $1 AND p.attendance = $2
   AND s.id = p.session_id AND s.status = 'scheduled' AND s.starts_at > $3
RETURNING p.id, p.waitlist_seq
"""
REGISTRATION = """
INSERT INTO registrations (session_id, pool_id, attendance, name, email, email_key, agency,
                           agency_key, status, waitlist_seq, token, created_at, updated_at,
                           confirmed_at, sequence)
VALUES ($1, $2, $3, $4, $5::text, lower($5::text), $6::text, lower($6::text), $7, $8, $9, $10,
        $10, $11, 0)
ON CONFLICT DO NOTHING
RETURNING id
"""
MESSAGES = """
INSERT INTO messages (kind, recipient, registration_id, session_id, payload, due_at, status,
                      attempts, created_at)
SELECT kind, $2, $3, $4, payload::json, due_at, 'pending', 0, $5
  FROM unnest($1::text[], $6::text[], $7::timestamp[]) AS m(kind, payload, due_at)
"""
REMINDERS = (timedelta(days=7), timedelta(days=1), timedelta(hours=1))


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, asyncpg.Pool]]:
    pool = await asyncpg.create_pool(os.environ["FLOOR_DSN"], min_size=1, max_size=10)
    try:
        yield {"pool": pool}
    finally:
        await pool.close()


async def register(request: Request) -> Response:
    body = json.loads(await request.body())
    session_id = int(request.path_params["session_id"])
    now = datetime.now(UTC).replace(tzinfo=None)
    token = secrets.token_urlsafe(24)
    async with request.state.pool.acquire() as conn, conn.transaction():
        seat = await conn.fetchrow(SEAT, session_id, body["attendance"], now)
        ticket = None
        if seat is None:
            ticket = await conn.fetchrow(TICKET, session_id, body["attendance"], now)
            if ticket is None:
                return JSONResponse({"error": {"code": "gone"}}, status_code=410)
        pool_id = seat["id"] if ticket is None else ticket["id"]
        registration = await conn.fetchval(
            REGISTRATION,
            session_id,
            pool_id,
            body["attendance"],
            body["name"],
            body["email"],
            body["agency"],
            "confirmed" if seat is not None else "waitlisted",
            None if ticket is None else ticket["waitlist_seq"],
            token,
            now,
            now if seat is not None else None,
        )
        if registration is None:
            raise Duplicate  # rolls the seat back
        if seat is not None:
            kinds = ["confirmation", *("reminder",) * len(REMINDERS)]
            payloads = [
                "{}",
                *(json.dumps({"offset_seconds": int(o.total_seconds())}) for o in REMINDERS),
            ]
            due = [now, *(seat["starts_at"] - o for o in REMINDERS)]
        else:
            kinds, payloads, due = ["waitlisted"], [json.dumps({"position": None})], [now]
        await conn.execute(
            MESSAGES, kinds, body["email"], registration, session_id, now, payloads, due
        )
    status = "confirmed" if seat is not None else "waitlisted"
    return JSONResponse(
        {"id": registration, "status": status, "attendance": body["attendance"], "token": token},
        status_code=201,
    )


class Duplicate(Exception):
    pass


async def duplicate(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": {"code": "duplicate"}}, status_code=409)


app = Starlette(
    routes=[
        Route("/api/sessions/{session_id}/registrations", register, methods=["POST"]),
        HEALTHZ,
    ],
    exception_handlers={Duplicate: duplicate},
    lifespan=lifespan,
)
