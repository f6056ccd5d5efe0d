"""The session finder, ``GET /api/sessions`` and ``/sessions``, on both backends.

Several hundred sessions across three courses, every mode, several states and zones, some
full, cancelled or over, are written straight to the tables; an oracle computed from the same
rows says which sessions each filter must return. Every page is walked with the cursor: each
expected session appears exactly once, in date order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from notifications.models import utcnow
from scheduler.finder import decode_cursor
from scheduler.models import Course, SeatPool, TrainingSession

ZONES = ["America/Los_Angeles", "America/Chicago", "America/New_York", "Pacific/Honolulu"]
STATES = ["IL", "AZ", "NY", "CA"]
POOLS = {"in_person": ("in_person",), "virtual": ("virtual",), "hybrid": ("in_person", "virtual")}


@dataclass
class Row:
    id: int
    course: str
    mode: str
    state: str | None
    zone: str
    starts_at: datetime
    ends_at: datetime
    status: str
    free: dict[str, bool]

    def local_day(self) -> date:
        return self.starts_at.astimezone(ZoneInfo(self.zone)).date()


async def seed(db, count: int = 320) -> list[Row]:
    rng = random.Random(15)
    now = utcnow().replace(second=0, microsecond=0)
    rows: list[Row] = []
    async with db.write() as conn:
        for n, slug in enumerate(["managing-bias", "crisis-talk", "report-writing"], start=1):
            await conn.execute(insert(Course).values(id=n, slug=slug, title=slug.title()))
        sessions, pools = [], []
        for sid in range(1, count + 1):
            mode = rng.choice(list(POOLS))
            zone = rng.choice(ZONES)
            # Evening starts in the west cross midnight UTC: local day and UTC day differ.
            starts = now + timedelta(days=rng.randint(-3, 120), hours=rng.choice([0, 7, 13, 20]))
            if sid % 9 == 0:
                starts = sessions[-1]["starts_at"]  # same start as another: the id breaks ties
            ends = starts + timedelta(hours=rng.choice([2, 4, 30]))
            status = "cancelled" if sid % 17 == 0 else "scheduled"
            state = None if mode == "virtual" else rng.choice(STATES)
            course = rng.choice(["managing-bias", "crisis-talk", "report-writing"])
            sessions.append(
                {
                    "id": sid,
                    "course_id": ["managing-bias", "crisis-talk", "report-writing"].index(course)
                    + 1,
                    "starts_at": starts,
                    "ends_at": ends,
                    "timezone": zone,
                    "mode": mode,
                    "status": status,
                    "venue_name": None if state is None else "Hall",
                    "venue_state": None if state is None else rng.choice([state, state.lower()]),
                }
            )
            free = {}
            for attendance in POOLS[mode]:
                capacity = rng.choice([2, 5])
                confirmed = capacity if rng.random() < 0.35 else rng.randint(0, capacity - 1)
                free[attendance] = confirmed < capacity
                pools.append(
                    {
                        "session_id": sid,
                        "attendance": attendance,
                        "capacity": capacity,
                        "confirmed": confirmed,
                    }
                )
            rows.append(Row(sid, course, mode, state, zone, starts, ends, status, free))
        await conn.execute(insert(TrainingSession), sessions)
        await conn.execute(insert(SeatPool), pools)
    return rows


def expected(rows: list[Row], now: datetime, **f) -> list[int]:
    modes = f["mode"].split(",") if f.get("mode") else list(POOLS)
    picked = []
    for r in rows:
        if r.status == "cancelled" or r.ends_at <= now:
            continue
        if f.get("course") and r.course != f["course"]:
            continue
        if r.mode not in modes:
            continue
        if f.get("state") and r.state != f["state"].upper():
            continue
        if f.get("from") and r.local_day() < date.fromisoformat(f["from"]):
            continue
        if f.get("to") and r.local_day() > date.fromisoformat(f["to"]):
            continue
        if f.get("available") == "1":
            wanted = {p for m in modes for p in POOLS[m]}
            if not any(ok for pool, ok in r.free.items() if pool in wanted):
                continue
        picked.append(r)
    picked.sort(key=lambda r: (r.starts_at, r.id))
    return [r.id for r in picked]


async def walk(client, params: dict[str, str]) -> tuple[list[int], int]:
    """Every page from the first; returns the ids in order and the number of pages."""
    ids: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = await client.get("/api/sessions", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        ids += [s["id"] for s in body["sessions"]]
        assert set(body) == {"sessions", "next_cursor"}
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 100, "the cursor does not advance"


async def test_filters_and_cursor_cover_every_session_exactly_once(client, db):
    rows = await seed(db)
    now = utcnow()
    today = now.date()
    combos = [
        {},
        {"limit": "7"},
        {"course": "crisis-talk", "limit": "11"},
        {"mode": "virtual", "limit": "9"},
        {"mode": "in_person,hybrid", "state": "il", "limit": "5"},
        {"state": "AZ", "available": "1", "limit": "4"},
        {"mode": "virtual", "available": "1"},
        {"available": "1", "limit": "13"},
        {
            "from": (today + timedelta(days=10)).isoformat(),
            "to": (today + timedelta(days=40)).isoformat(),
            "limit": "6",
        },
        {
            "course": "managing-bias",
            "mode": "hybrid",
            "available": "1",
            "from": today.isoformat(),
            "to": (today + timedelta(days=90)).isoformat(),
            "limit": "3",
        },
        {"from": (today + timedelta(days=200)).isoformat()},
    ]
    for combo in combos:
        ids, pages = await walk(client, combo)
        want = expected(rows, now, **combo)
        assert len(ids) == len(set(ids)), f"a session appeared twice for {combo}"
        assert ids == want, f"wrong sessions for {combo}"
        limit = int(combo.get("limit", 25))
        assert pages == max(1, -(-len(want) // limit)), combo
    everything, _ = await walk(client, {"limit": "100"})
    assert len(everything) > 250, "the seed should leave several hundred upcoming sessions"


async def test_local_days_decide_from_and_to(client, db):
    """A session at 8 PM in Los Angeles on the 31st is on the 31st, though UTC says the 1st."""
    day = (utcnow() + timedelta(days=30)).date()
    starts = datetime(day.year, day.month, day.day, 20, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    async with db.write() as conn:
        await conn.execute(insert(Course).values(id=1, slug="c", title="C"))
        await conn.execute(
            insert(TrainingSession).values(
                id=1,
                course_id=1,
                starts_at=starts,
                ends_at=starts + timedelta(hours=2),
                timezone="America/Los_Angeles",
                mode="virtual",
            )
        )
        await conn.execute(
            insert(SeatPool).values(session_id=1, attendance="virtual", capacity=5, confirmed=0)
        )
    assert starts.astimezone(UTC).date() == day + timedelta(days=1)
    on_the_day = await client.get(
        "/api/sessions", params={"from": day.isoformat(), "to": day.isoformat()}
    )
    assert [s["id"] for s in on_the_day.json()["sessions"]] == [1]
    next_day = (day + timedelta(days=1)).isoformat()
    after = await client.get("/api/sessions", params={"from": next_day})
    assert after.json()["sessions"] == []


async def test_a_session_added_between_pages_does_not_repeat_others(client, db, admin_headers):
    await seed(db, count=60)
    first = (await client.get("/api/sessions", params={"limit": "10"})).json()
    seen = [s["id"] for s in first["sessions"]]
    # Something earlier than the cursor arrives; the next page still starts after the cursor.
    async with db.write() as conn:
        await conn.execute(
            insert(TrainingSession).values(
                id=999,
                course_id=1,
                starts_at=utcnow() + timedelta(hours=1),
                ends_at=utcnow() + timedelta(hours=3),
                timezone="UTC",
                mode="virtual",
            )
        )
    second = (
        await client.get("/api/sessions", params={"limit": "10", "cursor": first["next_cursor"]})
    ).json()
    assert not set(seen) & {s["id"] for s in second["sessions"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"mode": "teleport"}, "mode"),
        ({"mode": "virtual,"}, None),
        ({"state": "ZZ"}, "state"),
        ({"state": "Illinois"}, "state"),
        ({"from": "2027-13-01"}, "from"),
        ({"from": "tomorrow"}, "from"),
        ({"to": "2027-01-01T00:00"}, "to"),
        ({"from": "2027-02-01", "to": "2027-01-01"}, "to"),
        ({"available": "maybe"}, "available"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyIyMDI3LTAxLTAxVDAwOjAwOjAwIiwxXQ"}, "cursor"),  # naive time
        ({"limit": "0"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"course": "no-such-course"}, "course"),
        ({"sort": "price"}, "sort"),
    ],
)
async def test_bad_filters_answer_422_naming_the_field(client, db, params, field):
    await seed(db, count=5)
    response = await client.get("/api/sessions", params=params)
    if field is None:  # a trailing comma is harmless
        assert response.status_code == 200
        return
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]
    page = await client.get("/sessions", params=params)
    assert page.status_code == 422
    assert 'role="alert"' in page.text


def test_the_cursor_is_opaque_but_checked():
    assert decode_cursor("") is None
    assert decode_cursor("e30") is None  # {}
    assert decode_cursor("WyIyMDI3LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwtMV0") is None  # id -1


async def test_the_page_filters_pages_and_links_to_the_register_form(client, db):
    rows = await seed(db, count=80)
    now = utcnow()
    home = await client.get("/")
    assert 'href="/sessions"' in home.text
    want = expected(rows, now, mode="hybrid")
    page = await client.get("/sessions", params={"mode": "hybrid", "limit": "5"})
    assert page.status_code == 200
    shown = [int(x) for x in _ids(page.text)]
    assert shown == want[:5]
    first = next(r for r in rows if r.id == shown[0])
    assert f'href="/courses/{first.course}?register={first.id}#session-{first.id}"' in page.text
    assert f'href="/courses/{first.course}"' in page.text
    next_link = _next(page.text)
    assert next_link is not None
    query = parse_qs(urlsplit(next_link).query)
    assert query["mode"] == ["hybrid"] and query["limit"] == ["5"] and "cursor" in query
    second = await client.get(next_link)
    assert [int(x) for x in _ids(second.text)] == want[5:10]
    assert 'href="/sessions?mode=hybrid&amp;limit=5"' in second.text  # back to the first page
    opened = await client.get(f"/courses/{first.course}", params={"register": first.id})
    assert '<details class="register" open>' in opened.text.split(f'id="session-{first.id}"')[1]


def _ids(text: str) -> list[str]:
    import re

    return re.findall(r'<li class="card session" id="session-(\d+)"', text)


def _next(text: str) -> str | None:
    import html
    import re

    found = re.search(r'<a href="([^"]+)" rel="next">', text)
    return html.unescape(found.group(1)) if found else None
