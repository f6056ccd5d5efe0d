"""A held two-day session with registrants and their completions, for the certificate tests.

Completions are written directly (computing them is the attendance module's job); everything
else goes through the admin and public API as a user would set it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import delete, insert, update

from scheduler.db import Database
from scheduler.models import Completion, Course
from tests.helpers import future_local, make_course

PEOPLE = [
    {
        "name": "José Ñúñez",
        "email": "jose@pd.example.org",
        "post_id": "DPSST-40112",
        "post_state": "OR",
    },
    {
        "name": "Sam Rivera",
        "email": "Sam.Rivera@pd.example.org",
        "post_id": "IL-7781",
        "post_state": "IL",
    },
    {"name": "Pat Lee", "email": "pat@pd.example.org", "post_id": "", "post_state": ""},
]


@dataclass
class Held:
    session_id: int
    course_slug: str
    registrations: list[dict[str, Any]]  # id, token, name, email

    def by_name(self, name: str) -> dict[str, Any]:
        return next(r for r in self.registrations if r["name"] == name)


async def held_session(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    db: Database,
    *,
    slug: str = "managing-bias",
    people: list[dict[str, str]] | None = None,
    credit_hours: str | None = "14.5",
    course_number: str | None = "MB-101",
    days: int = 10,
    agency: str = "Portland Police Bureau",
) -> Held:
    """Course ``slug`` (created if new) with a two-meeting session taught by Dana Cruz."""
    existing = await client.get(f"/api/courses/{slug}")
    if existing.status_code == 404:
        await make_course(client, headers, slug=slug, provider="")
    async with db.write() as conn:
        await conn.execute(
            update(Course)
            .where(Course.slug == slug)
            .values(
                credit_hours=Decimal(credit_hours) if credit_hours is not None else None,
                course_number=course_number,
            )
        )
    instructor = await client.post(
        "/api/instructors",
        json={"name": "Dana Cruz", "email": f"dana.{slug}.{days}@pd.example.org", "public": True},
        headers=headers,
    )
    assert instructor.status_code == 201, instructor.text
    first = future_local(days, 8)
    second = first + timedelta(days=1)
    body = {
        "timezone": "America/Chicago",
        "mode": "hybrid",
        "in_person_capacity": 20,
        "virtual_capacity": 20,
        "join_url": "https://meet.example.org/room-1",
        "venue": {
            "name": "Metro Training Center",
            "address": "1 Main St",
            "city": "Chicago",
            "state": "IL",
            "postal_code": "60607",
        },
        "meetings": [
            {
                "starts_at": first.isoformat(timespec="minutes"),
                "ends_at": (first + timedelta(hours=8)).isoformat(timespec="minutes"),
            },
            {
                "starts_at": second.isoformat(timespec="minutes"),
                "ends_at": (second + timedelta(hours=8)).isoformat(timespec="minutes"),
            },
        ],
        "instructors": [instructor.json()["id"]],
    }
    created = await client.post(f"/api/courses/{slug}/sessions", json=body, headers=headers)
    assert created.status_code == 201, created.text
    session_id = int(created.json()["id"])
    registrations = []
    for n, someone in enumerate(people if people is not None else PEOPLE):
        reg = {
            "name": someone["name"],
            "email": someone["email"],
            "agency": someone.get("agency", agency),
            "attendance": "virtual" if n % 2 else "in_person",
        }
        if someone.get("post_id"):
            reg |= {"post_id": someone["post_id"], "post_state": someone["post_state"]}
        answer = await client.post(f"/api/sessions/{session_id}/registrations", json=reg)
        assert answer.status_code == 201, answer.text
        registrations.append(
            {"id": answer.json()["id"], "token": answer.json()["token"], **someone}
        )
    return Held(session_id, slug, registrations)


async def set_completions(db: Database, held: Held, completed: dict[str, bool]) -> None:
    """Replace the session's completions: name → completed (people not named: no row)."""
    now = datetime.now(UTC)
    async with db.write() as conn:
        await conn.execute(delete(Completion).where(Completion.session_id == held.session_id))
        rows = [
            {
                "registration_id": held.by_name(name)["id"],
                "session_id": held.session_id,
                "completed": done,
                "attended_minutes": 960 if done else 480,
                "computed_at": now,
            }
            for name, done in completed.items()
        ]
        if rows:
            await conn.execute(insert(Completion), rows)
