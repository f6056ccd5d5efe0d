"""Two ``scheduler serve`` processes on one PostgreSQL race to book one instructor.

Each round makes two overlapping sessions, then assigns the same instructor to both at once,
one request through each process: exactly one answer is 200 and the other 409, every round.
Then the same with two creations at once (exactly one 201). The row lock on the instructor
serialises the two checks across processes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from scheduler.db import Database
from scheduler.tokens import create_token
from tests.helpers import future_local, session_body

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROUNDS = 6


def block(day: int, start: int, end: int, **extra: Any) -> dict[str, Any]:
    begin = future_local(day, start)
    body = session_body(**extra)
    body["starts_at"] = begin.isoformat(timespec="minutes")
    body["ends_at"] = begin.replace(hour=end).isoformat(timespec="minutes")
    return body


async def test_two_processes_book_an_instructor_once(postgres_url: str, live_server_factory):
    db = Database.from_url(postgres_url)
    one, two = (live_server_factory(postgres_url) for _ in range(2))
    headers = {"Authorization": f"Bearer {await create_token(db, 'race')}"}
    await db.dispose()
    async with (
        httpx.AsyncClient(base_url=one.url, headers=headers, timeout=30) as a,
        httpx.AsyncClient(base_url=two.url, headers=headers, timeout=30) as b,
    ):
        course = {"slug": "managing-bias", "title": "Managing Bias"}
        assert (await a.post("/api/courses", json=course)).status_code == 201
        teacher = await a.post(
            "/api/instructors", json={"name": "Dana Cruz", "email": "dana@example.org"}
        )
        teacher_id = teacher.json()["id"]
        url = "/api/courses/managing-bias/sessions"
        for round_ in range(ROUNDS):
            day = 10 + round_
            first = (await a.post(url, json=block(day, 9, 12))).json()
            second = (await b.post(url, json=block(day, 11, 14))).json()
            answers = await asyncio.gather(
                a.patch(f"/api/sessions/{first['id']}", json={"instructors": [teacher_id]}),
                b.patch(f"/api/sessions/{second['id']}", json={"instructors": [teacher_id]}),
            )
            assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
            loser = next(r for r in answers if r.status_code == 409)
            assert loser.json()["error"]["code"] == "conflict"
            assert "instructors" in loser.json()["error"]["fields"]
        for round_ in range(ROUNDS):
            day = 30 + round_
            answers = await asyncio.gather(
                a.post(url, json=block(day, 9, 12, instructors=[teacher_id])),
                b.post(url, json=block(day, 10, 13, instructors=[teacher_id])),
            )
            assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
