"""Five years of history must slow nothing: everyday requests before and after loading it.

Two throwaway PostgreSQL databases get the demo catalogue; one of them also gets five years of
history straight into the tables (15,000 past sessions, 450,000 registrations, 1.8 million
sent messages, written by ``INSERT ... SELECT generate_series`` on the server: no rows cross
the network, faster still than COPY), then ANALYZE. A ``scheduler serve`` on each answers
every everyday request in turn, request by request, so the load of a shared machine falls on
both alike; each row is the median of ``REPEAT`` on the history database against its floor,
the same request on the empty one, timed to the last byte as sent (see :func:`timed`). The
target is within x1.5.

The background jobs are off, as retention would otherwise start deleting the old mail: this
measures the pages with all of it in place.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from itertools import count
from typing import Any

import httpx

from bench import sized
from bench.common import Server, pg_connect, row, sqlalchemy_url, throwaway_database

NAME = "history"
REPEAT = sized(25, 3)
TARGET = 1.5
PAST_SESSIONS = sized(15_000, 200)
PEOPLE_PER_SESSION = 30  # 450,000 registrations
MESSAGES_PER_PERSON = 4  # 1.8 million sent messages
ADMIN_EMAIL = "bench-admin@example.org"
ADMIN_PASSWORD = "bench admin password, long enough"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

HISTORY_SQL = [
    f"""
    INSERT INTO training_sessions (course_id, starts_at, ends_at, timezone, mode, status,
        allow_overlap, venue_name, venue_city, venue_state, sequence, created_at, updated_at)
    SELECT (SELECT min(id) FROM courses) + (n % (SELECT count(*) FROM courses)),
           now() AT TIME ZONE 'UTC' - make_interval(hours => 3 * n + 30),
           now() AT TIME ZONE 'UTC' - make_interval(hours => 3 * n + 26),
           'America/Chicago', 'in_person', 'scheduled', false, 'Training Center',
           'Springfield', 'IL', 0, now() AT TIME ZONE 'UTC' - make_interval(hours => 3 * n + 500),
           now() AT TIME ZONE 'UTC' - make_interval(hours => 3 * n + 500)
      FROM generate_series(1, {PAST_SESSIONS}) AS n
    """,
    # Every session has its meetings (one each here), as the service writes them; a check-in
    # code is unique per meeting, so one per session does.
    """
    INSERT INTO meetings (session_id, starts_at, ends_at, status, sequence, created_at,
        updated_at, checkin_code)
    SELECT s.id, s.starts_at, s.ends_at, 'scheduled', 0, s.created_at, s.created_at,
           'hist-' || s.id
      FROM training_sessions s
     WHERE NOT EXISTS (SELECT 1 FROM meetings m WHERE m.session_id = s.id)
    """,
    f"""
    INSERT INTO seat_pools (session_id, attendance, capacity, confirmed, waitlist_seq)
    SELECT id, 'in_person', {PEOPLE_PER_SESSION}, {PEOPLE_PER_SESSION}, 0
      FROM training_sessions WHERE ends_at < now() AT TIME ZONE 'UTC' - interval '1 day'
       AND NOT EXISTS (SELECT 1 FROM seat_pools p WHERE p.session_id = training_sessions.id)
    """,
    f"""
    INSERT INTO registrations (session_id, pool_id, attendance, name, email, email_key, agency,
        agency_key, status, outcome, token, created_at, updated_at, confirmed_at, sequence)
    SELECT p.session_id, p.id, 'in_person', 'Officer ' || k,
           'o' || p.id || '.' || k || '@pd.example.org',
           'o' || p.id || '.' || k || '@pd.example.org', 'Agency ' || (k % 17),
           'agency ' || (k % 17), 'confirmed',
           CASE WHEN k % 5 = 0 THEN 'no_show' ELSE 'attended' END,
           'hist-' || p.id || '-' || k, s.created_at, s.created_at, s.created_at, 0
      FROM seat_pools p JOIN training_sessions s ON s.id = p.session_id
     CROSS JOIN generate_series(1, {PEOPLE_PER_SESSION}) AS k
     WHERE s.ends_at < now() AT TIME ZONE 'UTC' - interval '1 day'
    """,
    f"""
    INSERT INTO messages (kind, recipient, registration_id, session_id, payload, due_at,
        status, attempts, created_at, sent_at)
    SELECT CASE WHEN m = 1 THEN 'confirmation' ELSE 'reminder' END, r.email, r.id,
           r.session_id, '{{}}'::json, r.created_at, 'sent', 1, r.created_at, r.created_at
      FROM registrations r CROSS JOIN generate_series(1, {MESSAGES_PER_PERSON}) AS m
     WHERE r.token LIKE 'hist-%'
    """,
    "ANALYZE",
]


async def prepare(url: str) -> str:
    """The demo catalogue, an admin and an API token; returns the token."""
    from scheduler import accounts, demo
    from scheduler.db import Database
    from scheduler.tokens import create_token

    db = Database.from_url(url)
    try:
        await demo.load_demo(db)
        await accounts.create_admin(db, ADMIN_EMAIL, ADMIN_PASSWORD)
        return await create_token(db, "bench")
    finally:
        await db.dispose()


async def load_history(database: str) -> float:
    conn = await pg_connect(database, command_timeout=1800)
    try:
        began = time.perf_counter()
        for statement in HISTORY_SQL:
            await conn.execute(statement)
        return time.perf_counter() - began
    finally:
        await conn.close()


def sign_in(client: httpx.Client) -> None:
    page = client.get("/admin/login").text
    match = _CSRF.search(page)
    assert match, "no CSRF token on the login page"
    answer = client.post(
        "/admin/login",
        data={
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "csrf_token": match.group(1),
            "next": "/admin",
        },
    )
    assert answer.status_code == 303, answer.text


REGISTER = "POST /api/sessions/{id}/registrations"


def everyday_paths(slug: str, sid: int) -> dict[str, str]:
    """The everyday GETs, by label, for a course and one of its upcoming sessions.

    tests/web/test_history_pages.py counts the queries of these very requests, so the list of
    what must not slow down with history and of what must issue a bounded number of queries
    is this one.
    """
    return {
        "GET /api/courses": "/api/courses",
        "GET /api/courses/{slug}": f"/api/courses/{slug}",
        "GET /api/courses/{slug}/sessions": f"/api/courses/{slug}/sessions",
        "GET /api/sessions/{id}": f"/api/sessions/{sid}",
        "GET /": "/",
        "GET /courses/{slug}": f"/courses/{slug}",
        "GET /courses/{slug}/calendar.ics": f"/courses/{slug}/calendar.ics",
        "GET /calendar.ics": "/calendar.ics",
        "GET /healthz": "/healthz",
        "GET /metrics": "/metrics",
        "GET /admin": "/admin",
        "GET /admin?past=2": "/admin?past=2",
        "GET /admin/courses/{slug}": f"/admin/courses/{slug}",
        "GET /admin/sessions/{id} (roster)": f"/admin/sessions/{sid}",
        "GET /admin/outbox?status=sent": "/admin/outbox?status=sent",
        "GET /admin/outbox": "/admin/outbox",
    }


def registration_body(n: int, attendance: str) -> dict[str, str]:
    """The body of the ``n``-th timed registration (:data:`REGISTER`)."""
    return {
        "name": "Bench Officer",
        "email": f"bench{n}@pd.example.org",
        "agency": "Bench PD",
        "attendance": attendance,
    }


def everyday(client: httpx.Client) -> dict[str, Any]:
    """The requests to time, by label: a path, or a callable that makes one request."""
    sessions = client.get("/api/courses/managing-bias/sessions").json()["sessions"]
    upcoming = next(s for s in sessions if s["status"] == "scheduled")
    sid = upcoming["id"]
    attendance = "in_person" if upcoming["mode"] != "virtual" else "virtual"
    emails = count()

    def register() -> httpx.Response:
        body = registration_body(next(emails), attendance)
        return client.post(f"/api/sessions/{sid}/registrations", content=json.dumps(body))

    requests: dict[str, Any] = everyday_paths("managing-bias", sid)
    return requests | {REGISTER: register}


def timed(client: httpx.Client, label: str, what: Any) -> float:
    """Milliseconds until the last byte of the answer has arrived, as sent.

    The client asks for gzip as calendar clients do (httpx's default ``Accept-Encoding``), and
    the body is read raw: inflating a megabyte feed is the client's work, and in httpx it
    took twice as long as the server took to answer (3.3 ms against 1.7 ms).
    """
    began = time.perf_counter()
    if callable(what):
        answer = what()
    else:
        with client.stream("GET", what) as answer:
            for _ in answer.iter_raw():
                pass
    elapsed = time.perf_counter() - began
    assert answer.status_code in (200, 201), (label, answer.status_code)
    return elapsed * 1000


def time_side_by_side(
    empty: tuple[httpx.Client, dict[str, Any]], full: tuple[httpx.Client, dict[str, Any]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Median milliseconds per request on each database, after one unmeasured warm-up each.

    The two servers answer in turn, request by request (which goes first alternates), so
    whatever else loads the machine loads both sides alike.
    """
    before: dict[str, float] = {}
    after: dict[str, float] = {}
    for label in empty[1]:
        samples: tuple[list[float], list[float]] = ([], [])
        for n in range(REPEAT + 1):
            order = (0, 1) if n % 2 else (1, 0)
            for side in order:
                client, requests = (empty, full)[side]
                elapsed = timed(client, label, requests[label])
                if n:
                    samples[side].append(elapsed)
        before[label] = statistics.median(samples[0])
        after[label] = statistics.median(samples[1])
    return before, after


async def run() -> list[dict[str, Any]]:
    env = {"SCHEDULER_RATE_LIMIT": "0", "SCHEDULER_RUN_JOBS": "false"}
    async with throwaway_database() as empty, throwaway_database() as full:
        await prepare(sqlalchemy_url(empty))
        await prepare(sqlalchemy_url(full))
        loaded = await load_history(full)
        with (
            Server(sqlalchemy_url(empty), workers=1, **env) as empty_server,
            Server(sqlalchemy_url(full), workers=1, **env) as full_server,
            httpx.Client(base_url=empty_server.url, timeout=120) as empty_client,
            httpx.Client(base_url=full_server.url, timeout=120) as full_client,
        ):
            sign_in(empty_client)
            sign_in(full_client)
            before, after = await asyncio.to_thread(
                time_side_by_side,
                (empty_client, everyday(empty_client)),
                (full_client, everyday(full_client)),
            )
    requests = before
    rows = [
        row(
            NAME,
            f"{label} ms, median of {REPEAT}",
            round(after[label], 2),
            floor=round(before[label], 2),
            target=f"<= x{TARGET} of the empty database",
            ok=after[label] <= TARGET * before[label],
        )
        for label in requests
    ]
    rows.append(
        row(
            NAME,
            f"history loaded: {PAST_SESSIONS:,} sessions, "
            f"{PAST_SESSIONS * PEOPLE_PER_SESSION:,} registrations, "
            f"{PAST_SESSIONS * PEOPLE_PER_SESSION * MESSAGES_PER_PERSON:,} sent messages (s)",
            round(loaded, 1),
        )
    )
    return rows
