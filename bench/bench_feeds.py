"""Calendar feed speed for a course with 500 sessions, each against a floor from the same run.

- warm: feed requests per second (change token, cached fingerprint and bytes) against the honest
  floor, ``bench/floors/feed.py``: a bare Starlette app under uvicorn in its own process
  returning the same bytes with an ETag. Target >= 0.8.
- 304: conditional requests per second against that floor answering the same If-None-Match
  with 304. Target >= 0.6.
- Beside both, the old floor: the same bytes from a trivial route inside the service.
- cold: fingerprint + render on a cache miss against fetching the same rows and building the
  same events directly with icalendar (its own VTIMEZONEs). Target <= 1.5x.

The targets apply to the embedded SQLite default. The same three figures on PostgreSQL follow
them: there a warm or 304 request also waits for one database round trip (the change token,
``Database.change_token``), the price of being fresh across instances, which a client sending
one request at a time feels in full.

The server is the app under uvicorn in a process of its own, with one extra route for the
floor (``bench/feeds_app.py``), started by the tests' launcher (``tests/support/servers.py``,
as the floor is); the client is httpx over TCP with keep-alive, one request at a
time. It runs on a temporary SQLite file, then on a throwaway PostgreSQL database.

The client sends httpx's ``Accept-Encoding: gzip, deflate``, as calendar clients do, so the
service answers from its precompressed copy; both floors hold the same bytes gzip-compressed
once as well, so all three move the same representation (checked on each first answer).
Bodies are read raw, not inflated, as in ``bench_history``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
from sqlalchemy import insert, select

from bench import common, sized
from bench.common import FloorServer, importable
from scheduler import calendar, catalog, feed_content, migrate
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.feed_content import FeedFilter
from scheduler.models import Course, Meeting, SeatPool, TrainingSession
from tests.support.servers import ServerProcess

SESSIONS = sized(500, 30)
ZONES = ("America/Chicago", "America/New_York", "America/Los_Angeles")
REQUESTS = sized(300, 20)
ROUNDS = sized(5, 1)
COLD_ROUNDS = sized(5, 1)


async def seed(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.write() as conn:
        course_id = (
            await conn.execute(
                insert(Course)
                .values(
                    slug="managing-bias",
                    title="Managing Bias",
                    description="Bias, perception and decisions under stress.",
                    delivery="in_person,virtual",
                    created_at=now,
                    updated_at=now,
                )
                .returning(Course.id)
            )
        ).scalar_one()
        rows = []
        for n in range(SESSIONS):
            zone = ZoneInfo(ZONES[n % len(ZONES)])
            day = (now + timedelta(days=2 + n)).astimezone(zone).date()
            start = datetime(day.year, day.month, day.day, 9, tzinfo=zone).astimezone(UTC)
            mode = ("in_person", "virtual", "hybrid")[n % 3]
            # A fifth of the sessions meet on three consecutive days.
            days = 3 if n % 5 == 0 else 1
            rows.append(
                {
                    "course_id": course_id,
                    "starts_at": start,
                    "ends_at": start + timedelta(days=days - 1, hours=4),
                    "timezone": zone.key,
                    "mode": mode,
                    "status": "cancelled" if n % 50 == 7 else "scheduled",
                    "venue_name": None if mode == "virtual" else f"Training Center {n}",
                    "venue_address": None if mode == "virtual" else f"{n} Main St",
                    "venue_city": None if mode == "virtual" else "Springfield",
                    "venue_state": None if mode == "virtual" else "IL",
                    "venue_postal_code": None if mode == "virtual" else "62701",
                    "join_url": None if mode == "in_person" else f"https://meet.example.org/{n}",
                    "sequence": n % 3,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        await conn.execute(insert(TrainingSession), rows)
        ids = (await conn.execute(select(TrainingSession.id, TrainingSession.mode))).all()
        pools = [
            {
                "session_id": sid,
                "attendance": a,
                "capacity": 30,
                "confirmed": sid % 31,
                "waitlist_seq": 0,
            }
            for sid, mode in ids
            for a in catalog.POOLS_OF_MODE[mode]
        ]
        await conn.execute(insert(SeatPool), pools)
        spans = (
            await conn.execute(
                select(TrainingSession.id, TrainingSession.starts_at, TrainingSession.ends_at)
            )
        ).all()
        meetings = [
            {
                "session_id": sid,
                "starts_at": start + timedelta(days=d),
                "ends_at": start + timedelta(days=d, hours=4),
                "status": "scheduled",
                "sequence": 0,
                "uid": f"session-{sid}" if d == 0 else None,
                "created_at": now,
                "updated_at": now,
            }
            for sid, start, end in spans
            for d in range((end - start).days + 1)
        ]
        await conn.execute(insert(Meeting), meetings)


def gzipped(response: httpx.Response) -> httpx.Response:
    """The answer, after checking it came in the representation every side is compared in."""
    assert response.headers.get("content-encoding") == "gzip", response.headers
    return response


def requests_per_second(
    client: httpx.Client, url: str, headers: dict[str, str], status: int
) -> float:
    started = time.perf_counter()
    for _ in range(REQUESTS):
        # Read as sent: inflating the body is the client's work, and it would add the same
        # milliseconds to every side, pulling each ratio towards 1.
        with client.stream("GET", url, headers=headers) as response:
            for _ in response.iter_raw():
                pass
        assert response.status_code == status, (url, response.status_code)
    return REQUESTS / (time.perf_counter() - started)


async def direct_build(db: Database, settings: Settings) -> bytes:
    """The floor for a cold render: the same rows, the same events, icalendar used directly."""
    async with db.read() as conn:
        course = await catalog.get_course(conn, "managing-bias")
        sessions = await catalog.load_sessions(conn, course_id=course.id)
    cal = icalendar.Calendar()
    cal.add("prodid", calendar.PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", course.title)
    for s, m in ((session, m) for session in sessions for m in session.schedule):
        event = icalendar.Event()
        event.add("uid", f"{m.uid}@bench")
        event.add("dtstamp", s.updated_at)
        event.add("last-modified", s.updated_at)
        event.add("created", s.created_at)
        event.add("sequence", s.sequence)
        event.add("dtstart", m.starts_at.astimezone(s.zone))
        event.add("dtend", m.ends_at.astimezone(s.zone))
        event.add("summary", course.title)
        seats = "; ".join(f"{p.attendance}: {p.available} of {p.capacity} left" for p in s.pools)
        event.add(
            "description",
            f"{course.title}\nDelivery: {s.mode}\nSeats left: {seats}\n"
            f"Register: {settings.base_url}/courses/{course.slug}#session-{s.id}\n\n"
            f"{course.description}",
        )
        event.add("location", calendar.location_text(s))
        event.add("url", f"{settings.base_url}/courses/{course.slug}#session-{s.id}")
        event.add("status", "CANCELLED" if s.status == "cancelled" else "CONFIRMED")
        event.add("transp", "OPAQUE")
        event.add("class", "PUBLIC")
        cal.add_component(event)
    cal.add_missing_timezones(
        first_date=datetime.now(UTC).date().replace(month=1, day=1),
        last_date=(datetime.now(UTC) + timedelta(days=SESSIONS + 400)).date(),
    )
    return bytes(cal.to_ical())


async def cold_render(db: Database, settings: Settings) -> bytes:
    """What a request does on a cache miss: fingerprint, then render, in one snapshot."""
    calendar.vtimezone.cache_clear()
    feed = FeedFilter(course_slug="managing-bias")
    now = datetime.now(UTC)
    async with feed_content.snapshot(db) as conn:
        await feed_content.fingerprint(conn, feed, now, base_url=settings.base_url)
        return await feed_content.render(conn, feed, settings, now)


def run() -> list[dict[str, Any]]:
    """The three figures on the embedded SQLite default, then on a throwaway PostgreSQL database."""
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(migrate.upgrade(sqlite_url))
        rows = measure(sqlite_url)
    name = asyncio.run(common.create_database())
    try:
        rows += measure(common.sqlalchemy_url(name))
    finally:
        asyncio.run(common.drop_database(name))
    return rows


def measure(url: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=url,
            base_url="https://training.example.org",
            secret_key="bench-secret-key-not-for-production",
            mail_dir=Path(tmp) / "mail",
            run_jobs=False,
            rate_limit=0,
        )

        async def prepare() -> tuple[float, float, int]:
            db = Database.from_url(url)
            try:
                await seed(db)
                cold_times, direct_times = [], []
                for _ in range(COLD_ROUNDS):  # interleaved; the best of each
                    started = time.perf_counter()
                    body = await cold_render(db, settings)
                    cold_times.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    await direct_build(db, settings)
                    direct_times.append(time.perf_counter() - started)
                return min(cold_times), min(direct_times), len(body)
            finally:
                await db.dispose()

        cold, direct, size = asyncio.run(prepare())

        # The server runs in a process of its own, as in production, so the load generator
        # never shares an interpreter lock with it; the same launcher as the tests' servers.
        floor_file = Path(tmp) / "floor.ics"
        with (
            ServerProcess(
                url,
                Path(tmp),
                workers=1,  # named, so that mypy knows the settings below fill only **env
                command=[sys.executable, "-m", "bench.feeds_app", "{port}", str(floor_file)],
                secret_key=settings.secret_key,
                **importable(
                    {"SCHEDULER_BASE_URL": settings.base_url, "SCHEDULER_RUN_JOBS": "false"}
                ),
            ) as server,
            httpx.Client(timeout=30) as client,
        ):
            base = server.url
            feed_url = f"{base}/courses/managing-bias/calendar.ics"
            first = gzipped(client.get(feed_url))
            assert first.status_code == 200, first.text
            floor_file.write_bytes(first.content)
            etag = first.headers["etag"]
            with FloorServer("bench.floors.feed:app", FLOOR_FEED_FILE=str(floor_file)) as bare:
                bare_url = f"{bare.url}/feed.ics"
                bare_etag = gzipped(client.get(bare_url)).headers["etag"]
                gzipped(client.get(f"{base}/bench/floor"))
                floors, warms, conditionals = [], [], []
                honest, honest_304 = [], []
                for _ in range(ROUNDS):  # interleaved, so drift hits all alike
                    honest.append(requests_per_second(client, bare_url, {}, 200))
                    honest_304.append(
                        requests_per_second(client, bare_url, {"If-None-Match": bare_etag}, 304)
                    )
                    floors.append(requests_per_second(client, f"{base}/bench/floor", {}, 200))
                    warms.append(requests_per_second(client, feed_url, {}, 200))
                    conditionals.append(
                        requests_per_second(client, feed_url, {"If-None-Match": etag}, 304)
                    )

    floor_rps = statistics.median(floors)
    honest_rps = statistics.median(honest)
    honest_304_rps = statistics.median(honest_304)
    warm_rps = statistics.median(warms)
    not_modified_rps = statistics.median(conditionals)
    warm_spread = sorted(w / h for w, h in zip(warms, honest, strict=True))
    spread_304 = sorted(c / h for c, h in zip(conditionals, honest_304, strict=True))
    backend = "postgres" if url.startswith("postgresql") else "sqlite"
    name = f"feeds ({SESSIONS} sessions, {size // 1024} KiB, {backend})"
    # The targets are checked on the embedded default. On PostgreSQL every warm or 304 request
    # also waits for one round trip (the change token), which one client at a time feels in
    # full; its rows are printed beside them as figures.
    checked = backend == "sqlite"

    def judged(
        metric: str, value: float, floor: float, target: str, ok: bool, old: float | None = None
    ) -> dict[str, Any]:
        return {
            "benchmark": name,
            "metric": metric,
            "value": value,
            "floor": floor,
            "ratio": value / floor,
            "old floor": old,
            "old ratio": None if old is None else value / old,
            "target": target if checked else f"(figure; {target} on sqlite)",
            "ok": ok if checked else True,
        }

    return [
        judged(
            f"warm feed req/s (ratio per round {warm_spread[0]:.2f}-{warm_spread[-1]:.2f})",
            warm_rps,
            honest_rps,
            ">= 0.8",
            warm_rps / honest_rps >= 0.8,
            floor_rps,
        ),
        judged(
            f"304 req/s (ratio per round {spread_304[0]:.2f}-{spread_304[-1]:.2f})",
            not_modified_rps,
            honest_304_rps,
            ">= 0.6",
            not_modified_rps / honest_304_rps >= 0.6,
            floor_rps,
        ),
        judged("cold render ms", cold * 1000, direct * 1000, "<= 1.5", cold / direct <= 1.5),
    ]
